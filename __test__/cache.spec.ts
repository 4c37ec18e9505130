// NumpyFuncCache end to end: results on disk as .npy files NumPy loads,
// damaged entries, store failures, clearCache, argument checks, `this`,
// async wrappers, and what concurrent or killed processes leave behind.
import test from 'ava'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy, writeNpy } from '../dist'
import { root, runPython, runUnprivileged, tempDir } from './helpers'

type Ctx = Parameters<typeof tempDir>[0]
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any

const ENTRY = /^[0-9a-f]{64}\.npy$/

function entries(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((n) => ENTRY.test(n)).sort()
}

function onlyEntry(t: Ctx, dir: string): { key: string; npy: string; json: string } {
  const names = entries(dir)
  t.is(names.length, 1, `expected one entry in ${dir}, found ${names.join(', ')}`)
  const key = names[0].slice(0, 64)
  return { key, npy: join(dir, `${key}.npy`), json: join(dir, `${key}.json`) }
}

function hexOf(a: ArrayBufferView): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex')
}

interface NumpyView {
  dtype: string
  shape: number[]
  hex: string
  fortran: boolean
}

/** What real NumPy sees in each file: dtype.str, shape and the C-order bytes. */
function numpyLoad(paths: string[]): NumpyView[] {
  const out = runPython(
    `out = []
for p in sys.argv[1:]:
    a = np.load(p, allow_pickle=False)
    out.append({'dtype': a.dtype.str, 'shape': list(a.shape), 'hex': np.ascontiguousarray(a).tobytes().hex(),
                'fortran': bool(a.flags.f_contiguous and not a.flags.c_contiguous)})
print(json.dumps(out))`,
    paths,
  )
  return JSON.parse(out)
}

const tick = () => new Promise<void>((r) => setImmediate(r))
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

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
    }) as Any
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

// ---------------------------------------------------------------- damaged entries

type Damage = (paths: { npy: string; json: string }) => void

function editHeader(npy: string, from: string, to: string): void {
  assertSameLength(from, to)
  const bytes = readFileSync(npy)
  const text = bytes.toString('latin1')
  const at = text.indexOf(from)
  if (at < 0 || at > 200) throw new Error(`header of ${npy} has no ${from}: ${text.slice(0, 128)}`)
  bytes.write(to, at, 'latin1')
  writeFileSync(npy, bytes)
}

/** Rewrites fields of an entry's record; `expect` are fields it must have first. */
function editRecord(json: string, fields: Record<string, unknown>, expect: Record<string, unknown> = {}): void {
  const record = JSON.parse(readFileSync(json, 'utf8'))
  for (const [k, v] of Object.entries({ format: 2, ...expect })) {
    if (record[k] !== v) throw new Error(`record ${json} has ${k} ${record[k]}, not ${v}`)
  }
  writeFileSync(json, JSON.stringify({ ...record, ...fields }))
}

function assertSameLength(a: string, b: string): void {
  if (a.length !== b.length) throw new Error('header edits must keep the length')
}

const DAMAGE: Array<[string, Damage]> = [
  ['truncated .npy (half)', ({ npy }) => truncateSync(npy, Math.floor(statSync(npy).size / 2))],
  ['truncated .npy (one byte short)', ({ npy }) => truncateSync(npy, statSync(npy).size - 1)],
  ['.npy cut to its header', ({ npy }) => truncateSync(npy, 128)],
  ['empty .npy', ({ npy }) => writeFileSync(npy, '')],
  ['garbage bytes in place of the .npy', ({ npy }) => writeFileSync(npy, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 255)))],
  ['extra bytes after the data (wrong length)', ({ npy }) => writeFileSync(npy, Buffer.concat([readFileSync(npy), Buffer.alloc(16, 1)]))],
  ['a broken magic string', ({ npy }) => {
    const b = readFileSync(npy)
    b[1] = 'X'.charCodeAt(0)
    writeFileSync(npy, b)
  }],
  ['header shape changed, so the length is wrong', ({ npy }) => editHeader(npy, '(4,)', '(3,)')],
  ['header dtype changed to another 8-byte type (metadata does not match)', ({ npy }) => editHeader(npy, "'<f8'", "'<i8'")],
  ['header says Fortran order (metadata does not match)', ({ npy }) => editHeader(npy, "'fortran_order': False", "'fortran_order': 1    ")],
  ['a valid .npy of another length (metadata does not match)', ({ npy }) => writeNpy(npy, new Float64Array([1, 2, 3, 4, 5]))],
  ['a valid .npy of another dtype (metadata does not match)', ({ npy }) => writeNpy(npy, new Float32Array([1, 2, 3, 4]))],
  ['a valid .npy of another shape (metadata does not match)', ({ npy }) => writeNpy(npy, { data: new Float64Array([1, 2, 3, 4]), shape: [2, 2] })],
  ['a valid .npy written by NumPy with another dtype', ({ npy }) => runPython('np.save(sys.argv[1], np.zeros(4, dtype=np.int64))', [npy])],
  ['metadata that is not JSON', ({ json }) => writeFileSync(json, 'not json at all {')],
  ['truncated metadata', ({ json }) => {
    const text = readFileSync(json, 'utf8')
    writeFileSync(json, text.slice(0, Math.floor(text.length / 2)))
  }],
  ['empty metadata', ({ json }) => writeFileSync(json, '')],
  ['metadata {}', ({ json }) => writeFileSync(json, '{}')],
  ['a record naming a class that cannot hold the dtype', ({ json }) => editRecord(json, { class: 'Float32Array' })],
  ['a record of the previous format (an entry of an older version)', ({ json }) => editRecord(json, { format: 1 })],
  ['a record whose data digest is not the data\'s', ({ json }) => editRecord(json, { dataDigest: '0'.repeat(64) })],
  ['a record whose header digest is not the header\'s', ({ json }) => editRecord(json, { headerDigest: 'f'.repeat(64) })],
  ['one bit of the data flipped', ({ npy }) => {
    const b = readFileSync(npy)
    b[b.length - 3] ^= 0x10
    writeFileSync(npy, b)
  }],
  ['the header edited to big-endian (same bytes, swapped values)', ({ npy }) => editHeader(npy, "'<f8'", "'>f8'")],
  ['the .npy missing', ({ npy }) => unlinkSync(npy)],
  ['the metadata missing', ({ json }) => unlinkSync(json)],
]

for (const [what, damage] of DAMAGE) {
  test(`damaged entry, ${what}: a miss, recomputed and replaced, never returned wrong`, (t) => {
    const dir = tempDir(t)
    let calls = 0
    const impl = function fragile(n: number) {
      calls++
      return new Float64Array([n, n + 0.5, n * 2, 7])
    }
    const want = new Float64Array([3, 3.5, 6, 7])
    const f = new NumpyFuncCache(dir).createCachedFunc(impl)
    t.deepEqual(f(3), want)
    const paths = onlyEntry(t, dir)
    damage(paths)
    let again: Any
    // A damaged entry is a miss: no exception, the function runs, the right values come back.
    t.notThrows(() => {
      again = f(3)
    })
    t.is(calls, 2, 'the function is called again')
    t.deepEqual(again, want)
    // The entry was replaced: it hits again, in this instance and a new one.
    t.deepEqual(f(3), want)
    t.deepEqual(new NumpyFuncCache(dir).createCachedFunc(impl)(3), want)
    t.is(calls, 2, 'afterwards it hits')
    t.true(statSync(paths.npy).isFile())
    t.deepEqual(readNpy(paths.npy).data, want)
    const [np] = numpyLoad([paths.npy])
    t.is(np.hex, hexOf(want))
    t.deepEqual(np.shape, [4])
  })
}

test('a damaged n-d entry (header shape edited, same length) is a miss and is replaced', (t) => {
  const dir = tempDir(t)
  let calls = 0
  const impl = function grid2() {
    calls++
    return { data: new Float64Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }
  }
  const f = new NumpyFuncCache(dir).createCachedFunc(impl)
  f()
  const { npy } = onlyEntry(t, dir)
  editHeader(npy, '(2, 3)', '(3, 2)')
  const got = f() as Any
  t.is(calls, 2)
  t.deepEqual(got.shape, [2, 3])
  t.deepEqual((f() as Any).shape, [2, 3])
  t.is(calls, 2)
  t.deepEqual(numpyLoad([npy])[0].shape, [2, 3])
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

// ---------------------------------------------------------------- argument checks

test('new NumpyFuncCache with a non-string path is a TypeError naming path', (t) => {
  for (const bad of [undefined, 42, null, {}, ['/tmp/x'], Buffer.from('/tmp/x')]) {
    const err = t.throws(() => new NumpyFuncCache(bad as Any), { instanceOf: TypeError })
    t.regex(err!.message, /path/)
  }
})

test('createCachedFunc with a non-function is a TypeError naming fn', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  for (const bad of [undefined, 42, 'f', {}, null]) {
    const err = t.throws(() => cache.createCachedFunc(bad as Any), { instanceOf: TypeError })
    t.regex(err!.message, /\bfn\b/)
  }
})

test('createCachedFunc with an unknown option is a TypeError naming it', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const fn = () => new Float64Array(1)
  const err = t.throws(() => cache.createCachedFunc(fn, { nmae: 'x' } as Any), { instanceOf: TypeError })
  t.regex(err!.message, /nmae/)
  const err2 = t.throws(() => cache.createCachedFunc(fn, { name: 'ok', track_source: false } as Any), { instanceOf: TypeError })
  t.regex(err2!.message, /track_source/)
})

test('createCachedFunc with wrong option types is a TypeError naming the option', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const fn = function typed() {
    return new Float64Array(1)
  }
  for (const [opts, name] of [
    [{ name: 42 }, 'name'],
    [{ version: 2 }, 'version'],
    [{ trackSource: 'no' }, 'trackSource'],
    [{ trackSource: 0 }, 'trackSource'],
  ] as const) {
    const err = t.throws(() => cache.createCachedFunc(fn, opts as Any), { instanceOf: TypeError })
    t.true(err!.message.includes(name), `${JSON.stringify(opts)}: ${err!.message}`)
  }
  for (const opts of [42, 'name', [1]]) {
    t.throws(() => cache.createCachedFunc(fn, opts as Any), { instanceOf: TypeError })
  }
})

test('clearCache with an unknown option or a wrong option type is a TypeError naming it', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const err = t.throws(() => cache.clearCache({ removedir: true } as Any), { instanceOf: TypeError })
  t.regex(err!.message, /removedir/)
  const err2 = t.throws(() => cache.clearCache({ removeDir: 'yes' } as Any), { instanceOf: TypeError })
  t.regex(err2!.message, /removeDir/)
})

// ---------------------------------------------------------------- the wrapper

test('the wrapper passes `this` through to the function', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const seen: unknown[] = []
  const obj = {
    scale: 3,
    scaled: cache.createCachedFunc(function scaled(this: { scale: number }, n: number) {
      seen.push(this)
      return new Float64Array([n * this.scale])
    }),
  }
  t.deepEqual(obj.scaled(2), new Float64Array([6]))
  t.is(seen[0], obj)
  const other = { scale: 10 }
  t.deepEqual(obj.scaled.call(other as Any, 5), new Float64Array([50]))
  t.is(seen[1], other)
})

test('the wrapper passes the arguments through unchanged', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const arr = new Float64Array([1, 2])
  const opts = { order: 2, nested: { k: 'v' } }
  let got: unknown[] = []
  const f = cache.createCachedFunc(function passthrough(...args: unknown[]) {
    got = args
    return new Float64Array([1])
  })
  f(3, opts, arr, undefined)
  t.is(got.length, 4)
  t.is(got[0], 3)
  t.is(got[1], opts)
  t.is(got[2], arr)
  t.is(got[3], undefined)
})

test('an exception thrown by the function propagates and nothing is cached', (t) => {
  const dir = tempDir(t)
  let calls = 0
  const f = new NumpyFuncCache(dir).createCachedFunc(function throwsOnce(n: number) {
    calls++
    if (calls === 1) throw new RangeError('boom')
    return new Float64Array([n])
  })
  t.throws(() => f(1), { instanceOf: RangeError, message: 'boom' })
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [])
  t.deepEqual(f(1), new Float64Array([1]))
  t.is(calls, 2)
})

// ---------------------------------------------------------------- async

test('an async function gives a Promise-returning wrapper, on miss and on hit, with the same form', async (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  let calls = 0
  const f = cache.createCachedFunc(async function asyncNd(n: number) {
    calls++
    await sleep(5)
    return { data: new Int32Array([n, n + 1]), shape: [2, 1] }
  })
  const p1 = f(1)
  t.true(p1 instanceof Promise)
  const miss = await p1
  const p2 = f(1)
  t.true(p2 instanceof Promise)
  const hit = await p2
  t.is(calls, 1)
  t.deepEqual(miss, { data: new Int32Array([1, 2]), shape: [2, 1], dtype: '<i4' })
  t.deepEqual(hit, miss)
})

test('concurrent same-key calls of an async wrapper share one computation; other keys compute separately', async (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const f = cache.createCachedFunc(async function slow(n: number) {
    calls++
    await sleep(100)
    return new Float64Array([n, calls])
  })
  const results = await Promise.all([f(1), f(1), f(1), f(2), f(1)])
  t.is(calls, 2)
  for (const i of [0, 1, 2, 4]) t.is(results[i][0], 1)
  t.deepEqual(results[1], results[0])
  t.deepEqual(results[4], results[0])
  t.is(results[3][0], 2)
  t.is(entries(dir).length, 2)
})

test('a rejected async computation is not cached: concurrent callers share the rejection, a later call computes again', async (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const f = cache.createCachedFunc(async function flaky(n: number) {
    calls++
    await sleep(30)
    if (calls === 1) throw new Error('transient failure')
    return new Float64Array([n])
  })
  const [a, b] = await Promise.allSettled([f(7), f(7)])
  t.is(calls, 1)
  t.is(a.status, 'rejected')
  t.is(b.status, 'rejected')
  t.is((a as PromiseRejectedResult).reason.message, 'transient failure')
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [])
  t.deepEqual(await f(7), new Float64Array([7]))
  t.is(calls, 2)
  t.deepEqual(await f(7), new Float64Array([7]))
  t.is(calls, 2)
})

test('an async function resolving to a non-array rejects with a TypeError and writes nothing', async (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(async function asyncBad() {
    return [1, 2, 3] as Any
  })
  const err = await t.throwsAsync(f(), { instanceOf: TypeError })
  t.regex(err!.message, /TypedArray/)
  t.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [])
})

test('an async wrapper with an unsupported argument rejects (does not throw synchronously) with the path', async (t) => {
  const f = new NumpyFuncCache(tempDir(t)).createCachedFunc(async function asyncArgs(_o: unknown) {
    return new Float64Array(1)
  })
  let p: Promise<unknown> | undefined
  t.notThrows(() => {
    p = f({ cb: () => 1 })
  })
  const err = await t.throwsAsync(p!, { instanceOf: TypeError })
  t.true(err!.message.includes('args[0].cb'), err!.message)
})

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
  t.deepEqual(readdirSync(dir).filter((x) => !/^[0-9a-f]{64}\.(npy|json)$|^\.numpy-func-cache-index\./.test(x)), [])
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
  t.deepEqual(readdirSync(dir), [])
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
