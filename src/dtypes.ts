// The mapping between JS TypedArray classes and NumPy dtype descr strings.
import { types } from 'node:util'

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

/** Float16Array where the runtime has it (Node 24+), else undefined. */
export const Float16ArrayClass = (globalThis as Record<string, unknown>).Float16Array as TypedArrayClass | undefined

const CLASSES: Record<string, TypedArrayClass | undefined> = {
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
  Float16Array: Float16ArrayClass,
}

/** The default dtype of each class: what a bare TypedArray is stored as. */
const DEFAULT_DTYPE: Record<string, string> = {
  Int8Array: '|i1',
  Uint8Array: '|u1',
  Uint8ClampedArray: '|u1',
  Int16Array: '<i2',
  Uint16Array: '<u2',
  Int32Array: '<i4',
  Uint32Array: '<u4',
  Float32Array: '<f4',
  Float64Array: '<f8',
  BigInt64Array: '<i8',
  BigUint64Array: '<u8',
  Float16Array: '<f2',
}

/**
 * For each dtype: the class `readNpy` returns, the classes accepted when
 * writing, and how many elements of that class make one array element
 * (complex numbers are interleaved real, imaginary).
 */
const DTYPES: Record<string, { read: string; accepts: string[]; perElement: number }> = {
  '|b1': { read: 'Uint8Array', accepts: ['Uint8Array', 'Uint8ClampedArray'], perElement: 1 },
  '|i1': { read: 'Int8Array', accepts: ['Int8Array'], perElement: 1 },
  '|u1': { read: 'Uint8Array', accepts: ['Uint8Array', 'Uint8ClampedArray'], perElement: 1 },
  '<i2': { read: 'Int16Array', accepts: ['Int16Array'], perElement: 1 },
  '<u2': { read: 'Uint16Array', accepts: ['Uint16Array'], perElement: 1 },
  '<f2': { read: 'Uint16Array', accepts: ['Uint16Array', 'Float16Array'], perElement: 1 },
  '<i4': { read: 'Int32Array', accepts: ['Int32Array'], perElement: 1 },
  '<u4': { read: 'Uint32Array', accepts: ['Uint32Array'], perElement: 1 },
  '<f4': { read: 'Float32Array', accepts: ['Float32Array'], perElement: 1 },
  '<i8': { read: 'BigInt64Array', accepts: ['BigInt64Array'], perElement: 1 },
  '<u8': { read: 'BigUint64Array', accepts: ['BigUint64Array'], perElement: 1 },
  '<f8': { read: 'Float64Array', accepts: ['Float64Array'], perElement: 1 },
  '<c8': { read: 'Float32Array', accepts: ['Float32Array'], perElement: 2 },
  '<c16': { read: 'Float64Array', accepts: ['Float64Array'], perElement: 2 },
}

/** The dtypes this package handles, in NumPy's little-endian descr spelling. */
export const SUPPORTED_DTYPES: readonly string[] = Object.keys(DTYPES)

/**
 * The class name of a TypedArray (subclasses count as their base class;
 * Buffer counts as Uint8Array), or undefined for anything else.
 */
export function typedArrayClassName(value: unknown): string | undefined {
  if (!types.isTypedArray(value)) return undefined
  // Symbol.toStringTag of %TypedArray% is a brand check: right across realms and for subclasses.
  const tag = (value as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag]
  return tag in DEFAULT_DTYPE ? tag : undefined
}

export function defaultDtype(className: string): string {
  return DEFAULT_DTYPE[className]
}

/** Accepts a few common spellings and returns NumPy's canonical little-endian descr. */
export function canonicalDtype(dtype: string): string | undefined {
  if (dtype in DTYPES) return dtype
  const m = /^([<|=])?([biufc])(\d+)$/.exec(dtype)
  if (!m) return undefined
  const [, , kind, size] = m
  const oneByte = size === '1'
  const spelled = `${oneByte ? '|' : '<'}${kind}${size}`
  return spelled in DTYPES ? spelled : undefined
}

/** Elements of the data array per array element (2 for complex). */
export function elementsPerItem(dtype: string): number {
  return DTYPES[dtype].perElement
}

export function dtypeAccepts(dtype: string, className: string): boolean {
  return DTYPES[dtype]?.accepts.includes(className) ?? false
}

export function classForName(className: string): TypedArrayClass | undefined {
  return CLASSES[className]
}

/** The class `readNpy` gives for a dtype. */
export function readClassName(dtype: string): string {
  return DTYPES[dtype].read
}

/** A view of `className` over `buffer` with no copy. */
export function viewOf(buffer: ArrayBuffer, className: string): TypedArray {
  const Class = CLASSES[className]
  if (!Class) throw new TypeError(`${className} is not available in this runtime`)
  return new Class(buffer, 0, buffer.byteLength / Class.BYTES_PER_ELEMENT)
}
