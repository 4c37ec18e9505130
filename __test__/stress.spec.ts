// Many real processes on one shared directory, as a busy and careless
// cluster would run them: stores, hits, clears, prunes, verifies and
// invalidations all at once, processes SIGKILLed and replaced, processes
// in other pid namespaces with the same host name, and two users. Zero
// wrong values, zero cached calls that throw.
import test, { type ExecutionContext } from 'ava'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache } from '../dist'
import { isRoot, readablePackageCopy, root, tempDir } from './helpers'

/** What every worker starts with: the package (argv[1]), its config (argv[2]), and checked results. */
const PRELUDE = `
const pkg = require(process.argv[1])
const fs = require('fs')
const cfg = JSON.parse(process.argv[2])
function expected(k) {
  const a = new Float64Array(100 + (k * 37) % 900)
  for (let i = 0; i < a.length; i++) a[i] = k * 1e6 + i
  return a
}
function right(a, k) {
  const e = expected(k)
  if (!(a instanceof Float64Array) || a.length !== e.length) return false
  for (let i = 0; i < e.length; i += 7) if (a[i] !== e[i]) return false
  return a[a.length - 1] === e[e.length - 1]
}
const r = { calls: 0, wrong: 0, thrown: [], damaged: 0, storeErrors: 0 }
function cacheFor(options) {
  const cache = new pkg.NumpyFuncCache(cfg.dir, options)
  cache.on('damagedEntry', () => r.damaged++)
  cache.on('storeError', (e) => { r.storeErrors++; r.thrown.push('storeError: ' + e.message) })
  return cache
}
function report() { process.stdout.write('result ' + JSON.stringify(r) + '\\n') }
`

/** Stores and hits of two functions, one with computeOnce, sync and async. */
const WORKER = `
const cache = cacheFor({ maxEntries: 40 })
const f = cache.createCachedFunc((k) => expected(k), { name: 'expected', trackSource: false })
const once = cache.createCachedFunc(async (k) => expected(k), { name: 'expected-once', trackSource: false, computeOnce: { staleAfter: 2000 } })
;(async () => {
  for (let i = 0; i < cfg.calls; i++) {
    const k = Math.floor(Math.random() * cfg.keys)
    r.calls++
    try {
      const a = i % 3 === 0 ? await once(k) : f(k)
      if (!right(a, k)) r.wrong++
    } catch (e) {
      r.thrown.push(String(e && e.stack || e))
    }
  }
  report()
})()
`

/** Everything else a cache can be asked, over and over, while the workers work. */
const JANITOR = `
const cache = cacheFor({})
const f = cache.createCachedFunc((k) => expected(k), { name: 'expected', trackSource: false })
for (let i = 0; i < cfg.rounds; i++) {
  const k = Math.floor(Math.random() * cfg.keys)
  const steps = [
    () => cache.clearCache(),
    () => cache.prune({ maxEntries: 15 }),
    () => cache.stats(),
    () => cache.entries(),
    () => f.has(k),
    () => f.invalidate(k),
    () => cache.verify({ dryRun: true }),
    () => { r.calls++; if (!right(f(k), k)) r.wrong++ },
  ]
  try {
    steps[i % steps.length]()
  } catch (e) {
    r.thrown.push(String(e && e.stack || e))
  }
}
report()
`

interface Run {
  child: ChildProcess
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
}

/** Starts `body` in a node process, under `wrap` (e.g. unshare, setpriv) when given. */
function start(body: string, cfg: object, pkg = join(root, 'dist'), wrap: string[] = []): Run {
  const args = [process.execPath, '-e', PRELUDE + body, pkg, JSON.stringify(cfg)]
  const [cmd, ...rest] = [...wrap, ...args]
  const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<Awaited<Run['done']>>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, done }
}

/** The report of a run that finished (not killed), checked to have exited cleanly. */
async function reportOf(t: ExecutionContext, run: Run): Promise<any> {
  const e = await run.done
  t.is(e.code, 0, `${e.signal ?? ''} ${e.stderr}`)
  const line = e.stdout.split('\n').find((l) => l.startsWith('result '))
  if (!line) throw new Error(`no result: ${e.stdout} ${e.stderr}`)
  return JSON.parse(line.slice(7))
}

function checkReports(t: ExecutionContext, reports: any[]): void {
  for (const r of reports) {
    t.is(r.wrong, 0, 'no call returned a wrong array')
    t.deepEqual(r.thrown, [], 'no call threw, and no store failed')
  }
}

/** After everything: a prune, and then the index says exactly what the files say. */
function checkIndexAgainstDisk(t: ExecutionContext, dir: string): void {
  const cache = new NumpyFuncCache(dir)
  cache.prune()
  const onDisk = readdirSync(dir)
    .filter((n) => /^[0-9a-f]{64}\.npy$/.test(n) && existsSync(join(dir, n.replace(/npy$/, 'json'))))
    .map((n) => n.slice(0, 64))
    .sort()
  const rows = cache.entries()
  t.deepEqual(rows.map((e) => e.key).sort(), onDisk)
  for (const e of rows) t.is(e.bytes, statSync(join(dir, `${e.key}.npy`)).size + statSync(join(dir, `${e.key}.json`)).size)
  t.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temporary file outlives its processes',
  )
}

function sharedDir(t: ExecutionContext): string {
  const parent = tempDir(t)
  chmodSync(parent, 0o755)
  const dir = join(parent, 'shared')
  mkdirSync(dir)
  chmodSync(dir, 0o777)
  return dir
}

test.serial('a busy shared directory: stores, hits, clears, prunes, verifies and SIGKILLs, with zero wrong and zero thrown', async (t) => {
  t.timeout(600_000)
  const dir = sharedDir(t)
  const cfg = { dir, calls: 1500, keys: 60 }
  const finished: Run[] = []
  const started = Date.now()
  const janitors = [start(JANITOR, { dir, keys: 60, rounds: 800 }), start(JANITOR, { dir, keys: 60, rounds: 800 })]
  const workers = Array.from({ length: 10 }, () => start(WORKER, cfg))
  // Chains of short-lived processes: one in three is killed mid-work and replaced.
  let killed = 0
  for (let i = 0; i < workers.length; i++) {
    if (i % 3 !== 0) {
      finished.push(workers[i])
      continue
    }
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 1000))
    workers[i].child.kill('SIGKILL')
    if ((await workers[i].done).signal === 'SIGKILL') killed++
    finished.push(start(WORKER, cfg))
  }
  const reports = await Promise.all([...finished, ...janitors].map((w) => reportOf(t, w)))
  checkReports(t, reports)
  checkIndexAgainstDisk(t, dir)
  const calls = reports.reduce((s, r) => s + r.calls, 0)
  const damaged = reports.reduce((s, r) => s + r.damaged, 0)
  t.true(killed > 0, 'some workers were killed mid-work')
  t.log(`${calls} checked calls by ${finished.length} workers and 2 janitors in ${Date.now() - started} ms; ${killed} SIGKILLed; ${damaged} damaged-entry events`)
})

const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']

test.serial('two users on one directory: each stores, hits, clears and prunes what the other wrote, with zero wrong and zero thrown', async (t) => {
  t.timeout(300_000)
  if (!isRoot || spawnSync('setpriv', ['--version']).status !== 0) return t.pass('needs root and setpriv: skipped')
  const dir = sharedDir(t)
  const pkg = readablePackageCopy(t).dist
  const cfg = { dir, calls: 800, keys: 30 }
  const runs = [
    start(WORKER, cfg),
    start(WORKER, cfg),
    start(WORKER, cfg, pkg, asNobody),
    start(WORKER, cfg, pkg, asNobody),
    start(JANITOR, { dir, keys: 30, rounds: 400 }),
    start(JANITOR, { dir, keys: 30, rounds: 400 }, pkg, asNobody),
  ]
  checkReports(t, await Promise.all(runs.map((w) => reportOf(t, w))))
  checkIndexAgainstDisk(t, dir)
})

const inOtherPidNamespace = ['unshare', '--pid', '--fork', '--uts']

test.serial("a process in another pid namespace with the same host name keeps its hands off this one's lease and temporary files", async (t) => {
  t.timeout(120_000)
  if (!isRoot || spawnSync('unshare', ['--pid', '--fork', 'true']).status !== 0) return t.pass('needs root and unshare: skipped')
  const dir = join(tempDir(t), 'cache')
  mkdirSync(dir)
  // A: here, holding the lease of key 1 for a long computation.
  const holder = start(
    `const cache = cacheFor({})
     const f = cache.createCachedFunc((k) => { fs.writeFileSync(cfg.dir + '/../computing', String(process.pid)); const end = Date.now() + cfg.ms; while (Date.now() < end) {} return expected(k) }, { name: 'slow', trackSource: false, computeOnce: { staleAfter: 60000 } })
     r.calls++
     if (!right(f(1), 1)) r.wrong++
     report()`,
    { dir, ms: 4000 },
  )
  while (!existsSync(join(dir, '..', 'computing'))) await new Promise((r) => setTimeout(r, 20))
  // A's in-progress store, as its name would be (this host's tag, A's pid).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tag: string = require('../binding/index.js').hostTag()
  const temp = `.${'a'.repeat(64)}.npy.${tag}-${holder.child.pid}-00ff.tmp`
  writeFileSync(join(dir, temp), 'in progress')
  // B: the same host name, its own pid namespace, where A's pid does not exist.
  const other = start(
    `const cache = cacheFor({})
     const f = cache.createCachedFunc((k) => { r.computed = (r.computed || 0) + 1; return expected(k) }, { name: 'slow', trackSource: false, computeOnce: { staleAfter: 60000 } })
     const report0 = cache.prune()
     r.calls++
     if (!right(f(1), 1)) r.wrong++
     r.pid = process.pid
     report()`,
    { dir },
    join(root, 'dist'),
    inOtherPidNamespace,
  )
  const [a, b] = await Promise.all([reportOf(t, holder), reportOf(t, other)])
  checkReports(t, [a, b])
  t.is(b.pid, 1, 'B ran in a pid namespace of its own')
  t.is(b.computed, undefined, "B waited for A's live lease instead of breaking it and computing")
  t.true(existsSync(join(dir, temp)), "B's prune kept A's temporary file")
})
