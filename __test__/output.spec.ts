// Results written straight into the cache (`output`): every dtype NumPy
// loads the same, the forms and `this` a call has, the limits, and what a
// declaration or a function gets wrong, refused without an entry.
import test from 'ava'
import { readdirSync } from 'node:fs'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { tempDir } from './helpers'
import { type Any, hexOf, numpyLoad, onlyEntry, sleep } from './entries'

const DTYPES: Array<[string, string, (out: Any) => void]> = [
  ['|b1', 'Uint8Array', (out) => out.set([1, 0, 1])],
  ['|i1', 'Int8Array', (out) => out.set([-128, 0, 127])],
  ['<u2', 'Uint16Array', (out) => out.set([0, 1, 65535])],
  ['<f2', 'Uint16Array', (out) => out.set([0x3c00, 0x4000, 0xc000])],
  ['<i4', 'Int32Array', (out) => out.set([-5, 0, 2147483647])],
  ['<f4', 'Float32Array', (out) => out.set([1.5, -0, Infinity])],
  ['<u8', 'BigUint64Array', (out) => out.set([0n, 1n, 2n ** 64n - 1n])],
  ['<c16', 'Float64Array', (out) => out.set([1, 2, 3, 4, 5, 6])],
]

for (const [dtype, cls, fill] of DTYPES) {
  test(`an output of ${dtype} is filled as a ${cls}, stored as NumPy writes it, and hit the same`, (t) => {
    const dir = tempDir(t)
    let calls = 0
    const f = new NumpyFuncCache(dir).createCachedFunc(
      (n: number, out: Any) => {
        calls++
        t.is(out.constructor.name, cls)
        fill(out)
      },
      { name: 'typed', output: (n: number) => ({ shape: [n], dtype }) },
    )
    const miss = f(3) as Any
    const hit = f(3) as Any
    t.is(calls, 1)
    t.is(hexOf(hit), hexOf(miss))
    const [numpy] = numpyLoad([onlyEntry(t, dir).npy])
    t.deepEqual([numpy.dtype, numpy.shape, numpy.hex], [dtype, [3], hexOf(miss)])
  })
}

test('an output of more dimensions is { data, shape, dtype }, of none a scalar, and of no elements an empty array', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const grid = cache.createCachedFunc(
    function (this: Any, n: number, out: Any) {
      // A Float64Array of all n * 4 elements, which reads as { data, shape, dtype } too.
      t.true(out instanceof Float64Array && out.length === n * 4 && (out as Any).data === out)
      t.deepEqual([out.shape, out.dtype], [[n, 2, 2], '<f8'])
      out.data.set(Array.from({ length: n * 4 }, (_, i) => i * this.scale))
    },
    { name: 'grid', output: (n: number) => ({ shape: [n, 2, 2], dtype: 'f8' }) },
  )
  // `this` is the call's, and part of its key.
  const got = grid.call({ scale: 2 }, 2) as Any
  t.deepEqual([got.shape, got.dtype, Array.from(got.data)], [[2, 2, 2], '<f8', [0, 2, 4, 6, 8, 10, 12, 14]])
  t.deepEqual(Array.from((grid.call({ scale: 3 }, 2) as Any).data).slice(0, 2), [0, 3])
  const scalar = cache.createCachedFunc((x: number, out: Any) => void out.data.fill(x), { name: 'scalar', output: () => ({ shape: [], dtype: '<f8' }) })
  t.deepEqual(Array.from((scalar(2.5) as Any).data), [2.5])
  const empty = cache.createCachedFunc((_: number, out: Any) => void t.is(out.length, 0), { name: 'empty', output: () => ({ shape: [0], dtype: '<i4' }) })
  t.deepEqual([empty(1).length, empty(1).length], [0, 0])
  t.is(cache.entries().length, 4)
})

test('what output declares wrong, and what fn returns besides its output, are TypeErrors that store nothing', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const make = (output: Any, fn: Any = () => undefined) => cache.createCachedFunc(fn, { name: 'bad', output })
  const refused = (f: () => unknown, pattern: RegExp) => {
    const e = t.throws(f) as Any
    t.is(e.code, ErrorCodes.BAD_RESULT, e.message)
    t.regex(e.message, pattern)
  }
  refused(() => make(() => [3])(1), /must be \{ shape, dtype \}/)
  refused(() => make(() => ({ shape: [2.5], dtype: '<f8' }))(1), /shape \[2\.5\]|shape .*whole numbers/)
  refused(() => make(() => ({ shape: [-1], dtype: '<f8' }))(1), /whole numbers, each 0 or more/)
  refused(() => make(() => ({ shape: [3], dtype: 'float128' }))(1), /dtype .*float128.*<f8/)
  refused(() => make(() => ({ shape: [2 ** 40, 2 ** 20], dtype: '<f8' }))(1), /largest ArrayBuffer/)
  refused(() => make(() => ({ shape: [3], dtype: '<f8' }), (_: number, out: Float64Array) => out.slice())(1), /must return nothing or that array.*Float64Array/)
  t.throws(() => cache.createCachedFunc(() => undefined, { output: { shape: [3], dtype: '<f8' } } as Any), { code: ErrorCodes.INVALID_ARG, message: /options\.output must be a function/ })
  // Returning the array it was given is fine.
  t.is((make(() => ({ shape: [2], dtype: '<i4' }), (_: number, out: Int32Array) => out.fill(4))(1) as Any)[1], 4)
  t.is(cache.entries().length, 1)
  t.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [])
})

test('a sync function that returns a Promise, or transfers its output away, stores nothing', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const output = () => ({ shape: [4], dtype: '<f8' })
  const promised = cache.createCachedFunc(((_: number, out: Float64Array) => Promise.resolve(out.fill(1))) as Any, { name: 'promised', output } as Any) as Any
  t.throws(() => promised(1), { code: ErrorCodes.BAD_RESULT, message: /returned a Promise/ })
  // Moved into a byte stream, which detaches it (its holder could write it after the entry's digest is taken): refused.
  const moved = cache.createCachedFunc(
    ((_: number, out: Float64Array) => void new ReadableStream({ type: 'bytes', start: (c) => c.enqueue(out) })) as Any,
    { name: 'moved', output } as Any,
  ) as Any
  t.throws(() => moved(1), { message: /detached while the function filled it .* nothing was stored/ })
  t.deepEqual(cache.entries(), [])
  t.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [])
})

test('an output over maxEntryBytes is returned but not stored, with an entryTooLarge event', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir, { maxEntryBytes: 4096 })
  const seen: Any[] = []
  cache.on('entryTooLarge', (info) => seen.push(info))
  let calls = 0
  const f = cache.createCachedFunc(
    (n: number, out: Float64Array) => {
      calls++
      out.fill(n)
    },
    { name: 'big', output: () => ({ shape: [1000], dtype: '<f8' }) },
  )
  t.true(f(7).every((x) => x === 7))
  t.true(f(7).every((x) => x === 7))
  t.is(calls, 2)
  t.is(seen.length, 2)
  t.true(seen[0].bytes > 8000 && seen[0].limit === 4096)
  t.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.numpy-func-cache-index')), [])
})

test('an async output whose arguments change while it fills is returned to its caller and not stored', async (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  process.on('warning', onWarning)
  t.teardown(() => void process.off('warning', onWarning))
  const f = cache.createCachedFunc(
    async (opts: { n: number }, out: Float64Array) => {
      await sleep(5)
      out.fill(opts.n)
      opts.n = 99
    },
    { name: 'changing', output: () => ({ shape: [3], dtype: '<f8' }) },
  )
  t.deepEqual(Array.from(await f({ n: 2 })), [2, 2, 2])
  t.deepEqual(cache.entries(), [])
  await sleep(10)
  t.true(warnings.some((w) => /changed during its computation/.test(w)), JSON.stringify(warnings))
})

test("what output declares is in the key: a declaration that changes with more than the arguments, or with this, misses", (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let width = 2
  let calls = 0
  const f = cache.createCachedFunc(
    (n: number, out: Any) => {
      calls++
      out.data.fill(n)
    },
    { name: 'rows', output: (n: number) => ({ shape: [n, width], dtype: '<f8' }) },
  )
  t.deepEqual((f(3) as Any).shape, [3, 2])
  width = 5
  t.deepEqual((f(3) as Any).shape, [3, 5], 'not the entry of another shape')
  t.deepEqual([(f(3) as Any).shape, calls], [[3, 5], 2])
  // `output` reads `this` (fn does not): calls on two objects have two entries.
  const g = cache.createCachedFunc(
    ((n: number, out: Int32Array) => void out.fill(n)) as Any,
    {
      name: 'perThis',
      output: function (this: { len: number }) {
        return { shape: [this.len], dtype: '<i4' }
      },
    } as Any,
  ) as Any
  t.deepEqual([g.call({ len: 2 }, 7).length, g.call({ len: 4 }, 7).length], [2, 4])
})
