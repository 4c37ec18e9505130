// Errors a program can branch on: each carries a stable `code` from
// ErrorCodes, and a failed system call keeps the OS's code and the path.
import test from 'ava'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ErrorCodes, NumpyFuncCache, readNpy, writeNpy } from '../dist'
import { nativeCall } from '../dist/errors'
import { runPython, tempDir } from './helpers'
import { onlyEntry } from './entries'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const native = require('../binding/index.js')

const ramp = (n: number) => new Float64Array(n).map((_, i) => i)

test('every code is ERR_NFC_ and distinct', (t) => {
  const codes = Object.values(ErrorCodes)
  t.true(codes.every((c) => /^ERR_NFC_[A-Z_]+$/.test(c)))
  t.is(new Set(codes).size, codes.length)
})

test('bad arguments and options are TypeErrors or RangeErrors with ERR_NFC_INVALID_ARG', (t) => {
  const dir = tempDir(t)
  t.throws(() => new NumpyFuncCache(42 as never), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG })
  t.throws(() => new NumpyFuncCache(dir, { maxEntries: 2.5 }), { instanceOf: RangeError, code: ErrorCodes.INVALID_ARG })
  const cache = new NumpyFuncCache(dir)
  t.throws(() => cache.createCachedFunc(ramp, { nmae: 'x' } as never), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG })
  t.throws(() => cache.prune({ maxEntries: -1 }), { instanceOf: RangeError, code: ErrorCodes.INVALID_ARG })
  t.throws(() => readNpy('' as string), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG })
  t.throws(() => writeNpy(join(dir, 'x.npy'), [1, 2] as never), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG })
})

test('the binding converts limits exactly: a count that is not whole is refused, not truncated', (t) => {
  const dir = tempDir(t)
  for (const limits of [{ maxEntries: 2.5 }, { maxBytes: 1e3 + 0.5 }, { maxEntries: -1 }]) {
    t.throws(() => nativeCall(() => new native.Cache(dir, { limits })), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG }, JSON.stringify(limits))
  }
  t.notThrows(() => new native.Cache(dir, { limits: { maxEntries: 3, maxBytes: Infinity, maxAge: 0.5 } }))
})

test('arguments a key cannot hold and results that cannot be cached have their own codes', async (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  const f = cache.createCachedFunc(ramp)
  t.throws(() => f((() => 1) as never), { instanceOf: TypeError, code: ErrorCodes.UNKEYABLE_ARG, message: /args\[0\] is a function/ })
  const bad = cache.createCachedFunc(((n: number) => n) as never) as unknown as (n: number) => unknown
  t.throws(() => bad(1), { instanceOf: TypeError, code: ErrorCodes.BAD_RESULT })
  const badAsync = cache.createCachedFunc((async () => 'text') as never) as unknown as () => Promise<unknown>
  await t.throwsAsync(badAsync(), { instanceOf: TypeError, code: ErrorCodes.BAD_RESULT })
})

test('a cache path that is a file: ERR_NFC_NOT_A_DIRECTORY with the path', (t) => {
  const file = join(tempDir(t), 'file')
  writeFileSync(file, 'x')
  t.throws(() => new NumpyFuncCache(file), { code: ErrorCodes.NOT_A_DIRECTORY, message: new RegExp(file) })
})

test('readNpy: a missing file keeps the OS code; a file that is not .npy, or of a dtype not handled, says so', (t) => {
  const dir = tempDir(t)
  const missing = join(dir, 'missing.npy')
  const e = t.throws(() => readNpy(missing), { code: ErrorCodes.IO }) as Error & { osCode: string; path: string; errno: number }
  t.is(e.osCode, 'ENOENT')
  t.is(e.path, missing)
  t.true(e.errno < 0)
  const text = join(dir, 'text.npy')
  writeFileSync(text, 'not an array at all')
  t.throws(() => readNpy(text), { code: ErrorCodes.BAD_NPY, message: /text\.npy/ })
  const strings = join(dir, 'strings.npy')
  runPython(`np.save(sys.argv[1], np.array(['a', 'b']))`, [strings])
  t.throws(() => readNpy(strings), { code: ErrorCodes.UNSUPPORTED_DTYPE, message: /string arrays are not supported/ })
})

test('a damaged entry is reported with ERR_NFC_DAMAGED_ENTRY and the file', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc(ramp)
  f(8)
  const { npy } = onlyEntry(t, dir)
  writeFileSync(npy, 'garbage')
  const events: Array<Error & { code: string; path: string }> = []
  cache.on('damagedEntry', (e) => events.push(e as never))
  f(8)
  t.is(events.length, 1)
  t.is(events[0].code, ErrorCodes.DAMAGED_ENTRY)
  t.is(events[0].path, npy)
})

test('a failed store is ERR_NFC_STORE_FAILED, its cause the file error with the OS code', (t) => {
  const parent = join(tempDir(t), 'sub')
  const cache = new NumpyFuncCache(join(parent, 'cache'))
  // The directory's parent turns out to be a file when the store makes the directory.
  writeFileSync(parent, 'x')
  const errors: Array<Error & { code: string; cause: { code: string; osCode: string; path: string } }> = []
  cache.on('storeError', (e) => errors.push(e as never))
  t.deepEqual(cache.createCachedFunc(ramp)(3), ramp(3))
  t.is(errors.length, 1)
  t.is(errors[0].code, ErrorCodes.STORE_FAILED)
  t.like(errors[0].cause, { code: ErrorCodes.IO, osCode: 'ENOTDIR', path: join(parent, 'cache') })
})

test('clearCache({ removeDir: true }) with foreign files is ERR_NFC_NOT_EMPTY', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  cache.createCachedFunc(ramp)(2)
  writeFileSync(join(dir, 'notes.txt'), 'mine')
  t.throws(() => cache.clearCache({ removeDir: true }), { code: ErrorCodes.NOT_EMPTY, message: /1 file\(s\)/ })
  // The index stays, so the directory still reads as a cache (the CLI and a new cache agree).
  t.true(existsSync(join(dir, '.numpy-func-cache-index.sqlite')))
  t.deepEqual(new NumpyFuncCache(dir).stats(), { entries: 0, bytes: 0, hits: 0, misses: 0, foreign: 0 })
  t.deepEqual(readdirSync(dir).filter((n) => !n.startsWith('.numpy-func-cache-index')), ['notes.txt'])
})

test('an index that cannot be opened is ERR_NFC_INDEX from stats(), never from a cached call', (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, '.numpy-func-cache-index.sqlite'))
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc(ramp)
  t.deepEqual(f(4), ramp(4))
  t.deepEqual(f(4), ramp(4))
  t.throws(() => cache.stats(), { code: ErrorCodes.INDEX })
})

test('readNpy(path, Class) returns that class, and a file another class holds is a TypeError naming both', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'a.npy')
  runPython(`import numpy as np; np.save(${JSON.stringify(path)}, np.arange(3, dtype='<i4'))`)
  const { data } = readNpy(path, Int32Array)
  t.true(data instanceof Int32Array)
  t.deepEqual(Array.from(data), [0, 1, 2])
  t.throws(() => readNpy(path, Float64Array), {
    instanceOf: TypeError,
    code: ErrorCodes.INVALID_ARG,
    message: `readNpy: ${path} holds dtype '<i4', which reads as Int32Array, not Float64Array`,
  })
  t.throws(() => readNpy(path, Array as never), { instanceOf: TypeError, code: ErrorCodes.INVALID_ARG, message: /arrayClass must be a TypedArray class/ })
})

test('paths may be file: URLs, as fs takes them; other URLs are refused by name', (t) => {
  const dir = tempDir(t)
  const url = pathToFileURL(join(dir, 'cache'))
  const cache = new NumpyFuncCache(url)
  t.is(cache.path, join(dir, 'cache'))
  let calls = 0
  const f = cache.createCachedFunc((n: number) => (calls++, ramp(n)), { name: 'ramp', trackSource: false })
  t.deepEqual(f(3), ramp(3))
  t.deepEqual(new NumpyFuncCache(url).createCachedFunc((n: number) => (calls++, ramp(n)), { name: 'ramp', trackSource: false })(3), ramp(3))
  t.is(calls, 1, 'a second cache over the same URL hits')
  const file = new URL('b.npy', pathToFileURL(`${dir}/`))
  writeNpy(file, ramp(4))
  t.deepEqual(readNpy(file, Float64Array).data, ramp(4))
  t.throws(() => new NumpyFuncCache(new URL('https://example.com/cache')), { code: ErrorCodes.INVALID_ARG, message: /path must be a file: URL/ })
  t.throws(() => readNpy(new URL('https://example.com/a.npy')), { code: ErrorCodes.INVALID_ARG, message: /readNpy: path must be a file: URL/ })
})
