// A result written straight into the cache, more than four times larger
// than the memory its process may use (a memory cgroup's limit, which
// counts the page cache it dirties too): filled, published in a directory
// and on a store, then read back with NumPy and with a partial read. Run
// with the other memory-heavy tests (alone).
import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache } from '../dist'
import { root, runPython, tempDir } from './helpers'
import { BUCKET, type S3Server, location, remoteOf, startServer } from './support/s3'

let server: S3Server
test.before(async () => {
  server = await startServer()
})
test.after.always(async () => {
  await server?.stop()
})

const MiB = 1 << 20
const LIMIT = 512 * MiB
// 320 rows of 1 Mi doubles: 2.5 GiB, five times the limit.
const [ROWS, COLS] = [320, 1 << 20]
const ROW = 201

/** A memory cgroup limited to `limit` bytes, made for this test and removed after it; its processes' peak use. */
function memoryCgroup(t: ExecutionContext, limit: number): { procs: string; peak: () => number | undefined } {
  const name = `nfc-output-${process.pid}-${Date.now()}`
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
  const dir = v2 ? join('/sys/fs/cgroup', name) : join('/sys/fs/cgroup/memory', name)
  try {
    mkdirSync(dir)
  } catch (e) {
    throw new Error(`this test needs a memory cgroup it can make (root, and cgroup v2 or v1's memory controller at ${dir}): ${(e as Error).message}`)
  }
  t.teardown(() => rmdirSync(dir))
  if (v2) {
    writeFileSync(join(dir, 'memory.max'), String(limit))
    if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0')
  } else {
    writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limit))
    // No swap either, where swap is accounted.
    if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(limit))
  }
  const peakFile = join(dir, v2 ? 'memory.peak' : 'memory.max_usage_in_bytes')
  return { procs: join(dir, 'cgroup.procs'), peak: () => (existsSync(peakFile) ? Number(readFileSync(peakFile, 'utf8')) : undefined) }
}

/** What the limited process does: computes the result, filling it in place, then reads it as a hit gives it and one row of it. */
const CHILD = `
const { NumpyFuncCache } = require(process.argv[1])
const [location, options, ROWS, COLS, ROW] = [process.argv[2], JSON.parse(process.argv[3]), ...process.argv.slice(4).map(Number)]
const cache = new NumpyFuncCache(location, options)
let calls = 0
// Anonymous memory (the heap, arrays of its own), sampled after the fill and at the end: a copy would show here.
const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
let anonPeak = anon()
const grid = cache.createCachedFunc(async (seed, out) => {
  calls++
  const d = out.data
  for (let i = 0; i < d.length; i++) d[i] = seed + i
  anonPeak = Math.max(anonPeak, anon())
}, { name: 'grid', output: () => ({ shape: [ROWS, COLS], dtype: '<f8' }) })
;(async () => {
  const given = await grid(0.5)
  const at = [0, 12345, ROW * COLS + 7, ROWS * COLS - 1]
  const givenOk = given.data.length === ROWS * COLS && at.every((i) => given.data[i] === 0.5 + i)
  const handle = await grid.openAsync(0.5)
  const row = await handle.readRowsAsync(ROW)
  const rowOk = row.data.length === COLS && row.data.every((x, i) => x === 0.5 + ROW * COLS + i)
  anonPeak = Math.max(anonPeak, anon())
  process.stdout.write(JSON.stringify({ key: handle.key, calls, givenOk, rowOk, anonPeak, maxRss: process.resourceUsage().maxRSS * 1024 }))
})().catch((e) => { console.error(e); process.exit(1) })
`

/** Runs CHILD in the cgroup whose `procs` file is given. */
function runLimited(
  procs: string,
  where: string,
  options: object,
  env: Record<string, string>,
): { key: string; calls: number; givenOk: boolean; rowOk: boolean; anonPeak: number; maxRss: number } {
  const args = [join(root, 'dist'), where, JSON.stringify(options), String(ROWS), String(COLS), String(ROW)]
  // The shell joins the cgroup, then becomes node: no process of this test's runs outside it.
  const out = spawnSync('sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, process.execPath, '-e', CHILD, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 1 << 20,
  })
  if (out.status !== 0) throw new Error(`the limited process failed (status ${out.status}, signal ${out.signal}): ${out.stderr}`)
  return JSON.parse(out.stdout)
}

/** NumPy's view of the .npy at `file`: its shape, dtype, and whether sampled values are the expected ones. */
function numpyReads(file: string): { shape: number[]; dtype: string; ok: boolean } {
  return JSON.parse(
    runPython(
      `
import json, sys
import numpy as np
a = np.load(sys.argv[1], mmap_mode='r')
rows, cols = a.shape
i = np.arange(0, rows, 7)[:, None] * cols + np.arange(0, cols, 997)[None, :]
ok = bool(np.array_equal(a[::7, ::997], 0.5 + i)) and float(a[-1, -1]) == 0.5 + rows * cols - 1
print(json.dumps({'shape': list(a.shape), 'dtype': a.dtype.str, 'ok': ok}))
`,
      [file],
    ),
  )
}

const BYTES = ROWS * COLS * 8

test.serial('a declared output five times the memory its process may use is published in a directory, and read back by NumPy and by rows', (t) => {
  t.timeout(900_000)
  t.true(BYTES >= 4 * LIMIT)
  const dir = tempDir(t)
  const cache = join(dir, 'cache')
  const group = memoryCgroup(t, LIMIT)
  const run = runLimited(group.procs, cache, {}, { TMPDIR: dir })
  const peak = group.peak()
  t.log(
    `result ${(BYTES / MiB).toFixed(0)} MiB; limit ${LIMIT / MiB} MiB; cgroup peak ${peak === undefined ? '?' : (peak / MiB).toFixed(0)} MiB; ` +
      `anonymous memory at peak ${(run.anonPeak / MiB).toFixed(0)} MiB; max RSS (file pages too) ${(run.maxRss / MiB).toFixed(0)} MiB`,
  )
  t.deepEqual([run.calls, run.givenOk, run.rowOk], [1, true, true])
  t.true(run.anonPeak < LIMIT / 2, "no copy of the result in the process's own memory")
  t.deepEqual(numpyReads(join(cache, `${run.key}.npy`)), { shape: [ROWS, COLS], dtype: '<f8', ok: true })
  t.deepEqual(
    new NumpyFuncCache(cache).entries().map((e) => [e.key, e.shape, e.dtype]),
    [[run.key, [ROWS, COLS], '<f8']],
  )
})

test.serial('a declared output five times the memory its process may use is uploaded to a store from its file, and read back by NumPy and by rows', async (t) => {
  t.timeout(900_000)
  const dir = tempDir(t)
  const loc = location('output-large')
  const group = memoryCgroup(t, LIMIT)
  // No local tier: the draft is a file in TMPDIR, uploaded in parts.
  const run = runLimited(group.procs, loc, { remote: remoteOf(server) }, { ...server.env, TMPDIR: dir })
  t.deepEqual([run.calls, run.givenOk, run.rowOk], [1, true, true])
  t.true(run.anonPeak < LIMIT / 2, "no copy of the result in the process's own memory")
  // versitygw keeps each object as a file: NumPy reads it there.
  const file = join(server.dataDir, BUCKET, loc.slice(`s3://${BUCKET}/`.length), run.key.slice(0, 2), `${run.key}.npy`)
  t.deepEqual(numpyReads(file), { shape: [ROWS, COLS], dtype: '<f8', ok: true })
  // Another process reads a row of it, checked against its block digests.
  const handle = (await new NumpyFuncCache(loc, { remote: remoteOf(server) }).openAsync(run.key))!
  const row = (await handle.readRowsAsync(ROWS - 1)) as { data: Float64Array }
  t.true(row.data.every((x, i) => x === 0.5 + (ROWS - 1) * COLS + i))
  t.deepEqual(readdirSync(dir), [], 'the draft is gone from TMPDIR')
})
