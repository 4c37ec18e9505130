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

/** What a cached function has besides its call signature; both act on the entry of one call's arguments. */
export interface CachedFunctionMethods<F extends AnyFunction> {
  /** Whether a call with these arguments would be a hit (without loading it or counting it). */
  has(...args: Parameters<F>): boolean
  /** Removes the entry of a call with these arguments; says whether there was one. */
  invalidate(...args: Parameters<F>): boolean
}

/** The wrapper `createCachedFunc` returns: `fn`'s call signature, cached, plus `has` and `invalidate`. */
export type CachedFunction<F extends AnyFunction> = (ReturnType<F> extends PromiseLike<infer R>
  ? (this: ThisParameterType<F>, ...args: Parameters<F>) => Promise<CachedResult<R>>
  : (this: ThisParameterType<F>, ...args: Parameters<F>) => CachedResult<ReturnType<F>>) &
  CachedFunctionMethods<F>

export interface CachedFunctionOptions {
  /** Names the function in the key and the entry's metadata (default `fn.name`). Required for an anonymous function when `trackSource` is false. */
  name?: string
  /** A version string in the key: change it to invalidate entries when code the function calls changes. */
  version?: string
  /** Put a digest of `fn.toString()` in the key, so editing the function body gives new keys (default true). */
  trackSource?: boolean
  /** The wrapper returns a Promise (default: true for `async` functions). */
  async?: boolean
  /** Overrides the cache's `computeOnce` for this function. */
  computeOnce?: boolean | ComputeOnceOptions
}

/** Limits on a cache; each is off when omitted. */
export interface CacheLimits {
  /** Total size of the entries' files, in bytes. */
  maxBytes?: number
  /** Number of entries. */
  maxEntries?: number
  /** Milliseconds since an entry was last used after which it is a miss and is removed. */
  maxAge?: number
}

export interface ComputeOnceOptions {
  /** Longest wait, in milliseconds, for another process's computation before computing anyway (default: no limit). */
  timeout?: number
  /**
   * A computing process refreshes its claim while it runs; a claim not
   * refreshed for this many milliseconds is taken to be from a dead process
   * on another host and is broken (default 60000). On the same host a dead
   * process is noticed at once.
   */
  staleAfter?: number
}

export interface NumpyFuncCacheOptions extends CacheLimits {
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
}

/** One entry, as the cache's index records it. */
export interface CacheEntryInfo {
  key: string
  /** The cached function's name. */
  function: string
  dtype: string
  shape: number[]
  /** Size of the entry's files. */
  bytes: number
  created: Date
  lastUsed: Date
}

export interface PruneOptions {
  /** Called as entries are removed: `done` of `total`. */
  onProgress?: (done: number, total: number) => void
}

export interface PruneReport {
  /** Entries removed to meet the limits. */
  removedEntries: number
  removedBytes: number
  /** Entries on disk the index lacked (from a process killed mid-store), now counted. */
  adopted: number
  /** Index rows whose files were gone, dropped. */
  dropped: number
  /** Temporary files of dead processes and halves of entries, removed. */
  removedLeftovers: number
  /** What remains. */
  entries: number
  bytes: number
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

const LIMIT_OPTIONS = ['maxBytes', 'maxEntries', 'maxAge']
const CACHE_OPTIONS = new Set(['mmap', 'computeOnce', ...LIMIT_OPTIONS])
const COMPUTE_ONCE_OPTIONS = new Set(['timeout', 'staleAfter'])
const PRUNE_OPTIONS = new Set(['onProgress'])
/** Polling for another process's entry starts this often and backs off to the maximum. */
const WAIT_FIRST_MS = 5
const WAIT_MAX_MS = 200
/** Uses recorded in memory are written to the index this long after the last write. */
const FLUSH_DELAY_MS = 1000
/** Below this size an async wrapper reads and writes on the main thread. */
const SMALL_IO_BYTES = 1 << 20
/** Entries whose parsed metadata one cache remembers (a few hundred bytes each; as many as the binding's memo). */
const KNOWN_META_LIMIT = 100_000
const FUNC_OPTIONS = new Set(['name', 'version', 'trackSource', 'async', 'computeOnce'])
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

function limitsOf(options: Record<string, unknown>, where: string): CacheLimits {
  const limits: CacheLimits = {}
  for (const name of LIMIT_OPTIONS) {
    const v = optionOf<number>(options, name, 'number', where)
    if (v === undefined) continue
    if (!(v >= 0) || (name === 'maxEntries' && Number.isFinite(v) && !Number.isInteger(v))) {
      throw new RangeError(`${where}: ${name} must be a non-negative ${name === 'maxEntries' ? 'integer' : 'number'}, got ${v}`)
    }
    limits[name as keyof CacheLimits] = v
  }
  return limits
}

interface ComputeOnce {
  timeout: number
  staleAfter: number
}

function computeOnceOf(value: unknown, where: string): ComputeOnce | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return { timeout: Infinity, staleAfter: 60_000 }
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`${where}: computeOnce must be a boolean or an object, got ${describe(value)}`)
  }
  const opts = checkOptions(value, COMPUTE_ONCE_OPTIONS, `${where}: computeOnce`)
  const timeout = optionOf<number>(opts, 'timeout', 'number', `${where}: computeOnce`) ?? Infinity
  const staleAfter = optionOf<number>(opts, 'staleAfter', 'number', `${where}: computeOnce`) ?? 60_000
  if (!(timeout >= 0)) throw new RangeError(`${where}: computeOnce.timeout must be a non-negative number, got ${timeout}`)
  // The holder refreshes its lease every staleAfter / 4, at most every 50 ms.
  if (!(staleAfter >= 200) || !Number.isFinite(staleAfter)) {
    throw new RangeError(`${where}: computeOnce.staleAfter must be a finite number of milliseconds, at least 200, got ${staleAfter}`)
  }
  return { timeout, staleAfter }
}

type Step = { do: 'load' } | { do: 'compute' } | { do: 'sleep'; ms: number }

/**
 * A computeOnce miss as steps, which a sync or an async wrapper runs: wait
 * for another process's entry, or compute it under the lease. A load step
 * is answered with the entry or undefined.
 */
function* waitOrCompute(claim: () => { release(): void } | null | undefined, once: ComputeOnce): Generator<Step, unknown, unknown> {
  const deadline = Date.now() + once.timeout
  for (let wait = WAIT_FIRST_MS; ; wait = Math.min(wait * 2, WAIT_MAX_MS)) {
    const lease = claim()
    if (lease !== undefined) {
      try {
        // Stored by another process between our miss and the lease?
        return (yield { do: 'load' }) ?? (yield { do: 'compute' })
      } finally {
        lease?.release()
      }
    }
    yield { do: 'sleep', ms: Math.max(0, Math.min(wait, deadline - Date.now())) }
    const stored = yield { do: 'load' }
    if (stored !== undefined) return stored
    if (Date.now() >= deadline) return yield { do: 'compute' }
  }
}

interface StepActions<T> {
  load: () => T
  compute: () => T
}

function runSync(steps: Generator<Step, unknown, unknown>, act: StepActions<unknown>): unknown {
  let next = steps.next()
  while (!next.done) {
    const step = next.value
    let answer: unknown
    try {
      answer = step.do === 'sleep' ? sleepSync(step.ms) : act[step.do]()
    } catch (e) {
      next = steps.throw(e)
      continue
    }
    next = steps.next(answer)
  }
  return next.value
}

async function runAsync(steps: Generator<Step, unknown, unknown>, act: StepActions<Promise<unknown>>): Promise<unknown> {
  let next = steps.next()
  while (!next.done) {
    const step = next.value
    let answer: unknown
    try {
      answer = step.do === 'sleep' ? await sleep(step.ms) : await act[step.do]()
    } catch (e) {
      next = steps.throw(e)
      continue
    }
    next = steps.next(answer)
  }
  return next.value
}

const SLEEP_CELL = new Int32Array(new SharedArrayBuffer(4))

/** Blocks this thread (a synchronous wrapper waiting for another process). */
function sleepSync(ms: number): void {
  Atomics.wait(SLEEP_CELL, 0, 0, ms)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Caches whose recorded uses are written to their index when the process exits. */
const liveDirs = new Set<WeakRef<InstanceType<typeof native.CacheDir>>>()
let exitHookInstalled = false

function flushOnExit(dir: InstanceType<typeof native.CacheDir>): void {
  if (liveDirs.size > 64) for (const ref of liveDirs) if (ref.deref() === undefined) liveDirs.delete(ref)
  liveDirs.add(new WeakRef(dir))
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const ref of liveDirs) {
      try {
        // A second at most for another process's transaction: exit is not held up for long.
        ref.deref()?.flush(1000)
      } catch {
        // Bookkeeping only; the entries themselves are on disk already.
      }
    }
  })
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
  readonly #computeOnce: ComputeOnce | undefined
  #flushTimer: NodeJS.Timeout | undefined
  #leaseWarned = false

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
    const limits = limitsOf(opts, 'NumpyFuncCache')
    this.#computeOnce = computeOnceOf(opts.computeOnce, 'NumpyFuncCache')
    this.path = resolve(path)
    this.#dir = new native.CacheDir(this.path, mmap, limits)
    flushOnExit(this.#dir)
  }

  /** Entries and bytes in the directory, and hits and misses, totalled over every process that used it. */
  stats(): CacheStats {
    return this.#dir.stats()
  }

  /** Every entry, most recently used first. */
  entries(): CacheEntryInfo[] {
    return this.#dir.entries().map((e) => ({
      key: e.key,
      function: e.function,
      dtype: e.dtype,
      shape: e.shape,
      bytes: e.bytes,
      created: new Date(e.created),
      lastUsed: new Date(e.lastUsed),
    }))
  }

  /**
   * Applies `limits` now (the cache's own limits when omitted): removes
   * expired entries, then the least recently used until the size limits
   * hold. Also brings the index in line with the directory and removes
   * leftovers of killed processes.
   */
  prune(limits?: CacheLimits, options?: PruneOptions): PruneReport {
    const given = limits === undefined ? undefined : limitsOf(checkOptions(limits, new Set(LIMIT_OPTIONS), 'prune'), 'prune')
    const opts = checkOptions(options, PRUNE_OPTIONS, 'prune')
    const onProgress = optionOf<(done: number, total: number) => void>(opts, 'onProgress', 'function', 'prune')
    this.#knownMeta.clear()
    return this.#dir.prune(given, onProgress)
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
    const once = opts.computeOnce !== undefined ? computeOnceOf(opts.computeOnce, where) : this.#computeOnce
    const label = `${name || 'anonymous function'}()`
    const prefix = identityPrefix({ name, version, source: trackSource ? fn.toString() : undefined })
    const cache = this
    const methods: CachedFunctionMethods<F> = {
      has: (...args) => cache.#dir.contains(callKey(prefix, args)),
      invalidate: (...args) => {
        const key = callKey(prefix, args)
        cache.#knownMeta.delete(key)
        return cache.#dir.remove(key)
      },
    }

    if (!isAsync) {
      const compute = (self: unknown, args: unknown[], key: string) => {
        const result = fn.apply(self, args)
        if (types.isPromise(result)) {
          throw new TypeError(
            `${label} returned a Promise; pass { async: true } to createCachedFunc (or make it an async function)`,
          )
        }
        return cache.#store(key, name, result, label)
      }
      return Object.assign(function (this: unknown, ...args: unknown[]) {
        const key = callKey(prefix, args)
        const hit = cache.#load(key, name)
        if (hit !== undefined) return hit
        if (once === undefined) return compute(this, args, key)
        return runSync(waitOrCompute(() => cache.#claim(key, once, true), once), {
          load: () => cache.#load(key, name),
          compute: () => compute(this, args, key),
        })
      }, methods) as unknown as CachedFunction<F>
    }

    const load = async (key: string) => {
      const known = cache.#knownMeta.get(key)
      // A small entry seen before loads faster here than through a thread-pool round trip.
      const found =
        known && byteSize(known) < SMALL_IO_BYTES ? cache.#dir.load(key, true) : await cache.#dir.loadAsync(key, known !== undefined)
      return cache.#hit(found, key, name)
    }
    const compute = async (self: unknown, args: unknown[], key: string) =>
      cache.#storeAsync(key, name, await fn.apply(self, args), label)
    // One computation per key at a time within this process.
    const running = new Map<string, Promise<unknown>>()
    return Object.assign(async function (this: unknown, ...args: unknown[]) {
      const key = await callKeyAsync(prefix, args)
      const pending = running.get(key)
      if (pending) return pending
      const work = (async () => {
        const hit = await load(key)
        if (hit !== undefined) return hit
        if (once === undefined) return compute(this, args, key)
        return runAsync(waitOrCompute(() => cache.#claim(key, once, false), once), {
          load: () => load(key),
          compute: () => compute(this, args, key),
        })
      })()
      running.set(key, work)
      const done = () => running.delete(key)
      work.then(done, done)
      return work
    }, methods) as unknown as CachedFunction<F>
  }

  /**
   * The compute-once lease of `key` if this process got it; `null` if it
   * computes without one (no lease can be taken in this directory, or a
   * synchronous call would wait for this very process, which cannot finish
   * while it waits); undefined if another process holds it.
   */
  #claim(key: string, once: ComputeOnce, sync: boolean): { release(): void } | null | undefined {
    let claim: ReturnType<InstanceType<typeof native.CacheDir>['claim']>
    try {
      claim = this.#dir.claim(key, once.staleAfter)
    } catch (e) {
      if (!this.#leaseWarned) {
        this.#leaseWarned = true
        process.emitWarning(`computeOnce is off in ${this.path}: no lease can be taken there (${(e as Error).message})`, {
          code: 'NUMPY_FUNC_CACHE_NO_LEASE',
        })
      }
      return null
    }
    if (!('holder' in claim)) return claim
    return sync && claim.thisProcess ? null : undefined
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

  /** Writes uses recorded in memory to the index once the calls pause. */
  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined
      try {
        // Only if the index is free: the event loop never waits for another process.
        this.#dir.flush(0)
      } catch {
        // Bookkeeping only: the next store or exit tries again.
      }
    }, FLUSH_DELAY_MS).unref()
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
    this.#scheduleFlush()
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
    args: [parts.data, parts.shape, parts.dtype, parts.fortranOrder, JSON.stringify(meta), functionName] as const,
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
