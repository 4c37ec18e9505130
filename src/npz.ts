// readNpz / writeNpz: several arrays in one uncompressed .npz, as NumPy's
// np.savez writes and np.load reads, each member's data aligned so it can
// be mapped.
import { native } from './native'
import { type TypedArray } from './dtypes'
import { describe } from './describe'
import { ErrorCodes, invalidArg, nativeCall } from './errors'
import { type NdArray, type NpyArray, bytesOf, npyArrayOf, toArrayParts } from './npy'
import { pathOf } from './paths'

/**
 * Reads an .npz written by NumPy (`np.savez`) or by this package: an object
 * whose keys are the member names (`arr_0`, `arr_1`… for arrays saved by
 * position), in the archive's order, and whose values are as `readNpy`
 * gives. Each member is checked against its CRC-32. Throws an Error naming
 * the file (and the member) if it is not an .npz of plain arrays; members
 * compressed by `np.savez_compressed` are refused.
 */
export function readNpz(path: string | URL): Record<string, NpyArray> {
  const file = pathOf(path, 'readNpz')
  const members = nativeCall(() => native.readNpzFile(file))
  return Object.fromEntries(members.map((m) => [m.name, npyArrayOf(m.array)]))
}

/**
 * Writes arrays as an uncompressed .npz NumPy's `np.load` reads: a tuple
 * (`[a, b]`) as members `arr_0`, `arr_1`…, a record (`{ mean, cov }`) as
 * members named by its keys, in their order. Each member's data is
 * 64-byte aligned in the file, and written straight from the array's memory.
 */
export function writeNpz(path: string | URL, arrays: readonly (TypedArray | NdArray)[] | Readonly<Record<string, TypedArray | NdArray>>): void {
  const file = pathOf(path, 'writeNpz')
  if (arrays === null || typeof arrays !== 'object' || ArrayBuffer.isView(arrays)) {
    throw invalidArg(`writeNpz: arrays must be an array or a record of arrays (to write one array, use writeNpy), got ${describe(arrays)}`)
  }
  const members = npzMembers(arrays)
  const parts = members.map(({ value, where }) => toArrayParts(value, `writeNpz: arrays${where}`, ErrorCodes.INVALID_ARG))
  nativeCall(() =>
    native.writeNpzFile(
      file,
      members.map((m) => m.name),
      parts.map(bytesOf),
      parts.map((p) => p.layout),
    ),
  )
}

/** An array of an .npz to write: its name, its value, and how a message names it. */
export interface NpzMember {
  name: string
  value: unknown
  /** After the whole's name: `[1]`, `.mean`, `["a b"]`. */
  where: string
}

/**
 * The arrays of a tuple (named `arr_0`, `arr_1`… as `np.savez` names arrays
 * passed by position) or a record (named by its keys), in order. A hole in
 * a sparse tuple is an undefined array, refused as such by whoever reads it.
 */
export function npzMembers(arrays: readonly unknown[] | Readonly<Record<string, unknown>>): NpzMember[] {
  if (Array.isArray(arrays)) return Array.from(arrays as readonly unknown[], (value, i) => ({ name: `arr_${i}`, value, where: `[${i}]` }))
  return Object.entries(arrays).map(([name, value]) => ({ name, value, where: /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]` }))
}
