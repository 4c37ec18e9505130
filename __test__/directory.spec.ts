// The cache directory: made on the first store, failures to store that
// never fail a call, and clearCache removing only what the cache wrote.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache } from '../dist'
import { root, runUnprivileged, tempDir } from './helpers'
import { type Ctx, type Any, entries, tick, sleep } from './entries'

// ---------------------------------------------------------------- the directory

test('the cache directory (and missing parents) is made on the first store, not before', (t) => {
  const base = tempDir(t)
  const dir = join(base, 'a', 'b', 'cache')
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc(function lazyDir() {
    return new Uint8Array([1])
  })
  t.false(existsSync(join(base, 'a')))
  t.deepEqual(f(), new Uint8Array([1]))
  t.true(statSync(dir).isDirectory())
  t.is(entries(dir).length, 1)
})

test('a cache path that exists as a regular file is an Error at construction', (t) => {
  const base = tempDir(t)
  const file = join(base, 'not-a-dir')
  writeFileSync(file, 'keep me')
  const err = t.throws(() => new NumpyFuncCache(file))
  t.true(err instanceof Error)
  t.true(err!.message.includes(file), `message names the path: ${err!.message}`)
  t.is(readFileSync(file, 'utf8'), 'keep me')
})

// ---------------------------------------------------------------- failing to store

function storeFailureSetup(t: Ctx, how: 'path-is-file' | 'parent-is-file') {
  const base = tempDir(t)
  const dir = how === 'path-is-file' ? join(base, 'cache') : join(base, 'parent', 'cache')
  const cache = new NumpyFuncCache(dir)
  // Made after construction: the store then cannot create the directory.
  writeFileSync(how === 'path-is-file' ? dir : join(base, 'parent'), 'a regular file')
  return { base, dir, cache }
}

for (const how of ['path-is-file', 'parent-is-file'] as const) {
  test(`failing to store (${how}) does not fail the call: the result is returned and 'storeError' is emitted`, (t) => {
    const { cache } = storeFailureSetup(t, how)
    const events: Array<[unknown, unknown]> = []
    cache.on('storeError', (err: unknown, info: unknown) => events.push([err, info]))
    let calls = 0
    const f = cache.createCachedFunc(function unstorable(n: number) {
      calls++
      return { data: new Float32Array([n, n]), shape: [1, 2] }
    })
    let got: Any
    t.notThrows(() => {
      got = f(4)
    })
    t.deepEqual(got, { data: new Float32Array([4, 4]), shape: [1, 2], dtype: '<f4' })
    t.is(calls, 1)
    t.is(events.length, 1)
    t.true(events[0][0] instanceof Error)
    t.is(typeof events[0][1], 'object')
    t.not(events[0][1], null)
  })
}

// The read-only directory case. As root, chmod does not stop writes, so the
// scenario runs in a child process as the unprivileged user `nobody` instead.
const READ_ONLY_CHILD = `
const { NumpyFuncCache } = require(process.argv[2])
const dir = process.argv[3]
const out = { uid: process.getuid(), events: [], warnings: [] }
process.on('warning', (w) => out.warnings.push(String(w && w.message)))
const cache = new NumpyFuncCache(dir)
cache.on('storeError', (err, info) => out.events.push({ isError: err instanceof Error, info: typeof info }))
out.result = Array.from(cache.createCachedFunc(function readOnly(n) { return new Float64Array([n, 2]) })(5))
// And with no listener: a process warning.
out.result2 = Array.from(new NumpyFuncCache(dir).createCachedFunc(function readOnly2(n) { return new Int8Array([n]) })(6))
setTimeout(() => { out.files = require('fs').readdirSync(dir); process.stdout.write(JSON.stringify(out)) }, 50)
`

test('failing to store in a read-only cache directory (chmod 0o555): result returned, storeError emitted, else a warning', (t) => {
  const work = tempDir(t)
  chmodSync(work, 0o755)
  const dir = join(work, 'cache')
  mkdirSync(dir)
  chmodSync(dir, 0o555)
  t.teardown(() => chmodSync(dir, 0o755))
  const out = runUnprivileged(t, READ_ONLY_CHILD, [dir])
  t.not(out.uid, 0, 'the child is not root, so the directory really is read-only to it')
  t.deepEqual(out.result, [5, 2])
  t.deepEqual(out.events, [{ isError: true, info: 'object' }])
  t.deepEqual(out.result2, [6])
  t.is(out.warnings.length, 1, `warnings: ${JSON.stringify(out.warnings)}`)
  t.deepEqual(out.files, [])
})

test.serial('failing to store with no storeError listener emits a process warning instead', async (t) => {
  const { cache } = storeFailureSetup(t, 'path-is-file')
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const f = cache.createCachedFunc(function warned() {
    return new Uint16Array([1, 2, 3])
  })
  t.deepEqual(f(), new Uint16Array([1, 2, 3]))
  await tick()
  await sleep(20)
  t.is(warnings.length, 1)
  t.true(warnings[0] instanceof Error)
})

test('failing to store from an async function still resolves with the result and emits storeError', async (t) => {
  const { cache } = storeFailureSetup(t, 'parent-is-file')
  const errors: unknown[] = []
  cache.on('storeError', (err: unknown) => errors.push(err))
  const f = cache.createCachedFunc(async function asyncUnstorable(n: number) {
    await sleep(1)
    return new Float64Array([n])
  })
  t.deepEqual(await f(2), new Float64Array([2]))
  t.is(errors.length, 1)
})

// ---------------------------------------------------------------- clearCache

const FOREIGN_HEX = 'ab'.repeat(32)

function addForeignFiles(dir: string): Record<string, string> {
  mkdirSync(dir, { recursive: true })
  const files: Record<string, string> = {
    'notes.txt': 'my notes',
    'data.npy': 'not really npy, but mine',
    [`${FOREIGN_HEX}.txt`]: 'named like a key but .txt',
    [`${FOREIGN_HEX.toUpperCase()}.npy`]: 'upper-case hex: not a name the cache writes',
    'subdir/inner.npy': 'inside a subdirectory',
    [`${'cd'.repeat(32)}.npy/inside.txt`]: 'in a directory named like an entry',
  }
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true })
    writeFileSync(join(dir, name), content)
  }
  return files
}

function assertForeignKept(t: Ctx, dir: string, files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    t.true(existsSync(join(dir, name)), `${name} is kept`)
    if (existsSync(join(dir, name))) t.is(readFileSync(join(dir, name), 'utf8'), content)
  }
}

function cacheFilesIn(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^[0-9a-f]{64}\.(npy|json)$/.test(n) && !statSync(join(dir, n)).isDirectory())
}

test('clearCache removes the entries it wrote and keeps the user\'s own files', (t) => {
  const dir = tempDir(t)
  const foreign = addForeignFiles(dir)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const f = cache.createCachedFunc(function clearable(n: number) {
    calls++
    return new Float64Array([n])
  })
  f(1)
  f(2)
  f(3)
  t.is(cacheFilesIn(dir).length, 6)
  cache.clearCache()
  t.deepEqual(cacheFilesIn(dir), [])
  assertForeignKept(t, dir, foreign)
  // Cleared entries are computed again.
  f(1)
  t.is(calls, 4)
})

test('clearCache on a new instance removes entries written earlier by another instance', (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(function earlier(n: number) {
    return new Int32Array([n])
  })
  f(1)
  f(2)
  new NumpyFuncCache(dir).clearCache()
  t.deepEqual(cacheFilesIn(dir), [])
})

test('clearCache never follows a symbolic link out of the directory', (t) => {
  const dir = tempDir(t)
  const outside = tempDir(t)
  const outFile = join(outside, 'precious.npy')
  const outJson = join(outside, 'precious.json')
  const outDir = join(outside, 'precious-dir')
  writeFileSync(outFile, 'precious data')
  writeFileSync(outJson, '{"precious": true}')
  mkdirSync(outDir)
  writeFileSync(join(outDir, 'inside.npy'), 'also precious')
  const cache = new NumpyFuncCache(dir)
  cache.createCachedFunc(function linked() {
    return new Uint8Array([1])
  })()
  const k1 = '12'.repeat(32)
  const k2 = '34'.repeat(32)
  symlinkSync(outFile, join(dir, `${k1}.npy`))
  symlinkSync(outJson, join(dir, `${k1}.json`))
  symlinkSync(outDir, join(dir, `${k2}.npy`))
  t.notThrows(() => cache.clearCache())
  t.is(readFileSync(outFile, 'utf8'), 'precious data')
  t.is(readFileSync(outJson, 'utf8'), '{"precious": true}')
  t.is(readFileSync(join(outDir, 'inside.npy'), 'utf8'), 'also precious')
  t.deepEqual(readdirSync(outside).sort(), ['precious-dir', 'precious.json', 'precious.npy'])
})

test('clearCache with a symlinked entry pointing outside still keeps the outside file when removeDir is asked', (t) => {
  const base = tempDir(t)
  const dir = join(base, 'cache')
  const outFile = join(base, 'outside.npy')
  writeFileSync(outFile, 'outside')
  const cache = new NumpyFuncCache(dir)
  cache.createCachedFunc(function linked2() {
    return new Uint8Array([2])
  })()
  symlinkSync(outFile, join(dir, `${'56'.repeat(32)}.npy`))
  try {
    cache.clearCache({ removeDir: true })
  } catch {
    // Either outcome for the directory is acceptable here; the outside file is what matters.
  }
  t.is(readFileSync(outFile, 'utf8'), 'outside')
})

test('clearCache({ removeDir: true }) removes the directory when only cache files were in it; the cache still works after', (t) => {
  const base = tempDir(t)
  const dir = join(base, 'cache')
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const f = cache.createCachedFunc(function removable(n: number) {
    calls++
    return new Float64Array([n])
  })
  f(1)
  f(2)
  cache.clearCache({ removeDir: true })
  t.false(existsSync(dir))
  t.deepEqual(readdirSync(base), [])
  // The directory is made again on the next store.
  t.deepEqual(f(1), new Float64Array([1]))
  t.is(calls, 3)
  t.is(entries(dir).length, 1)
})

test('clearCache({ removeDir: true }) with foreign files: throws an Error, keeps them, still removes the entries', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc(function withForeign(n: number) {
    return new Float64Array([n])
  })
  f(1)
  const foreign = addForeignFiles(dir)
  t.throws(() => cache.clearCache({ removeDir: true }), { instanceOf: Error })
  t.true(statSync(dir).isDirectory())
  assertForeignKept(t, dir, foreign)
  t.deepEqual(cacheFilesIn(dir), [])
})

test('clearCache before anything was stored (no directory yet) does not throw and creates nothing', (t) => {
  const base = tempDir(t)
  const dir = join(base, 'never')
  const cache = new NumpyFuncCache(dir)
  t.notThrows(() => cache.clearCache())
  t.false(existsSync(dir))
})

// ---------------------------------------------------------------- the default location

/** `new NumpyFuncCache()` in a child process with `env`: its path, after one cached call. */
function defaultPath(env: Record<string, string>): string {
  const script = `
    const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
    const cache = new NumpyFuncCache()
    cache.createCachedFunc((n) => new Float64Array(n), { name: 'f', trackSource: false })(2)
    console.log(cache.path)`
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NUMPY_FUNC_CACHE_DIR' && k !== 'XDG_CACHE_HOME'))
  return execFileSync(process.execPath, ['-e', script], { env: { ...clean, ...env }, encoding: 'utf8' }).trim()
}

test('without a path: $NUMPY_FUNC_CACHE_DIR, else the XDG cache directory, else ~/.cache', (t) => {
  const base = tempDir(t)
  const home = join(base, 'home')
  const named = join(base, 'named')
  t.is(defaultPath({ HOME: home, NUMPY_FUNC_CACHE_DIR: named }), named)
  t.true(readdirSync(named).some((n) => n.endsWith('.npy')), 'the entry went there')
  t.is(defaultPath({ HOME: home, XDG_CACHE_HOME: join(base, 'xdg') }), join(base, 'xdg', 'numpy-func-cache'))
  // A relative XDG_CACHE_HOME is ignored, as the XDG spec says.
  t.is(defaultPath({ HOME: home, XDG_CACHE_HOME: 'relative' }), join(home, '.cache', 'numpy-func-cache'))
  t.is(defaultPath({ HOME: home }), join(home, '.cache', 'numpy-func-cache'))
  t.true(readdirSync(join(home, '.cache', 'numpy-func-cache')).some((n) => n.endsWith('.npy')))
})

// ---------------------------------------------------------------- close

/** This process's open files under `dir` (Linux: /proc/self/fd). */
function openFilesIn(dir: string): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      return target.startsWith(dir) ? [target] : []
    } catch {
      return []
    }
  })
}

test('close() (and Symbol.dispose) writes pending hits and releases the index; a later call opens it again', (t) => {
  if (process.platform !== 'linux') return t.pass('reads /proc/self/fd')
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc((n: number) => new Float64Array(n), { name: 'f', trackSource: false })
  f(4)
  f(4)
  t.true(openFilesIn(dir).some((p) => p.includes('.numpy-func-cache-index')), 'the index is open while in use')
  cache.close()
  t.deepEqual(openFilesIn(dir), [], 'nothing under the directory is open after close()')
  // The hit was written before closing: another process's view shows it.
  const other = new NumpyFuncCache(dir)
  t.is(other.stats().hits, 1)
  other.close()
  t.deepEqual(f(4), new Float64Array(4))
  t.is(cache.stats().hits, 2, 'used again after close(): reopened')
  t.not(openFilesIn(dir).length, 0)
  cache[Symbol.dispose]()
  t.deepEqual(openFilesIn(dir), [], 'Symbol.dispose closes it too')
})
