// The wrapper createCachedFunc returns: argument and option checks, `this`
// and arguments passed through, exceptions, and async wrappers.
import test from 'ava'
import { existsSync, readdirSync } from 'node:fs'
import { NumpyFuncCache } from '../dist'
import { tempDir } from './helpers'
import { type Any, entries, sleep } from './entries'

// ---------------------------------------------------------------- argument checks

test('new NumpyFuncCache with a non-string path is a TypeError naming path', (t) => {
  // (undefined is the default location: see directory.spec.ts.)
  for (const bad of [42, null, {}, ['/tmp/x'], Buffer.from('/tmp/x')]) {
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
