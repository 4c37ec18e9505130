// A computeOnce miss as a sequence of steps, which a sync or an async
// wrapper runs: wait for another process's entry, or compute it under the
// lease. The steps are one generator so the two wrappers cannot drift apart.
// A waiter claims once; then each poll reads the entry and the lease, and
// it claims again only when the lease is gone or stale: waiting never writes.
import { performance } from 'node:perf_hooks'
import type { ComputeOnce } from './options'

/** Polling for another process's entry starts this often and backs off to the maximum. */
const WAIT_FIRST_MS = 5
const WAIT_MAX_MS = 200

export type Step = { do: 'claim' } | { do: 'held' } | { do: 'load' } | { do: 'compute' } | { do: 'sleep'; ms: number; signal?: AbortSignal }

/** A held lease, `null` to compute without one, or undefined while another process holds it. */
export type Claim = { release(): void } | null | undefined

/**
 * A claim step is answered with a Claim; a held step with whether a live
 * holder still has the lease; a load step with the entry or undefined.
 */
export function* waitOrCompute(once: ComputeOnce): Generator<Step, unknown, unknown> {
  // A monotonic clock: a wall-clock step must not end or stretch the wait.
  const deadline = performance.now() + once.timeout
  let claim = true
  for (let wait = WAIT_FIRST_MS; ; wait = Math.min(wait * 2, WAIT_MAX_MS)) {
    const lease = claim ? ((yield { do: 'claim' }) as Claim) : undefined
    if (lease !== undefined) {
      try {
        // Stored by another process between our miss and the lease?
        return (yield { do: 'load' }) ?? (yield { do: 'compute' })
      } finally {
        lease?.release()
      }
    }
    // Held elsewhere: waiting is what the signal stops.
    once.signal?.throwIfAborted()
    yield { do: 'sleep', ms: Math.max(0, Math.min(wait, deadline - performance.now())), signal: once.signal }
    const stored = yield { do: 'load' }
    if (stored !== undefined) return stored
    if (performance.now() >= deadline) return yield { do: 'compute' }
    claim = !((yield { do: 'held' }) as boolean)
  }
}

export interface StepActions<T, C, H> {
  claim: () => C
  held: () => H
  load: () => T
  compute: () => T
}

export function runSync(steps: Generator<Step, unknown, unknown>, act: StepActions<unknown, Claim, boolean>): unknown {
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

export async function runAsync(steps: Generator<Step, unknown, unknown>, act: StepActions<Promise<unknown>, Claim | Promise<Claim>, Promise<boolean>>): Promise<unknown> {
  let next = steps.next()
  while (!next.done) {
    const step = next.value
    let answer: unknown
    try {
      answer = step.do === 'sleep' ? await sleep(step.ms, step.signal) : await act[step.do]()
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

/** Resolves after `ms`, or rejects with `signal`'s reason as soon as it aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer)
      // The signal's own reason, as Node's timers/promises and fetch reject with.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', abort, { once: true })
  })
}
