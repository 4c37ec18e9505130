// The entry record (<key>.json) as the core owns it: what it holds, that
// only entries passing every check count as hits, and that entries of an
// older format are misses that a store replaces.
import test from 'ava'
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { runPython, runUnprivileged, tempDir } from './helpers'
import { onlyEntry } from './entries'

function counted(dir: string) {
  const cache = new NumpyFuncCache(dir)
  const damaged: Error[] = []
  cache.on('damagedEntry', (e) => damaged.push(e))
  const state = { calls: 0 }
  const f = cache.createCachedFunc(
    (n: number) => {
      state.calls++
      return { data: new Float64Array([n, n + 1, n + 2, n + 3]), shape: [2, 2] }
    },
    { name: 'grid', trackSource: false },
  )
  return { cache, f, state, damaged }
}

test('a miss, then a call on a damaged record: 0 hits and 2 misses, not a hit counted and then recomputed', (t) => {
  const dir = tempDir(t)
  const { cache, f, state, damaged } = counted(dir)
  f(1)
  const { json } = onlyEntry(t, dir)
  writeFileSync(json, '{"format":2,"function":"grid","result":')
  t.deepEqual(f(1), { data: new Float64Array([1, 2, 3, 4]), shape: [2, 2], dtype: '<f8' })
  t.is(state.calls, 2)
  t.is(damaged.length, 1)
  t.like(cache.stats(), { hits: 0, misses: 2, entries: 1 })
  f(1)
  t.like(cache.stats(), { hits: 1, misses: 2 })
})

test('the record holds only what the header cannot say, and NumPy needs nothing but the .npy', (t) => {
  const dir = tempDir(t)
  const { f } = counted(dir)
  f(5)
  const { npy, json } = onlyEntry(t, dir)
  const record = JSON.parse(readFileSync(json, 'utf8'))
  t.deepEqual(Object.keys(record).sort(), ['boot', 'class', 'created', 'dataDigest', 'format', 'function', 'headerDigest', 'result'])
  t.regex(record.boot, /^[0-9a-f]{16}$/)
  t.like(record, { format: 2, function: 'grid', result: 'ndarray', class: 'Float64Array' })
  t.regex(record.headerDigest, /^[0-9a-f]{64}$/)
  t.regex(record.dataDigest, /^[0-9a-f]{64}$/)
  t.false(Number.isNaN(Date.parse(record.created)))
  // dtype, shape and order are the header's alone.
  t.like(readNpy(npy), { shape: [2, 2], dtype: '<f8', fortranOrder: false })
  t.is(runPython(`a = np.load(sys.argv[1]); print(a.dtype.str, a.shape, a.sum())`, [npy]).trim(), '<f8 (2, 2) 26.0')
})

test('an entry whose record is of the previous format is a miss, not damage; the store replaces it with the current one', (t) => {
  const dir = tempDir(t)
  const { f, state, damaged } = counted(dir)
  f(2)
  const { json } = onlyEntry(t, dir)
  // What format 1 looked like: dtype, shape and order repeated from the header.
  const old = { format: 1, function: 'grid', result: 'ndarray', class: 'Float64Array', dtype: '<f8', shape: [2, 2], fortranOrder: false, created: new Date().toISOString() }
  writeFileSync(json, JSON.stringify(old))
  const again = counted(dir)
  t.deepEqual(again.f(2), { data: new Float64Array([2, 3, 4, 5]), shape: [2, 2], dtype: '<f8' })
  t.is(again.state.calls, 1, 'recomputed')
  t.is(again.damaged.length + damaged.length, 0, 'an older entry is not reported as damaged')
  t.is(JSON.parse(readFileSync(json, 'utf8')).format, 2)
  again.f(2)
  t.is(again.state.calls, 1)
  t.is(state.calls, 1)
})

test('a prune removes entries of older formats and counts them with the leftovers', (t) => {
  const dir = tempDir(t)
  const { f } = counted(dir)
  f(1)
  f(2)
  const [old, current] = entryKeys(dir)
  writeFileSync(join(dir, `${old}.json`), JSON.stringify({ format: 1, function: 'grid' }))
  // Without its index the cache rebuilds it from the files, reading every entry's record.
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, `.numpy-func-cache-index.sqlite${suffix}`), { force: true })
  t.like(new NumpyFuncCache(dir).prune(), { removedLeftovers: 1, entries: 1 })
  t.deepEqual(entryKeys(dir), [current])
  t.false(existsSync(join(dir, `${old}.json`)))
})

function entryKeys(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^[0-9a-f]{64}\.npy$/.test(n))
    .map((n) => n.slice(0, 64))
    .sort()
}

test('a prune by a user who cannot read some records leaves those entries alone', (t) => {
  const dir = tempDir(t)
  chmodSync(dir, 0o777)
  const { f } = counted(dir)
  f(1)
  f(2)
  const keys = entryKeys(dir)
  // Another user's entries, private to them; the index is rebuilt by whoever comes next.
  for (const key of keys) chmodSync(join(dir, `${key}.json`), 0o600)
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, `.numpy-func-cache-index.sqlite${suffix}`), { force: true })
  const out = runUnprivileged(
    t,
    `const { NumpyFuncCache } = require(process.argv[2])
    const report = new NumpyFuncCache(process.argv[3]).prune()
    process.stdout.write(JSON.stringify({ uid: process.getuid(), report }))`,
    [dir],
  )
  if (out.uid === 0) return t.pass('running as root: permissions do not apply, nothing to test')
  t.is(out.report.removedLeftovers, 0, JSON.stringify(out.report))
  t.deepEqual(entryKeys(dir), keys, 'both entries are still there')
  t.deepEqual(f(1), { data: new Float64Array([1, 2, 3, 4]), shape: [2, 2], dtype: '<f8' })
})

test('with computeOnce, a damaged entry is reported once per call, not on every poll', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir, { computeOnce: true })
  const damaged: Error[] = []
  cache.on('damagedEntry', (e) => damaged.push(e))
  const f = cache.createCachedFunc((n: number) => new Float64Array(4).fill(n), { name: 'fill', trackSource: false })
  f(7)
  writeFileSync(join(dir, `${entryKeys(dir)[0]}.npy`), 'garbage')
  t.deepEqual(f(7), new Float64Array(4).fill(7))
  t.is(damaged.length, 1)
})

test("entries() names a function without a name '(anonymous)', as the CLI's ls does", (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  cache.createCachedFunc((n: number) => new Float64Array(n))(2)
  cache.createCachedFunc(function named(n: number) {
    return new Float64Array(n)
  })(2)
  t.deepEqual(cache.entries().map((e) => e.function).sort(), ['(anonymous)', 'named'])
})
