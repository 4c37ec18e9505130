// A cached call's dealings with its cache: loads, stores, leases, `has`
// and removals through the native cache (whatever tiers it is made of),
// and what they noticed turned into the cache's events.
import type { EventEmitter } from 'node:events'
import type { ArrayLayout, EntryArg, EntryHandle, Loaded, LoadedValue, Note, OutputDraft, StoreOutcome } from '../binding/index'
import { OpenedEntry } from './entry-handle'
import { type NativeCache, loadNow } from './native'
import type { Claim } from './compute-once'
import { debug, shortKey } from './debug'
import { ErrorCodes, codedError, errorOf, nativeCall, nativeCallAsync } from './errors'
import type { FlushTimer } from './flush'
import { type Claimed, claimOf } from './leases'
import type { ComputeOnce } from './options'
import { type Computed, storeArgs, valueOf } from './results'
import type { NumpyFuncCacheEvents } from './types'

/** How entries(), like the CLI's ls, name a function without a name. */
export const ANONYMOUS = '(anonymous)'

/** Which call noticed something, for the events that say so. */
export interface CallInfo {
  key: string
  functionName: string
  /** How messages name the function: `name()`. */
  label?: string
}

/** What an operation was doing, for the messages of what it noticed. */
type Doing = 'load' | 'has' | 'store' | 'remove'

/** What could not be reached, and what the call did instead. */
const UNREACHED: Record<Doing, (tier: string) => string> = {
  load: (tier) => `could not read ${tier}, so the result is computed`,
  has: (tier) => `could not read ${tier}, so has() answered false`,
  store: (tier) => `could not store the result in ${tier}`,
  remove: (tier) => `could not remove the entry from ${tier}`,
}

export class Calls {
  #leaseWarned = false

  constructor(
    private readonly native: NativeCache,
    private readonly events: EventEmitter<NumpyFuncCacheEvents>,
    private readonly flush: FlushTimer,
  ) {}

  /** Where the cache is: its directory, or its store's URL. */
  get path(): string {
    return this.native.location
  }

  /** The result of `key`'s entry, else undefined; what it noticed is reported if `report`. */
  load(key: string, functionName: string, report: boolean): unknown {
    return this.#found(nativeCall(() => loadNow(this.native, key)), { key, functionName }, report)
  }

  async loadAsync(key: string, functionName: string, report: boolean): Promise<unknown> {
    return this.#found(await nativeCallAsync(() => this.native.loadAsync(key)), { key, functionName }, report)
  }

  #found(found: Loaded, call: CallInfo, report: boolean): unknown {
    if (report) {
      this.report(found.notes, 'load', call)
      if (debug.enabled) debug('%s %s %s in %s', found.hit ? 'hit' : 'miss', call.functionName || ANONYMOUS, shortKey(call.key), this.path)
    }
    if (found.hit === undefined) return undefined
    this.flush.schedule()
    return valueOf(found.hit)
  }

  /** Stores a computed result (a failure is reported, not thrown) and returns it. */
  store(key: string, functionName: string, computed: Computed, label: string): unknown {
    const outcome = nativeCall(() => this.native.storeMembers(key, ...storeArgs(computed, functionName)))
    this.#stored(outcome, { key, functionName, label })
    return computed.result
  }

  async storeAsync(key: string, functionName: string, computed: Computed, label: string): Promise<unknown> {
    // `computed` keeps the result's memory referenced until the store settles.
    const outcome = await nativeCallAsync(() => this.native.storeMembersAsync(key, ...storeArgs(computed, functionName)))
    this.#stored(outcome, { key, functionName, label })
    return computed.result
  }

  /** A file to fill with the entry of `key`, an array of `layout`, then publish. */
  draft(key: string, layout: ArrayLayout): OutputDraft {
    return nativeCall(() => this.native.draft(key, layout))
  }

  /** Publishes a filled draft (a failure is reported, not thrown) and returns its array. */
  publish(draft: OutputDraft, buffer: ArrayBuffer, entry: EntryArg, call: CallInfo): LoadedValue {
    const published = nativeCall(() => draft.publish(buffer, entry))
    this.#stored(published.stored, call)
    return published.array
  }

  async publishAsync(draft: OutputDraft, buffer: ArrayBuffer, entry: EntryArg, call: CallInfo): Promise<LoadedValue> {
    const published = await nativeCallAsync(() => draft.publishAsync(buffer, entry))
    this.#stored(published.stored, call)
    return published.array
  }

  #stored(outcome: StoreOutcome, call: CallInfo): void {
    this.report(outcome.notes, 'store', call)
    const { tooLarge } = outcome
    if (tooLarge) {
      const { key, functionName } = call
      debug('not stored %s %s in %s: %d bytes, over its limit of %d', functionName || ANONYMOUS, shortKey(key), this.path, tooLarge.bytes, tooLarge.limit)
      this.events.emit('entryTooLarge', { key, functionName, bytes: tooLarge.bytes, limit: tooLarge.limit, location: this.path })
    }
    if (!debug.enabled) return
    if (outcome.published) debug('stored %s %s in %s', call.functionName || ANONYMOUS, shortKey(call.key), this.path)
    // The count the tier reports having removed: never inferred from totals.
    if (outcome.evicted > 0) debug('evicted %d least recently used entries from %s to keep its limits', outcome.evicted, this.path)
  }

  /** The compute-once lease of `key` for a sync (`sync`) or async call: see `claimOf`. */
  claim(key: string, once: ComputeOnce, sync: boolean): Claim {
    return this.#claimed(nativeCall(() => this.native.claim(key, once.staleAfter)), key, sync)
  }

  async claimAsync(key: string, once: ComputeOnce): Promise<Claim> {
    return this.#claimed(await nativeCallAsync(() => this.native.claimAsync(key, once.staleAfter)), key, false)
  }

  /** Whether a live holder still has the lease of `key`: a read, never a write. */
  leaseHeld(key: string, once: ComputeOnce): boolean {
    return nativeCall(() => this.native.leaseHeld(key, once.staleAfter))
  }

  async leaseHeldAsync(key: string, once: ComputeOnce): Promise<boolean> {
    return nativeCallAsync(() => this.native.leaseHeldAsync(key, once.staleAfter))
  }

  #claimed(claimed: Claimed, key: string, sync: boolean): Claim {
    const claim = claimOf(claimed, sync, (reason) => this.#noLease(reason.message))
    if (!debug.enabled) return claim
    if (claim) debug('lease of %s taken: computing it', shortKey(key))
    else if ('holder' in claimed) debug('lease of %s held by %s: %s', shortKey(key), claimed.holder, claim === null ? 'computing it too' : 'waiting for its entry')
    return claim
  }

  /** No lease can be taken: the call computes without one, and a warning says so once. */
  #noLease(why: string): void {
    if (this.#leaseWarned) return
    this.#leaseWarned = true
    process.emitWarning(`computeOnce is off in ${this.path}: no lease can be taken there (${why})`, { code: 'NUMPY_FUNC_CACHE_NO_LEASE' })
  }

  has(call: CallInfo): boolean {
    const answer = nativeCall(() => this.native.has(call.key))
    this.report(answer.notes, 'has', call)
    return answer.yes
  }

  async hasAsync(call: CallInfo): Promise<boolean> {
    const answer = await nativeCallAsync(() => this.native.hasAsync(call.key))
    this.report(answer.notes, 'has', call)
    return answer.yes
  }

  /** The entry of `call.key` opened for partial reads, else undefined. */
  open(call: CallInfo): OpenedEntry | undefined {
    return this.#opened(nativeCall(() => this.native.open(call.key)), call)
  }

  async openAsync(call: CallInfo): Promise<OpenedEntry | undefined> {
    return this.#opened(await nativeCallAsync(() => this.native.openAsync(call.key)), call)
  }

  #opened(handle: EntryHandle, call: CallInfo): OpenedEntry | undefined {
    this.report(handle.takeNotes(), 'load', call)
    debug('open %s in %s: %s', shortKey(call.key), this.path, handle.found ? 'found' : 'not there')
    return handle.found ? new OpenedEntry(call.key, handle) : undefined
  }

  /** Removes the entry of `call.key` from every tier; says whether there was one. */
  remove(call: CallInfo): boolean {
    const answer = nativeCall(() => this.native.remove(call.key))
    this.report(answer.notes, 'remove', call)
    this.#removed(call, answer.yes)
    return answer.yes
  }

  async removeAsync(call: CallInfo): Promise<boolean> {
    const answer = await nativeCallAsync(() => this.native.removeAsync(call.key))
    this.report(answer.notes, 'remove', call)
    this.#removed(call, answer.yes)
    return answer.yes
  }

  #removed(call: CallInfo, yes: boolean): void {
    debug('remove %s from %s: %s', shortKey(call.key), this.path, yes ? 'removed' : 'not there')
  }

  /**
   * Emits what an operation noticed: a damaged entry as `damagedEntry`; a
   * tier it could not reach, or a result it could not store, as
   * `storeError` (a process warning when no one listens).
   */
  report(notes: Note[], doing: Doing, call: CallInfo): void {
    for (const note of notes) {
      const cause = errorOf(note.failure)
      if (note.kind === 'damaged') {
        this.events.emit('damagedEntry', cause, { key: call.key, functionName: call.functionName })
        continue
      }
      const [code, message] =
        note.kind === 'storeFailed'
          ? [ErrorCodes.STORE_FAILED, `could not store the result of ${call.label ?? 'a call'} in ${note.tier}`]
          : [ErrorCodes.REMOTE_UNAVAILABLE, UNREACHED[doing](note.tier)]
      const error = codedError(Error, code, `${message}: ${cause.message}`, { cause })
      debug('%s', error.message)
      if (this.events.listenerCount('storeError') > 0) this.events.emit('storeError', error, { key: call.key, functionName: call.functionName })
      else process.emitWarning(error.message, { code: 'NUMPY_FUNC_CACHE_STORE_FAILED' })
    }
  }
}
