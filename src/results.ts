// A cached function's results: checked and cut into what the core stores,
// and hits made back into the form they were stored from. A result is one
// array (a TypedArray or an n-d array), or several: a tuple `[a, b]` or a
// record `{ mean, cov }` of them, stored as one .npz entry.
import type { EntryArg, Hit, MemberValue, ResultForm } from '../binding/index'
import { describe } from './describe'
import { type TypedArray, elementsPerItem, viewOf } from './dtypes'
import { ErrorCodes, codedError } from './errors'
import { native } from './native'
import { type ArrayParts, bytesOf, toArrayParts } from './npy'
import { npzMembers } from './npz'

/** The most arrays one result holds (the core's limit). */
export const MAX_RESULT_ARRAYS = native.defaults().maxEntryMembers

/** One array of a result: its name in the .npz (`arr_<i>` in a tuple), none for a result of one. */
export interface ResultArray {
  name: string
  parts: ArrayParts
}

/** A result about to be stored: what the core writes, and what the call returns. */
export interface Computed {
  form: ResultForm
  /** One array, or several in order. */
  arrays: ResultArray[]
  result: unknown
}

/** Whether `value` is a record of arrays rather than one n-d array: a plain object without `data` and `shape`. */
function isRecordOfArrays(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return (proto === Object.prototype || proto === null) && !('data' in value && 'shape' in value)
}

/** Checks `value`, returned by the function `label` names, and makes it a result. */
export function computed(value: unknown, label: string): Computed {
  const what = `the result of ${label}`
  const bad = (Class: TypeErrorConstructor | RangeErrorConstructor, message: string): never => {
    throw codedError(Class, ErrorCodes.BAD_RESULT, message)
  }
  if (!Array.isArray(value) && !isRecordOfArrays(value)) {
    const parts = toArrayParts(value, what, ErrorCodes.BAD_RESULT)
    return { form: parts.bare ? 'typedarray' : 'ndarray', arrays: [{ name: '', parts }], result: resultOf(parts) }
  }
  const tuple = Array.isArray(value)
  const members = npzMembers(value)
  if (members.length === 0) bad(TypeError, `${what} is ${tuple ? 'an empty array' : 'an empty object'}: a result holds at least one array`)
  if (members.length > MAX_RESULT_ARRAYS) bad(RangeError, `${what} holds ${members.length} arrays; a result holds at most ${MAX_RESULT_ARRAYS}`)
  const arrays = members.map(({ name, value: a, where: at }): ResultArray => {
    const where = `${what}${at}`
    const problem = tuple ? null : native.memberNameProblem(name)
    if (problem !== null) bad(TypeError, `${where} cannot be stored: its name ${describe(name)} cannot name an array in an .npz (${problem})`)
    try {
      return { name, parts: toArrayParts(a, where, ErrorCodes.BAD_RESULT) }
    } catch (e) {
      // Say why a plain Array was read as arrays at all.
      if (tuple && e instanceof Error) e.message += ' (a plain Array result is taken as a tuple of arrays)'
      throw e
    }
  })
  const results = arrays.map((a) => resultOf(a.parts))
  const result = tuple ? results : Object.fromEntries(arrays.map((a, i) => [a.name, results[i]]))
  return { form: tuple ? 'tuple' : 'record', arrays, result }
}

/** The value a call returns for one array: its data, or `{ data, shape, dtype }`. */
function resultOf(parts: ArrayParts): unknown {
  return parts.bare ? parts.data : shaped(parts.data, parts.layout)
}

/** What the core stores of a result: each array's name (none for one array), bytes and layout, and its record. */
export function storeArgs(computed: Computed, functionName: string): [string[], TypedArray[], ArrayParts['layout'][], EntryArg] {
  const { arrays } = computed
  const names = computed.form === 'tuple' || computed.form === 'record' ? arrays.map((a) => a.name) : []
  return [names, arrays.map((a) => bytesOf(a.parts)), arrays.map((a) => a.parts.layout), entryOf(computed, functionName)]
}

/** What the core's record says of a result of the function `functionName`. */
function entryOf({ form, arrays }: Computed, functionName: string): EntryArg {
  const entry: EntryArg = { function: functionName, result: form, class: arrays[0].parts.className }
  if (form === 'tuple' || form === 'record') {
    entry.members = arrays.map(({ parts }) => ({ class: parts.className, result: parts.bare ? 'typedarray' : 'ndarray' }))
  }
  return entry
}

/** `{ data, shape, dtype }` (and `fortranOrder: true` for a Fortran-order array). */
export function shaped(data: TypedArray, layout: { shape: number[]; dtype: string; fortranOrder: boolean }): unknown {
  const { shape, dtype, fortranOrder } = layout
  return fortranOrder ? { data, shape, dtype, fortranOrder } : { data, shape, dtype }
}

/** A hit as the call returns it: the classes, names and forms it was stored from, over the loaded memory. */
export function valueOf(hit: Hit): unknown {
  const { array, members } = hit
  if (members !== undefined && members !== null) {
    const values = members.map((m) => memberValue(array.buffer, m))
    return hit.result === 'tuple' ? values : Object.fromEntries(members.map((m, i) => [m.name, values[i]]))
  }
  const data = viewOf(array.buffer, hit.class, array.dtype)
  return hit.result === 'typedarray' ? data : shaped(data, array)
}

/** One array of a hit of several: a view of its part of the hit's memory. */
function memberValue(buffer: ArrayBuffer, m: MemberValue): unknown {
  const elements = m.shape.reduce((a, b) => a * b, 1) * elementsPerItem(m.dtype)
  const data = viewOf(buffer, m.class, m.dtype, m.offset, elements)
  return m.result === 'typedarray' ? data : shaped(data, m)
}
