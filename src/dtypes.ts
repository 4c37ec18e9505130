// JS TypedArray classes and NumPy dtypes. Which class holds which dtype is
// the core's table (binding's dtypeTable/classTable); here it is indexed,
// and joined to the classes' constructors.
import { types } from 'node:util'
import { native } from './native'

/** Any TypedArray this package reads or writes. */
export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array

type TypedArrayClass = {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArray
  readonly BYTES_PER_ELEMENT: number
  readonly name: string
}

/** The constructors of the classes the table names; Float16Array only where the runtime has it (Node 24+). */
const CONSTRUCTORS: Record<string, TypedArrayClass | undefined> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  Float16Array: (globalThis as Record<string, unknown>).Float16Array as TypedArrayClass | undefined,
}

const DTYPES = new Map(native.dtypeTable().map((d) => [d.descr, d]))
const DEFAULT_DTYPE = new Map(native.classTable().map((c) => [c.name, c.defaultDtype]))

/** The dtypes this package handles, in NumPy's little-endian descr spelling. */
export const SUPPORTED_DTYPES: readonly string[] = Object.freeze([...DTYPES.keys()])

/**
 * The class name of a TypedArray (subclasses count as their base class;
 * Buffer counts as Uint8Array), or undefined for anything else.
 */
export function typedArrayClassName(value: unknown): string | undefined {
  if (!types.isTypedArray(value)) return undefined
  // Symbol.toStringTag of %TypedArray% is a brand check: right across realms and for subclasses.
  const tag = (value as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag]
  return DEFAULT_DTYPE.has(tag) ? tag : undefined
}

/**
 * The class a result is stored as and loaded back as: a TypedArray's own
 * class, and `'Buffer'` for a Node Buffer (it comes back as a Buffer).
 */
export function resultClassName(value: unknown): string | undefined {
  return Buffer.isBuffer(value) ? 'Buffer' : typedArrayClassName(value)
}

/** What a bare array of the class is stored as. */
export function defaultDtype(className: string): string {
  return DEFAULT_DTYPE.get(className)!
}

/** Accepts a few common spellings and returns NumPy's canonical little-endian descr. */
export function canonicalDtype(dtype: string): string | undefined {
  if (DTYPES.has(dtype)) return dtype
  const m = /^([<|=])?([biufc])(\d+)$/.exec(dtype)
  if (!m) return undefined
  const [, , kind, size] = m
  const spelled = `${size === '1' ? '|' : '<'}${kind}${size}`
  return DTYPES.has(spelled) ? spelled : undefined
}

/** NumPy's name of a dtype: 'float64' for '<f8'. */
export function dtypeName(dtype: string): string | undefined {
  return DTYPES.get(dtype)?.name
}

/** Bytes of one array element (16 for '<c16'). */
export function itemSize(dtype: string): number {
  return DTYPES.get(dtype)!.itemSize
}

/** Elements of the data array per array element (2 for complex). */
export function elementsPerItem(dtype: string): number {
  return DTYPES.get(dtype)!.elementsPerItem
}

export function dtypeAccepts(dtype: string, className: string): boolean {
  return DTYPES.get(dtype)?.classes.includes(className) ?? false
}

/** The class `readNpy` gives for a dtype. */
export function readClassName(dtype: string): string {
  return DTYPES.get(dtype)!.readClass
}

/**
 * A view of `className` over `buffer` with no copy (`length` elements from
 * byte `offset`, else all of it); where the runtime lacks that class
 * (Float16Array before Node 24), of the class a read of `dtype` gives.
 */
export function viewOf(buffer: ArrayBuffer, className: string, dtype: string, offset = 0, length?: number): TypedArray {
  if (className === 'Buffer') return Buffer.from(buffer, offset, length ?? buffer.byteLength - offset)
  const Class = CONSTRUCTORS[className] ?? CONSTRUCTORS[readClassName(dtype)]!
  return new Class(buffer, offset, length ?? (buffer.byteLength - offset) / Class.BYTES_PER_ELEMENT)
}
