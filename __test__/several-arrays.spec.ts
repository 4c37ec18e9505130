// Cached functions that return several arrays: a tuple `[a, b]` or a record
// `{ mean, cov }`, stored as one .npz entry that NumPy opens, loaded back in
// the same form; what cannot be stored is refused naming the array; an
// archive planted under an entry's name is not taken for it.
import test from 'ava'
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { ErrorCodes, NumpyFuncCache, readNpz } from '../dist'
import { root, runPython, tempDir } from './helpers'

type Any = any

/** What NumPy's np.load makes of an .npz: per key, in its order, dtype, shape, Fortran order and data as hex. */
function numpyView(path: string): [string, string, number[], boolean, string][] {
  const source = `with np.load(sys.argv[1]) as z:\n    print(json.dumps([[k, z[k].dtype.str, list(z[k].shape), bool(np.isfortran(z[k])), z[k].tobytes(order='A').hex()] for k in z.files]))`
  return JSON.parse(runPython(source, [path]))
}

const hex = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex')
const npzOf = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.npz'))

test('a record and a tuple come back with the classes, forms, names and order they were returned in, sync, async and mapped', async (t) => {
  const dir = tempDir(t)
  for (const mmap of [false, true]) {
    const cache = new NumpyFuncCache(join(dir, `mmap-${mmap}`), { mmap })
    let calls = 0
    const moments = cache.createCachedFunc((n: number) => {
      calls++
      return {
        mean: Float64Array.from({ length: n }, (_, i) => i * 0.5),
        cov: { data: Float32Array.from({ length: n * n }, (_, i) => i), shape: [n, n] },
        grid: { data: Int16Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3], fortranOrder: true },
        flags: { data: Uint8Array.from([1, 0, 1]), shape: [3], dtype: '|b1' },
        z: { data: Float64Array.from([1, -1, 2, -2]), shape: [2], dtype: '<c16' },
        raw: Buffer.from('bytes'),
        clamped: Uint8ClampedArray.from([0, 255]),
        'σ-größe': new BigUint64Array([2n ** 63n]),
      }
    })
    const missed = moments(3)
    const hit = moments(3)
    t.is(calls, 1)
    t.deepEqual(hit, missed)
    t.deepEqual(Object.keys(hit), ['mean', 'cov', 'grid', 'flags', 'z', 'raw', 'clamped', 'σ-größe'])
    t.true(hit.mean instanceof Float64Array && Buffer.isBuffer(hit.raw) && hit.clamped instanceof Uint8ClampedArray)
    t.deepEqual(hit.grid, { data: Int16Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3], dtype: '<i2', fortranOrder: true })
    t.deepEqual(hit.flags, { data: Uint8Array.from([1, 0, 1]), shape: [3], dtype: '|b1' })
    t.deepEqual(hit.z.dtype, '<c16')
    const pair = cache.createCachedFunc(async (n: number) => [new Int32Array(n).fill(n), { data: new Float64Array(n * 2), shape: [n, 2] }] as const)
    const [a, b] = await pair(4)
    const again = await pair(4)
    t.true(Array.isArray(again) && again.length === 2)
    t.deepEqual(again, [a, b])
    t.true(again[0] instanceof Int32Array)
  }
})

test('NumPy loads the entry as a dict of the record or tuple, and readNpz gives the same', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const mean = new Float64Array([0.5, 1.5])
  const counts = { data: new Int32Array([1, 2, 3, 4, 5, 6]), shape: [3, 2] }
  const grid = { data: Int16Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3], fortranOrder: true }
  cache.createCachedFunc(() => ({ mean, counts, grid }), { name: 'stats' })()
  cache.createCachedFunc(() => [new Uint8Array([9]), mean], { name: 'pair' })()
  const views = npzOf(dir).map((name) => numpyView(join(dir, name)))
  const byFirst = Object.fromEntries(views.map((v) => [v[0][0], v]))
  t.deepEqual(byFirst.mean, [
    ['mean', '<f8', [2], false, hex(mean)],
    ['counts', '<i4', [3, 2], false, hex(counts.data)],
    ['grid', '<i2', [2, 3], true, hex(grid.data)],
  ])
  t.deepEqual(byFirst.arr_0, [
    ['arr_0', '|u1', [1], false, '09'],
    ['arr_1', '<f8', [2], false, hex(mean)],
  ])
  const record = readNpz(join(dir, npzOf(dir).find((n) => numpyView(join(dir, n))[0][0] === 'mean')!))
  t.deepEqual(Object.keys(record), ['mean', 'counts', 'grid'])
  t.deepEqual(record.counts.data, counts.data)
})

test('an array that cannot be stored is a TypeError naming it, and nothing is stored', async (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const refused: [unknown, RegExp, ErrorConstructor][] = [
    [{ mean: new Float64Array(1), count: 3 }, /the result of f\(\)\.count must be a TypedArray/, TypeError],
    [[new Float64Array(1), [1, 2]], /the result of f\(\)\[1\] must be a TypedArray/, TypeError],
    [[new Float64Array(1), [new Float64Array(1)]], /the result of f\(\)\[1\]/, TypeError],
    [{ 'a/b': new Float64Array(1) }, /the result of f\(\)\["a\/b"\] cannot be stored: .*path separator/, TypeError],
    [{ '': new Float64Array(1) }, /the result of f\(\)\[""\] cannot be stored: .*empty/, TypeError],
    [{ '..': new Float64Array(1) }, /names a directory/, TypeError],
    [{ 'a\nb': new Float64Array(1) }, /control character/, TypeError],
    // eslint-disable-next-line no-sparse-arrays
    [[new Float64Array(1), , new Float64Array(1)], /the result of f\(\)\[1\] must be a TypedArray .*got undefined/, TypeError],
    [[], /an empty array: a result holds at least one array/, TypeError],
    [{}, /an empty object: a result holds at least one array/, TypeError],
    [Array.from({ length: 257 }, () => new Uint8Array(1)), /holds 257 arrays; a result holds at most 256/, RangeError],
  ]
  for (const [value, message, instanceOf] of refused) {
    const f = cache.createCachedFunc(() => value as Any, { name: 'f' })
    t.throws(() => f(), { instanceOf, code: ErrorCodes.BAD_RESULT, message })
    const g = cache.createCachedFunc(async () => value as Any, { name: 'f' })
    await t.throwsAsync(g(), { instanceOf, code: ErrorCodes.BAD_RESULT, message })
  }
  t.deepEqual(cache.entries(), [])
  // The most arrays a result holds is stored.
  const most = cache.createCachedFunc(() => Array.from({ length: 256 }, (_, i) => new Uint16Array([i])), { name: 'most' })
  most()
  t.deepEqual(Array.from(most()[255]), [255])
})

test("an archive planted under an entry's name is not taken for it: NumPy's own, or one of other arrays", (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const f = cache.createCachedFunc(() => (calls++, { a: new Float64Array([1, 2]), b: new Int32Array([3]) }), { name: 'f' })
  f()
  const [entry] = npzOf(dir)
  const file = join(dir, entry)
  const damaged: unknown[] = []
  cache.on('damagedEntry', (e) => damaged.push(e))
  // NumPy's savez of the very same arrays: another layout, so not the entry.
  runPython(`np.savez(sys.argv[1], a=np.array([1., 2.]), b=np.array([3], dtype='<i4'))`, [join(dir, 'numpy.npz')])
  copyFileSync(join(dir, 'numpy.npz'), file)
  t.deepEqual(f(), { a: new Float64Array([1, 2]), b: new Int32Array([3]) })
  t.is(calls, 2)
  t.is(damaged.length, 1)
  // The archive of another result, whole and well formed: its digest is not the record's.
  const other = new NumpyFuncCache(join(dir, 'other'))
  other.createCachedFunc(() => ({ a: new Float64Array([9, 9]), b: new Int32Array([9]) }), { name: 'f' })()
  copyFileSync(join(dir, 'other', npzOf(join(dir, 'other'))[0]), file)
  t.deepEqual(f(), { a: new Float64Array([1, 2]), b: new Int32Array([3]) })
  t.is(calls, 3)
  t.is(damaged.length, 2)
  // A record claiming other classes for the same archive.
  const record = join(dir, entry.replace('.npz', '.json'))
  writeFileSync(record, readFileSync(record, 'utf8').replace('"classes":"di"', '"classes":"dd"'))
  t.deepEqual(f(), { a: new Float64Array([1, 2]), b: new Int32Array([3]) })
  t.is(calls, 4)
})

test('the command line lists an entry of several arrays with a line for each', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  cache.createCachedFunc(() => ({ mean: new Float64Array(3), cov: { data: new Float64Array(9), shape: [3, 3] } }), { name: 'moments' })()
  const out = execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'ls', dir], { encoding: 'utf8' })
  t.regex(out, /moments\s+2 arrays/)
  t.regex(out, /\n\s+mean\s+3\s+<f8 float64/)
  t.regex(out, /\n\s+cov\s+3×3\s+<f8 float64/)
  const json = JSON.parse(execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'ls', dir, '--json'], { encoding: 'utf8' }))
  t.deepEqual(json[0].members, [
    { name: 'mean', dtype: '<f8', shape: [3] },
    { name: 'cov', dtype: '<f8', shape: [3, 3] },
  ])
})

test("the cache's limits count an entry of several arrays whole: over maxEntryBytes it is returned, not stored", (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir, { maxEntryBytes: 4096 })
  const tooLarge: Any[] = []
  cache.on('entryTooLarge', (info) => tooLarge.push(info))
  // Two arrays of 2 KiB each: under the limit apiece, over it together.
  let calls = 0
  const f = cache.createCachedFunc(() => (calls++, [new Uint8Array(2048).fill(1), new Uint8Array(2048).fill(2)]), { name: 'halves' })
  t.deepEqual(f()[1][0], 2)
  f()
  t.is(calls, 2, 'not stored, so computed again')
  t.is(tooLarge.length, 2)
  t.true(tooLarge[0].bytes > 4096 && tooLarge[0].limit === 4096)
  t.deepEqual(cache.entries(), [])
})
