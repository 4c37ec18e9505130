// The maintenance calls' long jobs (prune, verify, listings, clears), sync
// or on the thread pool: the caller's `onProgress`, and its `signal` as the
// native stop flag that the job checks at each step.
import { native } from './native'
import { ErrorCodes, fromNative } from './errors'

type Progress = (done: number, total: number) => void

/** What a native job is given: a progress callback that never throws, and the flag its signal sets. */
export interface JobHandles {
  onProgress: Progress | undefined
  stop: InstanceType<typeof native.StopFlag> | undefined
}

/**
 * Runs a job with `onProgress` and `signal`: an aborted signal throws its
 * reason before the job starts, and once the job has started, stops it at
 * its next step (it then fails with that reason). An exception thrown by
 * `onProgress` ends its calls and is thrown once the job is done.
 */
export function job(options: { onProgress?: Progress; signal?: AbortSignal }) {
  const { onProgress, signal } = options
  signal?.throwIfAborted()
  let thrown: { error: unknown } | undefined
  const handles: JobHandles = {
    onProgress:
      onProgress &&
      ((done, total) => {
        if (thrown) return
        try {
          onProgress(done, total)
        } catch (error) {
          thrown = { error }
        }
      }),
    stop: signal && new native.StopFlag(),
  }
  const stop = () => handles.stop!.stop()
  signal?.addEventListener('abort', stop, { once: true })
  const outcome = <T>(result: T): T => {
    if (thrown) throw thrown.error
    return result
  }
  const failure = (e: unknown): never => {
    if ((e as { code?: string })?.code === ErrorCodes.ABORTED && signal?.aborted) throw signal.reason
    throw fromNative(e)
  }
  const done = () => signal?.removeEventListener('abort', stop)
  return {
    ...handles,
    /** Runs the job on this thread. */
    run<T>(work: (handles: JobHandles) => T): T {
      try {
        return outcome(work(handles))
      } catch (e) {
        return failure(e)
      } finally {
        done()
      }
    },
    /** Awaits the job on the thread pool. */
    async runAsync<T>(work: (handles: JobHandles) => Promise<T>): Promise<T> {
      try {
        return outcome(await work(handles))
      } catch (e) {
        return failure(e)
      } finally {
        done()
      }
    },
  }
}
