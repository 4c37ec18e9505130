// A cached function's results: checked and cut into what the core stores,
// and hits made back into the form they were stored from.
import type { EntryArg, Hit } from '../binding/index'
import { type TypedArray, viewOf } from './dtypes'
import { ErrorCodes } from './errors'
import { type ArrayParts, toArrayParts } from './npy'

/** A result about to be stored: what the core writes, and what the call returns. */
export interface Computed {
  parts: ArrayParts
  result: unknown
}

/** Checks `value`, returned by the function `label` names, and makes it a result. */
export function computed(value: unknown, label: string): Computed {
  const parts = toArrayParts(value, `the result of ${label}`, ErrorCodes.BAD_RESULT)
  return { parts, result: parts.bare ? parts.data : shaped(parts.data, parts.layout) }
}

/** What the core's record says of a result of the function `functionName`. */
export function entryOf(parts: ArrayParts, functionName: string): EntryArg {
  return { function: functionName, result: parts.bare ? 'typedarray' : 'ndarray', class: parts.className }
}

/** `{ data, shape, dtype }` (and `fortranOrder: true` for a Fortran-order array). */
export function shaped(data: TypedArray, layout: { shape: number[]; dtype: string; fortranOrder: boolean }): unknown {
  const { shape, dtype, fortranOrder } = layout
  return fortranOrder ? { data, shape, dtype, fortranOrder } : { data, shape, dtype }
}

/** A hit as the call returns it: the class and form it was stored from, over the loaded memory. */
export function valueOf(hit: Hit): unknown {
  const { array } = hit
  const data = viewOf(array.buffer, hit.class, array.dtype)
  return hit.result === 'typedarray' ? data : shaped(data, array)
}
