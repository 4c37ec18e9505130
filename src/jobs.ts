// The maintenance calls' long jobs (prune, verify, listings, clears), sync
// or on the cache's runtime: the caller's `onProgress`, and its `signal` as the
// native stop flag that the job checks at each step.
import { native } from './native'
import { ErrorCodes, fromNative } from './errors'

type Progress = (done: number, total: number) => void
type StopFlag = InstanceType<typeof native.StopFlag>

/** What a native job is given: a progress callback that never throws, and its stop flag. */
export interface JobHandles {
  onProgress: Progress | undefined
  stop: StopFlag
}

/**
 * The flags of this thread's jobs on the runtime. When the process exits, the
 * event loop runs no more callbacks: each job is told, so none waits for
 * its progress callback, and each stops at its next step instead of
 * holding up the exit.
 */
const onRuntime = new Set<StopFlag>()
let exitHookInstalled = false

function running(stop: StopFlag): void {
  onRuntime.add(stop)
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const flag of onRuntime) flag.exit()
  })
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
    stop: new native.StopFlag(),
  }
  const abort = () => handles.stop.stop()
  signal?.addEventListener('abort', abort, { once: true })
  const outcome = <T>(result: T): T => {
    if (thrown) throw thrown.error
    return result
  }
  const failure = (e: unknown): never => {
    const error = fromNative(e)
    if ((error as { code?: string } | null)?.code === ErrorCodes.ABORTED && signal?.aborted) throw signal.reason
    throw error
  }
  const done = () => signal?.removeEventListener('abort', abort)
  return {
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
    /** Awaits the job on the cache's runtime. */
    async runAsync<T>(work: (handles: JobHandles) => Promise<T>): Promise<T> {
      running(handles.stop)
      try {
        return outcome(await work(handles))
      } catch (e) {
        return failure(e)
      } finally {
        onRuntime.delete(handles.stop)
        done()
      }
    },
  }
}
