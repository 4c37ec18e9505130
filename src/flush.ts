// Uses recorded in memory (a directory's hits) are written where other
// processes see them once calls pause, and when the process exits.
import type { NativeCache } from './native'
import { FLUSH_EVERY_MS } from './options'

/** Caches whose recorded uses are written when the process exits. */
const live = new Set<WeakRef<NativeCache>>()
let exitHookInstalled = false

/** Writes `cache`'s recorded uses when the process exits. */
export function flushOnExit(cache: NativeCache): void {
  if (live.size > 64) for (const ref of live) if (ref.deref() === undefined) live.delete(ref)
  live.add(new WeakRef(cache))
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const ref of live) {
      try {
        // A second at most for another process's transaction: exit is not held up for long.
        ref.deref()?.flush(1000)
      } catch {
        // Bookkeeping only; the entries themselves are stored already.
      }
    }
  })
}

/** Writes a cache's recorded uses once its calls pause. */
export class FlushTimer {
  #timer: NodeJS.Timeout | undefined

  constructor(private readonly cache: NativeCache) {}

  /** After a hit: a write within `FLUSH_EVERY_MS`, if none is due yet. */
  schedule(): void {
    if (this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      try {
        // Only if no other process is writing: the event loop never waits for one.
        this.cache.flush(0)
      } catch {
        // Bookkeeping only: the next store or exit tries again.
      }
    }, FLUSH_EVERY_MS).unref()
  }

  cancel(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
