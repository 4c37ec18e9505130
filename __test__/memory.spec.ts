// The memory loaded arrays live in: buffers of collected results are reused
// by the next load of their size, never showing what they held before, and
// are let go when idle.
import test from 'ava'
import { setImmediate as turn } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { NumpyFuncCache, readNpy, writeNpy } from '../dist'
import { memoryStats } from '../dist/testing'
import { tempDir } from './helpers'
import { join } from 'node:path'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const MiB = 1 << 20
// Large enough to be pooled (2 MiB and up), small enough for the common suite.
const N = (4 * MiB) / 8

/** Collects garbage and lets Node run the finalizers it queued. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc()
    await turn()
  }
}

function filled(value: number): Float64Array {
  return new Float64Array(N).fill(value)
}

test.serial('a collected result is reused by the next load of its size, which sees only its own data', async (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const f = cache.createCachedFunc((v: number) => filled(v))
  f(1)
  f(2)

  let a: Float64Array | undefined = f(1) as Float64Array
  t.is(a[N - 1], 1)
  a.fill(7) // the caller's own copy: scribbled on, then dropped
  a = undefined
  await collect()
  const pooled = memoryStats()
  t.true(pooled.pooledBuffers >= 1, 'the collected result went back to the pool')

  const b = f(2) as Float64Array
  t.is(memoryStats().pooledBuffers, pooled.pooledBuffers - 1, 'the load took the pooled buffer')
  t.true(b.every((x) => x === 2), 'no byte of the earlier array shows through')
  const again = f(1) as Float64Array
  t.true(again.every((x) => x === 1), 'the entry is unchanged by what a caller wrote to its copy')
})

test.serial('a damaged entry read into a pooled buffer is reported and recomputed, never returned', async (t) => {
  const dir = tempDir(t)
  // Every load checks all its data: a large planted array with a matching header is caught too.
  const cache = new NumpyFuncCache(dir, { verify: true })
  const f = cache.createCachedFunc((v: number) => filled(v), { name: 'f' })
  f(3)
  let a: Float64Array | undefined = f(3) as Float64Array
  t.is(a[0], 3)
  a = undefined
  await collect()
  t.true(memoryStats().pooledBuffers >= 1)
  // Same length, but a different array: its digest does not match the record.
  const key = cache.entries()[0].key
  writeNpy(join(dir, `${key}.npy`), filled(9))
  const damaged: Error[] = []
  cache.on('damagedEntry', (e) => damaged.push(e))
  const got = f(3) as Float64Array
  t.is(damaged.length, 1, 'the planted file was reported, not returned')
  t.true(got.every((x) => x === 3), 'the recomputed result')
})

test.serial('readNpy reads small files straight into JS memory and large ones through the pool', async (t) => {
  const dir = tempDir(t)
  const small = join(dir, 'small.npy')
  const large = join(dir, 'large.npy')
  writeNpy(small, new Int32Array([1, 2, 3]))
  writeNpy(large, filled(5))
  await collect() // what earlier tests left
  t.deepEqual(Array.from(readNpy(small).data as Int32Array), [1, 2, 3])
  const externalBefore = memoryStats().externalBytes
  let l: Float64Array | undefined = readNpy(large).data as Float64Array
  t.is(memoryStats().externalBytes, externalBefore + N * 8, 'V8 is told of the external buffer')
  t.true(l.every((x) => x === 5))
  l = undefined
  await collect()
  t.is(memoryStats().externalBytes, externalBefore, 'finalized when collected')
})

test.serial('pooled buffers unused for a few seconds are unmapped', async (t) => {
  t.timeout(60_000)
  const cache = new NumpyFuncCache(tempDir(t))
  const f = cache.createCachedFunc((v: number) => filled(v))
  f(4)
  let a: unknown = f(4)
  t.truthy(a)
  a = undefined
  await collect()
  t.true(memoryStats().pooledBuffers >= 1)
  // The trimmer runs every second and frees buffers idle for five.
  const deadline = Date.now() + 45_000
  while (memoryStats().pooledBuffers > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
  t.is(memoryStats().pooledBuffers, 0)
  t.is(memoryStats().pooledBytes, 0)
})

test.serial('a call keeps no reference to its arguments once it returns', async (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const f = cache.createCachedFunc((a: Float64Array) => a.subarray(0, 4).slice())
  let arg: Float64Array | undefined = filled(6)
  const ref = new WeakRef(arg)
  t.is((f(arg) as Float64Array)[0], 6)
  t.is((f(arg) as Float64Array)[0], 6)
  arg = undefined
  await collect()
  t.is(ref.deref(), undefined, 'the argument was collected')
})

test.serial('a sync loop of mapped hits that never yields does not use up the map slots: past the bound, hits are read', async (t) => {
  const cache = new NumpyFuncCache(tempDir(t), { mmap: true })
  const f = cache.createCachedFunc((v: number) => new Float64Array(8).fill(v), { name: 'tiny' })
  f(3)
  // More hits held at once than Linux's default vm.max_map_count (65530):
  // mapping each would leave the process no map slot to allocate with.
  const held: Float64Array[] = []
  for (let i = 0; i < 66_000; i++) {
    const a = f(3)
    if (a.length !== 8 || a[0] !== 3 || a[7] !== 3) return t.fail(`hit ${i} is wrong: ${String(a)}`)
    held.push(a)
  }
  t.is(memoryStats().liveMaps, 16_384)
  held.length = 0
  for (let i = 0; i < 20 && memoryStats().liveMaps > 0; i++) await collect()
  t.is(memoryStats().liveMaps, 0)
  // With the slots free, a hit is mapped again.
  const again = f(3)
  t.is(again[0], 3)
  t.is(memoryStats().liveMaps, 1)
})

test.serial("a loaded array enqueued into a byte stream, which detaches its buffer, keeps its values through later loads and collections", async (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const f = cache.createCachedFunc((v: number) => filled(v))
  f(1)
  f(2)
  let controller: ReadableByteStreamController | undefined
  const stream = new ReadableStream({ type: 'bytes', start: (c) => void (controller = c) })
  let a: Float64Array | undefined = f(1) as Float64Array
  // The stream moves the memory to an ArrayBuffer of its own: the loaded one is detached, and dies.
  controller!.enqueue(a)
  t.is(a.buffer.byteLength, 0, 'the loaded array was detached')
  a = undefined
  gc()
  const b = f(2) as Float64Array
  b.fill(9)
  const { value } = await stream.getReader().read()
  const chunk = new Float64Array(value!.buffer, value!.byteOffset, value!.byteLength / 8)
  t.is(chunk.length, N)
  t.true(chunk.every((x) => x === 1), 'no later load reused the memory the stream holds')
})
