// Cache keys: what makes two calls share an entry, and what keeps them apart.
// Everything runs against a real cache directory; "hit" means the wrapped
// function was not called again, "miss" means it was.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache } from '../dist'
import { root, tempDir } from './helpers'

const ENTRY = /^[0-9a-f]{64}\.npy$/

/** Entry file names (`<64-hex>.npy`) in `dir`, sorted. */
function entries(dir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  return names.filter((n) => ENTRY.test(n)).sort()
}

/** A cache over a fresh directory and a counting wrapped function. */
function counted(t: Parameters<typeof tempDir>[0]) {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const state = { calls: 0 }
  const f = cache.createCachedFunc(function counter(..._args: unknown[]) {
    state.calls++
    return new Float64Array([state.calls])
  })
  return { dir, cache, f: f as (...args: unknown[]) => Float64Array, state }
}

/** Calls f(...a) then f(...b); true when the second call was a hit. */
function shares(t: Parameters<typeof tempDir>[0], a: unknown[], b: unknown[]): boolean {
  const { f, state } = counted(t)
  const first = f(...a)
  t.deepEqual(first, new Float64Array([1]))
  const before = state.calls
  const second = f(...b)
  const hit = state.calls === before
  // A hit returns the stored value; a miss returns the new computation.
  t.deepEqual(second, new Float64Array([hit ? 1 : 2]))
  return hit
}

// ---------------------------------------------------------------- file names

test('an entry is <64-hex key>.npy with a <key>.json beside it, one per distinct call', (t) => {
  const { dir, f } = counted(t)
  f(3, { order: 2 })
  const first = entries(dir)
  t.is(first.length, 1)
  const key = first[0].slice(0, 64)
  t.true(readdirSync(dir).includes(`${key}.json`))
  f(3, { order: 2 })
  t.deepEqual(entries(dir), first)
  f(4, { order: 2 })
  t.is(entries(dir).length, 2)
})

// ---------------------------------------------------------------- function identity

// Two functions with the same name and different bodies (the name comes from the declaration).
const bodyA = function compute(n: number) {
  return new Float64Array([n, 1])
}
const bodyB = function compute(n: number) {
  return new Float64Array([n, 2])
}

test('a changed function body gives new keys: same name, different bodies do not share entries', (t) => {
  const dir = tempDir(t)
  t.is(bodyA.name, bodyB.name)
  const cache = new NumpyFuncCache(dir)
  let callsA = 0
  let callsB = 0
  const a = cache.createCachedFunc(function compute(n: number) {
    callsA++
    return bodyA(n)
  })
  const b = cache.createCachedFunc(function compute(n: number) {
    callsB++
    return bodyB(n)
  })
  t.deepEqual(a(5), new Float64Array([5, 1]))
  t.deepEqual(b(5), new Float64Array([5, 2]))
  t.deepEqual(a(5), new Float64Array([5, 1]))
  t.deepEqual(b(5), new Float64Array([5, 2]))
  t.is(callsA, 1)
  t.is(callsB, 1)
  t.is(entries(dir).length, 2)
})

test('the same function source in a new NumpyFuncCache instance hits', (t) => {
  const dir = tempDir(t)
  let calls = 0
  const impl = function sameSource(n: number) {
    calls++
    return new Int32Array([n, n * 2])
  }
  const first = new NumpyFuncCache(dir).createCachedFunc(impl)
  t.deepEqual(first(7), new Int32Array([7, 14]))
  const second = new NumpyFuncCache(dir).createCachedFunc(impl)
  t.deepEqual(second(7), new Int32Array([7, 14]))
  t.is(calls, 1)
})

test('trackSource: false lets same-named functions with different bodies share entries', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let callsB = 0
  const a = cache.createCachedFunc(bodyA, { trackSource: false })
  const b = cache.createCachedFunc(
    function compute(n: number) {
      callsB++
      return bodyB(n)
    },
    { trackSource: false },
  )
  t.deepEqual(a(9), new Float64Array([9, 1]))
  // Shared entry: b is not called and returns a's stored result.
  t.deepEqual(b(9), new Float64Array([9, 1]))
  t.is(callsB, 0)
  t.is(entries(dir).length, 1)
})

test('trackSource: false still separates different names', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const impl = (n: number) => {
    calls++
    return new Float64Array([n])
  }
  cache.createCachedFunc(impl, { trackSource: false, name: 'one' })(1)
  cache.createCachedFunc(impl, { trackSource: false, name: 'two' })(1)
  t.is(calls, 2)
  cache.createCachedFunc(impl, { trackSource: false, name: 'one' })(1)
  t.is(calls, 2)
})

test('the name option names an anonymous function: different names, different entries; same name, shared', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  // Built in an array so neither function gets a name from a binding.
  const [anon] = [
    (n: number) => {
      calls++
      return new Float64Array([n])
    },
  ]
  t.is(anon.name, '')
  const x = cache.createCachedFunc(anon, { name: 'alpha' })
  const y = cache.createCachedFunc(anon, { name: 'beta' })
  const x2 = cache.createCachedFunc(anon, { name: 'alpha' })
  t.deepEqual(x(1), new Float64Array([1]))
  t.deepEqual(y(1), new Float64Array([1]))
  t.is(calls, 2)
  t.deepEqual(x2(1), new Float64Array([1]))
  t.is(calls, 2)
  t.is(entries(dir).length, 2)
})

test('the name option overrides fn.name in the key', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const named = function realName(n: number) {
    calls++
    return new Float64Array([n])
  }
  cache.createCachedFunc(named)(1)
  cache.createCachedFunc(named, { name: 'otherName' })(1)
  t.is(calls, 2)
})

test('version: different versions give different entries, the same version hits, no version differs from a version', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const impl = function versioned(n: number) {
    calls++
    return new Float64Array([n, calls])
  }
  const v1 = cache.createCachedFunc(impl, { version: '1' })
  const v2 = cache.createCachedFunc(impl, { version: '2' })
  const none = cache.createCachedFunc(impl)
  t.deepEqual(v1(1), new Float64Array([1, 1]))
  t.deepEqual(v2(1), new Float64Array([1, 2]))
  t.deepEqual(none(1), new Float64Array([1, 3]))
  t.is(calls, 3)
  t.deepEqual(cache.createCachedFunc(impl, { version: '1' })(1), new Float64Array([1, 1]))
  t.deepEqual(cache.createCachedFunc(impl, { version: '2' })(1), new Float64Array([1, 2]))
  t.is(calls, 3)
  t.is(entries(dir).length, 3)
})

// ---------------------------------------------------------------- accepted arguments

// Each factory builds a fresh (equal but not identical) value, so a hit means equal values share a key.
const accepted: Array<[string, () => unknown[]]> = [
  ['no arguments', () => []],
  ['numbers', () => [0, -1.5, 1e300, Infinity, -Infinity, NaN]],
  ['strings', () => ['', 'abc', 'ünïcødé 😀', 'a\u0000b']],
  ['a string with a lone surrogate', () => ['x\ud800y']],
  ['booleans', () => [true, false]],
  ['null and undefined', () => [null, undefined]],
  ['bigints', () => [0n, -1n, 2n ** 70n, -(2n ** 64n)]],
  ['TypedArrays of every class', () => [
    new Int8Array([-1, 2]), new Uint8Array([1, 2]), new Uint8ClampedArray([1, 2]), new Int16Array([-3]),
    new Uint16Array([3]), new Int32Array([-4]), new Uint32Array([4]), new Float32Array([0.5]),
    new Float64Array([0.25]), new BigInt64Array([-5n]), new BigUint64Array([5n]),
  ]],
  ['an empty TypedArray', () => [new Float64Array(0)]],
  ['a DataView', () => [new DataView(new Uint8Array([1, 2, 3, 4]).buffer, 1, 2)]],
  ['an ArrayBuffer', () => [new Uint8Array([9, 8, 7]).buffer]],
  ['a Buffer', () => [Buffer.from('hello')]],
  ['Arrays', () => [[1, 'a', [true, null]], []]],
  ['a sparse Array', () => [[1, , 3]]], // eslint-disable-line no-sparse-arrays
  ['plain objects', () => [{ a: 1, b: { c: 'x' } }, {}]],
  ['an object with no prototype', () => [Object.assign(Object.create(null), { a: 1 })]],
  ['Dates', () => [new Date(0), new Date('2024-02-29T12:00:00Z')]],
  ['Maps', () => [new Map<unknown, unknown>([['a', 1], [2, [3]]])]],
  ['Sets', () => [new Set([1, 'two', 3n])]],
  ['deep nesting of everything', () => [{
    list: [new Map([['k', { set: new Set([new Float32Array([1, 2]), 'z']) }]])],
    when: new Date(86400000),
    raw: { buf: Buffer.from([1, 2]), ab: new ArrayBuffer(2), dv: new DataView(new ArrayBuffer(3)) },
    big: [1n, null, undefined, false],
  }]],
]

for (const [what, make] of accepted) {
  test(`accepted argument: ${what} (an equal value hits)`, (t) => {
    t.true(shares(t, make(), make()))
  })
}

test('plain object key order does not matter: {a:1,b:2} hits {b:2,a:1}, also nested', (t) => {
  t.true(shares(t, [{ a: 1, b: 2 }], [{ b: 2, a: 1 }]))
  t.true(shares(t, [{ outer: { x: [1, { p: 1, q: 2 }], y: 'y' } }], [{ outer: { y: 'y', x: [1, { q: 2, p: 1 }] } }]))
  t.true(shares(t, [3, { order: 2, mode: 'fast' }], [3, { mode: 'fast', order: 2 }]))
})

test('Map and Set insertion order does not matter', (t) => {
  t.true(shares(t, [new Map<string, number>([['a', 1], ['b', 2]])], [new Map<string, number>([['b', 2], ['a', 1]])]))
  t.true(shares(t, [new Set([1, 2, 3])], [new Set([3, 1, 2])]))
  t.true(shares(t, [{ s: new Set(['x', 'y']) }], [{ s: new Set(['y', 'x']) }]))
})

test('different values of the same type miss', (t) => {
  t.false(shares(t, [1], [2]))
  t.false(shares(t, ['a'], ['b']))
  t.false(shares(t, [{ a: 1 }], [{ a: 2 }]))
  t.false(shares(t, [{ a: 1 }], [{ b: 1 }]))
  t.false(shares(t, [{ a: 1 }], [{ a: 1, b: undefined }]))
  t.false(shares(t, [[1, 2]], [[2, 1]]))
  t.false(shares(t, [new Float64Array([1, 2])], [new Float64Array([1, 3])]))
  t.false(shares(t, [new Float64Array([1, 2])], [new Float64Array([1, 2, 0])]))
  t.false(shares(t, [new Map([['a', 1]])], [new Map([['a', 2]])]))
  t.false(shares(t, [new Set([1, 2])], [new Set([1, 2, 3])]))
  t.false(shares(t, [new Date(0)], [new Date(1)]))
  t.false(shares(t, [2n ** 64n], [2n ** 64n + 1n]))
  t.false(shares(t, [Buffer.from('ab')], [Buffer.from('ac')]))
  t.false(shares(t, [new Uint8Array([1, 2]).buffer], [new Uint8Array([1, 3]).buffer]))
})

// ---------------------------------------------------------------- no collisions between types

const distinct: Array<[string, unknown, unknown]> = [
  ['1 vs "1"', 1, '1'],
  ['[1,2] vs Float64Array [1,2]', [1, 2], new Float64Array([1, 2])],
  ['Float32Array vs Float64Array with equal values', new Float32Array([1, 2]), new Float64Array([1, 2])],
  ['null vs undefined', null, undefined],
  ['0 vs false', 0, false],
  ['1 vs true', 1, true],
  ['1n vs 1', 1n, 1],
  ['1n vs "1"', 1n, '1'],
  ['Int8Array vs Uint8Array with equal bytes', new Int8Array([1, 2, 3]), new Uint8Array([1, 2, 3])],
  ['Int8Array vs Buffer with equal bytes', new Int8Array([1, 2, 3]), Buffer.from([1, 2, 3])],
  ['Uint8Array vs Buffer with equal bytes', new Uint8Array([1, 2, 3]), Buffer.from([1, 2, 3])],
  ['Uint8Array vs Uint8ClampedArray with equal bytes', new Uint8Array([1, 2]), new Uint8ClampedArray([1, 2])],
  ['Int32Array vs Uint8Array over the same bytes', new Int32Array([1]), new Uint8Array(new Int32Array([1]).buffer)],
  ['Uint8Array vs ArrayBuffer with equal bytes', new Uint8Array([1, 2]), new Uint8Array([1, 2]).buffer],
  ['Uint8Array vs DataView with equal bytes', new Uint8Array([1, 2]), new DataView(new Uint8Array([1, 2]).buffer)],
  ['ArrayBuffer vs DataView with equal bytes', new Uint8Array([1, 2]).buffer, new DataView(new Uint8Array([1, 2]).buffer)],
  ['"true" vs true', 'true', true],
  ['"null" vs null', 'null', null],
  ['"" vs undefined', '', undefined],
  ['[] vs {}', [], {}],
  ['["a"] vs "a"', ['a'], 'a'],
  ['[1] vs 1', [1], 1],
  ['new Set([1]) vs [1]', new Set([1]), [1]],
  ['new Map([["a",1]]) vs {a:1}', new Map([['a', 1]]), { a: 1 }],
  ['new Map([["a",1]]) vs [["a",1]]', new Map([['a', 1]]), [['a', 1]]],
  ['new Date(0) vs 0', new Date(0), 0],
  ['new Date(0) vs its ISO string', new Date(0), new Date(0).toISOString()],
  ['["ab"] vs ["a","b"]', ['ab'], ['a', 'b']],
  ['[[1],2] vs [1,[2]]', [[1], 2], [1, [2]]],
  ['{a:"b"} vs {ab:""}', { a: 'b' }, { ab: '' }],
  ['Float64Array [] vs Float32Array []', new Float64Array(0), new Float32Array(0)],
  ['BigInt64Array vs BigUint64Array with equal bytes', new BigInt64Array([1n]), new BigUint64Array([1n])],
]

for (const [what, a, b] of distinct) {
  test(`no collision: ${what}`, (t) => {
    t.false(shares(t, [a], [b]), 'as the only argument')
    t.false(shares(t, [b], [a]), 'the other way round')
    t.false(shares(t, [{ v: a }], [{ v: b }]), 'nested in an object')
  })
}

test('two arguments do not collide with one argument holding both, or with swapped positions', (t) => {
  t.false(shares(t, [1, 2], [[1, 2]]))
  t.false(shares(t, ['a', 'b'], ['ab']))
  t.false(shares(t, [1, 'x'], ['x', 1]))
})

test('calling with a different number of arguments is a different key: f(1) vs f(1, undefined)', (t) => {
  t.false(shares(t, [1], [1, undefined]))
  t.false(shares(t, [], [undefined]))
})

// ---------------------------------------------------------------- views

test('a subarray view hashes by its own bytes: same bytes at different offsets of different buffers hit', (t) => {
  const big1 = new Float64Array([9, 9, 1, 2, 3, 9])
  const big2 = new Float64Array([7, 1, 2, 3, 7, 7, 7, 7])
  const v1 = big1.subarray(2, 5)
  const v2 = big2.subarray(1, 4)
  t.not(v1.byteOffset, v2.byteOffset)
  t.true(shares(t, [v1], [v2]))
  // And a view hits a fresh array holding the same elements.
  t.true(shares(t, [v1], [new Float64Array([1, 2, 3])]))
})

test('subarray views with different bytes miss, even over the same buffer', (t) => {
  const big = new Float64Array([1, 2, 3, 4])
  t.false(shares(t, [big.subarray(0, 2)], [big.subarray(1, 3)]))
  t.false(shares(t, [big.subarray(0, 2)], [big.subarray(0, 3)]))
  t.false(shares(t, [big.subarray(0, 2)], [big]))
})

test('Buffer and DataView views hash by their own bytes, not their backing store', (t) => {
  const back1 = Buffer.from('xxhelloyy')
  const back2 = Buffer.from('--hello')
  t.true(shares(t, [back1.subarray(2, 7)], [back2.subarray(2)]))
  t.false(shares(t, [back1.subarray(2, 7)], [back1.subarray(1, 6)]))
  const raw1 = new Uint8Array([0, 0, 5, 6, 0])
  const raw2 = new Uint8Array([5, 6])
  t.true(shares(t, [new DataView(raw1.buffer, 2, 2)], [new DataView(raw2.buffer)]))
  t.false(shares(t, [new DataView(raw1.buffer, 2, 2)], [new DataView(raw1.buffer, 1, 2)]))
})

test('an argument mutated after a call gives a new key for its new contents', (t) => {
  const { f, state } = counted(t)
  const arg = new Float64Array([1, 2])
  f(arg)
  arg[0] = 5
  f(arg)
  t.is(state.calls, 2)
  f(new Float64Array([1, 2]))
  f(new Float64Array([5, 2]))
  t.is(state.calls, 2)
})

// ---------------------------------------------------------------- rejected arguments

function rejects(t: Parameters<typeof tempDir>[0], args: unknown[], path: string): void {
  const { dir, f, state } = counted(t)
  const err = t.throws(() => f(...args), { instanceOf: TypeError })
  t.true(err!.message.includes(path), `message should name ${path}: ${err!.message}`)
  t.is(state.calls, 0, 'the function is not called')
  t.deepEqual(entries(dir), [], 'nothing is written')
}

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
}

test('a function argument is a TypeError naming it: args[0]', (t) => {
  rejects(t, [() => 1], 'args[0]')
})

test('a function nested in an object is a TypeError naming args[1].opts.cb', (t) => {
  rejects(t, [1, { opts: { cb: () => 0, n: 1 } }], 'args[1].opts.cb')
})

test('a symbol nested in an array is a TypeError naming args[0][2]', (t) => {
  rejects(t, [[1, 2, Symbol('s')]], 'args[0][2]')
})

test('a class instance is a TypeError naming its path', (t) => {
  rejects(t, [new Point(1, 2)], 'args[0]')
  rejects(t, ['x', { list: [0, new Point(1, 2)] }], 'args[1].list[1]')
})

test('a cycle through an object is a TypeError naming the path where it closes', (t) => {
  const o: Record<string, unknown> = { a: 1 }
  o.self = o
  rejects(t, [o], 'args[0].self')
})

test('a cycle through arrays is a TypeError naming the path where it closes', (t) => {
  const arr: unknown[] = [1, 2]
  const holder = { inner: { list: arr } }
  arr.push(holder)
  rejects(t, [0, arr], 'args[1][2].inner.list')
})

test('a cycle through a Map or a Set is a TypeError naming the argument', (t) => {
  const m = new Map<string, unknown>()
  m.set('self', m)
  rejects(t, [m], 'args[0]')
  const s = new Set<unknown>()
  s.add([s])
  rejects(t, [1, { s }], 'args[1].s')
})

test('an argument whose getter calls another cached function does not mix up keys (different functions never share)', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const inner = cache.createCachedFunc(function inner(n: number) {
    return new Float64Array([n])
  })
  const plus = cache.createCachedFunc(function plus(o: { a: number; b: number }) {
    return new Float64Array([o.a + o.b])
  })
  const times = cache.createCachedFunc(function times(o: { a: number; b: number }) {
    return new Float64Array([o.a * o.b])
  })
  // A plain object with a getter (as a lazily computed option might be) that uses another cached function.
  const arg = () => ({
    get a() {
      return inner(3)[0]
    },
    b: 7,
  })
  t.deepEqual(plus(arg()), new Float64Array([10]))
  t.deepEqual(times(arg()), new Float64Array([21]))
  t.deepEqual(plus({ a: 3, b: 7 }), new Float64Array([10]))
  t.deepEqual(times({ a: 3, b: 7 }), new Float64Array([21]))
})

test('the same object twice (not a cycle) is accepted', (t) => {
  const shared = { a: [1, 2] }
  t.true(shares(t, [shared, shared], [{ a: [1, 2] }, { a: [1, 2] }]))
  t.true(shares(t, [[shared, { b: shared }]], [[{ a: [1, 2] }, { b: { a: [1, 2] } }]]))
})

test('other unsupported values are TypeErrors too: WeakMap, RegExp, Promise, a symbol at top level', (t) => {
  rejects(t, [new WeakMap()], 'args[0]')
  rejects(t, [1, /re/], 'args[1]')
  rejects(t, [{ p: Promise.resolve(1) }], 'args[0].p')
  rejects(t, [Symbol.iterator], 'args[0]')
})

// ---------------------------------------------------------------- across processes

// The function and argument builders live in a plain .js module both processes
// load, so fn.toString() and the arguments are byte-for-byte the same.
const SHARED_MODULE = `
exports.crossProcess = function crossProcess(n, opts) {
  globalThis.__nfcCalls = (globalThis.__nfcCalls || 0) + 1
  return new Float64Array([n, opts.order, opts.weights ? opts.weights.length : -1])
}
exports.argSets = () => [
  [3, { order: 2 }],
  [3, { order: 3 }],
  [-0.5, { order: 1, weights: new Float32Array([0.25, 0.75]), tag: 'üñí 😀' }],
  [1, { order: 4, deep: [null, undefined, true, 12345678901234567890n, new Date(1700000000000)],
        m: new Map([['b', 2], ['a', new Set([1, 'x'])]]), buf: Buffer.from('bytes'),
        ab: new Uint8Array([1, 2, 3]).buffer, dv: new DataView(new Uint16Array([1, 2, 3]).buffer, 2, 4),
        view: new BigInt64Array([1n, -2n, 3n]).subarray(1), z: {} }],
]
`

const CHILD = `
const { NumpyFuncCache } = require(process.argv[2])
const shared = require(process.argv[3])
const cache = new NumpyFuncCache(process.argv[4])
const f = cache.createCachedFunc(shared.crossProcess)
const results = shared.argSets().map((args) => Array.from(f(...args)))
process.stdout.write(JSON.stringify({ calls: globalThis.__nfcCalls || 0, results }))
`

function runChild(scriptDir: string, cacheDir: string): { calls: number; results: number[][] } {
  const out = execFileSync(process.execPath, [join(scriptDir, 'child.js'), join(root, 'dist'), join(scriptDir, 'shared.js'), cacheDir], {
    encoding: 'utf8',
  })
  return JSON.parse(out)
}

test('keys are stable across processes: a child computes the same file names, and hits the parent\'s entries', (t) => {
  const work = tempDir(t)
  writeFileSync(join(work, 'shared.js'), SHARED_MODULE)
  writeFileSync(join(work, 'child.js'), CHILD)
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const shared = require(join(work, 'shared.js'))
  const parentDir = join(work, 'parent-cache')
  const f = new NumpyFuncCache(parentDir).createCachedFunc(shared.crossProcess) as (...a: unknown[]) => Float64Array
  const expected = shared.argSets().map((args: unknown[]) => Array.from(f(...args)))
  const parentNames = entries(parentDir)
  t.is(parentNames.length, 4)

  // A child on its own, empty cache computes everything and names the entries the same.
  const childDir = join(work, 'child-cache')
  const fresh = runChild(work, childDir)
  t.is(fresh.calls, 4)
  t.deepEqual(fresh.results, expected)
  t.deepEqual(entries(childDir), parentNames)

  // A child on the parent's cache hits every entry.
  const reuse = runChild(work, parentDir)
  t.is(reuse.calls, 0)
  t.deepEqual(reuse.results, expected)
  t.deepEqual(entries(parentDir), parentNames)
})

// ---------------------------------------------------------------- what a call's key must also see

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

test('an async call whose argument is changed before it computes rejects and stores nothing', async (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc(async (a: Float64Array) => {
    await pause(20)
    return a.map((x) => x * 2)
  })
  const arg = new Float64Array([1, 2, 3])
  const pending = f(arg)
  arg[0] = 99 // the caller reuses its buffer before the call settles
  await t.throwsAsync(pending, { instanceOf: TypeError, code: 'ERR_NFC_ARGS_CHANGED', message: /changed between the call and its computation/ })
  t.deepEqual(entries(dir), [], 'no result stored under the key of [1, 2, 3]')
  // Unchanged arguments store as before.
  t.deepEqual(await f(new Float64Array([1, 2, 3])), new Float64Array([2, 4, 6]))
  t.is(entries(dir).length, 1)
})

/** The next process warning with `code`. */
function nextWarning(code: string): Promise<Error> {
  return new Promise((resolve) => {
    const seen = (w: Error & { code?: string }) => {
      if (w.code !== code) return
      process.off('warning', seen)
      resolve(w)
    }
    process.on('warning', seen)
  })
}

test('an async call whose argument the caller changes during its computation returns its result and stores nothing', async (t) => {
  const dir = tempDir(t)
  let calls = 0
  let started!: () => void
  const running = new Promise<void>((r) => (started = r))
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const f = new NumpyFuncCache(dir).createCachedFunc(async (a: Float64Array) => {
    calls++
    started()
    await gate
    return a.map((x) => x * 2)
  })
  const warned = nextWarning('NUMPY_FUNC_CACHE_ARGS_CHANGED')
  const arg = new Float64Array([1, 2, 3])
  const pending = f(arg)
  await running // past the check made before computing
  arg[0] = 99
  release()
  t.deepEqual(await pending, new Float64Array([198, 4, 6]), 'what the function computed, as without a cache')
  t.deepEqual(entries(dir), [], 'nothing stored under the key of [1, 2, 3]')
  t.regex((await warned).message, /changed during its computation, so its result was returned but not stored/)
  t.deepEqual(await f(new Float64Array([1, 2, 3])), new Float64Array([2, 4, 6]), 'the original arguments get their own result')
  t.is(calls, 2)
  t.is(entries(dir).length, 1)
})

test('an async function that changes its own argument has its result returned, not stored', async (t) => {
  const dir = tempDir(t)
  let calls = 0
  const f = new NumpyFuncCache(dir).createCachedFunc(async (a: Float64Array) => {
    calls++
    a[0] += 1 // in place: the key's arguments are gone
    return a.slice()
  })
  t.deepEqual(await f(new Float64Array([1, 2])), new Float64Array([2, 2]))
  t.deepEqual(await f(new Float64Array([1, 2])), new Float64Array([2, 2]))
  t.is(calls, 2, 'no result is stored under a key whose arguments the computation changed')
  t.deepEqual(entries(dir), [])
})

test('a caller whose equal arguments did not change gets its result when the call it joined had its arguments changed', async (t) => {
  const dir = tempDir(t)
  let calls = 0
  const f = new NumpyFuncCache(dir).createCachedFunc(async (a: Float64Array) => {
    calls++
    await pause(5)
    return a.map((x) => x * 2)
  })
  const reused = new Float64Array([1, 2, 3])
  const first = f(reused)
  const innocent = f(new Float64Array([1, 2, 3])) // equal arguments: joins the first call
  reused[0] = 99 // the first caller reuses its buffer before the computation starts
  await t.throwsAsync(first, { code: 'ERR_NFC_ARGS_CHANGED' })
  t.deepEqual(await innocent, new Float64Array([2, 4, 6]))
  t.is(calls, 1, 'computed once, from the innocent caller\'s arguments')
  t.is(entries(dir).length, 1)
  t.deepEqual(await f(new Float64Array([1, 2, 3])), new Float64Array([2, 4, 6]))
  t.is(calls, 1)
})

test('large arguments changed at any moment of a pending async call never leave a wrong entry', async (t) => {
  const dir = tempDir(t)
  const f = new NumpyFuncCache(dir).createCachedFunc(async (a: Float64Array) => {
    await pause(20)
    return new Float64Array([a[0], a[a.length - 1]])
  })
  const n = (32 << 20) / 8 // 32 MiB: hashed on the pool, while the caller runs
  for (let round = 1; round <= 12; round++) {
    const arg = new Float64Array(n).fill(round)
    const pending = f(arg)
    // One change, at a moment that moves through the call's life from round to round.
    await pause(4 * round)
    arg[0] = -1
    arg[n - 1] = -1
    await pending.catch((e: { code?: string }) => t.is(e.code, 'ERR_NFC_ARGS_CHANGED'))
  }
  for (let round = 1; round <= 12; round++) {
    t.deepEqual(await f(new Float64Array(n).fill(round)), new Float64Array([round, round]), `the entry of round ${round}`)
  }
})

test('a bound or built-in function is refused while its source is tracked, and taken with trackSource: false', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  function scale(this: { by: number }, n: number) {
    return new Float64Array([n * this.by])
  }
  const bound = scale.bind({ by: 2 })
  t.throws(() => cache.createCachedFunc(bound), { instanceOf: TypeError, code: 'ERR_NFC_INVALID_ARG', message: /bound or built-in function/ })
  t.throws(() => cache.createCachedFunc(Float64Array.of as never), { instanceOf: TypeError, message: /bound or built-in function/ })
  const f = cache.createCachedFunc(bound, { trackSource: false, version: '1' })
  t.deepEqual(f(3), new Float64Array([6]))
})

test('a method called on two objects has two results; this is keyed by its data, its methods left out', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const scaled = cache.createCachedFunc(function scaled(this: { by: number; [other: string]: unknown }, n: number) {
    calls++
    return new Float64Array([n * this.by])
  })
  const two = { by: 2, scaled }
  const ten = { by: 10, scaled }
  t.deepEqual(two.scaled(3), new Float64Array([6]))
  t.deepEqual(ten.scaled(3), new Float64Array([30]), 'not the result of another this')
  t.deepEqual(two.scaled(3), new Float64Array([6]))
  t.deepEqual({ by: 2, scaled, other: () => 1 }.scaled(3), new Float64Array([6]), 'methods of this are not its data')
  t.is(calls, 2)
  t.true(scaled.has.call(ten, 3))
  t.false(scaled.has.call({ by: 3 }, 3))
  t.false(scaled.has(3), 'a plain call has no this')
})

test('a this that cannot be keyed is a TypeError saying what to do; ignoreThis leaves it out', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  class Model {
    weights = 2
    predict = cache.createCachedFunc(function predict(this: Model, n: number) {
      return new Float64Array([n * this.weights])
    })
  }
  t.throws(() => new Model().predict(3), { instanceOf: TypeError, code: 'ERR_NFC_UNKEYABLE_ARG', message: /^this is an instance of Model/ })
  let calls = 0
  const ignoring = cache.createCachedFunc(
    function unit(this: unknown, n: number) {
      calls++
      return new Float64Array([n, this === undefined ? 0 : 1])
    },
    { ignoreThis: true },
  )
  const a = { ignoring }
  const b = { ignoring, other: true }
  t.deepEqual(a.ignoring(1), new Float64Array([1, 1]))
  t.deepEqual(b.ignoring(1), new Float64Array([1, 1]))
  t.is(calls, 1, 'told to ignore this: one result for both')
})

test('a function that does not read this (an arrow, or no mention of it) is keyed without it, whatever it is called on', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  let calls = 0
  const plain = cache.createCachedFunc((n: number) => {
    calls++
    return new Float64Array([n])
  })
  const holder = { cache, plain } // a container holding things a key cannot
  t.deepEqual(holder.plain(4), new Float64Array([4]))
  t.deepEqual(plain(4), new Float64Array([4]))
  t.is(calls, 1)
})
