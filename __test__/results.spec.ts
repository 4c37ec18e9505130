// Results end to end: every TypedArray class and n-d form stored as a .npy
// file NumPy loads and loaded back the same; what cannot be cached is refused.
import test from 'ava'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy, writeNpy } from '../dist'
import { runPython, tempDir } from './helpers'
import { type Any, onlyEntry, hexOf, numpyLoad } from './entries'

// ---------------------------------------------------------------- results round trip

const TYPED: Array<[string, () => Any, string]> = [
  ['Int8Array', () => new Int8Array([-128, -1, 0, 127]), '|i1'],
  ['Uint8Array', () => new Uint8Array([0, 1, 255]), '|u1'],
  ['Uint8ClampedArray', () => new Uint8ClampedArray([0, 128, 255]), '|u1'],
  ['Int16Array', () => new Int16Array([-32768, -1, 32767]), '<i2'],
  ['Uint16Array', () => new Uint16Array([0, 65535]), '<u2'],
  ['Int32Array', () => new Int32Array([-2147483648, 2147483647, 5]), '<i4'],
  ['Uint32Array', () => new Uint32Array([0, 4294967295]), '<u4'],
  ['Float32Array', () => new Float32Array([1.5, -0, NaN, Infinity, -3.4e38]), '<f4'],
  ['Float64Array', () => new Float64Array([Math.PI, -0, NaN, -Infinity, 5e-324, 1e308]), '<f8'],
  ['BigInt64Array', () => new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]), '<i8'],
  ['BigUint64Array', () => new BigUint64Array([0n, 2n ** 64n - 1n, 12345678901234567890n]), '<u8'],
]

for (const [cls, make, dtype] of TYPED) {
  test(`${cls} result: stored as 1-d ${dtype}, loaded as ${cls} with the same values; NumPy agrees`, (t) => {
    const dir = tempDir(t)
    let calls = 0
    const f = new NumpyFuncCache(dir).createCachedFunc(function typed(n: number) {
      calls++
      t.is(n, 1)
      return make()
    })
    const expected = make()
    const miss = f(1) as Any
    const hit = f(1) as Any
    t.is(calls, 1)
    for (const [which, got] of [['miss', miss], ['hit', hit]] as const) {
      t.is(Object.getPrototypeOf(got), Object.getPrototypeOf(expected), `${which} class`)
      t.is(got.length, expected.length, `${which} length`)
      t.is(hexOf(got), hexOf(expected), `${which} bytes`)
    }
    // A new instance (no in-memory state) loads the same.
    const again = new NumpyFuncCache(dir).createCachedFunc(function typed(n: number) {
      calls++
      t.is(n, 1)
      return make()
    })(1) as Any
    t.is(calls, 1)
    t.is(Object.getPrototypeOf(again), Object.getPrototypeOf(expected))
    t.is(hexOf(again), hexOf(expected))

    const { npy } = onlyEntry(t, dir)
    const [np] = numpyLoad([npy])
    t.is(np.dtype, dtype)
    t.deepEqual(np.shape, [expected.length])
    t.is(np.hex, hexOf(expected))
    t.false(np.fortran)
  })
}

test('a TypedArray view (subarray) result stores only its own elements', (t) => {
  const dir = tempDir(t)
  const backing = new Float64Array([9, 9, 1, 2, 3, 9])
  const f = new NumpyFuncCache(dir).createCachedFunc(function view() {
    return backing.subarray(2, 5)
  })
  t.deepEqual(f(), new Float64Array([1, 2, 3]))
  t.deepEqual(f(), new Float64Array([1, 2, 3]))
  const [np] = numpyLoad([onlyEntry(t, dir).npy])
  t.deepEqual(np.shape, [3])
  t.is(np.hex, hexOf(new Float64Array([1, 2, 3])))
})

test('an empty TypedArray result round-trips', (t) => {
  const dir = tempDir(t)
  let calls = 0
  const f = new NumpyFuncCache(dir).createCachedFunc(function empty() {
    calls++
    return new Int32Array(0)
  })
  t.deepEqual(f(), new Int32Array(0))
  const hit = f()
  t.is(calls, 1)
  t.true(hit instanceof Int32Array)
  t.is(hit.length, 0)
  const [np] = numpyLoad([onlyEntry(t, dir).npy])
  t.is(np.dtype, '<i4')
  t.deepEqual(np.shape, [0])
})

const ND: Array<[string, () => Any, { shape: number[]; dtype: string; data: Any }]> = [
  [
    '2-d Float64 [2,3]',
    () => ({ data: new Float64Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }),
    { shape: [2, 3], dtype: '<f8', data: new Float64Array([1, 2, 3, 4, 5, 6]) },
  ],
  [
    '3-d Int16 [2,1,3]',
    () => ({ data: new Int16Array([-1, 2, -3, 4, -5, 6]), shape: [2, 1, 3] }),
    { shape: [2, 1, 3], dtype: '<i2', data: new Int16Array([-1, 2, -3, 4, -5, 6]) },
  ],
  [
    '1-d as an n-d object',
    () => ({ data: new Uint32Array([7, 8]), shape: [2] }),
    { shape: [2], dtype: '<u4', data: new Uint32Array([7, 8]) },
  ],
  [
    '0-d (shape [])',
    () => ({ data: new Float32Array([2.5]), shape: [] }),
    { shape: [], dtype: '<f4', data: new Float32Array([2.5]) },
  ],
  [
    'empty [0]',
    () => ({ data: new Float64Array(0), shape: [0] }),
    { shape: [0], dtype: '<f8', data: new Float64Array(0) },
  ],
  [
    'empty [2,0,3]',
    () => ({ data: new BigInt64Array(0), shape: [2, 0, 3] }),
    { shape: [2, 0, 3], dtype: '<i8', data: new BigInt64Array(0) },
  ],
  [
    'scijs-style {data, shape, stride, offset} with an offset',
    () => ({ data: new Float64Array([0, 0, 1, 2, 3, 4, 5, 6, 0]), shape: [2, 3], stride: [3, 1], offset: 2 }),
    { shape: [2, 3], dtype: '<f8', data: new Float64Array([1, 2, 3, 4, 5, 6]) },
  ],
  [
    'scijs-style object built like scijs-ndarray (prototype dtype, getters)',
    () => new ScijsLike(new Int32Array([9, 10, 11, 12, 13, 14]), [3, 2], [2, 1], 0),
    { shape: [3, 2], dtype: '<i4', data: new Int32Array([9, 10, 11, 12, 13, 14]) },
  ],
  [
    'scijs-style Uint8 with an offset and a trailing remainder',
    () => ({ data: new Uint8Array([5, 1, 2, 3, 4, 5, 6, 7, 8, 5, 5]), shape: [2, 2, 2], stride: [4, 2, 1], offset: 1 }),
    { shape: [2, 2, 2], dtype: '|u1', data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
  ],
]

/** Mimics the class scijs-ndarray generates: own data/shape/stride/offset, dtype and getters on the prototype. */
class ScijsLike {
  constructor(
    public data: Int32Array,
    public shape: number[],
    public stride: number[],
    public offset: number,
  ) {}
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1)
  }
  get order(): number[] {
    return [1, 0]
  }
}
;(ScijsLike.prototype as Any).dtype = 'int32'

for (const [what, make, want] of ND) {
  test(`n-d result ${what}: loads back as { data, shape, dtype } on miss and hit; NumPy agrees`, (t) => {
    const dir = tempDir(t)
    let calls = 0
    const f = new NumpyFuncCache(dir).createCachedFunc(function nd() {
      calls++
      return make()
    })
    const miss = f() as Any
    const hit = f() as Any
    t.is(calls, 1)
    for (const [which, got] of [['miss', miss], ['hit', hit]] as const) {
      t.deepEqual(Object.keys(got).sort(), ['data', 'dtype', 'shape'], `${which} form`)
      t.deepEqual(got.shape, want.shape, `${which} shape`)
      t.is(got.dtype, want.dtype, `${which} dtype`)
      t.is(Object.getPrototypeOf(got.data), Object.getPrototypeOf(want.data), `${which} data class`)
      t.is(got.data.length, want.data.length, `${which} data length`)
      t.is(hexOf(got.data), hexOf(want.data), `${which} data bytes`)
    }
    const [np] = numpyLoad([onlyEntry(t, dir).npy])
    t.deepEqual(np.shape, want.shape)
    t.is(np.dtype, want.dtype)
    t.is(np.hex, hexOf(want.data))
    t.false(np.fortran)
  })
}

test('NumPy reads a 2-d entry in C order: a[i, j] is data[i * cols + j]', (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(function grid() {
    return { data: Float64Array.from({ length: 12 }, (_, i) => i * 1.5), shape: [3, 4] }
  })
  f()
  const out = runPython('a = np.load(sys.argv[1]); print(json.dumps([a.shape, float(a[1, 2]), float(a[2, 0]), a.tolist()]))', [
    onlyEntry(t, dir).npy,
  ])
  const [shape, a12, a20, list] = JSON.parse(out)
  t.deepEqual(shape, [3, 4])
  t.is(a12, (1 * 4 + 2) * 1.5)
  t.is(a20, (2 * 4 + 0) * 1.5)
  t.deepEqual(list, [
    [0, 1.5, 3, 4.5],
    [6, 7.5, 9, 10.5],
    [12, 13.5, 15, 16.5],
  ])
})

test('the entry is <dir>/<64-hex>.npy plus a small <key>.json (valid JSON); the only other files are the hidden index', (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(function layout(n: number) {
    return new Float64Array(1000).fill(n)
  })
  f(1)
  const { key, json } = onlyEntry(t, dir)
  t.deepEqual(
    readdirSync(dir)
      .filter((n) => !/^\.numpy-func-cache-index\.sqlite(-wal|-shm|-journal)?$/.test(n))
      .sort(),
    [`${key}.json`, `${key}.npy`],
  )
  t.true(readdirSync(dir).includes('.numpy-func-cache-index.sqlite'))
  t.notThrows(() => JSON.parse(readFileSync(json, 'utf8')))
  t.true(statSync(json).size < 4096, 'metadata is small')
  t.true(statSync(join(dir, `${key}.npy`)).size >= 8000)
})

test('readNpy reads a cache entry and a file NumPy wrote; NumPy reads what writeNpy writes', (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(function forRead() {
    return { data: new Int16Array([1, -2, 3, -4]), shape: [2, 2] }
  })
  f()
  const read = readNpy(onlyEntry(t, dir).npy)
  t.deepEqual(read.shape, [2, 2])
  t.is(read.dtype, '<i2')
  t.deepEqual(read.data, new Int16Array([1, -2, 3, -4]))

  const fromNumpy = join(dir, 'from-numpy.npy')
  runPython('np.save(sys.argv[1], np.arange(6, dtype=np.float32).reshape(3, 2))', [fromNumpy])
  const r = readNpy(fromNumpy)
  t.deepEqual(r.shape, [3, 2])
  t.is(r.dtype, '<f4')
  t.deepEqual(r.data, new Float32Array([0, 1, 2, 3, 4, 5]))

  const written = join(dir, 'written.npy')
  writeNpy(written, { data: new Uint16Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] })
  const [np] = numpyLoad([written])
  t.is(np.dtype, '<u2')
  t.deepEqual(np.shape, [2, 3])
  t.is(np.hex, hexOf(new Uint16Array([1, 2, 3, 4, 5, 6])))
})

// ---------------------------------------------------------------- rejected results

const BAD_RESULTS: Array<[string, () => unknown, RegExp | undefined]> = [
  ['a number', () => 42, /number/],
  ['a plain Array', () => [1, 2, 3], /(?<!Typed)Array/],
  ['a string', () => 'abc', /string/],
  ['null', () => null, /null/],
  ['undefined', () => undefined, /undefined/],
  ['a plain object without data/shape', () => ({ a: 1 }), undefined],
  ['an n-d object whose data is a plain Array', () => ({ data: [1, 2], shape: [2] }), undefined],
  ['a DataView', () => new DataView(new ArrayBuffer(8)), undefined],
  ['an ArrayBuffer', () => new ArrayBuffer(8), undefined],
]

for (const [what, make, says] of BAD_RESULTS) {
  test(`returning ${what} is a TypeError saying what was returned and what is accepted; nothing is written`, (t) => {
    const dir = tempDir(t)
    let calls = 0
    const f = new NumpyFuncCache(dir).createCachedFunc(function bad() {
      calls++
      return make()
    } as Any) as Any
    const err = t.throws(() => f(), { instanceOf: TypeError })
    t.regex(err!.message, /TypedArray/, 'says what is accepted')
    if (says) t.regex(err!.message, says, 'says what was returned')
    t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [])
    // Nothing was cached: the next call computes again.
    t.throws(() => f(), { instanceOf: TypeError })
    t.is(calls, 2)
  })
}

test('an n-d result whose data does not fit its shape is rejected and nothing is written', (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(function misfit() {
    return { data: new Float64Array(5), shape: [2, 3] }
  })
  const err = t.throws(() => f())
  t.true(err instanceof Error)
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [])
})

test('a non-contiguous scijs-style view (transposed strides) is rejected and nothing is written', (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(function transposed() {
    return { data: new Float64Array([1, 2, 3, 4, 5, 6]), shape: [3, 2], stride: [1, 3], offset: 0 }
  })
  t.throws(() => f())
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [])
})
