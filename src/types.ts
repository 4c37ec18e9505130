// The public types of the cache: what goes in and what comes out.
import type { TypedArray } from './dtypes'
import type { LoadedNdArray, NdArray } from './npy'
import type { RemoteOptions } from '../binding/index'

export type { RemoteOptions }

/** What a cached function may return. */
export type CacheableResult = CacheableArray | readonly CacheableArray[] | { readonly [name: string]: CacheableArray }

/** One array a cached function returns: a TypedArray (a Buffer too) or an n-d array. */
export type CacheableArray = TypedArray | NdArray

/** What a cached function returns for an array of type `R`, on a hit or a miss. */
export type CachedArray<R> = R extends TypedArray
  ? R
  : R extends { data: infer D extends TypedArray }
    ? LoadedNdArray<D> & { fortranOrder?: true }
    : never

/**
 * What a cached function returns for a result of type `R`, on a hit or a
 * miss: the same form (an array, a tuple or a record of arrays), each array
 * as `CachedArray` says.
 */
export type CachedResult<R> = R extends CacheableArray
  ? CachedArray<R>
  : R extends readonly CacheableArray[]
    ? { -readonly [I in keyof R]: CachedArray<R[I]> }
    : R extends { readonly [name: string]: CacheableArray }
      ? { -readonly [K in keyof R]: CachedArray<R[K]> }
      : never

/** A function whose results can be cached: it returns an array, a tuple or a record of arrays, or a Promise of one. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CacheableFunction = (...args: any[]) => CacheableResult | PromiseLike<CacheableResult>

/** What a cached function has besides its call signature; each acts on the entry of one call's arguments. */
export interface CachedFunctionMethods<F extends CacheableFunction> {
  /**
   * Whether a call with these arguments would be a hit now: the checks a
   * load makes, without loading it or counting it as a use.
   */
  has(...args: Parameters<F>): boolean
  /** `has`, without holding up the event loop. */
  hasAsync(...args: Parameters<F>): Promise<boolean>
  /** Removes the entry of a call with these arguments, from every tier; says whether there was one. */
  invalidate(...args: Parameters<F>): boolean
  /** `invalidate`, without holding up the event loop. */
  invalidateAsync(...args: Parameters<F>): Promise<boolean>
  /**
   * The entry of a call with these arguments, opened for partial reads
   * without reading its data; a miss computes and stores it first, as a
   * call does (an async function's miss needs `openAsync`). Throws if the
   * result could not be stored (over the cache's limits, say).
   */
  open(...args: Parameters<F>): EntryHandle
  /** `open`, without holding up the event loop. */
  openAsync(...args: Parameters<F>): Promise<EntryHandle>
}

/**
 * One array of an opened entry: its layout, known without reading its data,
 * and reads of its rows or bytes. Every byte read is checked against the
 * digests stored with the entry, a block (1 MiB) at a time: a read fetches
 * the whole blocks it touches, and only those.
 */
export interface EntryArray {
  /** Its name in the entry's .npz (`arr_0`, `arr_1`… in a tuple); `''` in an entry of one array. */
  readonly name: string
  readonly shape: readonly number[]
  /** NumPy's descr, e.g. `'<f8'`. */
  readonly dtype: string
  readonly fortranOrder: boolean
  /** The class its data comes back as (`'Float64Array'`, `'Buffer'`…). */
  readonly className: string
  /** Bytes of its data. */
  readonly bytes: number
  /** Its first dimension: rows are contiguous in C order (a 0-d array is one row, its one value). */
  readonly rows: number
  /**
   * Rows `start` to `end` (exclusive; one row by default) in a new array of
   * the form it was stored in: a TypedArray, or `{ data, shape, dtype }`
   * with `end - start` rows. A Fortran-order array of more than one
   * dimension has no contiguous rows: read its bytes.
   */
  readRows(start: number, end?: number): TypedArray | LoadedNdArray
  readRowsAsync(start: number, end?: number): Promise<TypedArray | LoadedNdArray>
  /** Bytes `start` to `end` (exclusive) of its data, in a new Uint8Array. */
  readBytes(start: number, end: number): Uint8Array
  readBytesAsync(start: number, end: number): Promise<Uint8Array>
}

/**
 * An entry opened for partial reads (`cached.open(...args)`,
 * `cache.open(key)`). Of one array, its `shape`, `dtype`, `fortranOrder`,
 * `rows` and reads are that array's; of several, they throw, and `members`
 * and `member(name)` give each.
 */
export interface EntryHandle
  extends Pick<EntryArray, 'shape' | 'dtype' | 'fortranOrder' | 'rows' | 'readRows' | 'readRowsAsync' | 'readBytes' | 'readBytesAsync'> {
  readonly key: string
  /** The form of the result: `'typedarray'`, `'ndarray'`, `'tuple'` or `'record'`. */
  readonly result: 'typedarray' | 'ndarray' | 'tuple' | 'record'
  /** Every array, in order (one, named `''`, for an entry of one array). */
  readonly members: readonly EntryArray[]
  /** Bytes of all its arrays' data. */
  readonly bytes: number
  /** The array of that name, or at that index. */
  member(name: string | number): EntryArray
  /** Lets go of the entry's file; reads after this throw. Also `using handle = ...`. */
  close(): void
  [Symbol.dispose](): void
}

/** The wrapper `createCachedFunc` returns: `fn`'s call signature, cached, plus `has` and `invalidate`. */
export type CachedFunction<F extends CacheableFunction> = (ReturnType<F> extends PromiseLike<infer R>
  ? (this: ThisParameterType<F>, ...args: Parameters<F>) => Promise<CachedResult<R>>
  : (this: ThisParameterType<F>, ...args: Parameters<F>) => CachedResult<ReturnType<F>>) &
  CachedFunctionMethods<F>

export interface CachedFunctionOptions {
  /** Names the function in the key and the entry's record (default `fn.name`). Required for an anonymous function when `trackSource` is false. */
  name?: string
  /** A version string in the key: change it to invalidate entries when code the function calls changes. */
  version?: string
  /** Put a digest of `fn.toString()` in the key, so editing the function body gives new keys (default true). */
  trackSource?: boolean
  /**
   * Leave `this` out of the key (default false: a method called on two
   * objects has two results). Only for functions whose result does not
   * depend on `this`.
   */
  ignoreThis?: boolean
  /** The wrapper returns a Promise (default: true for `async` functions). */
  async?: boolean
  /** Overrides the cache's `computeOnce` for this function. */
  computeOnce?: boolean | ComputeOnceOptions
}

/** The TypedArray class that holds each dtype a declared output may have (complex: two floats per element). */
export interface OutputArrayTypes {
  '|b1': Uint8Array
  '|i1': Int8Array
  '|u1': Uint8Array
  '<i2': Int16Array
  '<u2': Uint16Array
  '<f2': Uint16Array
  '<i4': Int32Array
  '<u4': Uint32Array
  '<f4': Float32Array
  '<i8': BigInt64Array
  '<u8': BigUint64Array
  '<f8': Float64Array
  '<c8': Float32Array
  '<c16': Float64Array
}

/** What `output` declares: the result's shape (C order) and dtype, as NumPy's descr (`'<f8'`; `'f8'` too). */
export interface OutputSpec<S extends readonly number[] = readonly number[], D extends string = string> {
  readonly shape: S
  readonly dtype: D
}

/** The TypedArray of a declared dtype. */
export type OutputData<D extends string> = D extends keyof OutputArrayTypes ? OutputArrayTypes[D] : TypedArray

/**
 * The array a declared output is, as the call returns it (on a miss as
 * on a hit): a TypedArray for a shape of one dimension, else
 * `{ data, shape, dtype }` (either, for a shape whose length the types do
 * not know: declare it `as const`, or as a tuple, to know which).
 */
export type OutputArray<S extends readonly number[], D extends string> = number extends S['length']
  ? OutputData<D> | LoadedNdArray<OutputData<D>>
  : S extends readonly [number]
    ? OutputData<D>
    : LoadedNdArray<OutputData<D>>

/**
 * The array a function with a declared output fills: a TypedArray of the
 * dtype's class over all its elements (C order), which also has the
 * declared `shape` and `dtype`, and `data` (itself), so that it can be
 * used as `{ data, shape, dtype }` too.
 */
export type OutputFill<D extends string> = OutputData<D> & {
  readonly data: OutputData<D>
  readonly shape: readonly number[]
  readonly dtype: string
}

/**
 * Options of a function whose result is written straight into the cache:
 * `output` declares its shape and dtype from the call's arguments, and the
 * function receives that array (over the entry's file) as one more
 * argument, after the call's own (see `OutputFill`).
 */
export interface OutputFunctionOptions<A extends unknown[] = unknown[], S extends readonly number[] = readonly number[], D extends string = string>
  extends CachedFunctionOptions {
  output: (...args: A) => OutputSpec<S, D>
}

/** The wrapper of a function with a declared output: its arguments but the last, and the filled array (mapped) as its result. */
export type OutputCachedFunction<A extends unknown[], S extends readonly number[], D extends string, R> = ([R] extends [PromiseLike<unknown>]
  ? (...args: A) => Promise<OutputArray<S, D>>
  : (...args: A) => OutputArray<S, D>) &
  CachedFunctionMethods<(...args: A) => TypedArray>

/** Limits on a cache; each is off when omitted (or `Infinity`). */
export interface CacheLimits {
  /**
   * Total size of the entries' files: bytes, or a string as the command
   * line takes it: '10GB' (powers of 1000), '512MiB' or '1.5G' (powers of 1024).
   */
  maxBytes?: number | string
  /** Number of entries. */
  maxEntries?: number
  /**
   * Time since an entry was last used after which it is a miss and is
   * removed: milliseconds, or a string such as '7d', '12h', '30m', '90s'.
   */
  maxAge?: number | string
}

/** Limits as the cache applies them: bytes and milliseconds. */
export interface ResolvedLimits {
  maxBytes?: number
  maxEntries?: number
  maxAge?: number
  maxEntryBytes?: number
}

export interface ComputeOnceOptions {
  /** Longest wait, in milliseconds, for another process's computation before computing anyway (default: no limit). */
  timeout?: number
  /**
   * A computing process refreshes its claim while it runs; a claim not
   * refreshed for this many milliseconds is taken to be from a dead process
   * on another host and is broken (default 60000, at least 200). On the
   * same host a dead process is noticed at once.
   */
  staleAfter?: number
  /**
   * Stops waiting for another process's computation when aborted: the call
   * rejects (a sync wrapper throws) with the signal's reason, and computes
   * nothing. It never interrupts a computation, and does not stop a call
   * that can take the lease itself. A sync wrapper's wait blocks the event
   * loop, so there only a signal aborted before the call stops it; use
   * `timeout` to bound a sync wait.
   */
  signal?: AbortSignal
}

export interface NumpyFuncCacheOptions extends CacheLimits {
  /**
   * The largest entry stored, in bytes as `maxBytes` counts them (a number,
   * or a string such as '100MB'). A larger result (or one larger than
   * `maxBytes` on its own) is returned but not stored, evicts nothing, and
   * an `entryTooLarge` event says so.
   */
  maxEntryBytes?: number | string
  /**
   * For an object-store location (`s3://bucket/prefix`): a local directory
   * used as a read-through tier, with this cache's limits, index and mmap.
   * Remote hits are kept there. Without it, remote hits load into memory.
   */
  localDir?: string | URL
  /** For an object-store location: settings over the standard environment's. */
  remote?: RemoteOptions
  /**
   * Processes (and calls in this process) that miss the same key at the
   * same time compute it once: one computes, the others wait for its entry.
   */
  computeOnce?: boolean | ComputeOnceOptions
  /**
   * Hits return TypedArrays over a private, copy-on-write memory map of the
   * entry instead of a copy: no read up front, memory paid for what is
   * touched. Writing to such an array changes only this process's copy.
   * Entries that cannot be used in place (big-endian, empty) are read.
   */
  mmap?: boolean
  /**
   * Every hit checks all its data against the digest stored with it (default
   * false: data up to 64 KiB is always checked, larger data only by its
   * header and length). Costs a hash of each large hit's data.
   */
  verify?: boolean
}

/** Totals over the whole cache directory, from all processes using it. */
export interface CacheStats {
  entries: number
  /** Size of the entries' files. */
  bytes: number
  /** Calls answered from the cache. */
  hits: number
  /** Calls computed and stored. */
  misses: number
  /**
   * Objects under an object store's fan-out prefixes that are not the
   * cache's (other names, or names that are not paths), which its listing
   * skipped. 0 for a directory, whose totals come from its index.
   */
  foreign: number
}

/** One entry, as the cache's index records it. */
export interface CacheEntryInfo {
  key: string
  /** The cached function's name; `'(anonymous)'` for a function without one. */
  function: string
  /** NumPy descr of its array; `''` for a result of several arrays (see `members`). */
  dtype: string
  /** Its array's shape; `[]` for a result of several arrays. */
  shape: number[]
  /** A result of several arrays (a tuple or a record): each one, in order, as stored in its .npz. */
  members?: CacheEntryMember[]
  /** Size of the entry's files. */
  bytes: number
  created: Date
  lastUsed: Date
}

/** One array of an entry of several: `arr_0`, `arr_1`… for a tuple, the record's keys for a record. */
export interface CacheEntryMember {
  name: string
  dtype: string
  shape: number[]
}

export interface ListOptions {
  /** For an object store: called as the listing goes, `done` objects listed (and `total` 0 until known). */
  onProgress?: (done: number, total: number) => void
  /**
   * Stops an object store's listing before its next page; the call then
   * throws, or its promise rejects, with `signal.reason`. A directory's
   * listing is one step: the signal is checked before it starts.
   */
  signal?: AbortSignal
}

export interface PruneOptions {
  /** Called as entries are removed: `done` of `total`. */
  onProgress?: (done: number, total: number) => void
  /**
   * Stops the work at its next step (a page listed, a batch removed, an
   * entry checked); the call then throws, or its promise rejects, with
   * `signal.reason`. What was done by then stays done.
   */
  signal?: AbortSignal
}

export interface PruneReport {
  /** Entries removed to meet the limits. */
  removedEntries: number
  removedBytes: number
  /** Entries on disk the index lacked (from a process killed mid-store), now counted. */
  adopted: number
  /** Index rows whose files were gone, dropped. */
  dropped: number
  /** Temporary files of dead processes, halves of entries, and entries of older versions or with damaged records, removed. */
  removedLeftovers: number
  /** What remains. */
  entries: number
  bytes: number
  /** Objects the listing skipped as not the cache's (see `CacheStats.foreign`), left in place. */
  foreign: number
}

export interface VerifyOptions {
  /** Only report damaged entries; do not remove them. */
  dryRun?: boolean
  /** Called as entries are checked: `done` of `total`. */
  onProgress?: (done: number, total: number) => void
  /**
   * Stops the work at its next step (a page listed, a batch removed, an
   * entry checked); the call then throws, or its promise rejects, with
   * `signal.reason`. What was done by then stays done.
   */
  signal?: AbortSignal
}

export interface VerifyReport {
  /** Entries checked, their data included. */
  checked: number
  /** The damaged ones, and what is wrong with each. */
  damaged: { key: string; reason: string }[]
  /** Damaged entries removed (none with `dryRun`). */
  removed: number
}

export interface ClearCacheOptions {
  /** Also remove the cache directory (only if nothing but cache files was in it). */
  removeDir?: boolean
  /** For an object store: called as its objects are listed (`total` 0), then removed (`done` of `total`). */
  onProgress?: (done: number, total: number) => void
  /**
   * Stops an object store's clear at its next step (a page listed, a batch
   * removed); the call then throws, or rejects, with `signal.reason`. A
   * directory's clear is one step: the signal is checked before it starts.
   */
  signal?: AbortSignal
}

/** Passed with `storeError` and `damagedEntry` events. */
export interface EntryInfo {
  key: string
  functionName: string
}

/** Passed with `entryTooLarge` events. */
export interface TooLargeInfo extends EntryInfo {
  /** The entry's size, as the cache's limits count it. */
  bytes: number
  /** The limit it is over on its own: `maxEntryBytes`, or `maxBytes`. */
  limit: number
  /** Where it was not stored: the directory, or the store's URL. */
  location: string
}

export interface NumpyFuncCacheEvents {
  /** Storing a computed result failed; the call still returned the result. */
  storeError: [error: Error, info: EntryInfo]
  /** An entry failed validation and was treated as a miss (it is recomputed and replaced). */
  damagedEntry: [error: Error, info: EntryInfo]
  /** A computed result over `maxEntryBytes` (or `maxBytes`) on its own: returned, not stored, nothing evicted. */
  entryTooLarge: [info: TooLargeInfo]
}
