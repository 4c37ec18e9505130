// One cache directory shared by many real processes: concurrent hits and
// stores, compute-once leases (collisions, a killed or hung holder, the
// wait timeout, sync and async wrappers) and limits enforced across
// processes. Every worker is `node -e` on the built package; nothing is mocked.
import test, { type ExecutionContext } from 'ava'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { root, tempDir } from './helpers'

type Any = any

// The result of key k, in the workers and here: its first element tells k
// back (k * 1e6), so any entry file says which call it holds. Sizes vary per key.
const EXPECTED_SRC = `function expected(k) {
  const n = 1000 + ((k * 397) % 4000)
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = k * 1e6 + i * 0.5
  return a
}`
const expected: (k: number) => Float64Array = new Function(`return ${EXPECTED_SRC}`)()

/** Source every worker starts with; `cfg` is the JSON in argv[1]. */
const PRELUDE = `
const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
const fs = require('fs')
const cfg = JSON.parse(process.argv[1])
const cell = new Int32Array(new SharedArrayBuffer(4))
const sleepSync = (ms) => Atomics.wait(cell, 0, 0, ms)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const busy = (ms) => { const end = Date.now() + ms; while (Date.now() < end) {} }
${EXPECTED_SRC}
function right(a, k) {
  const e = expected(k)
  if (!(a instanceof Float64Array) || a.length !== e.length) return false
  for (let i = 0; i < e.length; i++) if (a[i] !== e[i]) return false
  return true
}
function say(line) { process.stdout.write(line + '\\n') }
/** Says 'ready', then waits for the parent's go-file, so all workers start together. */
function waitForGo() { say('ready'); while (!fs.existsSync(cfg.go)) sleepSync(1) }
function report(r) { say('result ' + JSON.stringify(r)) }
`

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

interface Worker {
  child: ChildProcess
  /** Resolves when the worker has printed a line starting with `prefix`. */
  line(prefix: string): Promise<string>
  exit: Promise<Exit>
  /** The worker's `result` line, parsed, after it exited with code 0. */
  result(t: ExecutionContext): Promise<Any>
}

function startWorker(body: string, cfg: object): Worker {
  const child = spawn(process.execPath, ['-e', PRELUDE + body, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters: Array<{ prefix: string; resolve: (l: string) => void }> = []
  const check = () => {
    const lines = stdout.split('\n')
    for (let i = waiters.length - 1; i >= 0; i--) {
      const found = lines.find((l) => l.startsWith(waiters[i].prefix))
      if (found !== undefined) waiters.splice(i, 1)[0].resolve(found)
    }
  }
  child.stdout!.on('data', (d) => {
    stdout += d
    check()
  })
  child.stderr!.on('data', (d) => (stderr += d))
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return {
    child,
    exit,
    line(prefix) {
      return new Promise((resolve, reject) => {
        waiters.push({ prefix, resolve })
        check()
        void exit.then((e) => reject(new Error(`worker exited (${e.code ?? e.signal}) before printing '${prefix}': ${e.stderr}`)))
      })
    },
    async result(t) {
      const e = await exit
      t.is(e.code, 0, `worker failed: ${e.signal ?? ''} ${e.stderr}`)
      const line = e.stdout.split('\n').find((l) => l.startsWith('result '))
      if (line === undefined) throw new Error(`worker printed no result: ${e.stdout} ${e.stderr}`)
      return JSON.parse(line.slice('result '.length))
    },
  }
}

let goFiles = 0

/** Starts `count` workers, waits until all are ready, then lets them go at once. */
async function startTogether(work: string, count: number, body: string, cfg: (i: number) => object): Promise<Worker[]> {
  const go = join(work, `go-${goFiles++}`)
  const workers = Array.from({ length: count }, (_, i) => startWorker(body, { ...cfg(i), go }))
  await Promise.all(workers.map((w) => w.line('ready')))
  writeFileSync(go, '')
  return workers
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Keys of the entries on disk (`<key>.npy` files). */
function npyKeys(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^[0-9a-f]{64}\.npy$/.test(n))
    .map((n) => n.slice(0, 64))
    .sort()
}

function fileSize(path: string): number {
  return statSync(path).size
}

/**
 * Checks the entry file of `key` against the result it claims to hold
 * (its first element tells k); returns that k.
 */
function checkEntryFile(t: ExecutionContext, dir: string, key: string): number {
  const a = readNpy(join(dir, `${key}.npy`))
  const data = a.data as Float64Array
  const k = data[0] / 1e6
  t.true(Number.isInteger(k), `${key}: first element ${data[0]}`)
  t.deepEqual(data, expected(k), `${key} holds the result of key ${k}`)
  return k
}

/**
 * The index agrees with the disk: every row has both files, with the size it
 * records, holding a right array; every entry on disk has a row; totals
 * match. Returns k for each entry.
 */
function checkIndexAgainstDisk(t: ExecutionContext, cache: NumpyFuncCache, dir: string): Map<string, number> {
  const rows = cache.entries()
  const stats = cache.stats()
  const ks = new Map<string, number>()
  for (const row of rows) {
    const npy = join(dir, `${row.key}.npy`)
    const json = join(dir, `${row.key}.json`)
    t.true(existsSync(npy) && existsSync(json), `row ${row.key} has its files`)
    t.is(row.bytes, fileSize(npy) + fileSize(json), `row ${row.key} records its files' size`)
    const k = checkEntryFile(t, dir, row.key)
    t.is(row.dtype, '<f8')
    t.deepEqual(row.shape, [expected(k).length])
    ks.set(row.key, k)
  }
  t.deepEqual(rows.map((r) => r.key).sort(), npyKeys(dir), 'index rows and entries on disk are the same set')
  t.is(stats.entries, npyKeys(dir).length, 'stats().entries counts the entries on disk')
  t.is(stats.bytes, rows.reduce((s, r) => s + r.bytes, 0))
  return ks
}

/** A wrapped `expected` under the workers' identity (name 'ramp', source not tracked), counting its calls. */
function rampIn(cache: NumpyFuncCache) {
  const state = { calls: 0 }
  const f = cache.createCachedFunc(
    (k: number) => {
      state.calls++
      return expected(k)
    },
    { name: 'ramp', trackSource: false },
  )
  return { f, state }
}

// ---------------------------------------------------------------- concurrent use without computeOnce

test.serial('8 processes x 500 calls over 50 keys on one directory: every result right, index and disk agree afterwards', async (t) => {
  t.timeout(150_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const WORKERS = 8
  const CALLS = 500
  const KEYS = 50
  const started = Date.now()
  const workers = await startTogether(
    work,
    WORKERS,
    `
    const cache = new NumpyFuncCache(cfg.dir)
    const r = { calls: 0, computed: 0, wrong: 0, errors: [], damaged: 0, storeErrors: 0 }
    cache.on('damagedEntry', () => r.damaged++)
    cache.on('storeError', (e) => { r.storeErrors++; r.errors.push('storeError: ' + e.message) })
    const f = cache.createCachedFunc((k) => { r.computed++; return expected(k) }, { name: 'ramp', trackSource: false })
    waitForGo()
    for (let i = 0; i < cfg.calls; i++) {
      const k = Math.floor(Math.random() * cfg.keys)
      r.calls++
      try {
        if (!right(f(k), k)) r.wrong++
      } catch (e) {
        r.errors.push(String(e && e.stack || e))
      }
    }
    report(r)
    while (!fs.existsSync(cfg.exit)) sleepSync(1)
    `,
    (i) => ({ dir, calls: CALLS, keys: KEYS, exit: join(work, `exit-${i}`) }),
  )
  await Promise.all(workers.map((w) => w.line('result ')))
  const ran = Date.now() - started
  // One exit at a time: an exiting process waits at most a second for the index, then drops
  // its counts (as documented), so none may hold it busy then, however slow the machine.
  for (const [i, w] of workers.entries()) {
    writeFileSync(join(work, `exit-${i}`), '')
    await w.exit
  }
  const results = await Promise.all(workers.map((w) => w.result(t)))
  for (const r of results) {
    t.is(r.calls, CALLS)
    t.is(r.wrong, 0, 'no call returned a wrong or partial array')
    t.deepEqual(r.errors, [], 'no call threw and no store failed')
    t.is(r.damaged, 0, 'no entry read as damaged')
  }
  const computed = results.reduce((s, r) => s + r.computed, 0)

  const cache = new NumpyFuncCache(dir)
  // Counts from every process reached the index (each flushed at exit).
  const stats = cache.stats()
  t.is(stats.misses, computed, 'misses are the computations of all workers')
  t.is(stats.hits, WORKERS * CALLS - computed, 'hits are the other calls of all workers')
  const ks = checkIndexAgainstDisk(t, cache, dir)
  t.is(ks.size, KEYS, 'every key was stored')
  t.deepEqual([...ks.values()].sort((a, b) => a - b), Array.from({ length: KEYS }, (_, k) => k))
  // Each entry is under its own key: the wrapper here hits all of them with the right values.
  const { f, state } = rampIn(cache)
  for (let k = 0; k < KEYS; k++) t.deepEqual(f(k), expected(k), `key ${k}`)
  t.is(state.calls, 0, 'every key hits')
  t.log(`${WORKERS} workers x ${CALLS} calls in ${ran} ms; ${computed} computations (${computed - KEYS} duplicated), ${stats.hits} hits`)
})

// ---------------------------------------------------------------- computeOnce

test.serial('computeOnce across 8 processes started together: each of 50 keys computed exactly once, collisions really waited', async (t) => {
  t.timeout(150_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const WORKERS = 8
  const CALLS = 300
  const KEYS = 50
  const started = Date.now()
  const workers = await startTogether(
    work,
    WORKERS,
    `
    const cache = new NumpyFuncCache(cfg.dir, { computeOnce: true })
    const r = { calls: 0, computed: 0, wrong: 0, errors: [], damaged: 0, waited: 0, longestWait: 0 }
    cache.on('damagedEntry', () => r.damaged++)
    cache.on('storeError', (e) => r.errors.push('storeError: ' + e.message))
    const f = cache.createCachedFunc((k) => {
      r.computed++
      fs.appendFileSync(cfg.log, k + '\\n')
      busy(cfg.computeMs)
      return expected(k)
    }, { name: 'ramp', trackSource: false })
    waitForGo()
    for (let i = 0; i < cfg.calls; i++) {
      const k = Math.floor(Math.random() * cfg.keys)
      r.calls++
      try {
        // A call that would miss (has() is false), took a while and was not computed
        // here got its result from another process's computation: a collision.
        const missing = !f.has(k)
        const before = r.computed
        const t0 = Date.now()
        const a = f(k)
        const took = Date.now() - t0
        if (!right(a, k)) r.wrong++
        if (missing && r.computed === before && took >= 5) {
          r.waited++
          r.longestWait = Math.max(r.longestWait, took)
        }
      } catch (e) {
        r.errors.push(String(e && e.stack || e))
      }
    }
    report(r)
    `,
    (i) => ({ dir, calls: CALLS, keys: KEYS, computeMs: 30, log: join(work, `log-${i}.txt`) }),
  )
  const results = await Promise.all(workers.map((w) => w.result(t)))
  const ran = Date.now() - started
  for (const r of results) {
    t.is(r.wrong, 0)
    t.deepEqual(r.errors, [])
    t.is(r.damaged, 0)
  }
  // The logs: which worker computed what.
  const computedBy = new Map<number, number[]>()
  for (let i = 0; i < WORKERS; i++) {
    const log = join(work, `log-${i}.txt`)
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []
    t.is(lines.length, results[i].computed, `worker ${i}'s log matches its count`)
    for (const l of lines) computedBy.set(Number(l), [...(computedBy.get(Number(l)) ?? []), i])
  }
  t.is(computedBy.size, KEYS, 'every key was computed')
  for (const [k, by] of computedBy) t.is(by.length, 1, `key ${k} computed by workers ${by.join(', ')}`)
  const workersComputing = results.filter((r) => r.computed > 0).length
  const waited = results.reduce((s, r) => s + r.waited, 0)
  const longest = Math.max(...results.map((r) => r.longestWait))
  t.true(workersComputing > 1, 'the computations were spread over several workers')
  t.true(waited > 0, 'some calls missed, waited and got another process\'s result')

  const cache = new NumpyFuncCache(dir)
  t.is(cache.stats().misses, KEYS, 'one store per key in the whole directory')
  checkIndexAgainstDisk(t, cache, dir)
  t.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.lock')), [], 'no lease left behind')
  t.log(`${ran} ms; ${workersComputing} workers computed; ${waited} calls waited for another process (longest ${longest} ms)`)
})

/** A worker that takes the lease of key `cfg.k` and never returns from the function: says 'started' inside it. */
const HANG = `
const cache = new NumpyFuncCache(cfg.dir, { computeOnce: true })
const f = cache.createCachedFunc((k) => { say('started'); sleepSync(1e9); return expected(k) }, { name: 'ramp', trackSource: false })
f(cfg.k)
`

const HANG_ASYNC = `
const cache = new NumpyFuncCache(cfg.dir, { computeOnce: true })
const f = cache.createCachedFunc(async (k) => { say('started'); await new Promise(() => setInterval(() => {}, 1e6)); return expected(k) }, { name: 'ramp', trackSource: false })
f(cfg.k)
`

/**
 * A worker calling key `cfg.k` with `cfg.computeOnce`; says 'calling' first, reports whether it
 * computed and how long the call took, timed from before 'calling': whatever the parent waits
 * after seeing 'calling' falls within that time, however late the worker runs on.
 */
const CALL_ONE = `
const cache = new NumpyFuncCache(cfg.dir)
let computed = 0
let computedAt
const f = cache.createCachedFunc((k) => { computed++; computedAt = Date.now(); return expected(k) }, { name: 'ramp', trackSource: false, computeOnce: cfg.computeOnce })
const t0 = Date.now()
say('calling')
const a = f(cfg.k)
report({ computed, computedAt, ms: Date.now() - t0, right: right(a, cfg.k) })
`

const CALL_ONE_ASYNC = `
const cache = new NumpyFuncCache(cfg.dir)
let computed = 0
const f = cache.createCachedFunc(async (k) => { computed++; await sleep(1); return expected(k) }, { name: 'ramp', trackSource: false, computeOnce: cfg.computeOnce })
const t0 = Date.now()
say('calling')
f(cfg.k).then((a) => report({ computed, ms: Date.now() - t0, right: right(a, cfg.k) }))
`

function leaseFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^\.[0-9a-f]{64}\.lock$/.test(n))
}

/**
 * A holds key 7's lease and hangs; B waits for it; A is SIGKILLed; B must
 * then break the dead holder's lease, compute and finish, long before the
 * lease could go stale (60 s).
 */
async function killedHolder(t: ExecutionContext, hang: string, call: string): Promise<void> {
  t.timeout(60_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const a = startWorker(hang, { dir, k: 7 })
  await a.line('started')
  const leases = leaseFiles(dir)
  t.is(leases.length, 1, 'A holds a lease while it computes')
  // "<host> <pid> <staleAfter ms>"
  t.is(readFileSync(join(dir, leases[0]), 'utf8').trim(), `${hostTag()} ${a.child.pid} 60000 ${hostname()}`, 'the lease names A')

  const b = startWorker(call, { dir, k: 7, computeOnce: true })
  await b.line('calling')
  let bDone = false
  void b.exit.then(() => (bDone = true))
  await sleep(1500)
  t.false(bDone, 'B keeps waiting while A is alive')
  t.deepEqual(npyKeys(dir), [], 'nothing stored yet')

  const killedAt = Date.now()
  a.child.kill('SIGKILL')
  t.is((await a.exit).signal, 'SIGKILL')
  const r = await b.result(t)
  const after = Date.now() - killedAt
  t.is(r.computed, 1, 'B computed the key itself')
  t.true(r.right)
  t.true(r.ms >= 1500, `B's call waited for A (${r.ms} ms)`)
  // Well under the lease's staleAfter of 60 s, so B saw A gone, not its lease grow old.
  t.true(after < 30_000, `B finished ${after} ms after A was killed`)
  t.deepEqual(leaseFiles(dir), [], 'B released the lease it took over')
  const keys = npyKeys(dir)
  t.is(keys.length, 1)
  t.is(checkEntryFile(t, dir, keys[0]), 7)
  t.log(`B finished ${after} ms after the kill; its call took ${r.ms} ms`)
}

/** This host as temporary names and leases carry it (a digest of its name, boot and pid namespace). */
function hostTag(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../binding/index.js').hostTag()
}

test.serial('computeOnce: a holder SIGKILLed mid-computation is noticed at once; the waiter computes (sync)', (t) => killedHolder(t, HANG, CALL_ONE))

test.serial('computeOnce: a holder SIGKILLed mid-computation is noticed at once; the waiter computes (async)', (t) =>
  killedHolder(t, HANG_ASYNC, CALL_ONE_ASYNC),
)

test.serial('computeOnce: a garbage collection never releases the lease of a computation still pending, even one nothing references', async (t) => {
  const dir = join(tempDir(t), 'cache')
  // The hung computation awaits a promise nothing can resolve: all of it is
  // garbage, and used to take the lease with it when collected.
  const a = startWorker(
    `${HANG_ASYNC}
require('v8').setFlagsFromString('--expose-gc')
const gc = require('vm').runInNewContext('gc')
setTimeout(() => { gc(); gc(); say('collected') }, 100)
`,
    { dir, k: 7 },
  )
  await a.line('collected')
  t.is(leaseFiles(dir).length, 1, 'still held')
  a.child.kill('SIGKILL')
  await a.exit
})

async function timeoutWhileHolderHangs(t: ExecutionContext, call: string): Promise<void> {
  t.timeout(60_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const a = startWorker(HANG, { dir, k: 3 })
  try {
    await a.line('started')
    const b = startWorker(call, { dir, k: 3, computeOnce: { timeout: 500 } })
    const r = await b.result(t)
    t.is(r.computed, 1, 'B computed it itself')
    t.true(r.right)
    // Nothing but the timeout ends the wait (A's lease is refreshed; staleAfter is 60 s), so a
    // generous upper bound still tells it: a busy machine can add seconds to the call.
    t.true(r.ms >= 490 && r.ms < 30_000, `B gave up waiting after ${r.ms} ms (timeout 500)`)
    t.is(a.child.exitCode, null, 'A is still alive and holding the lease')
    t.is(a.child.signalCode, null)
    t.is(leaseFiles(dir).length, 1, "A's lease is still there")
    // B stored its result without the lease; it loads right here.
    const cache = new NumpyFuncCache(dir)
    const { f, state } = rampIn(cache)
    t.deepEqual(f(3), expected(3))
    t.is(state.calls, 0)
    t.log(`B's call took ${r.ms} ms`)
  } finally {
    a.child.kill('SIGKILL')
    await a.exit
  }
}

test.serial('computeOnce { signal }: aborting stops a wait for a hung holder with the reason, computing nothing; a sync call with an aborted signal throws at once', async (t) => {
  t.timeout(60_000)
  const dir = join(tempDir(t), 'cache')
  const a = startWorker(HANG, { dir, k: 3 })
  try {
    await a.line('started')
    const controller = new AbortController()
    const cache = new NumpyFuncCache(dir)
    let computed = 0
    const ramp = (k: number) => (computed++, expected(k))
    const f = cache.createCachedFunc(async (k: number) => ramp(k), { name: 'ramp', trackSource: false, computeOnce: { signal: controller.signal } })
    const call = f(3)
    // Whenever the abort lands (before the first poll or during a sleep), the wait ends with it.
    setTimeout(() => controller.abort(new Error('stopped by the caller')), 50)
    await t.throwsAsync(call, { message: 'stopped by the caller' })
    const g = cache.createCachedFunc(ramp, { name: 'ramp', trackSource: false, computeOnce: { signal: AbortSignal.abort() } })
    // AbortSignal.abort()'s reason is a DOMException named AbortError.
    const thrown = (() => {
      try {
        g(3)
      } catch (e) {
        return e as { name?: string }
      }
    })()
    t.is(thrown?.name, 'AbortError')
    t.is(computed, 0, 'neither computed')
    // A key nobody holds is computed: the signal only stops waiting.
    t.deepEqual(g(4), expected(4))
    t.is(computed, 1)
    t.is(leaseFiles(dir).length, 1, "A's lease is untouched")
    t.throws(() => new NumpyFuncCache(dir, { computeOnce: { signal: 'soon' as never } }), { instanceOf: TypeError, message: /computeOnce\.signal must be an AbortSignal/ })
  } finally {
    a.child.kill('SIGKILL')
    await a.exit
  }
})

test.serial('computeOnce { timeout: 500 }: with the holder alive and hung, the waiter computes itself after ~0.5 s (sync)', (t) =>
  timeoutWhileHolderHangs(t, CALL_ONE),
)

test.serial('computeOnce { timeout: 500 }: with the holder alive and hung, the waiter computes itself after ~0.5 s (async)', (t) =>
  timeoutWhileHolderHangs(t, CALL_ONE_ASYNC),
)

test.serial('computeOnce: a lease of another host counts as live until it is staleAfter old, then is broken', async (t) => {
  t.timeout(60_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  // The key of ramp(5): store it in a scratch directory and look.
  const scratch = join(work, 'scratch')
  rampIn(new NumpyFuncCache(scratch)).f(5)
  const [key] = npyKeys(scratch)
  mkdirSync(dir)
  // A lease of a process on another host (whose pid cannot be checked here), just taken.
  writeFileSync(join(dir, `.${key}.lock`), `some-other-host ${process.pid}\n`)
  // Its age is what counts: from its modification time, as the waiter sees it.
  const written = statSync(join(dir, `.${key}.lock`)).mtimeMs
  const b = startWorker(CALL_ONE, { dir, k: 5, computeOnce: { staleAfter: 1500 } })
  const r = await b.result(t)
  t.is(r.computed, 1)
  t.true(r.right)
  // computedAt is whole milliseconds (Date.now()), the lease's time is not.
  const age = r.computedAt - Math.floor(written)
  t.true(age >= 1500, `B computed when the foreign lease was ${age} ms old (staleAfter 1500), not before`)
  // Not after the default staleAfter (60 s): B judged by its own. A busy machine may start B late.
  t.true(age < 30_000, `B broke the stale lease soon after it went stale (${age} ms)`)
  t.log(`B computed when the lease was ${age} ms old`)
  t.deepEqual(leaseFiles(dir), [], 'the stale lease was broken and B released its own')
  t.is(checkEntryFile(t, dir, key), 5)
})

test.serial('computeOnce with async wrappers across 4 processes: each key computed once, concurrent calls in each process', async (t) => {
  t.timeout(120_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const WORKERS = 4
  const KEYS = 12
  const started = Date.now()
  const workers = await startTogether(
    work,
    WORKERS,
    `
    const cache = new NumpyFuncCache(cfg.dir, { computeOnce: true })
    const r = { calls: 0, computed: 0, wrong: 0, errors: [], waited: 0 }
    const computedHere = new Set()
    cache.on('storeError', (e) => r.errors.push('storeError: ' + e.message))
    const f = cache.createCachedFunc(async (k) => {
      r.computed++
      computedHere.add(k)
      fs.appendFileSync(cfg.log, k + '\\n')
      await sleep(cfg.computeMs)
      return expected(k)
    }, { name: 'ramp', trackSource: false })
    async function one(k) {
      r.calls++
      const missing = !f.has(k)
      const t0 = Date.now()
      try {
        const a = await f(k)
        if (!right(a, k)) r.wrong++
        // Judged by key, not by this process's count: its other calls in flight compute too.
        if (missing && !computedHere.has(k) && Date.now() - t0 >= 5) r.waited++
      } catch (e) {
        r.errors.push(String(e && e.stack || e))
      }
    }
    waitForGo()
    ;(async () => {
      for (let round = 0; round < cfg.rounds; round++) {
        // Several calls in flight at once in this process, on random keys.
        await Promise.all(Array.from({ length: 4 }, () => one(Math.floor(Math.random() * cfg.keys))))
      }
      report(r)
    })()
    `,
    (i) => ({ dir, keys: KEYS, rounds: 30, computeMs: 80, log: join(work, `log-${i}.txt`) }),
  )
  const results = await Promise.all(workers.map((w) => w.result(t)))
  for (const r of results) {
    t.is(r.wrong, 0)
    t.deepEqual(r.errors, [])
  }
  const counts = new Map<number, number>()
  for (let i = 0; i < WORKERS; i++) {
    const log = join(work, `log-${i}.txt`)
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []
    t.is(lines.length, results[i].computed)
    for (const l of lines) counts.set(Number(l), (counts.get(Number(l)) ?? 0) + 1)
  }
  t.is(counts.size, KEYS)
  for (const [k, n] of counts) t.is(n, 1, `key ${k} computed ${n} times`)
  const waited = results.reduce((s, r) => s + r.waited, 0)
  t.true(waited > 0, 'some calls waited for another process')
  const cache = new NumpyFuncCache(dir)
  t.is(cache.stats().misses, KEYS)
  checkIndexAgainstDisk(t, cache, dir)
  t.log(`${Date.now() - started} ms; ${waited} calls waited for another process`)
})

// ---------------------------------------------------------------- limits across processes

/** Stores expected(k) for each k of cfg.ks under the limits cfg.limits; with cfg.use, only loads (must all hit). */
const STORE_KEYS = `
const cache = new NumpyFuncCache(cfg.dir, cfg.limits)
const r = { computed: 0, wrong: 0, errors: [] }
cache.on('storeError', (e) => r.errors.push('storeError: ' + e.message))
const f = cache.createCachedFunc((k) => { r.computed++; return expected(k) }, { name: 'ramp', trackSource: false })
if (cfg.go) waitForGo()
for (const k of cfg.ks) {
  try { if (!right(f(k), k)) r.wrong++ } catch (e) { r.errors.push(String(e && e.stack || e)) }
  if (cfg.pauseMs) sleepSync(cfg.pauseMs)
}
report(r)
`

async function limitsAcrossProcesses(
  t: ExecutionContext,
  limits: { maxEntries?: number; maxBytes?: number },
  within: (s: { entries: number; bytes: number }) => boolean,
): Promise<void> {
  t.timeout(120_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const WORKERS = 4
  // Phase 1: 4 processes store 15 keys each at once, evicting as they go.
  const phase1 = await startTogether(work, WORKERS, STORE_KEYS, (w) => ({
    dir,
    limits,
    ks: Array.from({ length: 15 }, (_, j) => 100 * w + j),
  }))
  for (const r of await Promise.all(phase1.map((w) => w.result(t)))) {
    t.is(r.computed, 15)
    t.is(r.wrong, 0)
    t.deepEqual(r.errors, [])
  }
  const cache = new NumpyFuncCache(dir) // no limits of its own: it only looks
  let stats = cache.stats()
  t.true(within(stats), `within the limits after phase 1: ${JSON.stringify(stats)}`)
  let ks = checkIndexAgainstDisk(t, cache, dir)
  t.true(ks.size >= 8, `phase 1 left ${ks.size} entries`)

  // Phase 2: another process uses the 4 least recently used entries (and exits,
  // writing its uses); then 4 processes store 2 new keys each at once.
  const rows = cache.entries()
  const byAge = rows.map((e) => ks.get(e.key)!) // most recently used first
  const lastUsed = new Map(rows.map((e) => [ks.get(e.key)!, e.lastUsed.getTime()]))
  const used = byAge.slice(-4)
  await sleep(5)
  const user = await startWorker(STORE_KEYS, { dir, limits, ks: used }).result(t)
  t.is(user.computed, 0, 'the used entries were hits')
  await sleep(5)
  const fresh = Array.from({ length: WORKERS }, (_, w) => [1000 + 100 * w, 1001 + 100 * w])
  const phase2 = await startTogether(work, WORKERS, STORE_KEYS, (w) => ({ dir, limits, ks: fresh[w] }))
  for (const r of await Promise.all(phase2.map((w) => w.result(t)))) {
    t.is(r.computed, 2)
    t.deepEqual(r.errors, [])
  }
  stats = cache.stats()
  t.true(within(stats), `within the limits after phase 2: ${JSON.stringify(stats)}`)
  ks = checkIndexAgainstDisk(t, cache, dir)
  const survivors = new Set(ks.values())
  for (const k of used) t.true(survivors.has(k), `entry ${k}, used by another process just before, survived`)
  for (const k of fresh.flat()) t.true(survivors.has(k), `entry ${k}, stored last, survived`)
  const evicted = byAge.filter((k) => !survivors.has(k))
  t.true(evicted.length > 0, 'phase 2 evicted older entries')
  // What was evicted was last used no later than what was kept (times are in milliseconds).
  const keptUnused = byAge.filter((k) => survivors.has(k) && !used.includes(k))
  for (const k of evicted) {
    for (const kept of keptUnused) t.true(lastUsed.get(k)! <= lastUsed.get(kept)!, `evicted ${k} was used after kept ${kept}`)
  }
  t.log(`after phase 1: ${byAge.length} entries; after phase 2: ${JSON.stringify(stats)}, evicted ${evicted.length}`)
}

test.serial('maxEntries across processes: within the limit, index and disk agree, the most recently used survive', (t) =>
  limitsAcrossProcesses(t, { maxEntries: 20 }, (s) => s.entries <= 20),
)

test.serial('maxBytes across processes: within the limit, index and disk agree, the most recently used survive', (t) =>
  limitsAcrossProcesses(t, { maxBytes: 400_000 }, (s) => s.bytes <= 400_000),
)

// ---------------------------------------------------------------- clearCache while others use the directory

/**
 * Two processes store, hit and evict while a third clears the cache `clears` times, 20 ms
 * apart; they stop once it is done. Counted, not timed: a busy machine makes it slower, not fewer.
 */
async function clearWhileOthersStore(t: ExecutionContext, clears: number) {
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const done = join(work, 'cleared')
  const users = await startTogether(
    work,
    3,
    `
    if (cfg.clearer) {
      const cache = new NumpyFuncCache(cfg.dir)
      waitForGo()
      const r = { clears: 0, errors: [] }
      while (r.clears < cfg.clears) {
        try { cache.clearCache() } catch (e) { r.errors.push(String(e)) }
        r.clears++
        sleepSync(20)
      }
      fs.writeFileSync(cfg.done, '')
      report(r)
    } else {
      const cache = new NumpyFuncCache(cfg.dir, { maxEntries: 5 })
      const r = { calls: 0, wrong: 0, storeErrors: [], damaged: 0, errors: [] }
      cache.on('storeError', (e) => r.storeErrors.push(e.message))
      cache.on('damagedEntry', () => r.damaged++)
      const f = cache.createCachedFunc((k) => expected(k), { name: 'ramp', trackSource: false })
      waitForGo()
      do {
        const k = Math.floor(Math.random() * 12)
        r.calls++
        try { if (!right(f(k), k)) r.wrong++ } catch (e) { r.errors.push(String(e)) }
      } while (!fs.existsSync(cfg.done))
      report(r)
    }
    `,
    (i) => ({ dir, done, clears, clearer: i === 2 }),
  )
  const [a, b, clearer] = await Promise.all(users.map((w) => w.result(t)))
  return { users: [a, b], clearer, dir }
}

test.serial('clearCache in one process while two others store and evict: no wrong result, the index never points at missing files', async (t) => {
  t.timeout(60_000)
  const { users, clearer, dir } = await clearWhileOthersStore(t, 75)
  t.deepEqual(clearer.errors, [])
  t.is(clearer.clears, 75)
  for (const r of users) {
    t.is(r.wrong, 0)
    t.deepEqual(r.errors, [])
    t.is(r.damaged, 0)
  }
  const cache = new NumpyFuncCache(dir)
  checkIndexAgainstDisk(t, cache, dir)
  const files = readdirSync(dir)
  t.deepEqual(files.filter((f) => !/^[0-9a-f]{64}\.(npy|json)$/.test(f) && !/^\.numpy-func-cache-index\.sqlite(-wal|-shm)?$/.test(f)), [])
  t.log(`${clearer.clears} clears; calls ${users.map((r) => r.calls).join(', ')}; failed stores ${users.map((r) => r.storeErrors.length).join(', ')}`)
})

// clearCache() leaves the temporary files and leases of live processes, and a
// store whose index vanishes under it still places its entry, so stores running
// in other processes during a clear never fail.
test.serial('clearCache in one process does not make the stores other processes are making fail', async (t) => {
  t.timeout(60_000)
  const { users } = await clearWhileOthersStore(t, 55)
  for (const r of users) t.deepEqual(r.storeErrors.slice(0, 3), [], `${r.storeErrors.length} of ${r.calls} calls failed to store`)
})
