// Processes sharing a directory: atomic writes while others read, writers
// killed mid-store, entries written by one process hitting in another.
import test from 'ava'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { root, tempDir, withoutIndex } from './helpers'
import { type Any, entries, tick } from './entries'

// ---------------------------------------------------------------- processes: atomic writes, crashes

// A module both the test and child processes load, so fn.toString() is the same everywhere.
const BIG_MODULE = `
exports.big = function big(i, n) {
  globalThis.__bigCalls = (globalThis.__bigCalls || 0) + 1
  const a = new Float64Array(n)
  a.fill(i)
  return a
}
`

const WRITER = `
const { NumpyFuncCache } = require(process.argv[2])
const { big } = require(process.argv[3])
const f = new NumpyFuncCache(process.argv[4]).createCachedFunc(big)
const count = Number(process.argv[5]), n = Number(process.argv[6])
for (let i = 0; count < 0 || i < count; i++) {
  const a = f(i, n)
  if (a.length !== n || a[0] !== i || a[n - 1] !== i) { console.error('wrong result for', i); process.exit(2) }
}
`

function writeScripts(work: string): { module: string; writer: string } {
  const module = join(work, 'big.js')
  const writer = join(work, 'writer.js')
  writeFileSync(module, BIG_MODULE)
  writeFileSync(writer, WRITER)
  return { module, writer }
}

function startWriter(s: { module: string; writer: string }, dir: string, count: number, n: number): ChildProcess {
  return spawn(process.execPath, [s.writer, join(root, 'dist'), s.module, dir, String(count), String(n)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = ''
  child.stderr?.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })))
}

/** Every `<key>.npy` visible now must be a complete array of n equal values. */
function checkVisibleEntries(dir: string, n: number): { checked: number; problems: string[] } {
  const problems: string[] = []
  let checked = 0
  for (const name of entries(dir)) {
    let a
    try {
      a = readNpy(join(dir, name))
    } catch (e) {
      problems.push(`${name}: ${(e as Error).message}`)
      continue
    }
    checked++
    const d = a.data as Float64Array
    if (a.dtype !== '<f8' || d.length !== n || a.shape[0] !== n) {
      problems.push(`${name}: ${a.dtype} length ${d.length}`)
      continue
    }
    const v = d[0]
    for (let i = 0; i < n; i += 997) if (d[i] !== v) problems.push(`${name}: element ${i} is ${d[i]}, not ${v}`)
    if (d[n - 1] !== v) problems.push(`${name}: last element is ${d[n - 1]}, not ${v}`)
  }
  return { checked, problems }
}

test.serial('two processes writing the same keys at once while a reader watches: no reader sees a partial file', async (t) => {
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const scripts = writeScripts(work)
  const n = 2_000_000 // 16 MB per entry
  const count = 12
  const writers = [startWriter(scripts, dir, count, n), startWriter(scripts, dir, count, n)]
  const done = Promise.all(writers.map(exited))
  let finished = false
  void done.then(() => (finished = true))
  let checked = 0
  const problems: string[] = []
  while (!finished) {
    const r = checkVisibleEntries(dir, n)
    checked += r.checked
    problems.push(...r.problems)
    await tick()
  }
  for (const r of await done) t.is(r.code, 0, r.stderr)
  t.deepEqual(problems, [])
  t.true(checked > 0, 'the reader saw entries while the writers ran')
  // Afterwards: every key hits with the right values, and no temporary file is left.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { big } = require(scripts.module)
  const g = globalThis as Any
  const before = g.__bigCalls ?? 0
  const f = new NumpyFuncCache(dir).createCachedFunc(big) as Any
  for (let i = 0; i < count; i++) {
    const a = f(i, n) as Float64Array
    t.is(a.length, n)
    t.is(a[0], i)
    t.is(a[n - 1], i)
  }
  t.is((g.__bigCalls ?? 0) - before, 0, 'every key hits')
  t.deepEqual(readdirSync(dir).filter((x) => !/^[0-9a-f]{64}\.(npy|json|blocks)$|^\.numpy-func-cache-index\./.test(x)), [])
  t.is(entries(dir).length, count)
})

test.serial('a writer killed mid-store leaves no partial entry; the call recomputes; clearCache removes its temp files', async (t) => {
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const scripts = writeScripts(work)
  const n = 40_000_000 // 320 MB: the write takes long enough to be caught in progress
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { big } = require(scripts.module)

  let leftovers: string[] = []
  for (let attempt = 0; attempt < 5 && leftovers.length === 0; attempt++) {
    const child = startWriter(scripts, dir, -1, n)
    const gone = exited(child)
    // Busy-wait (synchronously) for a file that is not an entry: the store in progress. Then kill.
    const deadline = Date.now() + 60_000
    let seen = false
    while (Date.now() < deadline) {
      if (existsSync(dir) && readdirSync(dir).some((x) => !/^[0-9a-f]{64}\.(npy|json)$/.test(x))) {
        seen = true
        break
      }
    }
    child.kill('SIGKILL')
    const r = await gone
    t.is(r.signal, 'SIGKILL', r.stderr)
    t.true(seen, 'a store was seen in progress')
    leftovers = readdirSync(dir).filter((x) => !/^[0-9a-f]{64}\.(npy|json)$/.test(x))
  }
  t.true(leftovers.length > 0, 'the kill left a temporary file (could not catch a store in progress)')

  // No visible entry is partial.
  t.deepEqual(checkVisibleEntries(dir, n).problems, [])

  // The interrupted key (and any completed one) gives the right values now.
  const f = new NumpyFuncCache(dir).createCachedFunc(big) as Any
  const keysBefore = entries(dir).length
  for (let i = 0; i <= keysBefore; i++) {
    const a = f(i, n) as Float64Array
    t.is(a.length, n)
    t.is(a[0], i)
    t.is(a[n - 1], i)
  }
  // Leftover temp files are the cache's own: clearCache removes them too.
  new NumpyFuncCache(dir).clearCache()
  t.deepEqual(withoutIndex(readdirSync(dir)), [], 'only the emptied index is left')
  new NumpyFuncCache(dir).clearCache({ removeDir: true })
  t.false(existsSync(dir))
})

test.serial('an entry written by a child process hits in this process', async (t) => {
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const scripts = writeScripts(work)
  const r = await exited(startWriter(scripts, dir, 3, 10))
  t.is(r.code, 0, r.stderr)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { big } = require(scripts.module)
  const g = globalThis as Any
  const before = g.__bigCalls ?? 0
  const f = new NumpyFuncCache(dir).createCachedFunc(big) as Any
  for (let i = 0; i < 3; i++) t.deepEqual(f(i, 10), new Float64Array(10).fill(i))
  t.is((g.__bigCalls ?? 0) - before, 0, 'every call hits')
  t.deepEqual(f(3, 10), new Float64Array(10).fill(3))
  t.is((g.__bigCalls ?? 0) - before, 1, 'a new key computes')
  t.is(entries(dir).length, 4)
})
