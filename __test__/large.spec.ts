// Large arrays: the async API keeps the event loop turning, memory maps
// outlive their entries, peak memory stays near one copy, and arrays past
// 4 GiB work as arguments and results.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readdirSync, statfsSync } from 'node:fs'
import { freemem, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { root, tempDir } from './helpers'

const MiB = 1 << 20
const GiB = 1 << 30

/** Counts event-loop turns (a 1 ms interval) while `work` runs. */
async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0
  const timer = setInterval(() => turns++, 1)
  try {
    await work()
  } finally {
    clearInterval(timer)
  }
  return turns
}

function ramp(n: number, k = 0): Float64Array {
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = i + k
  return a
}

test.serial('the async wrapper stores and loads a 1 GiB entry off the main thread', async (t) => {
  t.timeout(120_000)
  const cache = new NumpyFuncCache(tempDir(t))
  const n = GiB / 8
  let calls = 0
  const big = cache.createCachedFunc(async (k: number) => {
    calls++
    return ramp(n, k)
  })
  const storeTurns = await turnsDuring(() => big(1))
  const loaded = (await big(1)) as Float64Array
  const loadTurns = await turnsDuring(() => big(1))
  t.is(calls, 1)
  t.is(loaded.length, n)
  t.is(loaded[n - 1], n)
  t.log(`event-loop turns while storing: ${storeTurns}, while loading: ${loadTurns}`)
  // A synchronous store or load of 1 GiB blocks the loop: zero turns.
  t.true(storeTurns >= 3, `the loop turned ${storeTurns} times during the store`)
  t.true(loadTurns >= 3, `the loop turned ${loadTurns} times during the load`)

  // Control: the sync wrapper blocks the loop, so the measurement can tell.
  const blocking = cache.createCachedFunc((k: number) => ramp(64 * MiB / 8, k))
  t.is(await turnsDuring(async () => blocking(2)), 0)
})

test.serial('async hashing of a large argument runs off the main thread and sees every byte', async (t) => {
  t.timeout(60_000)
  const cache = new NumpyFuncCache(tempDir(t))
  let calls = 0
  const sum = cache.createCachedFunc(async (a: Float64Array) => {
    calls++
    return new Float64Array([a[0], a[a.length - 1]])
  })
  const arg = ramp(256 * MiB / 8)
  await sum(arg)
  t.is(calls, 1)
  t.deepEqual(await sum(arg), new Float64Array([0, arg.length - 1]))
  t.is(calls, 1)
  arg[arg.length - 1] = -1
  t.deepEqual(await sum(arg), new Float64Array([0, -1]))
  t.is(calls, 2, 'changing the last element gives a new key')
})

test.serial('mmap hits are memory maps: no copy up front, and they outlive their entry', async (t) => {
  t.timeout(60_000)
  const dir = tempDir(t)
  const n = 256 * MiB / 8
  new NumpyFuncCache(dir).createCachedFunc((k: number) => ramp(n, k), { name: 'r', trackSource: false })(5)
  // A fresh process, so resident memory measures only this load.
  const out = JSON.parse(
    execFileSync(
      process.execPath,
      [
        '-e',
        `
        const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
        const dir = process.argv[1]
        const rss = () => Number(require('fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096
        const f = (mmap) => new NumpyFuncCache(dir, { mmap }).createCachedFunc((k) => { throw new Error('not a hit') }, { name: 'r', trackSource: false })
        const before = rss()
        const mapped = f(true)(5)
        const afterMap = rss()
        const copied = f(false)(5)
        const afterCopy = rss()
        new NumpyFuncCache(dir).clearCache({ removeDir: true })
        const gone = !require('fs').existsSync(dir)
        // Still readable after the entry and its directory are gone; writable (copy on write).
        let same = mapped.length === copied.length
        for (let i = 0; i < mapped.length; i += 4096) same = same && mapped[i] === i + 5 && copied[i] === i + 5
        mapped[0] = -1
        process.stdout.write(JSON.stringify({ mapGrowth: afterMap - before, copyGrowth: afterCopy - afterMap, gone, same, last: mapped[mapped.length - 1], first: mapped[0] }))
        `,
        dir,
      ],
      { encoding: 'utf8' },
    ),
  )
  t.log(`resident growth: mmap hit ${(out.mapGrowth / MiB).toFixed(1)} MiB, copying hit ${(out.copyGrowth / MiB).toFixed(1)} MiB`)
  t.true(out.gone)
  t.true(out.same)
  t.is(out.last, n - 1 + 5)
  t.is(out.first, -1)
  t.true(out.mapGrowth < 16 * MiB, 'mapping 256 MiB makes little resident')
  t.true(out.copyGrowth > 200 * MiB, 'the copying load makes all 256 MiB resident (the measurement can tell)')
})

/** Peak resident memory growth of a child doing `body` with a `n`-byte Float64Array, over its state before. */
function peakGrowth(dir: string, n: number, body: string): { growth: number; check: unknown } {
  return JSON.parse(
    execFileSync(
      process.execPath,
      [
        '-e',
        `
        const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
        const n = ${n / 8}
        const dir = process.argv[1]
        const fresh = () => { const a = new Float64Array(n); for (let i = 0; i < n; i += 512) a[i] = i; return a }
        const peak = () => Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
        ${body}
        `,
        dir,
      ],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    ),
  )
}

test.serial('peak memory while storing or loading an N-byte array stays near N', (t) => {
  t.timeout(120_000)
  const dir = tempDir(t)
  const n = GiB
  // Storing: the array exists first; the store itself must add almost nothing.
  const store = peakGrowth(
    dir,
    n,
    `const a = fresh(); const before = peak()
     new NumpyFuncCache(dir).createCachedFunc(() => a, { name: 'big', trackSource: false })()
     process.stdout.write(JSON.stringify({ growth: peak() - before }))`,
  )
  // Loading: one N-byte buffer, nothing more.
  const load = peakGrowth(
    dir,
    n,
    `const before = peak()
     const a = new NumpyFuncCache(dir).createCachedFunc(() => { throw new Error('not a hit') }, { name: 'big', trackSource: false })()
     process.stdout.write(JSON.stringify({ growth: peak() - before, check: [a.length, a[512 * 1000]] }))`,
  )
  t.log(`peak growth: store ${(store.growth / n).toFixed(3)} N, load ${(load.growth / n).toFixed(3)} N (N = 1 GiB)`)
  t.deepEqual(load.check, [n / 8, 512 * 1000])
  t.true(store.growth < 0.1 * n, 'storing makes no second copy')
  t.true(load.growth < 1.15 * n, 'loading makes one copy')
  t.true(load.growth > 0.9 * n, 'the loaded data is really resident (the measurement can tell)')
})

// Past Node's Buffer limit: a Float64Array of 4 GiB + 64 bytes, as an argument and as a result.
const BIG = 4 * GiB + 64
// Measured: they peak near 17 GiB of memory and 10 GiB of disk in the temporary directory.
const disk = statfsSync(tmpdir())
const freeDisk = disk.bavail * disk.bsize
const enoughMemory = totalmem() >= 20 * GiB && freemem() >= 18 * GiB && freeDisk >= 12 * GiB
const bigTest = enoughMemory ? test.serial : test.serial.skip
if (!enoughMemory) {
  const have = `${(totalmem() / GiB).toFixed(1)} GiB of memory, ${(freemem() / GiB).toFixed(1)} GiB free, ${(freeDisk / GiB).toFixed(1)} GiB of disk free in ${tmpdir()}`
  console.log(`skipping the >4 GiB tests: they need 20 GiB of memory, 18 GiB of it free, and 12 GiB of disk (have ${have})`)
}

function checkBig(t: import('ava').ExecutionContext, a: Float64Array, k: number, what: string): void {
  t.is(a.length, BIG / 8, what)
  // Samples on both sides of the 4 GiB mark: a result cut at 2^32 bytes would fail here.
  for (const i of [1, 2, 2 ** 29 - 1, 2 ** 29, 2 ** 29 + 7, BIG / 8 - 1]) t.is(a[i], i * 2 + k, `${what} [${i}]`)
}

function bigArray(k: number): Float64Array {
  const a = new Float64Array(BIG / 8)
  for (let i = 0; i < a.length; i++) a[i] = i * 2 + k
  return a
}

for (const mode of ['sync', 'async'] as const) {
  bigTest(`arrays over 4 GiB work as arguments and results (${mode})`, async (t) => {
    t.timeout(300_000)
    const dir = tempDir(t)
    const cache = new NumpyFuncCache(dir)
    let calls = 0
    // A sync function may change its own argument (its result is stored under
    // the key of what it was given); an async one may not (README), so it
    // returns its argument as given.
    const bump = mode === 'sync' ? 1 : 0
    const body = (a: Float64Array) => {
      calls++
      a[0] += bump // the result is the argument plus bump at [0]; it is the same memory
      return a
    }
    const f = mode === 'sync' ? cache.createCachedFunc(body, { name: 'big' }) : cache.createCachedFunc(async (a: Float64Array) => body(a), { name: 'big' })
    let arg: Float64Array | undefined = bigArray(0)
    const miss = (await f(arg)) as Float64Array
    t.is(calls, 1)
    t.is(miss[0], bump)
    // Undo the sync function's change: the argument it was given again.
    arg[0] = 0
    const hit = (await f(arg)) as Float64Array
    t.is(calls, 1, 'the same 4 GiB argument hits')
    checkBig(t, hit, 0, 'loaded')
    t.is(hit[0], bump, `the stored result had [0] = ${bump}`)
    arg[arg.length - 1] = -5
    await f(arg)
    t.is(calls, 2, 'a change past the 4 GiB mark of the argument is a new key')
    arg = undefined
    // NumPy-compatible on disk: readNpy reads the whole file.
    const files = readdirSync(dir).filter((n: string) => n.endsWith('.npy'))
    t.is(files.length, 2)
    t.is(readNpy(join(dir, files[0])).data.length, BIG / 8)
  })
}

test.serial('a synchronous loop of large loads that never yields keeps memory bounded', (t) => {
  t.timeout(300_000)
  // Node frees external buffers only when the event loop turns; this loop
  // never lets it. 100 loads of 64 MiB would hold 6.4 GiB if nothing were
  // freed: past 1 GiB awaiting finalization, loads go to memory V8 frees itself.
  const script = `
    const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
    const cache = new NumpyFuncCache(process.argv[1])
    const f = cache.createCachedFunc(() => new Float64Array(${(64 * MiB) / 8}).fill(3))
    f()
    const base = process.memoryUsage().rss
    let sum = 0
    for (let i = 0; i < 100; i++) sum += f()[12345]
    if (sum !== 300) throw new Error('wrong data: ' + sum)
    // VmHWM: this program's own peak (maxRSS can carry the parent's from before exec).
    const hwm = Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1])
    process.stdout.write(JSON.stringify({ base, peak: hwm * 1024 }))
  `
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script, tempDir(t)], { encoding: 'utf8' }))
  const grown = (out.peak - out.base) / GiB
  t.log(`peak RSS grew by ${grown.toFixed(2)} GiB over 6.25 GiB of loads`)
  t.true(grown < 3, `peak RSS grew by ${grown.toFixed(2)} GiB`)
})
