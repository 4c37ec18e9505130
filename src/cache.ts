// NumpyFuncCache: wraps functions so their array results are stored as .npy
// files keyed by a BLAKE3 hash of the function's identity and arguments.
// Entries are written, read and judged by the core; this class turns calls
// into keys and results into entries, and emits what happened.
import { EventEmitter } from 'node:events'
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { types } from 'node:util'
import { type Lookup, type NativeCacheDir, type NativeRemote, loadLean, native } from './native'
import { type Call, callKey, callKeyAsync, identityPrefix } from './call-key'
import { type TypedArray, viewOf } from './dtypes'
import { bytesOf, toArrayParts } from './npy'
import { debug, shortKey } from './debug'
import { job } from './jobs'
import { describe } from './describe'
import { ErrorCodes, codedError, fromNative, invalidArg, nativeCall } from './errors'
import {
  type ComputeOnce,
  FLUSH_EVERY_MS,
  cacheSettings,
  clearSettings,
  functionSettings,
  listSettings,
  pruneSettings,
  verifySettings,
} from './options'
import { type Claim, runAsync, runSync, waitOrCompute } from './compute-once'
import type {
  CacheEntryInfo,
  CacheLimits,
  CacheStats,
  CacheableFunction,
  CachedFunction,
  CachedFunctionMethods,
  CachedFunctionOptions,
  ClearCacheOptions,
  ListOptions,
  NumpyFuncCacheEvents,
  NumpyFuncCacheOptions,
  PruneOptions,
  PruneReport,
  VerifyOptions,
  VerifyReport,
} from './types'

/**
 * After the object store fails (after its own retries), calls skip it for
 * this long, computing at once instead of each waiting out the retries.
 */
const REMOTE_PAUSE_MS = 10_000

/**
 * Leases this process holds, referenced until released: a lease object
 * that is collected releases its lease, and a computation the program no
 * longer references (awaiting a promise nothing can resolve) must not
 * hand its key to another process while this one lives.
 */
const heldLeases = new Set<{ release(): void }>()

function held(lease: { release(): void }): { release(): void } {
  heldLeases.add(lease)
  return {
    release() {
      heldLeases.delete(lease)
      lease.release()
    },
  }
}

/** Caches whose recorded uses are written to their index when the process exits. */
const liveDirs = new Set<WeakRef<NativeCacheDir>>()
let exitHookInstalled = false

function flushOnExit(dir: NativeCacheDir): void {
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

/** The native directory of each cache, for this package's own tests and benchmark (see testing.ts). */
export const nativeDirOf = new WeakMap<NumpyFuncCache, NativeCacheDir>()

/** A result about to be stored: what the core writes, and what the call returns. */
interface Computed {
  parts: ReturnType<typeof toArrayParts>
  result: unknown
}

function computed(value: unknown, label: string): Computed {
  const parts = toArrayParts(value, `the result of ${label}`, ErrorCodes.BAD_RESULT)
  return { parts, result: parts.bare ? parts.data : shaped(parts.data, parts.layout) }
}

/** How entries(), like the CLI's ls, name a function without a name. */
const ANONYMOUS = '(anonymous)'

/** An index row as entries() gives it. */
function entryInfo(e: ReturnType<NativeCacheDir['entries']>[number]): CacheEntryInfo {
  return {
    key: e.key,
    function: e.function || ANONYMOUS,
    dtype: e.dtype,
    shape: e.shape,
    bytes: e.bytes,
    created: new Date(e.created),
    lastUsed: new Date(e.lastUsed),
  }
}

/** prune() of an object store without limits and without a local tier. */
const NOTHING_PRUNED: PruneReport = { removedEntries: 0, removedBytes: 0, adopted: 0, dropped: 0, removedLeftovers: 0, entries: 0, bytes: 0 }

/** What the local tier stores of a remote hit: its bytes, layout and entry. */
function keptEntry(found: Lookup & { status: 'hit' }, functionName: string) {
  const { array } = found
  const layout = { shape: array.shape, dtype: array.dtype, fortranOrder: array.fortranOrder }
  const entry = { function: functionName, result: found.result, class: found.class } as const
  return [new Uint8Array(array.buffer), layout, entry] as const
}

function shaped(data: TypedArray, layout: { shape: number[]; dtype: string; fortranOrder: boolean }): unknown {
  const { shape, dtype, fortranOrder } = layout
  return fortranOrder ? { data, shape, dtype, fortranOrder } : { data, shape, dtype }
}

export class NumpyFuncCache extends EventEmitter<NumpyFuncCacheEvents> {
  /** The cache directory, absolute; or the object-store location (`s3://bucket/prefix`). */
  readonly path: string
  /** The directory: the cache itself, or an object store's local tier (`localDir`). */
  readonly #local: NativeCacheDir | undefined
  /** The object store, for an `s3://` (`gs://`, `az://`) location. */
  readonly #remote: NativeRemote | undefined
  readonly #computeOnce: ComputeOnce | undefined
  #flushTimer: NodeJS.Timeout | undefined
  #leaseWarned = false
  /** The object store's last failure (after its retries), while calls skip it. */
  #remoteDown: { until: number; error: Error } | undefined

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
    const dirOptions = { map: settings.mmap, limits: settings.limits, verify: settings.verify }
    const { remote } = settings
    if (remote) {
      this.path = settings.path.replace(/\/+$/, '')
      this.#remote = nativeCall(() => new native.RemoteCache(this.path, remote.settings))
      const localDir = remote.localDir === undefined ? undefined : resolve(remote.localDir)
      this.#local = localDir === undefined ? undefined : nativeCall(() => new native.CacheDir(localDir, dirOptions))
    } else {
      this.path = resolve(settings.path)
      const dir = this.path
      this.#local = nativeCall(() => new native.CacheDir(dir, dirOptions))
    }
    if (this.#local) {
      nativeDirOf.set(this, this.#local)
      flushOnExit(this.#local)
    }
  }

  /** The cache directory (a local cache, not an object store's tier). */
  get #dir(): NativeCacheDir {
    return this.#local!
  }

  /**
   * Entries and bytes in the directory, and hits and misses, totalled over
   * every process that used it. For an object store: entries and bytes from
   * a listing of it (one request per 1,000 objects), hits and misses of
   * this process.
   */
  stats(options?: ListOptions): CacheStats {
    const j = job(listSettings(options, 'stats'))
    return j.run(({ onProgress, stop }) => (this.#remote ? this.#remote.stats(onProgress, stop) : this.#dir.stats()))
  }

  /** `stats()` off the event loop, on the thread pool. */
  async statsAsync(options?: ListOptions): Promise<CacheStats> {
    const j = job(listSettings(options, 'statsAsync'))
    return j.runAsync(({ onProgress, stop }) => (this.#remote ? this.#remote.statsAsync(onProgress, stop) : this.#dir.statsAsync(stop)))
  }

  /** Every entry, most recently used first. For an object store, from a listing and a read of each entry's first bytes. */
  entries(options?: ListOptions): CacheEntryInfo[] {
    const j = job(listSettings(options, 'entries'))
    return j.run(({ onProgress, stop }) => (this.#remote ? this.#remote.entries(onProgress, stop) : this.#dir.entries())).map(entryInfo)
  }

  /** `entries()` off the event loop, on the thread pool. */
  async entriesAsync(options?: ListOptions): Promise<CacheEntryInfo[]> {
    const j = job(listSettings(options, 'entriesAsync'))
    const rows = await j.runAsync(({ onProgress, stop }) =>
      this.#remote ? this.#remote.entriesAsync(onProgress, stop) : this.#dir.entriesAsync(stop),
    )
    return rows.map(entryInfo)
  }

  /**
   * Applies `limits` now (the cache's own limits when omitted): removes
   * expired entries, then the least recently used until the size limits
   * hold. Also brings the index in line with the directory and removes
   * leftovers of killed processes.
   */
  prune(limits?: CacheLimits, options?: PruneOptions): PruneReport {
    const settings = pruneSettings(limits, options, 'prune')
    const report = job(settings).run(({ onProgress, stop }) => {
      // The cache's own limits are the local tier's: without limits given,
      // only it is pruned. The shared store is pruned only to limits given.
      if (!this.#remote) return this.#dir.prune(settings.limits, onProgress, stop)
      if (settings.limits === undefined) return this.#local?.prune(undefined, onProgress, stop) ?? { ...NOTHING_PRUNED }
      this.#local?.prune(undefined, undefined, stop)
      return { ...this.#remote.prune(settings.limits, onProgress, stop), adopted: 0, dropped: 0 }
    })
    return this.#pruned(report)
  }

  /** `prune()` off the event loop, on the thread pool. */
  async pruneAsync(limits?: CacheLimits, options?: PruneOptions): Promise<PruneReport> {
    const settings = pruneSettings(limits, options, 'pruneAsync')
    const report = await job(settings).runAsync(async ({ onProgress, stop }) => {
      if (!this.#remote) return this.#dir.pruneAsync(settings.limits, onProgress, stop)
      if (settings.limits === undefined) return (await this.#local?.pruneAsync(undefined, onProgress, stop)) ?? { ...NOTHING_PRUNED }
      await this.#local?.pruneAsync(undefined, undefined, stop)
      return { ...(await this.#remote.pruneAsync(settings.limits, onProgress, stop)), adopted: 0, dropped: 0 }
    })
    return this.#pruned(report)
  }

  #pruned(report: PruneReport): PruneReport {
    debug('prune of %s removed %d entries (%d bytes), %d leftovers', this.path, report.removedEntries, report.removedBytes, report.removedLeftovers)
    return report
  }

  /**
   * Checks every entry in the directory completely, its data against the
   * digest stored with it included (read in pieces, so memory stays small),
   * and removes the damaged ones (unless `dryRun`).
   */
  verify(options?: VerifyOptions): VerifyReport {
    const settings = verifySettings(options, 'verify')
    // An object store's entries are checked whole on every load; its local tier is checked here.
    if (!this.#local) return job(settings).run(() => ({ checked: 0, damaged: [], removed: 0 }))
    return job(settings).run(({ onProgress, stop }) => this.#dir.verify(!settings.dryRun, onProgress, stop))
  }

  /** `verify()` off the event loop, on the thread pool. */
  async verifyAsync(options?: VerifyOptions): Promise<VerifyReport> {
    const settings = verifySettings(options, 'verifyAsync')
    if (!this.#local) return job(settings).runAsync(() => Promise.resolve({ checked: 0, damaged: [], removed: 0 }))
    return job(settings).runAsync(({ onProgress, stop }) => this.#dir.verifyAsync(!settings.dryRun, onProgress, stop))
  }

  /**
   * Removes the files this cache wrote; with `removeDir`, then the
   * directory. For an object store: every object the cache wrote under its
   * prefix, and the local tier's files.
   */
  clearCache(options?: ClearCacheOptions): void {
    const settings = clearSettings(options, 'clearCache')
    job(settings).run(({ onProgress, stop }) => {
      this.#remote?.clear(onProgress, stop)
      settings.signal?.throwIfAborted()
      this.#local?.clear(settings.removeDir)
    })
  }

  /** `clearCache()` off the event loop, on the thread pool. */
  async clearCacheAsync(options?: ClearCacheOptions): Promise<void> {
    const settings = clearSettings(options, 'clearCacheAsync')
    await job(settings).runAsync(async ({ onProgress, stop }) => {
      await this.#remote?.clearAsync(onProgress, stop)
      // The directory's clear is one step: an abort during the store's clear keeps it.
      settings.signal?.throwIfAborted()
      await this.#local?.clearAsync(settings.removeDir, stop)
    })
  }

  /**
   * Removes the entry of `key` (64 hex digits, as `entries()` and the CLI's
   * `ls --json` give it), from the object store too; true if there was one.
   */
  remove(key: string): boolean {
    if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) {
      throw invalidArg(`remove: key must be 64 lower-case hex digits (a key from entries()), got ${describe(key)}`)
    }
    const local = nativeCall(() => this.#local?.remove(key) ?? false)
    const remote = nativeCall(() => this.#remote?.remove(key) ?? false)
    debug('remove %s from %s: %s', shortKey(key), this.path, local || remote ? 'removed' : 'not there')
    return local || remote
  }

  /**
   * Removes every entry of the function named `name` (as `entries()` names
   * it: `'(anonymous)'` for one without a name); returns how many.
   */
  clearFunction(name: string): number {
    if (typeof name !== 'string' || name === '') throw invalidArg(`clearFunction: name must be a non-empty string, got ${describe(name)}`)
    let removed = 0
    for (const entry of this.entries()) if (entry.function === name && this.remove(entry.key)) removed++
    return removed
  }

  /**
   * Wraps `fn` so that each distinct call is computed once and then loaded
   * from `<path>/<key>.npy`. The wrapper has `fn`'s call signature; an async
   * `fn` gives a Promise-returning wrapper.
   */
  createCachedFunc<F extends CacheableFunction>(fn: F, options?: CachedFunctionOptions): CachedFunction<F> {
    const settings = functionSettings(fn, options)
    const { name, isAsync } = settings
    const once = settings.computeOnce === 'inherit' ? this.#computeOnce : settings.computeOnce
    const label = `${name || 'anonymous function'}()`
    const prefix = identityPrefix({ name, version: settings.version, source: settings.trackSource ? fn.toString() : undefined })
    const cache = this
    // What a call's key is made of: its arguments, and its `this` unless told to ignore it.
    const call = (self: unknown, args: unknown[]): Call => ({ self: settings.keysThis ? self : undefined, args })
    // has/invalidate act on a plain call (`cached.has(...)`, whose `this` is the
    // wrapper itself) or, through call(), on a method's (`cached.has.call(obj, ...)`).
    const methodsOf = (wrapper: unknown): CachedFunctionMethods<F> => ({
      has(this: unknown, ...args) {
        const key = callKey(prefix, call(this === wrapper ? undefined : this, args))
        return nativeCall(() => cache.#local?.contains(key) || (cache.#remote?.contains(key) ?? false))
      },
      invalidate(this: unknown, ...args) {
        const key = callKey(prefix, call(this === wrapper ? undefined : this, args))
        const local = nativeCall(() => cache.#local?.remove(key) ?? false)
        return nativeCall(() => cache.#remote?.remove(key) ?? false) || local
      },
    })

    if (!isAsync) {
      const compute = (self: unknown, args: unknown[], key: string) => {
        const value = fn.apply(self, args)
        if (types.isPromise(value)) {
          throw codedError(
            TypeError,
            ErrorCodes.BAD_RESULT,
            `${label} returned a Promise; pass { async: true } to createCachedFunc (or make it an async function)`,
          )
        }
        return cache.#store(key, name, computed(value, label), label)
      }
      const load = (key: string, report: boolean) => cache.#load(key, name, report)
      const wrapper = function (this: unknown, ...args: unknown[]) {
        const key = callKey(prefix, call(this, args))
        const hit = load(key, true)
        if (hit !== undefined) return hit
        if (once === undefined) return compute(this, args, key)
        // Waiting polls the entry: a damaged one was reported already.
        return runSync(waitOrCompute(once), {
          claim: () => cache.#claim(key, once, true),
          load: () => load(key, false),
          compute: () => compute(this, args, key),
        })
      }
      return Object.assign(wrapper, methodsOf(wrapper)) as unknown as CachedFunction<F>
    }

    const load = (key: string, report: boolean) => cache.#loadAsync(key, name, report)
    const compute = async (self: unknown, args: unknown[], key: string) => {
      // The caller regained control at the call: it may have changed the
      // arguments since. Compute only from what the key was made of.
      if ((await callKeyAsync(prefix, call(self, args))) !== key) {
        throw codedError(
          TypeError,
          ErrorCodes.ARGS_CHANGED,
          `the arguments of ${label} changed between the call and its computation, so it did not compute; ` +
            `pass copies (e.g. array.slice()) or await the call before changing them`,
        )
      }
      return cache.#storeAsync(key, name, computed(await fn.apply(self, args), label), label)
    }
    // One computation per key at a time within this process.
    const running = new Map<string, Promise<unknown>>()
    const wrapper = async function (this: unknown, ...args: unknown[]) {
      const key = await callKeyAsync(prefix, call(this, args))
      const pending = running.get(key)
      if (pending) return pending
      const work = (async () => {
        const hit = await load(key, true)
        if (hit !== undefined) return hit
        if (once === undefined) return compute(this, args, key)
        return runAsync(waitOrCompute(once), {
          claim: () => cache.#claimAsync(key, once),
          load: () => load(key, false),
          compute: () => compute(this, args, key),
        })
      })()
      running.set(key, work)
      const done = () => running.delete(key)
      work.then(done, done)
      return work
    }
    return Object.assign(wrapper, methodsOf(wrapper)) as unknown as CachedFunction<F>
  }

  /**
   * The compute-once lease of `key` if this process got it; `null` if it
   * computes without one (no lease can be taken in this directory, or a
   * synchronous call would wait for this very process, which cannot finish
   * while it waits); undefined if another process holds it.
   */
  #claim(key: string, once: ComputeOnce, sync: boolean): Claim {
    if (this.#remote && !this.#remoteUp()) return null
    let claim: ReturnType<NativeCacheDir['claim']> | ReturnType<NativeRemote['claim']>
    try {
      claim = this.#remote ? this.#remote.claim(key, once.staleAfter) : this.#dir.claim(key, once.staleAfter)
    } catch (e) {
      return this.#noLease(e)
    }
    if (!('holder' in claim)) {
      debug('lease of %s taken: computing it', shortKey(key))
      return held(claim)
    }
    if (sync && claim.thisProcess) return null
    debug('lease of %s held by %s: waiting for its entry', shortKey(key), claim.holder)
    return undefined
  }

  /** `#claim` for an async call: an object store's lease is taken off the event loop. */
  async #claimAsync(key: string, once: ComputeOnce): Promise<Claim> {
    if (!this.#remote) return this.#claim(key, once, false)
    if (!this.#remoteUp()) return null
    try {
      const claim = await this.#remote.claimAsync(key, once.staleAfter)
      if ('holder' in claim) {
        debug('lease of %s held by %s: waiting for its entry', shortKey(key), claim.holder)
        return undefined
      }
      debug('lease of %s taken: computing it', shortKey(key))
      return held(claim)
    } catch (e) {
      return this.#noLease(e)
    }
  }

  /** No lease can be taken: compute without one, and say so once. */
  #noLease(e: unknown): null {
    this.#remoteFailedNow(fromNative(e) as Error)
    if (!this.#leaseWarned) {
      this.#leaseWarned = true
      process.emitWarning(`computeOnce is off in ${this.path}: no lease can be taken there (${(e as Error).message})`, {
        code: 'NUMPY_FUNC_CACHE_NO_LEASE',
      })
    }
    return null
  }

  /**
   * Writes the hits recorded in memory to the index and closes it, releasing
   * its file handles (also `using cache = new NumpyFuncCache(...)`, through
   * `Symbol.dispose`). A cache used after `close()` opens what it needs again.
   */
  close(): void {
    clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    if (this.#local) nativeCall(() => this.#local!.close())
  }

  [Symbol.dispose](): void {
    this.close()
  }

  /** Writes uses recorded in memory to the index once the calls pause. */
  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#local === undefined) return
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined
      try {
        // Only if the index is free: the event loop never waits for another process.
        this.#dir.flush(0)
      } catch {
        // Bookkeeping only: the next store or exit tries again.
      }
    }, FLUSH_EVERY_MS).unref()
  }

  /** The result of `key`'s entry, else undefined: from the directory, then the object store. */
  #load(key: string, functionName: string, report: boolean): unknown {
    if (this.#local) {
      const hit = this.#hit(nativeCall(() => loadLean(this.#local!, key)), key, functionName, report)
      if (hit !== undefined || !this.#remote) return hit
    }
    if (!this.#remoteUp()) return undefined
    let found: Lookup
    try {
      found = this.#remote!.load(key)
    } catch (e) {
      return this.#remoteFailed(e, key, functionName)
    }
    if (found.status === 'hit' && this.#local) this.#keep(key, functionName, found)
    return this.#hit(found, key, functionName, report)
  }

  async #loadAsync(key: string, functionName: string, report: boolean): Promise<unknown> {
    if (this.#local) {
      let found: Lookup
      try {
        found = await this.#local.loadAsync(key)
      } catch (e) {
        throw fromNative(e)
      }
      const hit = this.#hit(found, key, functionName, report)
      if (hit !== undefined || !this.#remote) return hit
    }
    if (!this.#remoteUp()) return undefined
    let found: Lookup
    try {
      found = await this.#remote!.loadAsync(key)
    } catch (e) {
      return this.#remoteFailed(e, key, functionName)
    }
    if (found.status === 'hit' && this.#local) await this.#keepAsync(key, functionName, found)
    return this.#hit(found, key, functionName, report)
  }

  /** Keeps a remote hit in the local tier, before the caller can change the array. */
  #keep(key: string, functionName: string, found: Lookup & { status: 'hit' }): void {
    try {
      this.#local!.store(key, ...keptEntry(found, functionName))
    } catch (e) {
      this.#storeFailed(e, key, functionName, `${functionName || 'anonymous function'}()`, this.#local)
    }
  }

  async #keepAsync(key: string, functionName: string, found: Lookup & { status: 'hit' }): Promise<void> {
    try {
      await this.#local!.storeAsync(key, ...keptEntry(found, functionName))
    } catch (e) {
      this.#storeFailed(e, key, functionName, `${functionName || 'anonymous function'}()`, this.#local)
    }
  }

  /**
   * A load from the object store failed: refused credentials are thrown;
   * anything else (unreachable, timeouts, 5xx after retries) is reported
   * and the call computes (fails open).
   */
  #remoteFailed(e: unknown, key: string, functionName: string): undefined {
    const cause = fromNative(e) as Error & { code?: string }
    if (cause.code === ErrorCodes.REMOTE_DENIED || cause.code === ErrorCodes.INVALID_ARG) throw cause
    const error = codedError(Error, ErrorCodes.REMOTE_UNAVAILABLE, `could not read ${this.path}, so the result is computed: ${cause.message}`, {
      cause,
    })
    this.#remoteFailedNow(cause)
    this.#report(error, key, functionName)
    return undefined
  }

  /** Whether to use the object store: not for a while after it failed (after its retries), so calls fail open at once. */
  #remoteUp(): boolean {
    if (this.#remoteDown === undefined) return true
    if (performance.now() < this.#remoteDown.until) return false
    this.#remoteDown = undefined
    return true
  }

  #remoteFailedNow(cause: Error & { code?: string }): void {
    // The remembered failure, reported again while paused, does not extend the pause.
    if (cause === this.#remoteDown?.error) return
    if (cause.code === ErrorCodes.REMOTE_UNAVAILABLE) this.#remoteDown = { until: performance.now() + REMOTE_PAUSE_MS, error: cause }
  }

  /** The result of a lookup that hit, else undefined (a damaged entry is reported if `report`). */
  #hit(found: Lookup, key: string, functionName: string, report: boolean): unknown {
    if (debug.enabled && report) debug('%s %s %s in %s', found.status, functionName || ANONYMOUS, shortKey(key), this.path)
    if (found.status === 'miss') return undefined
    if (found.status === 'damaged') {
      if (report) this.emit('damagedEntry', found.error, { key, functionName })
      return undefined
    }
    this.#scheduleFlush()
    const { array } = found
    const data = viewOf(array.buffer, found.class, array.dtype)
    return found.result === 'typedarray' ? data : shaped(data, array)
  }

  #store(key: string, functionName: string, { parts, result }: Computed, label: string): unknown {
    const entry = this.#entryOf(parts, functionName)
    // The store first: other machines wait for it; the local tier is this machine's.
    for (const tier of [this.#remote, this.#local]) {
      if (tier === undefined) continue
      try {
        if (tier === this.#remote && !this.#remoteUp()) throw this.#remoteDown!.error
        const before = this.#entriesIfDebugging(tier)
        tier.store(key, bytesOf(parts), parts.layout, entry)
        this.#debugStored(tier, key, functionName, before)
      } catch (e) {
        this.#storeFailed(e, key, functionName, label, tier)
      }
    }
    return result
  }

  async #storeAsync(key: string, functionName: string, { parts, result }: Computed, label: string): Promise<unknown> {
    const entry = this.#entryOf(parts, functionName)
    for (const tier of [this.#remote, this.#local]) {
      if (tier === undefined) continue
      try {
        if (tier === this.#remote && !this.#remoteUp()) throw this.#remoteDown!.error
        // `parts` keeps the result's memory referenced while the pool writes it.
        const before = this.#entriesIfDebugging(tier)
        await tier.storeAsync(key, bytesOf(parts), parts.layout, entry)
        this.#debugStored(tier, key, functionName, before)
      } catch (e) {
        this.#storeFailed(e, key, functionName, label, tier)
      }
    }
    return result
  }

  /** The local tier's entry count before a store, only while debug logging is on (to log evictions). */
  #entriesIfDebugging(tier: NativeCacheDir | NativeRemote): number | undefined {
    if (!debug.enabled || tier !== this.#local) return undefined
    return nativeCall(() => this.#local!.stats()).entries
  }

  #debugStored(tier: NativeCacheDir | NativeRemote, key: string, functionName: string, before: number | undefined): void {
    if (!debug.enabled) return
    const where = tier === this.#remote || !this.#remote ? this.path : `the local tier of ${this.path}`
    debug('stored %s %s in %s', functionName || ANONYMOUS, shortKey(key), where)
    // A store follows a miss, so it adds an entry: any fewer went to the limits.
    const evicted = before === undefined ? 0 : before + 1 - nativeCall(() => this.#local!.stats()).entries
    if (evicted > 0) debug('evicted %d least recently used entries from %s to keep its limits', evicted, where)
  }

  #entryOf(parts: Computed['parts'], functionName: string) {
    return { function: functionName, result: parts.bare ? 'typedarray' : 'ndarray', class: parts.className } as const
  }

  #storeFailed(e: unknown, key: string, functionName: string, label: string, tier: unknown): void {
    const cause = fromNative(e) as Error
    if (tier === this.#remote) this.#remoteFailedNow(cause)
    const where = tier === this.#remote || !this.#remote ? this.path : `the local tier of ${this.path}`
    const error = codedError(Error, ErrorCodes.STORE_FAILED, `could not store the result of ${label} in ${where}: ${cause.message}`, {
      cause,
    })
    debug('%s', error.message)
    this.#report(error, key, functionName)
  }

  #report(error: Error, key: string, functionName: string): void {
    if (this.listenerCount('storeError') > 0) this.emit('storeError', error, { key, functionName })
    else process.emitWarning(error.message, { code: 'NUMPY_FUNC_CACHE_STORE_FAILED' })
  }
}
