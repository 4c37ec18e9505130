// readNpy / writeNpy, and the one place that turns a JS array value into
// the (data, shape, dtype) the Rust core writes.
import { type LoadedValue, native } from './native'
import {
  type TypedArray,
  canonicalDtype,
  defaultDtype,
  dtypeAccepts,
  elementsPerItem,
  readClassName,
  resultClassName,
  viewOf,
  SUPPORTED_DTYPES,
} from './dtypes'
import { describe } from './describe'
import { type ErrorCode, ErrorCodes, codedError, invalidArg, nativeCall } from './errors'
import { pathOf } from './paths'

/** An array read from a .npy file. */
export interface NpyArray<T extends TypedArray = TypedArray> {
  /** The elements in file order; complex values interleave real and imaginary parts. */
  data: T
  shape: number[]
  /** NumPy descr in native (little-endian) order, e.g. `'<f8'`, `'|b1'`, `'<c16'`. */
  dtype: string
  /** True when `data` is in Fortran (column-major) order, as stored. */
  fortranOrder: boolean
}

/**
 * An n-d array: contiguous `data` of `shape`. `dtype` picks a NumPy type a
 * class cannot say alone (`'|b1'` over Uint8Array, `'<f2'` over Uint16Array,
 * `'<c8'`/`'<c16'` over Float32Array/Float64Array). scijs-ndarray objects
 * with C-contiguous `stride` and any `offset` are accepted too.
 */
export interface NdArray<T extends TypedArray = TypedArray> {
  data: T
  shape: readonly number[]
  dtype?: string
  fortranOrder?: boolean
}

/** A result of a cached function loaded as an n-d array. */
export interface LoadedNdArray<T extends TypedArray = TypedArray> {
  data: T
  shape: number[]
  dtype: string
}

/** What the Rust core writes: the data, how it is laid out, and the form it came in. */
export interface ArrayParts {
  data: TypedArray
  className: string
  layout: { shape: number[]; dtype: string; fortranOrder: boolean }
  /** True for a bare TypedArray, false for an `{ data, shape }` object. */
  bare: boolean
}

// scijs-ndarray's dtype names, accepted as another spelling of the class's default dtype.
const SCIJS_DTYPES: Record<string, string> = {
  int8: 'Int8Array',
  uint8: 'Uint8Array',
  uint8_clamped: 'Uint8ClampedArray',
  int16: 'Int16Array',
  uint16: 'Uint16Array',
  int32: 'Int32Array',
  uint32: 'Uint32Array',
  float32: 'Float32Array',
  float64: 'Float64Array',
  bigint64: 'BigInt64Array',
  biguint64: 'BigUint64Array',
}

/** The most dimensions an array may have: NumPy reads no more. */
const MAX_DIMS = native.defaults().maxDims

/** Throws what is wrong with a value: the code says whose mistake it is. */
type Fail = (Class: TypeErrorConstructor | RangeErrorConstructor, message: string) => never

function failWith(code: ErrorCode): Fail {
  return (Class, message) => {
    throw codedError(Class, code, message)
  }
}

function checkShape(shape: unknown, what: string, fail: Fail): number[] {
  if (!Array.isArray(shape)) fail(TypeError, `${what}.shape must be an array of non-negative integers, got ${describe(shape)}`)
  return (shape as unknown[]).map((d: unknown, i) => {
    if (typeof d !== 'number') return fail(TypeError, `${what}.shape[${i}] must be a number, got ${describe(d)}`)
    if (!Number.isSafeInteger(d) || d < 0) fail(RangeError, `${what}.shape[${i}] must be a non-negative integer, got ${d}`)
    return d
  })
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

/** Returns `data` restricted to a scijs-style view's elements, or throws if not C-contiguous. */
function contiguousData(data: TypedArray, shape: number[], stride: unknown, offset: unknown, what: string, fail: Fail): TypedArray {
  if (stride === undefined && offset === undefined) return data
  const start = offset === undefined ? 0 : offset
  if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 0) {
    return fail(RangeError, `${what}.offset must be a non-negative integer, got ${describe(offset)}`)
  }
  if (stride !== undefined) {
    if (!Array.isArray(stride) || stride.length !== shape.length) {
      fail(TypeError, `${what}.stride must be an array with one entry per dimension, got ${describe(stride)}`)
    }
    let expected = 1
    for (let i = shape.length - 1; i >= 0; i--) {
      if (shape[i] > 1 && (stride as unknown[])[i] !== expected) {
        fail(
          RangeError,
          `${what} is not C-contiguous (stride [${(stride as unknown[]).join(', ')}] for shape [${shape.join(', ')}]); ` +
            `pass a contiguous copy`,
        )
      }
      expected *= shape[i]
    }
  }
  return data.subarray(start, start + product(shape))
}

/**
 * Checks a TypedArray or `{ data, shape }` value and resolves its dtype.
 * `what` names the value in errors ("array", "the result of foo()"), and
 * `code` says whose mistake a bad value is.
 */
export function toArrayParts(value: unknown, what: string, code: ErrorCode): ArrayParts {
  const fail: Fail = failWith(code)
  const bareClass = resultClassName(value)
  if (bareClass) {
    const data = value as TypedArray
    const layout = { shape: [data.length], dtype: defaultDtype(bareClass), fortranOrder: false }
    return { data, className: bareClass, layout, bare: true }
  }
  if (typeof value !== 'object' || value === null || !('data' in value) || !('shape' in value)) {
    fail(TypeError, `${what} must be a TypedArray or an n-d array { data: TypedArray, shape: number[] }, got ${describe(value)}`)
  }
  const v = value as Record<string, unknown>
  const className = resultClassName(v.data)
  if (!className) return fail(TypeError, `${what}.data must be a TypedArray, got ${describe(v.data)}`)
  const shape = checkShape(v.shape, what, fail)
  if (shape.length > MAX_DIMS) fail(RangeError, `${what} has ${shape.length} dimensions; NumPy reads at most ${MAX_DIMS}`)
  let dtype = defaultDtype(className)
  if (v.dtype !== undefined) {
    const given = typeof v.dtype === 'string' ? v.dtype : undefined
    const canonical = given === undefined ? undefined : canonicalDtype(given)
    if (canonical !== undefined) {
      if (!dtypeAccepts(canonical, className)) fail(TypeError, `${what}.dtype '${given}' cannot be stored from a ${className}`)
      dtype = canonical
    } else if (given === undefined || SCIJS_DTYPES[given] !== className) {
      fail(
        TypeError,
        `${what}.dtype ${given === undefined ? describe(v.dtype) : `'${given}'`} is not supported; ` +
          `use one of ${SUPPORTED_DTYPES.join(', ')}`,
      )
    }
  }
  if (v.fortranOrder !== undefined && typeof v.fortranOrder !== 'boolean') {
    fail(TypeError, `${what}.fortranOrder must be a boolean, got ${describe(v.fortranOrder)}`)
  }
  const data = contiguousData(v.data as TypedArray, shape, v.stride, v.offset, what, fail)
  const needed = product(shape) * elementsPerItem(dtype)
  if (data.length !== needed) {
    fail(RangeError, `${what}.data has ${data.length} elements but shape [${shape.join(', ')}] of dtype ${dtype} needs ${needed}`)
  }
  return { data, className, layout: { shape, dtype, fortranOrder: v.fortranOrder === true }, bare: false }
}

/**
 * The array as the core is handed it: itself, or for a Float16Array a
 * Uint16Array over the same memory (a runtime's N-API may not report the
 * newer class's element size, and the core wants the bytes alone).
 */
export function bytesOf({ data, className }: ArrayParts): TypedArray {
  return className === 'Float16Array' ? new Uint16Array(data.buffer, data.byteOffset, data.length) : data
}


/** A TypedArray class, such as `Float64Array`: what `readNpy` can be asked to return. */
export interface TypedArrayClass<T extends TypedArray> {
  new (length: number): T
  readonly prototype: T
}

/**
 * Reads a .npy file written by NumPy or by this package. Big-endian data is
 * converted to native order; Fortran-order data is returned as stored.
 * Throws an Error naming the file if it is not a valid .npy file.
 *
 * With `arrayClass` (`readNpy(path, Float64Array)`), the result is typed as
 * that class and checked to be one: a file whose dtype another class holds
 * is a TypeError naming both. (A type argument alone, `readNpy<Float64Array>`,
 * would be a cast nothing checks: TypeScript's types do not exist at run time.)
 */
export function readNpy<T extends TypedArray>(path: string | URL, arrayClass: TypedArrayClass<T>): NpyArray<T>
export function readNpy(path: string | URL): NpyArray
export function readNpy(path: string | URL, arrayClass?: TypedArrayClass<TypedArray>): NpyArray {
  const file = pathOf(path, 'readNpy')
  if (arrayClass !== undefined && !(typeof arrayClass === 'function' && arrayClass.prototype instanceof Object.getPrototypeOf(Uint8Array))) {
    throw invalidArg(`readNpy: arrayClass must be a TypedArray class such as Float64Array, got ${describe(arrayClass)}`)
  }
  const array = npyArrayOf(nativeCall(() => native.readNpyFile(file)))
  if (arrayClass !== undefined && !(array.data instanceof arrayClass)) {
    throw codedError(TypeError, ErrorCodes.INVALID_ARG, `readNpy: ${file} holds dtype '${array.dtype}', which reads as ${array.data.constructor.name}, not ${arrayClass.name}`)
  }
  return array
}

/** An array Rust read, as a view of the class of its dtype over its buffer: no copy. */
export function npyArrayOf(raw: LoadedValue): NpyArray {
  const data = viewOf(raw.buffer, readClassName(raw.dtype), raw.dtype)
  return { data, shape: raw.shape, dtype: raw.dtype, fortranOrder: raw.fortranOrder }
}

/**
 * Writes a TypedArray (as 1-d) or an n-d array as a .npy file NumPy reads,
 * straight from the array's memory.
 */
export function writeNpy(path: string | URL, array: TypedArray | NdArray): void {
  const file = pathOf(path, 'writeNpy')
  const parts = toArrayParts(array, 'writeNpy: array', ErrorCodes.INVALID_ARG)
  nativeCall(() => native.writeNpyFile(file, bytesOf(parts), parts.layout))
}

