// The cache directory is shared ground: another user who can write it may
// plant anything under the cache's names. Each test here is one way that
// used to reach outside the cache, hang, kill or mislead a process, and
// shows that it no longer does.
import test from 'ava'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { python, root, tempDir } from './helpers'

const DIST = JSON.stringify(join(root, 'dist'))
const INDEX = '.numpy-func-cache-index.sqlite'
const keysIn = (dir: string) =>
  readdirSync(dir)
    .filter((n) => /^[0-9a-f]{64}\.npy$/.test(n))
    .map((n) => n.slice(0, 64))

/** Runs `source` in a child node (the package as `pkg`); its stdout as JSON. A hang fails after `timeout` ms. */
function child(source: string, args: string[] = [], timeout = 60_000): { out: any; status: number | null; signal: string | null; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', `const pkg = require(${DIST});\n${source}`, ...args], { encoding: 'utf8', timeout })
  if (r.error) throw new Error(`child failed to run or hung past ${timeout} ms: ${r.error.message}\n${r.stderr}`)
  let out: any
  try {
    out = JSON.parse(r.stdout)
  } catch {
    out = r.stdout
  }
  return { out, status: r.status, signal: r.signal, stderr: r.stderr }
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path])
}

/** A cache in a world-writable directory, as a shared cluster directory is. */
function sharedDir(t: Parameters<typeof tempDir>[0]): string {
  const dir = join(tempDir(t), 'shared')
  mkdirSync(dir)
  chmodSync(dir, 0o777)
  return dir
}

const ramp = (n: number) => Float64Array.from({ length: n }, (_, i) => i)

test('links planted under the index and its journal names change nothing outside and create nothing there', (t) => {
  const dir = sharedDir(t)
  const outside = tempDir(t)
  const victims: Record<string, string> = {}
  for (const suffix of ['', '-wal', '-shm']) {
    const victim = join(outside, `victim${suffix || '-db'}`)
    writeFileSync(victim, `the victim's own ${suffix} file`)
    chmodSync(victim, 0o600)
    victims[victim] = readFileSync(victim, 'utf8')
    symlinkSync(victim, join(dir, `${INDEX}${suffix}`))
  }
  // A link to where nothing is: following it would create a database there.
  const nowhere = join(outside, 'created-by-the-cache')
  symlinkSync(nowhere, join(dir, `${INDEX}-journal`))

  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc(ramp)
  t.deepEqual(f(5), ramp(5))
  t.deepEqual(f(5), ramp(5))
  t.is(cache.stats().entries, 1, 'a real index was made in place of the links')
  for (const [victim, content] of Object.entries(victims)) {
    t.is(readFileSync(victim, 'utf8'), content, `${victim} unchanged`)
    t.is(statSync(victim).mode & 0o777, 0o600, `${victim} not made group- or world-writable`)
  }
  t.false(existsSync(nowhere), 'no file was made through the dangling link')
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    const path = join(dir, `${INDEX}${suffix}`)
    if (existsSync(path)) t.true(statSync(path).isFile() && !readlinkOrNull(path), `${INDEX}${suffix} is a file of the cache's own`)
  }
})

function readlinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path)
  } catch {
    return null
  }
}

test('a FIFO or a link to /dev/zero under a lease name hangs nothing: computeOnce, clearCache, the CLI and readNpy', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir, { computeOnce: true })
  // Keyed by name alone, so the child's call below has this key.
  cache.createCachedFunc(ramp, { name: 'ramp', trackSource: false })(3)
  const [key] = keysIn(dir)
  cache.clearCache()
  mkfifo(join(dir, `.${key}.lock`))
  symlinkSync('/dev/zero', join(dir, `.${'e'.repeat(64)}.lock`))
  // A computeOnce call of the same key: the FIFO is not a lease; it is broken, the call computes.
  const call = child(
    `const f = new pkg.NumpyFuncCache(process.argv[1], { computeOnce: true }).createCachedFunc((n) => Float64Array.from({ length: n }, (_, i) => i), { name: 'ramp', trackSource: false })
     process.stdout.write(JSON.stringify(Array.from(f(3))))`,
    [dir],
  )
  t.is(call.status, 0, call.stderr)
  t.deepEqual(call.out, [0, 1, 2])
  t.deepEqual(keysIn(dir), [key], 'the child computed and stored the key whose lease name held the FIFO')
  // Planted again: clearCache and the CLI's clear remove both without reading or waiting.
  mkfifo(join(dir, `.${key}.lock`))
  const clear = child(`new pkg.NumpyFuncCache(process.argv[1]).clearCache(); process.stdout.write('"cleared"')`, [dir])
  t.is(clear.out, 'cleared', clear.stderr)
  t.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.lock')), [])
  mkfifo(join(dir, `.${key}.lock`))
  const cli = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'clear', dir], { encoding: 'utf8', timeout: 60_000 })
  t.is(cli.status, 0, cli.stderr)
  t.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.lock')), [])
  // readNpy of a FIFO: an error at once.
  const fifo = join(dir, 'pipe.npy')
  mkfifo(fifo)
  const read = child(`try { pkg.readNpy(process.argv[1]); process.stdout.write('"read"') } catch (e) { process.stdout.write(JSON.stringify(e.code)) }`, [fifo])
  t.is(read.out, 'ERR_NFC_BAD_NPY', read.stderr)
})

test('in a directory others may write, the index keeps no shared memory in a file, and truncating its files kills no one', async (t) => {
  t.timeout(120_000)
  const dir = sharedDir(t)
  const stop = join(dir, '..', 'stop')
  // A process making calls for a while, with the index open all along.
  const worker = spawn(
    process.execPath,
    [
      '-e',
      `const pkg = require(${DIST})
       const fs = require('fs')
       const cache = new pkg.NumpyFuncCache(process.argv[1], { maxEntries: 20 })
       const f = cache.createCachedFunc((k) => new Float64Array(64).fill(k), { name: 'fill' })
       let calls = 0, wrong = 0
       while (!fs.existsSync(process.argv[2])) {
         const k = calls++ % 40
         if (f(k)[63] !== k) wrong++
         if (calls % 50 === 0) cache.stats()
       }
       process.stdout.write(JSON.stringify({ calls, wrong }))`,
      dir,
      stop,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  worker.stdout.on('data', (d) => (stdout += d))
  worker.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => worker.on('close', (code, signal) => r({ code, signal })))
  // Another user truncates whatever the index keeps beside it, again and again.
  let truncated = 0
  for (let round = 0; round < 200; round++) {
    for (const suffix of ['-shm', '-wal', '-journal']) {
      try {
        truncateSync(join(dir, `${INDEX}${suffix}`), 0)
        truncated++
      } catch {
        // not there this moment
      }
    }
    await new Promise((r) => setTimeout(r, 5))
  }
  t.false(readdirSync(dir).includes(`${INDEX}-shm`), 'no WAL shared memory in a directory others write')
  writeFileSync(stop, '')
  const { code, signal } = await exited
  t.is(signal, null, `the worker was killed (${signal}); ${stderr}`)
  t.is(code, 0, stderr)
  const r = JSON.parse(stdout)
  t.is(r.wrong, 0)
  t.true(r.calls > 0)
  t.log(`${r.calls} calls while ${truncated} truncations`)
})

test('an entry others could truncate is read, not mapped: truncating it under a process with mmap: true kills no one', (t) => {
  const dir = sharedDir(t)
  const n = 1 << 20 // 8 MiB: mapped when it may be
  // Keyed by name alone, so the child's call below hits this entry.
  new NumpyFuncCache(dir).createCachedFunc((k: number) => new Float64Array(n).fill(k), { name: 'big', trackSource: false })(7)
  const [key] = keysIn(dir)
  const npy = join(dir, `${key}.npy`)
  // Writable by anyone: as a file another user made, or one a group shares.
  chmodSync(npy, 0o666)
  const r = child(
    `const fs = require('fs')
     const f = new pkg.NumpyFuncCache(process.argv[1], { mmap: true }).createCachedFunc((k) => { throw new Error('not a hit') }, { name: 'big', trackSource: false })
     const a = f(7)
     fs.truncateSync(process.argv[2], 4096)
     let sum = 0
     for (let i = 0; i < a.length; i += 512) sum += a[i]
     process.stdout.write(JSON.stringify({ sum, last: a[a.length - 1] }))`,
    [dir, npy],
  )
  t.is(r.signal, null, `killed by ${r.signal}: the entry was mapped`)
  t.is(r.status, 0, r.stderr)
  t.deepEqual(r.out, { sum: 7 * (n / 512), last: 7 })
})

test('a planted multi-GB record is never read whole: a prune and an index rebuild stay small', (t) => {
  const dir = tempDir(t)
  new NumpyFuncCache(dir).createCachedFunc(ramp)(4)
  const [key] = keysIn(dir)
  // 8 GB, sparse: costs no disk, but a read of it would cost 8 GB of memory.
  truncateSync(join(dir, `${key}.json`), 8e9)
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(join(dir, `${INDEX}${suffix}`))) unlinkSync(join(dir, `${INDEX}${suffix}`))
  }
  const r = child(
    `const fs = require('fs')
     const cache = new pkg.NumpyFuncCache(process.argv[1])
     const report = cache.prune()
     const peak = Number(fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\\s+(\\d+)/)[1]) * 1024
     process.stdout.write(JSON.stringify({ report, peak }))`,
    [dir],
  )
  t.is(r.status, 0, r.stderr)
  t.true(r.out.peak < 300e6, `peak memory ${(r.out.peak / 1e6).toFixed(0)} MB`)
  t.like(r.out.report, { removedLeftovers: 1, entries: 0 }, 'the oversized record is not a record: the entry goes')
})

test('a wrong totals row in the index cannot make a store evict everything; a prune sets it right', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir, { maxBytes: 1e6 })
  const f = cache.createCachedFunc((k: number) => new Float64Array(100).fill(k), { name: 'fill' })
  for (let k = 0; k < 5; k++) f(k)
  t.is(cache.stats().entries, 5)
  // Another user (or a damaged index) says the cache holds a petabyte.
  execFileSync(python, ['-c', `import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('UPDATE totals SET bytes = 1000000000000000'); c.commit()`, join(dir, INDEX)])
  f(5)
  t.is(keysIn(dir).length, 6, 'the store evicted nothing: the rows say there is room')
  t.like(cache.prune(), { entries: 6, removedEntries: 0 })
  t.true(cache.stats().bytes < 1e6, `${cache.stats().bytes} bytes after the reconcile`)
})

test('ls shows text from the directory with control and bidi characters escaped', (t) => {
  const dir = tempDir(t)
  const evil = 'ok\u001b[2J\u001b]0;pwned\u0007\u202eevil\r'
  new NumpyFuncCache(dir).createCachedFunc(ramp, { name: evil })(2)
  const r = spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'ls', dir], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  // eslint-disable-next-line no-control-regex
  t.false(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/.test(r.stdout), JSON.stringify(r.stdout))
  t.true(r.stdout.includes('ok\\u001b[2J\\u001b]0;pwned\\u0007\\u202eevil\\u000d'), r.stdout)
  // JSON output is JSON: the name as it is.
  const json = JSON.parse(spawnSync(process.execPath, [join(root, 'dist', 'cli.js'), 'ls', dir, '--json'], { encoding: 'utf8' }).stdout)
  t.is(json[0].function, evil)
})

test('has() says false for a damaged entry, as a call would miss it', (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(ramp)
  f(6)
  t.true(f.has(6))
  const [key] = keysIn(dir)
  const npy = join(dir, `${key}.npy`)
  const bytes = readFileSync(npy)
  bytes[bytes.length - 1] ^= 1
  writeFileSync(npy, bytes)
  t.false(f.has(6))
})

test('a Buffer result comes back a Buffer; more than 64 dimensions is refused, 64 is stored and NumPy loads it', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const buf = cache.createCachedFunc((n: number) => Buffer.from([n, n + 1, n + 2]), { name: 'buf' })
  buf(1)
  const hit = buf(1)
  t.true(Buffer.isBuffer(hit), 'a Buffer, not a plain Uint8Array')
  t.deepEqual([...hit], [1, 2, 3])
  const deep = (dims: number) => ({ data: new Float64Array(1), shape: new Array(dims).fill(1) })
  t.throws(() => cache.createCachedFunc(() => deep(65), { name: 'deep65' })(), { instanceOf: RangeError, code: 'ERR_NFC_BAD_RESULT', message: /65 dimensions; NumPy reads at most 64/ })
  cache.createCachedFunc(() => deep(64), { name: 'deep64' })()
  const sixtyFour = keysIn(dir).map((k) => join(dir, `${k}.npy`)).find((p) => readNpy(p).shape.length === 64)!
  const ndim = execFileSync(python, ['-c', 'import numpy as np, sys; print(np.load(sys.argv[1]).ndim)', sixtyFour], { encoding: 'utf8' })
  t.is(ndim.trim(), '64')
})
