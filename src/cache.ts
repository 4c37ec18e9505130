// NumpyFuncCache: wraps functions so their array results are stored as .npy
// files keyed by a BLAKE3 hash of the function's identity and arguments.
import { EventEmitter } from 'node:events'
import { resolve } from 'node:path'
import { types } from 'node:util'
import { native } from './native'
import { callKey, callKeyAsync, identityPrefix } from './call-key'
import { type TypedArray, classForName, dtypeAccepts, readClassName, viewOf } from './dtypes'
import { type LoadedNdArray, type NdArray, toArrayParts } from './npy'
import { describe } from './describe'

/** What a cached function may return. */
export type CacheableResult = TypedArray | NdArray

/** What a cached function returns for a result of type `R`, on a hit or a miss. */
export type CachedResult<R> = R extends TypedArray
  ? R
  : R extends { data: infer D extends TypedArray }
    ? LoadedNdArray<D> & { fortranOrder?: true }
    : never

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFunction = (...args: any[]) => any

/** The wrapper `createCachedFunc` returns: `fn`'s call signature, cached. */
export type CachedFunction<F extends AnyFunction> =
  ReturnType<F> extends PromiseLike<infer R>
    ? (this: ThisParameterType<F>, ...args: Parameters<F>) => Promise<CachedResult<R>>
    : (this: ThisParameterType<F>, ...args: Parameters<F>) => CachedResult<ReturnType<F>>

export interface CachedFunctionOptions {
  /** Names the function in the key and the entry's metadata (default `fn.name`). Required for an anonymous function when `trackSource` is false. */
  name?: string
  /** A version string in the key: change it to invalidate entries when code the function calls changes. */
  version?: string
  /** Put a digest of `fn.toString()` in the key, so editing the function body gives new keys (default true). */
  trackSource?: boolean
  /** The wrapper returns a Promise (default: true for `async` functions). */
  async?: boolean
}

export interface NumpyFuncCacheOptions {
  /**
   * Hits return TypedArrays over a private, copy-on-write memory map of the
   * entry instead of a copy: no read up front, memory paid for what is
   * touched. Writing to such an array changes only this process's copy.
   * Entries that cannot be used in place (big-endian, empty) are read.
   */
  mmap?: boolean
}

export interface ClearCacheOptions {
  /** Also remove the cache directory (only if nothing but cache files was in it). */
  removeDir?: boolean
}

/** Passed with `storeError` and `damagedEntry` events. */
export interface EntryInfo {
  key: string
  functionName: string
}

export interface NumpyFuncCacheEvents {
  /** Storing a computed result failed; the call still returned the result. */
  storeError: [error: Error, info: EntryInfo]
  /** An entry failed validation and was treated as a miss (it is recomputed and replaced). */
  damagedEntry: [error: Error, info: EntryInfo]
}

interface EntryMeta {
  format: 1
  function: string
  result: 'typedarray' | 'ndarray'
  class: string
  dtype: string
  shape: number[]
  fortranOrder: boolean
  created: string
}

const CACHE_OPTIONS = new Set(['mmap'])
/** Below this size an async wrapper reads and writes on the main thread. */
const SMALL_IO_BYTES = 1 << 20
/** Entries whose parsed metadata one cache remembers (a few hundred bytes each; as many as the binding's memo). */
const KNOWN_META_LIMIT = 100_000
const FUNC_OPTIONS = new Set(['name', 'version', 'trackSource', 'async'])
const CLEAR_OPTIONS = new Set(['removeDir'])

function checkOptions(options: unknown, allowed: Set<string>, where: string): Record<string, unknown> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`)
  }
  for (const k of Object.keys(options)) {
    if (!allowed.has(k)) {
      throw new TypeError(`${where}: unknown option '${k}' (known: ${[...allowed].join(', ')})`)
    }
  }
  return options as Record<string, unknown>
}

function optionOf<T>(options: Record<string, unknown>, key: string, type: string, where: string): T | undefined {
  const v = options[key]
  if (v !== undefined && typeof v !== type) {
    throw new TypeError(`${where}: options.${key} must be a ${type}, got ${describe(v)}`)
  }
  return v as T | undefined
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

export class NumpyFuncCache extends EventEmitter<NumpyFuncCacheEvents> {
  /** The cache directory, absolute. */
  readonly path: string
  readonly #dir: InstanceType<typeof native.CacheDir>
  /** Parsed metadata per key; the binding resends it only when its file changed. */
  readonly #knownMeta = new Map<string, EntryMeta>()

  /**
   * A cache in directory `path`, made on the first store. Throws if `path`
   * exists and is not a directory.
   */
  constructor(path: string, options?: NumpyFuncCacheOptions) {
    super()
    if (typeof path !== 'string' || path.length === 0) {
      throw new TypeError(`NumpyFuncCache: path must be a non-empty string, got ${describe(path)}`)
    }
    const opts = checkOptions(options, CACHE_OPTIONS, 'NumpyFuncCache')
    const mmap = optionOf<boolean>(opts, 'mmap', 'boolean', 'NumpyFuncCache') ?? false
    this.path = resolve(path)
    this.#dir = new native.CacheDir(this.path, mmap)
  }

  /**
   * Wraps `fn` so that each distinct call is computed once and then loaded
   * from `<path>/<key>.npy`. The wrapper has `fn`'s call signature; an async
   * `fn` gives a Promise-returning wrapper.
   */
  createCachedFunc<F extends AnyFunction>(fn: F, options?: CachedFunctionOptions): CachedFunction<F> {
    const where = 'createCachedFunc'
    if (typeof fn !== 'function') throw new TypeError(`${where}: fn must be a function, got ${describe(fn)}`)
    const opts = checkOptions(options, FUNC_OPTIONS, where)
    const givenName = optionOf<string>(opts, 'name', 'string', where)
    const version = optionOf<string>(opts, 'version', 'string', where)
    const trackSource = optionOf<boolean>(opts, 'trackSource', 'boolean', where) ?? true
    const isAsync = optionOf<boolean>(opts, 'async', 'boolean', where) ?? types.isAsyncFunction(fn)
    if (givenName === '') throw new TypeError(`${where}: options.name must not be empty`)
    const name = givenName ?? fn.name
    if (name === '' && !trackSource) {
      throw new TypeError(
        `${where}: an anonymous function needs options.name when trackSource is false, ` +
          `or its entries would be shared with every other anonymous function`,
      )
    }
    const label = `${name || 'anonymous function'}()`
    const prefix = identityPrefix({ name, version, source: trackSource ? fn.toString() : undefined })
    const cache = this

    if (!isAsync) {
      return function (this: unknown, ...args: unknown[]) {
        const key = callKey(prefix, args)
        const hit = cache.#load(key, name)
        if (hit !== undefined) return hit
        const result = fn.apply(this, args)
        if (types.isPromise(result)) {
          throw new TypeError(
            `${label} returned a Promise; pass { async: true } to createCachedFunc (or make it an async function)`,
          )
        }
        return cache.#store(key, name, result, label)
      } as unknown as CachedFunction<F>
    }

    // One computation per key at a time within this process.
    const running = new Map<string, Promise<unknown>>()
    return async function (this: unknown, ...args: unknown[]) {
      const key = await callKeyAsync(prefix, args)
      const pending = running.get(key)
      if (pending) return pending
      const work = (async () => {
        const known = cache.#knownMeta.get(key)
        // A small entry seen before loads faster here than through a thread-pool round trip.
        const found =
          known && byteSize(known) < SMALL_IO_BYTES ? cache.#dir.load(key, true) : await cache.#dir.loadAsync(key, known !== undefined)
        const hit = cache.#hit(found, key, name)
        if (hit !== undefined) return hit
        return cache.#storeAsync(key, name, await fn.apply(this, args), label)
      })()
      running.set(key, work)
      const done = () => running.delete(key)
      work.then(done, done)
      return work
    } as unknown as CachedFunction<F>
  }

  /** Removes the files this cache wrote; with `removeDir`, then the directory. */
  clearCache(options?: ClearCacheOptions): void {
    const opts = checkOptions(options, CLEAR_OPTIONS, 'clearCache')
    const removeDir = optionOf<boolean>(opts, 'removeDir', 'boolean', 'clearCache') ?? false
    this.#knownMeta.clear()
    this.#dir.clear(removeDir)
  }

  #load(key: string, functionName: string): unknown {
    return this.#hit(this.#dir.load(key, this.#knownMeta.has(key)), key, functionName)
  }

  /** The result of a lookup that hit and passed validation, else undefined. */
  #hit(found: Lookup, key: string, functionName: string): unknown {
    if (found.status === 'miss') return undefined
    const problem =
      found.status === 'damaged' ? found.reason : checkEntry(found.meta ?? this.#knownMeta.get(key), found.array)
    if (typeof problem === 'string' || found.status !== 'hit') {
      this.#knownMeta.delete(key)
      this.emit('damagedEntry', new Error(`cache entry ${key} in ${this.path} is damaged: ${problem}`), { key, functionName })
      return undefined
    }
    const { meta } = problem
    if (found.meta !== null) this.#remember(key, meta)
    const data = viewOf(found.array.buffer, classForName(meta.class) ? meta.class : readClassName(meta.dtype))
    if (meta.result === 'typedarray') return data
    return shaped(data, meta.shape, meta.dtype, meta.fortranOrder)
  }

  #remember(key: string, meta: EntryMeta): void {
    // Oldest first out; the binding's own memory of metadata is bounded alike.
    if (this.#knownMeta.size >= KNOWN_META_LIMIT) this.#knownMeta.delete(this.#knownMeta.keys().next().value!)
    this.#knownMeta.set(key, meta)
  }

  #store(key: string, functionName: string, result: unknown, label: string): unknown {
    return this.#write(key, toEntry(result, functionName, label), label)
  }

  async #storeAsync(key: string, functionName: string, result: unknown, label: string): Promise<unknown> {
    const entry = toEntry(result, functionName, label)
    // Small results are written here: cheaper than a thread-pool round trip.
    if (entry.args[0].byteLength < SMALL_IO_BYTES) return this.#write(key, entry, label)
    try {
      // `entry` keeps the result's memory referenced while the pool writes it.
      await this.#dir.storeAsync(key, ...entry.args)
      this.#remember(key, entry.meta)
    } catch (e) {
      this.#storeFailed(e as Error, key, entry.meta.function, label)
    }
    return entry.result
  }

  #write(key: string, entry: Entry, label: string): unknown {
    try {
      this.#dir.store(key, ...entry.args)
      this.#remember(key, entry.meta)
    } catch (e) {
      this.#storeFailed(e as Error, key, entry.meta.function, label)
    }
    return entry.result
  }

  #storeFailed(e: Error, key: string, functionName: string, label: string): void {
    const error = new Error(`could not store the result of ${label} in ${this.path}: ${e.message}`, { cause: e })
    if (this.listenerCount('storeError') > 0) this.emit('storeError', error, { key, functionName })
    else process.emitWarning(error.message, { code: 'NUMPY_FUNC_CACHE_STORE_FAILED' })
  }
}

type Lookup = ReturnType<InstanceType<typeof native.CacheDir>['load']>

type Entry = ReturnType<typeof toEntry>

/** What storing `result` writes, and what the call returns for it. */
function toEntry(result: unknown, functionName: string, label: string) {
  const parts = toArrayParts(result, `the result of ${label}`)
  const meta: EntryMeta = {
    format: 1,
    function: functionName,
    result: parts.bare ? 'typedarray' : 'ndarray',
    class: parts.className,
    dtype: parts.dtype,
    shape: parts.shape,
    fortranOrder: parts.fortranOrder,
    created: new Date().toISOString(),
  }
  return {
    meta,
    args: [parts.data, parts.shape, parts.dtype, parts.fortranOrder, JSON.stringify(meta)] as const,
    result: parts.bare ? parts.data : shaped(parts.data, parts.shape, parts.dtype, parts.fortranOrder),
  }
}

/** Bytes of an entry's data: elements times the item size in its dtype ('<c16': 16). */
function byteSize(meta: EntryMeta): number {
  return meta.shape.reduce((a, b) => a * b, 1) * Number(meta.dtype.slice(2))
}

function shaped(data: TypedArray, shape: number[], dtype: string, fortranOrder: boolean): unknown {
  return fortranOrder ? { data, shape, dtype, fortranOrder } : { data, shape, dtype }
}

/** The entry's metadata if it agrees with the array beside it, else what is wrong. */
function checkEntry(
  metaSource: string | EntryMeta | undefined,
  array: { shape: number[]; dtype: string; fortranOrder: boolean },
): { meta: EntryMeta } | string {
  let meta: EntryMeta
  if (typeof metaSource === 'string') {
    try {
      meta = JSON.parse(metaSource) as EntryMeta
    } catch {
      return 'its metadata is not valid JSON'
    }
  } else if (metaSource === undefined) {
    return 'its metadata was not sent'
  } else {
    meta = metaSource
  }
  if (meta?.format !== 1) return 'its metadata has an unknown format'
  if (meta.result !== 'typedarray' && meta.result !== 'ndarray') return 'its metadata has an unknown result form'
  if (meta.dtype !== array.dtype || !Array.isArray(meta.shape) || !sameShape(meta.shape, array.shape)) {
    return `its array (${array.dtype}, shape [${array.shape.join(', ')}]) does not match its metadata`
  }
  if (meta.fortranOrder !== array.fortranOrder) return 'its array order does not match its metadata'
  if (!dtypeAccepts(meta.dtype, meta.class)) return `its metadata names class ${meta.class} for dtype ${meta.dtype}`
  return { meta }
}
