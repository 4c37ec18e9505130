// Hooks for this package's own tests and benchmark; not part of the public
// API (index.ts does not export them).
import { type NumpyFuncCache, nativeOf } from './cache'
import { native } from './native'

function nativeCacheOf(cache: NumpyFuncCache) {
  const found = nativeOf.get(cache)
  if (found === undefined) throw new TypeError('not a NumpyFuncCache')
  return found
}

/** Moves the cache's clock (stores, uses, expiry, lease ages) forward: tests of age use it instead of sleeping. */
export function advanceClock(cache: NumpyFuncCache, ms: number): void {
  nativeCacheOf(cache).advanceClock(ms)
}

/** Turns the recording of hits as uses off or on, to measure what recording costs. */
export function setRecording(cache: NumpyFuncCache, on: boolean): void {
  nativeCacheOf(cache).setRecording(on)
}

/** What the memory of loaded arrays holds: buffers pooled for reuse, and external bytes not yet finalized. */
export function memoryStats(): { pooledBuffers: number; pooledBytes: number; externalBytes: number; liveMaps: number } {
  return native.memoryStats()
}
