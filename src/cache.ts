// NumpyFuncCache: one cache location (a directory, an object store, or a
// local directory in front of one: the native core decides and keeps the
// policy) and the public verbs over it. Cached calls go through `calls`,
// their wrappers are made by `cached-function`, and long jobs run through
// `jobs`.
import { EventEmitter } from 'node:events'
import type { EntryRow } from '../binding/index'
import { type NativeCache, native } from './native'
import { ANONYMOUS, Calls } from './calls'
import { cachedFunction } from './cached-function'
import { debug } from './debug'
import { describe } from './describe'
import { invalidArg, nativeCall } from './errors'
import { FlushTimer, flushOnExit } from './flush'
import { job } from './jobs'
import { type ComputeOnce, cacheSettings, clearSettings, listSettings, pruneSettings, verifySettings } from './options'
import type {
  CacheEntryInfo,
  CacheLimits,
  CacheStats,
  CacheableFunction,
  CachedFunction,
  CachedFunctionOptions,
  ClearCacheOptions,
  EntryHandle,
  ListOptions,
  NumpyFuncCacheEvents,
  NumpyFuncCacheOptions,
  OutputCachedFunction,
  OutputFill,
  OutputFunctionOptions,
  PruneOptions,
  PruneReport,
  VerifyOptions,
  VerifyReport,
} from './types'

/** The native cache of each cache, for this package's own tests and benchmark (see testing.ts). */
export const nativeOf = new WeakMap<NumpyFuncCache, NativeCache>()

/** An entry as entries() gives it. */
function entryInfo(e: EntryRow): CacheEntryInfo {
  const info: CacheEntryInfo = {
    key: e.key,
    function: e.function || ANONYMOUS,
    dtype: e.dtype,
    shape: e.shape,
    bytes: e.bytes,
    created: new Date(e.created),
    lastUsed: new Date(e.lastUsed),
  }
  if (e.members) info.members = e.members.map(({ name, dtype, shape }) => ({ name, dtype, shape }))
  return info
}

/** `key`, checked to be a cache key, for `where`. */
function keyArg(key: unknown, where: string): string {
  if (typeof key !== 'string' || !native.isKey(key)) {
    throw invalidArg(`${where}: key must be 64 lower-case hex digits (a key from entries()), got ${describe(key)}`)
  }
  return key
}

/** `name`, checked to be a function's name, for `where`. */
function nameArg(name: unknown, where: string): string {
  if (typeof name !== 'string' || name === '') throw invalidArg(`${where}: name must be a non-empty string, got ${describe(name)}`)
  return name === ANONYMOUS ? '' : name
}

export class NumpyFuncCache extends EventEmitter<NumpyFuncCacheEvents> {
  /** The cache directory, absolute; or the object-store location (`s3://bucket/prefix`). */
  readonly path: string
  readonly #native: NativeCache
  readonly #calls: Calls
  readonly #flush: FlushTimer
  readonly #computeOnce: ComputeOnce | undefined

  /**
   * A cache in directory `path`, made on the first store. Throws if `path`
   * exists and is not a directory. `path` may also be an object-store
   * location, `s3://bucket/prefix` (or `gs://`, `az://`), shared by many
   * machines; requests are made on first use. Without `path`:
   * `$NUMPY_FUNC_CACHE_DIR`, else this user's cache directory
   * (`$XDG_CACHE_HOME/numpy-func-cache` or `~/.cache/numpy-func-cache` on
   * Linux, `~/Library/Caches/numpy-func-cache` on macOS,
   * `%LOCALAPPDATA%\numpy-func-cache\Cache` on Windows).
   */
  constructor(path?: string | URL, options?: NumpyFuncCacheOptions) {
    super()
    const settings = cacheSettings(path, options)
    this.#computeOnce = settings.computeOnce
    this.#native = nativeCall(() => new native.Cache(settings.location, settings.options))
    this.path = this.#native.location
    this.#flush = new FlushTimer(this.#native)
    this.#calls = new Calls(this.#native, this, this.#flush)
    nativeOf.set(this, this.#native)
    flushOnExit(this.#native)
  }

  /**
   * Wraps `fn` so that each distinct call is computed once and then loaded
   * from the cache. The wrapper has `fn`'s call signature; an async `fn`
   * gives a Promise-returning wrapper.
   *
   * With `options.output`, which declares the result's shape and dtype from
   * the call's arguments, a miss lends `fn` that array as its last argument,
   * over the entry's file (a shared map); `fn` fills it and returns nothing,
   * and the file becomes the entry with no copy in memory. The wrapper
   * takes the other arguments and returns the array, mapped.
   */
  createCachedFunc<
    const A extends unknown[],
    const S extends readonly number[],
    const D extends string,
    R extends void | OutputFill<D> | PromiseLike<void | OutputFill<D>> = void,
  >(
    fn: (...args: [...A, OutputFill<D>]) => R,
    options: OutputFunctionOptions<A, S, D>,
  ): OutputCachedFunction<A, S, D, R>
  createCachedFunc<F extends CacheableFunction>(fn: F, options?: CachedFunctionOptions): CachedFunction<F>
  createCachedFunc(fn: CacheableFunction, options?: CachedFunctionOptions): unknown {
    return cachedFunction(this.#calls, fn, options, this.#computeOnce)
  }

  /**
   * Entries and bytes of the whole cache, and hits and misses: in a
   * directory, every process's; on an object store, this process's.
   */
  stats(options?: ListOptions): CacheStats {
    return job(listSettings(options, 'stats')).run(({ onProgress, stop }) => this.#native.stats(onProgress, stop))
  }

  /** `stats()` without holding up the event loop. */
  async statsAsync(options?: ListOptions): Promise<CacheStats> {
    return job(listSettings(options, 'statsAsync')).runAsync(({ onProgress, stop }) => this.#native.statsAsync(onProgress, stop))
  }

  /** Every entry, most recently used first. */
  entries(options?: ListOptions): CacheEntryInfo[] {
    return job(listSettings(options, 'entries')).run(({ onProgress, stop }) => this.#native.entries(onProgress, stop)).map(entryInfo)
  }

  /** `entries()` without holding up the event loop. */
  async entriesAsync(options?: ListOptions): Promise<CacheEntryInfo[]> {
    const rows = await job(listSettings(options, 'entriesAsync')).runAsync(({ onProgress, stop }) => this.#native.entriesAsync(onProgress, stop))
    return rows.map(entryInfo)
  }

  /**
   * Applies `limits` now (the cache's own limits when omitted): removes
   * expired entries, then the least recently used until the size limits
   * hold, and leftovers of killed processes.
   */
  prune(limits?: CacheLimits, options?: PruneOptions): PruneReport {
    const settings = pruneSettings(limits, options, 'prune')
    return this.#pruned(job(settings).run(({ onProgress, stop }) => this.#native.prune(settings.limits, onProgress, stop)))
  }

  /** `prune()` without holding up the event loop. */
  async pruneAsync(limits?: CacheLimits, options?: PruneOptions): Promise<PruneReport> {
    const settings = pruneSettings(limits, options, 'pruneAsync')
    return this.#pruned(await job(settings).runAsync(({ onProgress, stop }) => this.#native.pruneAsync(settings.limits, onProgress, stop)))
  }

  #pruned(report: PruneReport): PruneReport {
    debug('prune of %s removed %d entries (%d bytes), %d leftovers', this.path, report.removedEntries, report.removedBytes, report.removedLeftovers)
    return report
  }

  /**
   * Checks every entry completely, its data against the digest stored with
   * it included (read in pieces, so memory stays small), and removes the
   * damaged ones (unless `dryRun`).
   */
  verify(options?: VerifyOptions): VerifyReport {
    const settings = verifySettings(options, 'verify')
    return job(settings).run(({ onProgress, stop }) => this.#native.verify(!settings.dryRun, onProgress, stop))
  }

  /** `verify()` without holding up the event loop. */
  async verifyAsync(options?: VerifyOptions): Promise<VerifyReport> {
    const settings = verifySettings(options, 'verifyAsync')
    return job(settings).runAsync(({ onProgress, stop }) => this.#native.verifyAsync(!settings.dryRun, onProgress, stop))
  }

  /**
   * Removes what this cache wrote, and nothing else; with `removeDir`,
   * then the directory.
   */
  clearCache(options?: ClearCacheOptions): void {
    const settings = clearSettings(options, 'clearCache')
    job(settings).run(({ onProgress, stop }) => this.#native.clear(settings.removeDir, onProgress, stop))
  }

  /** `clearCache()` without holding up the event loop. */
  async clearCacheAsync(options?: ClearCacheOptions): Promise<void> {
    const settings = clearSettings(options, 'clearCacheAsync')
    await job(settings).runAsync(({ onProgress, stop }) => this.#native.clearAsync(settings.removeDir, onProgress, stop))
  }

  /**
   * The entry of `key` (64 hex digits, as `entries()` gives it) opened for
   * partial reads, without reading its data; undefined if there is none.
   */
  open(key: string): EntryHandle | undefined {
    return this.#calls.open({ key: keyArg(key, 'open'), functionName: '' })
  }

  /** `open()` without holding up the event loop. */
  async openAsync(key: string): Promise<EntryHandle | undefined> {
    return this.#calls.openAsync({ key: keyArg(key, 'openAsync'), functionName: '' })
  }

  /**
   * Removes the entry of `key` (64 hex digits, as `entries()` and the CLI's
   * `ls --json` give it) from every tier; true if there was one.
   */
  remove(key: string): boolean {
    return this.#calls.remove({ key: keyArg(key, 'remove'), functionName: '' })
  }

  /** `remove()` without holding up the event loop. */
  async removeAsync(key: string): Promise<boolean> {
    return this.#calls.removeAsync({ key: keyArg(key, 'removeAsync'), functionName: '' })
  }

  /**
   * Removes every entry of the function named `name` (as `entries()` names
   * it: `'(anonymous)'` for one without a name) from every tier; returns how many.
   */
  clearFunction(name: string, options?: ListOptions): number {
    const functionName = nameArg(name, 'clearFunction')
    const removed = job(listSettings(options, 'clearFunction')).run(({ onProgress, stop }) => this.#native.removeFunction(functionName, onProgress, stop))
    this.#calls.report(removed.notes, 'remove', { key: '', functionName })
    return removed.keys.length
  }

  /** `clearFunction()` without holding up the event loop. */
  async clearFunctionAsync(name: string, options?: ListOptions): Promise<number> {
    const functionName = nameArg(name, 'clearFunctionAsync')
    const removed = await job(listSettings(options, 'clearFunctionAsync')).runAsync(({ onProgress, stop }) =>
      this.#native.removeFunctionAsync(functionName, onProgress, stop),
    )
    this.#calls.report(removed.notes, 'remove', { key: '', functionName })
    return removed.keys.length
  }

  /**
   * Writes the hits recorded in memory where other processes see them and
   * lets go of the index's file handles (also `using cache = new
   * NumpyFuncCache(...)`, through `Symbol.dispose`). A cache used after
   * `close()` opens what it needs again.
   */
  close(): void {
    this.#flush.cancel()
    nativeCall(() => this.#native.close())
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
