// Results written straight into the cache: the shape and dtype a function
// declares with `output`, checked; the array it fills, lent over the
// entry's file (the binding's OutputDraft); and what it may return.
import { constants } from 'node:buffer'
import type { ArrayLayout, EntryArg, LoadedValue, OutputDraft } from '../binding/index'
import { describe } from './describe'
import { SUPPORTED_DTYPES, type TypedArray, canonicalDtype, itemSize, readClassName, viewOf } from './dtypes'
import { ErrorCodes, codedError, nativeCall } from './errors'
import { valueOf } from './results'

/** The output a call declares, checked. */
export interface DeclaredOutput {
  layout: ArrayLayout
  className: string
  /** A TypedArray for one dimension, else `{ data, shape, dtype }`. */
  form: 'typedarray' | 'ndarray'
}

/** The array lent to the function, and the buffer under it. */
export interface Lent {
  data: TypedArray
  buffer: ArrayBuffer
}

const bad = (Class: TypeErrorConstructor | RangeErrorConstructor, message: string): never => {
  throw codedError(Class, ErrorCodes.BAD_RESULT, message)
}

/** What `output`, called with a call's `this` and arguments, declares for the function `label` names. */
export function declaredOutput(output: (...args: unknown[]) => unknown, self: unknown, args: unknown[], label: string): DeclaredOutput {
  const what = `the output that options.output declared for ${label}`
  const spec: unknown = output.apply(self, args)
  if (typeof spec !== 'object' || spec === null || !('shape' in spec) || !('dtype' in spec)) {
    return bad(TypeError, `${what} must be { shape, dtype } (for example { shape: [n, 3], dtype: '<f8' }), got ${describe(spec)}`)
  }
  const { shape, dtype } = spec
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    return bad(TypeError, `${what} has shape ${describe(shape)}: it must be an array of whole numbers, each 0 or more`)
  }
  const descr = typeof dtype === 'string' ? canonicalDtype(dtype) : undefined
  if (descr === undefined) {
    return bad(TypeError, `${what} has dtype ${describe(dtype)}, which is not one this package writes (${SUPPORTED_DTYPES.join(', ')})`)
  }
  const bytes = (shape as number[]).reduce((a, b) => a * b, 1) * itemSize(descr)
  if (!Number.isSafeInteger(bytes) || bytes > constants.MAX_LENGTH) {
    bad(RangeError, `${what} takes ${bytes} bytes, over the largest ArrayBuffer this runtime makes (${constants.MAX_LENGTH} bytes)`)
  }
  return {
    layout: { shape: [...(shape as number[])], dtype: descr, fortranOrder: false },
    className: readClassName(descr),
    form: shape.length === 1 ? 'typedarray' : 'ndarray',
  }
}

/**
 * The draft's array, as the function fills it: a TypedArray of the dtype's
 * class over all its elements in C order, which also has the `shape` and
 * `dtype` declared, and `data` (itself), so that it reads as `{ data,
 * shape, dtype }` too.
 */
export function lend(draft: OutputDraft, declared: DeclaredOutput): Lent {
  const buffer = nativeCall(() => draft.buffer())
  const data = viewOf(buffer, declared.className, declared.layout.dtype)
  const { shape, dtype } = declared.layout
  Object.defineProperties(data, { data: { value: data }, shape: { value: Object.freeze([...shape]) }, dtype: { value: dtype } })
  return { data, buffer }
}

/** Checks what the function returned: nothing, or the array it was given (a result returned elsewhere would be lost). */
export function checkFilled(returned: unknown, lent: Lent, label: string): void {
  if (returned === undefined || returned === lent.data) return
  bad(
    TypeError,
    `${label} was given its output to fill (its last argument), so it must return nothing or that array; ` +
      `it returned ${describe(returned)}, which would not be stored`,
  )
}

/** What the record of a declared output says it is. */
export function entryOfOutput(declared: DeclaredOutput, functionName: string): EntryArg {
  return { function: functionName, result: declared.form, class: declared.className }
}

/** The published array, as the call returns it. */
export function outputValue(array: LoadedValue, declared: DeclaredOutput): unknown {
  return valueOf({ array, class: declared.className, result: declared.form })
}
