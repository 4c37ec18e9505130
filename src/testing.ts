// Hooks for this package's own tests and benchmark; not part of the public
// API (index.ts does not export them).
import { type NumpyFuncCache, nativeDirOf } from './cache'
import { native } from './native'

function dirOf(cache: NumpyFuncCache) {
  const dir = nativeDirOf.get(cache)
  if (dir === undefined) throw new TypeError('not a NumpyFuncCache')
  return dir
}

/** Moves the cache's clock (stores, uses, expiry) forward: tests of age use it instead of sleeping. */
export function advanceClock(cache: NumpyFuncCache, ms: number): void {
  dirOf(cache).advanceClock(ms)
}

/** Turns the recording of hits as uses off or on, to measure what recording costs. */
export function setRecording(cache: NumpyFuncCache, on: boolean): void {
  dirOf(cache).setRecording(on)
}

/** What the memory of loaded arrays holds: buffers pooled for reuse, and external bytes not yet finalized. */
export function memoryStats(): { pooledBuffers: number; pooledBytes: number; externalBytes: number } {
  return native.memoryStats()
}
