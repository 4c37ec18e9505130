// The tier conformance suite: every scenario runs on every ground a cache
// can stand on: a directory, an S3 store (versitygw), an Azure one
// (Azurite) and an S3 store with a local directory in front, each started
// here. On the stores, faults are injected through an HTTP proxy: the
// server gone, slow, answering 500, cutting bodies midway, holding every
// request. A new tier passes this suite (and the cargo suite of
// cache-core's `conformance`) to be accepted.
import test, { type ExecutionContext } from 'ava'
import { existsSync, promises as fsp, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { advanceClock } from '../dist/testing'
import { tempDir } from './helpers'
import { type Azurite, startAzurite } from './support/azure'
import { startFaultProxy } from './support/faults'
import { type Damage, type Ground, type Place, grounds } from './support/grounds'
import { type MotoServer, startMoto } from './support/moto'
import { BUCKET, type S3Server, startServer, startWorker, writeWorker } from './support/s3'

type Any = any
let server: S3Server
let moto: MotoServer
let azurite: Azurite

test.before(async () => {
  ;[server, moto, azurite] = await Promise.all([startServer(), startMoto(BUCKET), startAzurite()])
})
test.after.always(async () => {
  await Promise.all([server?.stop(), moto?.stop(), azurite?.stop()])
})

const GROUNDS = grounds({ s3: () => server, moto: () => moto, azurite: () => azurite })

/** Events a cache emitted. */
function watch(cache: NumpyFuncCache) {
  const seen = { damaged: [] as Any[], storeErrors: [] as Any[] }
  cache.on('damagedEntry', (e) => seen.damaged.push(e)).on('storeError', (e) => seen.storeErrors.push(e))
  return seen
}

/** A function that counts its calls, filling `n` values with `k`. */
function counted() {
  const f = Object.assign(
    (k: number, n = 8) => {
      f.calls++
      return new Float64Array(n).fill(k)
    },
    { calls: 0 },
  )
  return f
}

const values = (a: unknown) => Array.from(a as Float64Array)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * A worker thread calling the sync cached function `fill` with computeOnce
 * once all `workers` are ready. `shared` counts [ready, computed]; the
 * computing one holds its lease until the others computed too (the defect)
 * or 2 s passed.
 */
const THREAD = `
const { workerData: d, parentPort } = require('node:worker_threads')
const { NumpyFuncCache } = require(d.dist)
const counts = new Int32Array(d.shared)
const cache = new NumpyFuncCache(d.location, { ...d.options, computeOnce: { timeout: 600000 } })
const f = cache.createCachedFunc((k) => {
  Atomics.add(counts, 1, 1)
  const until = Date.now() + 2000
  while (Atomics.load(counts, 1) < d.workers && Date.now() < until) Atomics.wait(counts, 1, Atomics.load(counts, 1), 20)
  return new Float64Array(4).fill(k)
}, { name: 'fill', trackSource: false })
Atomics.add(counts, 0, 1)
Atomics.notify(counts, 0)
while (Atomics.load(counts, 0) < d.workers) Atomics.wait(counts, 0, Atomics.load(counts, 0), 50)
parentPort.postMessage(Array.from(f(7)))
`
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [])

/** The key of the only entry of `fn` stored by `call`. */
function keyStoredBy(cache: NumpyFuncCache, call: () => unknown): string {
  const before = new Set(cache.entries().map((e) => e.key))
  call()
  const added = cache.entries().filter((e) => !before.has(e.key))
  if (added.length !== 1) throw new Error(`expected one new entry, got ${added.length}`)
  return added[0].key
}

type Scenario = (t: ExecutionContext, place: Place, ground: Ground) => Promise<void>

const scenarios: Record<string, Scenario> = {
  async 'a miss computes and stores; a hit loads the same arrays, sync and async, in this cache object and another'(t, place) {
    const f = counted()
    const grid = async (n: number) => ({ data: Float32Array.from({ length: n * 3 }, (_, i) => i / 4), shape: [n, 3] })
    const bytes = (n: number) => Buffer.alloc(n, 7)
    const a = place.cache()
    const seen = watch(a)
    t.deepEqual(values(a.createCachedFunc(f, { name: 'fill' })(3)), new Array(8).fill(3))
    t.deepEqual(values(a.createCachedFunc(f, { name: 'fill' })(3)), new Array(8).fill(3))
    const g = a.createCachedFunc(grid)
    const first = (await g(2)) as Any
    t.deepEqual(first.shape, [2, 3])
    const buf = a.createCachedFunc(bytes)
    t.true(Buffer.isBuffer(buf(5)))
    const b = place.cache()
    t.deepEqual(values(b.createCachedFunc(f, { name: 'fill' })(3)), new Array(8).fill(3))
    t.is(f.calls, 1, 'computed once, then hit by both cache objects')
    const again = (await b.createCachedFunc(grid)(2)) as Any
    t.deepEqual({ shape: again.shape, dtype: again.dtype, data: Array.from(again.data) }, { shape: [2, 3], dtype: '<f4', data: Array.from(first.data) })
    t.deepEqual(b.createCachedFunc(bytes)(5), Buffer.alloc(5, 7))
    t.deepEqual(seen, { damaged: [], storeErrors: [] })
  },

  async 'an opened entry reads rows and bytes, sync and async, each checked: a flipped byte is refused where it lies and nowhere else'(t, place) {
    // 400 rows of 1,024 doubles: 3.2 MiB, four blocks of block digests.
    const ROWS = 400
    let calls = 0
    const grid = (k: number) => {
      calls++
      return { data: Float64Array.from({ length: ROWS * 1024 }, (_, i) => i * k), shape: [ROWS, 1024] }
    }
    const a = place.cache()
    const seen = watch(a)
    const g = a.createCachedFunc(grid, { name: 'grid' })
    const handle = g.open(2)
    t.is(calls, 1, 'a miss computes and stores, then opens')
    t.deepEqual([handle.shape, handle.dtype, handle.rows, handle.bytes, handle.result], [[ROWS, 1024], '<f8', ROWS, ROWS * 8192, 'ndarray'])
    const row = (r: number) => Float64Array.from({ length: 1024 }, (_, i) => (r * 1024 + i) * 2)
    t.deepEqual(handle.readRows(0), { data: row(0), shape: [1, 1024], dtype: '<f8' })
    const two = (await place.cache().createCachedFunc(grid, { name: 'grid' }).openAsync(2).then((h) => h.readRowsAsync(199, 201))) as Any
    t.deepEqual(two.shape, [2, 1024])
    t.deepEqual(two.data, Float64Array.from([...row(199), ...row(200)]))
    t.deepEqual(handle.readBytes(8, 16), new Uint8Array(new Float64Array([2]).buffer))
    t.is(calls, 1, 'opening a stored entry computes nothing')
    t.throws(() => handle.readRows(ROWS, ROWS + 1), { instanceOf: RangeError, message: /400\.\.401 is not a range of the 400 rows/ })
    // A record: each member by name, in the form it was stored in.
    const parts = a.createCachedFunc((n: number) => ({ ids: Int32Array.from({ length: n }, (_, i) => i), grid: grid(n) }), { name: 'parts' })
    const opened = await parts.openAsync(3)
    t.deepEqual(opened.members.map((m) => [m.name, m.className, m.shape]), [['ids', 'Int32Array', [3]], ['grid', 'Float64Array', [ROWS, 1024]]])
    t.deepEqual(opened.member('ids').readRows(1, 3), Int32Array.from([1, 2]))
    t.deepEqual((opened.member('grid').readRows(5) as Any).data, row(5).map((x) => (x / 2) * 3))
    t.throws(() => opened.readRows(0), { message: /holds 2 arrays .*member\(name\)/ })
    // A 0-d array is one row, its one value.
    const scalar = a.createCachedFunc((x: number) => ({ data: Float64Array.of(x), shape: [] }), { name: 'scalar' }).open(2.5)
    t.deepEqual([scalar.rows, scalar.readRows(0)], [1, { data: Float64Array.of(2.5), shape: [], dtype: '<f8' }])
    const key = handle.key
    t.true(a.open(key) !== undefined && a.open('0'.repeat(64)) === undefined)
    // The last byte flipped: the last row is refused, the first still reads.
    await place.damage(key, 'flipped')
    const after = place.cache().open(key)!
    t.deepEqual((after.readRows(0) as Any).data, row(0))
    const refused = t.throws(() => after.readRows(ROWS - 1)) as Any
    t.is(refused.code, ErrorCodes.DAMAGED_ENTRY, refused.message)
    t.regex(refused.message, /digest/)
    await t.throwsAsync(after.readRowsAsync(ROWS - 2, ROWS), { code: ErrorCodes.DAMAGED_ENTRY })
    after.close()
    t.throws(() => after.readRows(0), { message: /closed/ })
    t.deepEqual(seen, { damaged: [], storeErrors: [] })
  },

  async 'a declared output is filled in place and becomes the entry, sync and async; a failed fill leaves nothing'(t, place) {
    // 300 rows of 1,024 doubles: 2.4 MB, three blocks of block digests.
    const ROWS = 300
    let calls = 0
    const grid = (k: number, out: { data: Float64Array }) => {
      calls++
      for (let i = 0; i < out.data.length; i++) out.data[i] = i * k
    }
    const output = () => ({ shape: [ROWS, 1024], dtype: '<f8' }) as const
    const a = place.cache()
    const seen = watch(a)
    const g = a.createCachedFunc(grid, { name: 'grid', output })
    const first = g(2)
    t.deepEqual([first.shape, first.dtype, first.data.length, first.data[5], calls], [[ROWS, 1024], '<f8', ROWS * 1024, 10, 1])
    // The caller's array is its own: a write to it reaches no entry.
    first.data[5] = -1
    const again = place.cache().createCachedFunc(grid, { name: 'grid', output })(2)
    t.deepEqual([again.data[5], again.data[ROWS * 1024 - 1], calls], [10, (ROWS * 1024 - 1) * 2, 1])
    t.deepEqual(Array.from(((g.open(2).readRows(7) as Any).data as Float64Array).slice(0, 2)), [7 * 1024 * 2, (7 * 1024 + 1) * 2])
    const fill = async (k: number, out: Int32Array) => {
      calls++
      await sleep(1)
      out.fill(k)
    }
    const lineOutput = (k: number) => ({ shape: [k], dtype: '<i4' }) as const
    const line = a.createCachedFunc(fill, { name: 'line', output: lineOutput })
    t.deepEqual(Array.from(await line(3)), [3, 3, 3])
    const hit = await place.cache().createCachedFunc(fill, { name: 'line', output: lineOutput })(3)
    t.true(hit instanceof Int32Array)
    t.deepEqual(Array.from(hit), [3, 3, 3])
    t.is(calls, 2)
    // A fill that fails, sync or async, leaves no entry, and the next call computes.
    const failing = a.createCachedFunc(
      (k: number, out: { data: Float64Array }) => {
        out.data.fill(k)
        throw new Error('boom')
      },
      { name: 'failing', output },
    )
    t.throws(() => failing(1), { message: 'boom' })
    t.false(failing.has(1))
    const failingAsync = a.createCachedFunc(
      async (k: number, out: Int32Array) => {
        out.fill(k)
        throw new Error('async boom')
      },
      { name: 'failingAsync', output: (k: number) => ({ shape: [k], dtype: '<i4' }) },
    )
    await t.throwsAsync(failingAsync(4), { message: 'async boom' })
    t.false(await failingAsync.hasAsync(4))
    t.deepEqual(a.entries().map((e) => e.function).sort(), ['grid', 'line'])
    if (!place.location.includes('://')) {
      t.deepEqual(readdirSync(place.location).filter((f) => f.endsWith('.tmp')), [], 'no draft is left behind')
    }
    t.deepEqual(seen, { damaged: [], storeErrors: [] })
  },

  async 'a result of several arrays, a tuple or a record, comes back in its form, classes, names and order; damaged, it is computed again'(t, place) {
    let calls = 0
    const stats = (n: number) => {
      calls++
      return {
        mean: Float64Array.from({ length: n }, (_, i) => i / 2),
        counts: { data: Int32Array.from({ length: 2 * n }, (_, i) => i - n), shape: [2, n] },
        flags: Buffer.from([1, 0, n]),
      }
    }
    // Large enough to be read in ranges from a store.
    const pair = async (n: number) => [new BigInt64Array(n).fill(7n), Float32Array.from({ length: 3_000_000 }, (_, i) => i % 97)] as const
    const a = place.cache()
    const seen = watch(a)
    const first = a.createCachedFunc(stats)(4)
    const hit = place.cache().createCachedFunc(stats)(4)
    t.is(calls, 1, 'computed once, then hit by another cache object')
    t.deepEqual(Object.keys(hit), ['mean', 'counts', 'flags'])
    t.deepEqual(hit, first)
    t.true(hit.mean instanceof Float64Array && hit.counts.data instanceof Int32Array && Buffer.isBuffer(hit.flags))
    t.deepEqual(hit.counts.shape, [2, 4])
    const [big, floats] = await place.cache().createCachedFunc(pair)(2)
    const [bigAgain, floatsAgain] = await place.cache().createCachedFunc(pair)(2)
    t.true(bigAgain instanceof BigInt64Array && floatsAgain instanceof Float32Array)
    t.deepEqual([Array.from(bigAgain), floatsAgain.length, floatsAgain[96], floatsAgain[2_999_999]], [Array.from(big), floats.length, 96, 2_999_999 % 97])
    const rows = a.entries().filter((e) => e.members)
    t.deepEqual(
      rows.map((e) => e.members!.map((m) => `${m.name}:${m.dtype}:${m.shape.join('x')}`)).sort(),
      [['arr_0:<i8:2', 'arr_1:<f4:3000000'], ['mean:<f8:4', 'counts:<i4:2x4', 'flags:|u1:3']],
    )
    const key = keyStoredBy(a, () => a.createCachedFunc(stats)(5))
    t.true(a.createCachedFunc(stats).has(5))
    await place.damage(key, 'flipped')
    t.false(a.createCachedFunc(stats).has(5))
    const second = place.cache()
    const damagedSeen = watch(second)
    t.deepEqual(second.createCachedFunc(stats)(5).counts.shape, [2, 5])
    t.is(calls, 3, 'the damaged entry was computed again')
    t.true(damagedSeen.damaged.length >= 1)
    t.deepEqual(seen, { damaged: [], storeErrors: [] })
  },

  async 'has() and hasAsync() make the checks a load makes: false for garbage, a short array, no record, a changed byte'(t, place) {
    const cache = place.cache()
    const f = cache.createCachedFunc(counted(), { name: 'fill' })
    t.false(f.has(0))
    for (const [k, how] of (['garbage', 'truncated', 'no-record', 'flipped'] as Damage[]).entries()) {
      const key = keyStoredBy(cache, () => f(k + 1))
      t.true(f.has(k + 1) && (await f.hasAsync(k + 1)))
      await place.damage(key, how)
      t.false(f.has(k + 1), how)
      t.false(await f.hasAsync(k + 1), how)
    }
  },

  async 'a damaged entry is a damagedEntry: computed again, and replaced for the next cache object'(t, place) {
    for (const how of ['garbage', 'flipped', 'truncated'] as Damage[]) {
      const fn = counted()
      const cache = place.cache()
      const key = keyStoredBy(cache, () => cache.createCachedFunc(fn, { name: how })(1))
      await place.damage(key, how)
      const second = place.cache()
      const seen = watch(second)
      t.deepEqual(values(second.createCachedFunc(fn, { name: how })(1)), new Array(8).fill(1))
      t.is(fn.calls, 2, how)
      t.true(seen.damaged.length >= 1 && seen.damaged.every((e) => e.code === ErrorCodes.DAMAGED_ENTRY), how)
      t.deepEqual(seen.storeErrors, [])
      t.deepEqual(values(place.cache().createCachedFunc(fn, { name: how })(1)), new Array(8).fill(1))
      t.is(fn.calls, 2, `${how}: replaced`)
    }
  },

  async 'invalidate, remove and clearFunction, sync and async, act on every tier'(t, place) {
    const f = counted()
    const g = counted()
    const cache = place.cache()
    const cf = cache.createCachedFunc(f, { name: 'f' })
    const cg = cache.createCachedFunc(g, { name: 'g' })
    cf(1)
    cf(2)
    const gKey = keyStoredBy(cache, () => cg(1))
    t.true(cf.invalidate(1))
    t.false(cf.invalidate(1))
    cf(1)
    t.is(f.calls, 3, 'computed again after invalidate')
    t.true(await cf.invalidateAsync(1))
    cf(1)
    t.is(f.calls, 4)
    t.is(cache.clearFunction('f'), 2)
    cf(1)
    cf(2)
    t.is(f.calls, 6, "clearFunction removed the function's entries from every tier")
    cg(1)
    t.is(g.calls, 1, 'other functions keep theirs')
    t.is(await cache.clearFunctionAsync('f'), 2)
    t.true(cache.remove(gKey))
    t.false(await cache.removeAsync(gKey))
    cg(1)
    t.is(g.calls, 2)
    t.throws(() => cache.remove('abc'), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG })
    await t.throwsAsync(cache.removeAsync('abc'), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG })
    t.throws(() => cache.clearFunction(''), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG })
  },

  async "a sync call does not wait for a lease its own process holds through another cache object"(t, place) {
    const holder = place.cache({ computeOnce: true })
    const other = place.cache({ computeOnce: { timeout: 120_000 } })
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let started = false
    const slow = holder.createCachedFunc(
      async (k: number) => {
        started = true
        await gate
        return new Float64Array(2).fill(k)
      },
      { name: 'fill', trackSource: false },
    )
    let computedHere = 0
    const sync = other.createCachedFunc((k: number) => (computedHere++, new Float64Array(2).fill(k)), { name: 'fill', trackSource: false })
    const pending = slow(5)
    let settled = false
    void pending.then(() => (settled = true))
    while (!started) await new Promise((r) => setTimeout(r, 5))
    t.deepEqual(values(sync(5)), [5, 5])
    t.is(computedHere, 1, 'the sync call computed it itself')
    t.false(settled, 'while the holder was still computing: it did not wait for it')
    release()
    t.deepEqual(values(await pending), [5, 5])
  },

  async 'computeOnce across 4 worker threads calling a sync cached function: computed once, the others waited'(t, place) {
    const workers = 4
    const shared = new SharedArrayBuffer(8)
    const workerData = { dist: join(__dirname, '..', 'dist'), location: place.location, options: place.options, shared, workers }
    // The native core reads the process's own environment (not a worker's copy): the place's is set while they run.
    const saved = { ...process.env }
    Object.assign(process.env, place.env)
    const results = await Promise.all(
      Array.from({ length: workers }, () => {
        const w = new Worker(THREAD, { eval: true, workerData })
        return new Promise((resolve, reject) => w.once('message', resolve).once('error', reject))
      }),
    ).finally(() => {
      for (const k of Object.keys(place.env)) if (saved[k] === undefined) delete process.env[k]
      Object.assign(process.env, saved)
    })
    t.deepEqual(results, new Array(workers).fill([7, 7, 7, 7]))
    t.is(new Int32Array(shared)[1], 1, 'computed by one thread; the others waited for its entry')
  },

  async 'computeOnce across processes computes once, and a SIGKILLed holder is taken over by exactly one'(t, place) {
    const dir = tempDir(t)
    const files = writeWorker(dir)
    const local = (name: string) => (place.options.localDir === undefined ? {} : { localDir: join(dir, name) })
    const log = join(dir, 'computed.log')
    const runs = [0, 1, 2].map((i) =>
      startWorker(files, place, { location: place.location, ...local(`m${i}`), computeOnce: { staleAfter: 5000 }, k: 3, n: 20_000, log, ms: 1500 }),
    )
    for (const r of await Promise.all(runs.map((r) => r.done))) t.deepEqual(r.result, { right: true, errors: [] }, r.stderr)
    t.is(lines(log).length, 1, 'computed once')
    const killedLog = join(dir, 'killed.log')
    const cfg = { location: place.location, computeOnce: { staleAfter: 1000 }, k: 5, n: 1000, log: killedLog }
    const holder = startWorker(files, place, { ...cfg, ...local('holder'), ms: 3_600_000 })
    while (lines(killedLog).length === 0) await new Promise((r) => setTimeout(r, 20))
    const waiters = [1, 2].map((i) => startWorker(files, place, { ...cfg, ...local(`w${i}`) }))
    await Promise.all(waiters.map((w) => w.line('ready')))
    holder.child.kill('SIGKILL')
    t.is((await holder.done).signal, 'SIGKILL')
    for (const r of await Promise.all(waiters.map((w) => w.done))) t.deepEqual(r.result, { right: true, errors: [] }, r.stderr)
    t.is(lines(killedLog).length, 2, 'the killed holder, then exactly one taker')
  },

  async 'stats, entries, prune, verify and clearCache, sync and async; verify reads every entry'(t, place) {
    const cache = place.cache()
    const f = cache.createCachedFunc((n: number) => new Float64Array(n).fill(n), { name: 'fill' })
    const keys = [10, 20, 30].map((n) => keyStoredBy(cache, () => f(n)))
    t.like(cache.stats(), { entries: 3 })
    t.like(await cache.statsAsync(), { entries: 3 })
    const entries = cache.entries()
    t.deepEqual(entries.map((e) => e.function), ['fill', 'fill', 'fill'])
    t.deepEqual(entries.map((e) => e.shape[0]).sort(), [10, 20, 30])
    t.true(entries.every((e) => e.dtype === '<f8' && e.created instanceof Date))
    t.deepEqual((await cache.entriesAsync()).map((e) => e.key).sort(), [...keys].sort())
    const clean = cache.verify({ dryRun: true })
    t.true(clean.checked >= 3 && clean.damaged.length === 0, JSON.stringify(clean))
    await place.damage(keys[1], 'flipped')
    const found = await cache.verifyAsync({ dryRun: true })
    t.true(found.damaged.length >= 1 && found.damaged.every((d) => d.key === keys[1] && /digest/.test(d.reason)), JSON.stringify(found))
    const fixed = cache.verify()
    t.is(fixed.removed, fixed.damaged.length)
    t.like(cache.stats(), { entries: 2 })
    t.like(cache.prune({ maxEntries: 1 }), { removedEntries: 1, entries: 1 })
    t.like(await cache.pruneAsync({ maxEntries: 0 }), { removedEntries: 1, entries: 0 })
    f(40)
    cache.clearCache()
    t.like(cache.stats(), { entries: 0 })
    f(50)
    await cache.clearCacheAsync()
    t.like(await cache.statsAsync(), { entries: 0, bytes: 0 })
  },

  async 'a maintenance call stops where its signal aborts, and an aborted one does nothing'(t, place) {
    const cache = place.cache()
    const f = cache.createCachedFunc((n: number) => new Float64Array(n), { name: 'zeros' })
    for (const n of [1, 2, 3]) f(n)
    const reason = new Error('stop')
    const aborted = AbortSignal.abort(reason)
    for (const call of [
      () => cache.stats({ signal: aborted }),
      () => cache.prune({ maxEntries: 0 }, { signal: aborted }),
      () => cache.verify({ signal: aborted }),
      () => cache.clearCache({ signal: aborted }),
      () => cache.clearFunction('zeros', { signal: aborted }),
    ]) {
      t.is(t.throws(call), reason)
    }
    await t.throwsAsync(cache.pruneAsync({ maxEntries: 0 }, { signal: aborted }), { is: reason })
    const controller = new AbortController()
    const stop = new Error('stopped at the first step')
    const options = { signal: controller.signal, onProgress: () => controller.abort(stop) }
    t.is(t.throws(() => cache.prune({ maxEntries: 0 }, options)), stop)
    t.like(cache.stats(), { entries: 3 }, 'nothing removed')
  },

  async 'a lease another host holds is waited for; one promising more than a day is broken past the ceiling'(t, place) {
    const cache = place.cache()
    const fn = counted()
    // One key for the sync and async wrappers below: their sources differ.
    const named = { name: 'fill', trackSource: false }
    const key = keyStoredBy(cache, () => cache.createCachedFunc(fn, named)(1))
    cache.remove(key)
    await place.plantLease(key, '0123456789abcdef 4242 10000000000000000 elsewhere\n')
    const waiting = place.cache({ computeOnce: { signal: AbortSignal.timeout(300) } }).createCachedFunc(async (k: number) => fn(k), named)
    await t.throwsAsync(waiting(1), { any: true, name: 'TimeoutError' }, 'a live-looking lease is waited for')
    const taker = place.cache({ computeOnce: { signal: AbortSignal.timeout(60_000) } })
    advanceClock(taker, 25 * 3600 * 1000)
    t.deepEqual(values(await taker.createCachedFunc(async (k: number) => fn(k), named)(1)), new Array(8).fill(1))
    t.is(fn.calls, 2, 'taken over past a day, and computed')
  },

  async 'has() with maxAge says what a load would: an entry past its age is false, and gone'(t, place) {
    const cache = place.cache({ maxAge: '1h' })
    const f = cache.createCachedFunc((k: number) => new Float64Array(4).fill(k), { name: 'fill' })
    f(1)
    t.true(f.has(1))
    const later = place.cache({ maxAge: '1h' })
    advanceClock(later, 2 * 3600 * 1000)
    const g = later.createCachedFunc((k: number) => new Float64Array(4).fill(k), { name: 'fill' })
    t.false(g.has(1), 'past its age')
    t.false(f.has(1), 'and removed: a cache object on the real clock finds nothing either')
  },

  async 'limits after a store: kept by a directory and a local tier; an object store is pruned to them'(t, place, ground) {
    const cache = place.cache({ maxEntries: 1 })
    const f = cache.createCachedFunc((k: number) => new Float64Array(4).fill(k), { name: 'fill' })
    f(1)
    f(2)
    const localDir = place.options.localDir
    const localEntries = () => readdirSync(localDir!).filter((n) => n.endsWith('.npy')).length
    if (ground.name === 'directory') t.is(cache.stats().entries, 1, 'evicted on the store')
    else if (localDir !== undefined) {
      t.is(localEntries(), 1, 'the local tier keeps the limits')
      t.is(cache.stats().entries, 2, 'the shared store is pruned only to limits given')
      t.like(cache.prune({ maxEntries: 1 }), { entries: 1 })
    } else {
      t.is(cache.stats().entries, 2, 'no listing on a call: the store keeps both until a prune')
      t.like(cache.prune(), { removedEntries: 1, entries: 1 }, "a prune applies the cache's own limits")
    }
  },

  async 'a result over the limits on its own is returned, not stored, and evicts nothing; entryTooLarge says so'(t, place) {
    // Three entries of 320 kB fit in 1 MB; one of 1.28 MB cannot, alone.
    const cache = place.cache({ maxBytes: '1MB' })
    const tooLarge: Any[] = []
    cache.on('entryTooLarge', (info) => tooLarge.push(info))
    const f = counted()
    const fill = cache.createCachedFunc(f, { name: 'fill' })
    for (const k of [1, 2, 3]) fill(k, 40_000)
    t.deepEqual(values(fill(4, 160_000)).slice(0, 2), [4, 4], 'the call returns its result')
    for (const k of [1, 2, 3]) fill(k, 40_000)
    t.is(f.calls, 4, 'nothing evicted: the three entries still hit')
    fill(4, 160_000)
    if (place.options.localDir === undefined) {
      t.is(f.calls, 5, 'not stored: computed again')
      t.like(tooLarge[0], { functionName: 'fill', limit: 1_000_000, location: cache.path })
      t.true(tooLarge[0].bytes > 1_280_000 && /^[0-9a-f]{64}$/.test(tooLarge[0].key), JSON.stringify(tooLarge[0]))
      t.is(tooLarge.length, 2)
    } else {
      // maxBytes is the local tier's: the shared store keeps it, and answers it.
      t.is(f.calls, 4, 'loaded from the store')
      t.is(tooLarge.length, 0)
    }
    // maxEntryBytes holds on every tier, the shared store included.
    const small = place.cache({ maxEntryBytes: '500kB' })
    const seen: Any[] = []
    small.on('entryTooLarge', (info) => seen.push(info))
    const g = counted()
    const big = small.createCachedFunc(g, { name: 'big' })
    big(1, 80_000)
    big(1, 80_000)
    t.is(g.calls, 2, 'over maxEntryBytes: stored nowhere, computed each time')
    t.like(seen[0], { functionName: 'big', limit: 500_000 })
    t.is(seen.length, 2)
    t.false(big.has(1, 80_000))
    big(1, 100)
    big(1, 100)
    t.is(g.calls, 3, 'a small result is stored')
  },

  async 'each computed call counts one miss, under computeOnce too; a hit counts one hit'(t, place) {
    const cache = place.cache({ computeOnce: true })
    const f = counted()
    const fill = cache.createCachedFunc(f, { name: 'fill' })
    fill(1)
    t.like(cache.stats(), { hits: 0, misses: 1 })
    fill(1)
    t.like(cache.stats(), { hits: 1, misses: 1 })
    await cache.createCachedFunc(async (k: number) => new Float64Array(2).fill(k), { name: 'later' })(2)
    t.like(cache.stats(), { hits: 1, misses: 2 })
    t.is(f.calls, 1)
  },

  async 'mmap and verify options load the same arrays on every tier'(t, place) {
    const f = counted()
    place.cache().createCachedFunc(f, { name: 'fill' })(7, 100_000)
    for (const options of [{ mmap: true }, { verify: true }]) {
      t.deepEqual(values(place.cache(options).createCachedFunc(f, { name: 'fill' })(7, 100_000)), new Array(100_000).fill(7))
    }
    t.is(f.calls, 1)
  },
}

/** Faults of an object store, injected through a proxy in front of it. */
const faults: Record<string, Scenario> = {
  async "a waiter reads the lease, at most a lease's length a poll, and writes nothing while its holder lives"(t, place) {
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    t.teardown(() => proxy.close())
    const named = { name: 'fill', trackSource: false }
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let started = false
    const holder = place.cache({ computeOnce: true }).createCachedFunc(async (k: number) => {
      started = true
      await gate
      return new Float64Array(4).fill(k)
    }, named)
    const fn = counted()
    const waiter = place.through!(proxy, { computeOnce: { timeout: 600_000 } }).createCachedFunc(async (k: number) => fn(k, 4), named)
    const computing = holder(2)
    while (!started) await sleep(5)
    const waiting = waiter(2)
    const lease = () => proxy.log.filter((r) => r.path.includes('.lease'))
    while (lease().filter((r) => r.method === 'GET').length < 8) await sleep(5)
    release()
    t.deepEqual(values(await waiting), [2, 2, 2, 2])
    await computing
    t.is(fn.calls, 0, "the waiter got the holder's entry")
    const writes = lease().filter((r) => r.method !== 'GET' && r.method !== 'HEAD')
    t.true(writes.length === 1 && writes[0].method === 'PUT' && writes[0].status >= 400, `its one claim, refused, and no write while it waited: ${JSON.stringify(writes)}`)
    const reads = lease().filter((r) => r.method === 'GET')
    t.true(reads.every((r) => r.bytes <= 257), JSON.stringify(reads.map((r) => r.bytes)))
  },

  async "a lease object past a lease's length is read only that far, and is no lease: taken over at once"(t, place) {
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    t.teardown(() => proxy.close())
    const cache = place.cache()
    const fn = counted()
    const named = { name: 'fill', trackSource: false }
    const key = keyStoredBy(cache, () => cache.createCachedFunc(fn, named)(1))
    cache.remove(key)
    await place.plantLease(key, `0123456789abcdef 4242 10000000000000000 elsewhere\n${' '.repeat(4 << 20)}`)
    const waiter = place.through!(proxy, { computeOnce: { staleAfter: 600_000, signal: AbortSignal.timeout(60_000) } })
    t.deepEqual(values(await waiter.createCachedFunc(async (k: number) => fn(k), named)(1)), new Array(8).fill(1))
    t.is(fn.calls, 2, 'taken over and computed, not waited for')
    const reads = proxy.log.filter((r) => r.path.includes('.lease') && r.method === 'GET')
    t.true(reads.length >= 1 && reads.every((r) => r.bytes <= 257), JSON.stringify(reads))
  },

  async 'the store gone: calls compute and return, storeError says why, and the store is skipped for a while'(t, place) {
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    const cache = place.through!(proxy, { remote: { maxRetries: 1, retryTimeout: 500 } })
    await proxy.close()
    const seen = watch(cache)
    const f = cache.createCachedFunc(async (n: number) => new Float64Array(n).fill(1), { name: 'ones' })
    t.deepEqual(values(await f(3)), [1, 1, 1])
    t.deepEqual(seen.storeErrors.map((e) => e.code), [ErrorCodes.REMOTE_UNAVAILABLE, ErrorCodes.STORE_FAILED])
    t.regex(seen.storeErrors[0].message, /could not read .* so the result is computed/)
    seen.storeErrors.length = 0
    t.false(f.has(99), 'has() fails open too')
    t.false(await f.hasAsync(99))
    t.false(f.invalidate(99))
    t.false(await f.invalidateAsync(99))
    t.deepEqual(seen.storeErrors.map((e) => e.code), [ErrorCodes.REMOTE_UNAVAILABLE, ErrorCodes.REMOTE_UNAVAILABLE], 'a removal that did not happen says so')
    t.regex(seen.storeErrors[0].message, /could not remove the entry from/)
  },

  async 'entries stored while the store was down are removed by clearFunction on every tier they reached'(t, place) {
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    await proxy.close()
    let calls = 0
    const fn = (k: number) => (calls++, new Float64Array(4).fill(k))
    const down = place.through!(proxy, { remote: { maxRetries: 0 } })
    down.on('storeError', () => {})
    const during = down.createCachedFunc(fn, { name: 'f' })
    for (let k = 0; k < 6; k++) during(k)
    const up = place.cache()
    t.is(up.clearFunction('f'), place.options.localDir === undefined ? 0 : 6, 'a local tier held them')
    calls = 0
    const after = up.createCachedFunc(fn, { name: 'f' })
    for (let k = 0; k < 6; k++) after(k)
    t.is(calls, 6, 'none of them is served any more')
  },

  async 'a slow store: calls wait for it and get the right arrays'(t, place) {
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    t.teardown(() => proxy.close())
    proxy.delay(150)
    const f = counted()
    const seen = watch(place.through!(proxy))
    t.deepEqual(values(await place.through!(proxy).createCachedFunc(async (k: number) => f(k), { name: 'fill' })(4)), new Array(8).fill(4))
    t.deepEqual(values(await place.through!(proxy).createCachedFunc(async (k: number) => f(k), { name: 'fill' })(4)), new Array(8).fill(4))
    t.is(f.calls, 1)
    t.deepEqual(seen.storeErrors, [])
  },

  async '500s are retried; past the retries, the call fails open'(t, place) {
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    t.teardown(() => proxy.close())
    const f = counted()
    proxy.fail(2)
    const retried = place.through!(proxy)
    const seen = watch(retried)
    t.deepEqual(values(await retried.createCachedFunc(async (k: number) => f(k), { name: 'fill' })(2)), new Array(8).fill(2))
    t.deepEqual(seen.storeErrors, [], 'two 500s, then success: retried')
    proxy.fail(Infinity)
    const failing = place.through!(proxy, { remote: { maxRetries: 0 } })
    const failed = watch(failing)
    t.deepEqual(values(await failing.createCachedFunc(async (k: number) => f(k), { name: 'fill' })(3)), new Array(8).fill(3))
    t.deepEqual(failed.storeErrors.map((e) => e.code), [ErrorCodes.REMOTE_UNAVAILABLE, ErrorCodes.STORE_FAILED])
    proxy.heal()
    t.deepEqual(values(await place.cache().createCachedFunc(async (k: number) => f(k), { name: 'fill' })(2)), new Array(8).fill(2))
    t.is(f.calls, 2, 'the entry stored through the retries is there')
  },

  async 'a body cut midway is never a short or wrong array: the call computes'(t, place) {
    const n = 1 << 19 // 4 MiB
    const f = Object.assign(async (k: number) => (f.calls++, new Float64Array(n).fill(k)), { calls: 0 })
    await place.cache().createCachedFunc(f, { name: 'big' })(9)
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    t.teardown(() => proxy.close())
    proxy.cutBodiesAfter(1 << 20)
    const cut = place.through!(proxy, { remote: { maxRetries: 0 }, ...(place.options.localDir === undefined ? {} : { localDir: tempDir(t) }) })
    const seen = watch(cut)
    const got = (await cut.createCachedFunc(f, { name: 'big' })(9)) as Float64Array
    t.true(got.length === n && got.every((x) => x === 9))
    t.is(f.calls, 2, 'computed, not loaded short')
    t.true(seen.storeErrors.some((e) => e.code === ErrorCodes.REMOTE_UNAVAILABLE), seen.storeErrors.map((e) => e.message).join('\n'))
  },

  async '100 calls pending on a store that answers nothing leave the thread pool free: fs work goes on'(t, place) {
    const proxy = await startFaultProxy(place.options.remote?.endpoint ?? azurite.url)
    t.teardown(() => proxy.close())
    const pending = 100
    const hold = proxy.hold(pending)
    const cache = place.through!(proxy, { ...(place.options.localDir === undefined ? {} : { localDir: tempDir(t) }) })
    const f = cache.createCachedFunc(async (k: number) => new Float64Array(4).fill(k), { name: 'fill' })
    const calls = Array.from({ length: pending }, (_, k) => f(k))
    await hold.held
    // Before any of them is answered: the libuv pool (4 threads) must be free for fs.
    const stat = fsp.stat(__filename).then(() => 'stat')
    let timer: NodeJS.Timeout | undefined
    const stuck = new Promise((r) => (timer = setTimeout(r, 60_000, 'stuck')))
    t.is(await Promise.race([stat, stuck]), 'stat', 'fs.promises.stat went on while 100 calls waited on the store')
    clearTimeout(timer)
    hold.release()
    const got = await Promise.all(calls)
    t.true(got.every((a, k) => values(a).every((x) => x === k)))
  },
}

for (const ground of GROUNDS) {
  for (const [name, scenario] of Object.entries(scenarios)) {
    test.serial(`${ground.name}: ${name}`, (t) => scenario(t, ground.place(t), ground))
  }
  if (!ground.store) continue
  for (const [name, scenario] of Object.entries(faults)) {
    test.serial(`${ground.name}, faults: ${name}`, (t) => scenario(t, ground.place(t), ground))
  }
}
