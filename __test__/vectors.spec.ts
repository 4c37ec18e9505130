// The golden vectors of the persistent formats (test-vectors/), checked
// here from JS as cargo checks them from Rust: a change to an encoding
// fails loudly. Call keys: the calls' bytes and keys. Records, lease lines
// and names: what the package writes, as a user (or another binding) finds it.
//
// `NFC_WRITE_VECTORS=1 npx ava __test__/vectors.spec.ts` rewrites
// call-keys.json from this implementation: only with a new key format.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, writeNpy } from '../dist'
import { callBytes, callKey, identityPrefix } from '../dist/call-key'
import { native } from '../dist/native'
import { root, tempDir } from './helpers'

type Any = any
const VECTORS = join(root, 'test-vectors')
const hostTag = () => native.hostTag()
const read = (name: string) => JSON.parse(readFileSync(join(VECTORS, name), 'utf8'))

/** A JS value from its tagged JSON form (see test-vectors/README.md). */
function decode(v: Any): unknown {
  if (Array.isArray(v)) return v.map(decode)
  if (v === null || typeof v !== 'object') return v
  const hex = (h: string) => Buffer.from(h, 'hex')
  if ('$number' in v) return v.$number === '-0' ? -0 : Number(v.$number)
  if ('$undefined' in v) return undefined
  if ('$bigint' in v) return BigInt(v.$bigint)
  // A string JSON parsers may refuse (lone surrogates), as its UTF-16 code units.
  if ('$utf16' in v) return String.fromCharCode(...v.$utf16)
  if ('$typed' in v) {
    const Class = (globalThis as Any)[v.$typed]
    return Class.from(v.values.map((x: Any) => (typeof x === 'string' ? BigInt(x) : x)))
  }
  if ('$buffer' in v) return hex(v.$buffer)
  if ('$arraybuffer' in v) return new Uint8Array(hex(v.$arraybuffer)).buffer
  if ('$dataview' in v) return new DataView(new Uint8Array(hex(v.$dataview)).buffer)
  if ('$date' in v) return new Date(v.$date)
  if ('$map' in v) return new Map(v.$map.map(([k, x]: Any) => [decode(k), decode(x)]))
  if ('$set' in v) return new Set(v.$set.map(decode))
  if ('$object' in v) return Object.fromEntries(Object.entries(v.$object).map(([k, x]) => [k, decode(x)]))
  throw new Error(`not a tagged value: ${JSON.stringify(v)}`)
}

/** The calls of call-keys.json, when it is written anew. */
const CALLS: { about: string; function: Any; this?: Any; args: Any[] }[] = [
  { about: 'no arguments', function: { name: 'f' }, args: [] },
  { about: 'numbers, by their float64 bits, one NaN', function: { name: 'f' }, args: [1, 0, { $number: '-0' }, { $number: 'NaN' }, { $number: 'Infinity' }, 1.5e300] },
  { about: 'strings: UTF-8, and UTF-16 for lone surrogates', function: { name: 'f' }, args: ['', 'abc', 'ünï©ødé ✓', { $utf16: [0xd800, 0x78] }] },
  { about: 'booleans, null, undefined, bigints', function: { name: 'f' }, args: [true, false, null, { $undefined: true }, { $bigint: '123' }, { $bigint: '-5' }] },
  {
    about: 'every TypedArray class, a Buffer, a DataView and an ArrayBuffer: their bytes spliced in',
    function: { name: 'f' },
    args: [
      ...['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array'].map((c) => ({ $typed: c, values: [1, 2, 3] })),
      { $typed: 'BigInt64Array', values: ['-1', '2'] },
      { $typed: 'BigUint64Array', values: ['1', '2'] },
      { $buffer: '010203' },
      { $dataview: '0a0b' },
      { $arraybuffer: 'ff' },
    ],
  },
  {
    about: 'arrays, plain objects (keys sorted), Dates, Maps and Sets (order does not matter)',
    function: { name: 'f' },
    args: [[1, [2, 'x']], { $object: { b: 1, a: { $object: { z: null } } } }, { $date: 1764255238123 }, { $map: [['k', 1], [2, 'v']] }, { $set: [3, 'a'] }],
  },
  { about: 'a version and a source', function: { name: 'embed', version: '2', source: 'function embed(x) { return x }' }, args: [{ $typed: 'Float64Array', values: [0.5] }] },
  { about: "a method's this, by its data", function: { name: 'scaled', source: 'function scaled(x) { return x * this.k }' }, this: { $object: { k: 2 } }, args: [3] },
]

const identity = (f: Any) => identityPrefix({ name: f.name, version: f.version, source: f.source })

test('call keys: the bytes of each call and its key are the golden ones', (t) => {
  if (process.env.NFC_WRITE_VECTORS === '1') {
    const cases = CALLS.map((c) => {
      const call = { self: c.this === undefined ? undefined : decode(c.this), args: c.args.map(decode) }
      const prefix = identity(c.function)
      return { ...c, bytes: Buffer.from(callBytes(prefix, call)).toString('hex'), key: callKey(prefix, call) }
    })
    const about = 'Calls and their keys: `bytes` is what BLAKE3 hashes (derive-key mode, context below), `key` the result.'
    writeFileSync(join(VECTORS, 'call-keys.json'), JSON.stringify({ about, context: 'numpy-func-cache 2026-11 call key v1', cases }, null, 2) + '\n')
  }
  const { cases } = read('call-keys.json')
  t.true(cases.length >= CALLS.length)
  for (const c of cases) {
    const call = { self: c.this === undefined ? undefined : decode(c.this), args: c.args.map(decode) }
    const prefix = identity(c.function)
    t.is(Buffer.from(callBytes(prefix, call)).toString('hex'), c.bytes, c.about)
    t.is(callKey(prefix, call), c.key, c.about)
  }
})

test('records: an entry the package writes has the golden record of its data', (t) => {
  const dir = tempDir(t)
  const { cases } = read('records.json')
  for (const c of cases.filter((x: Any) => x.class === 'Float64Array' && !x.header.fortranOrder)) {
    const data = new Float64Array(new Uint8Array(Buffer.from(c.data, 'hex')).buffer)
    const value = c.result === 'typedarray' ? data : { data, shape: c.header.shape }
    const cache = new NumpyFuncCache(join(dir, c.function))
    cache.createCachedFunc(() => value, { name: c.function, trackSource: false })()
    const [json] = readdirSync(cache.path).filter((n) => n.endsWith('.json'))
    const written = JSON.parse(readFileSync(join(cache.path, json), 'utf8'))
    const golden = JSON.parse(c.json)
    // All but the time of the store, which is now, and the boot, which is this one.
    t.deepEqual({ ...written, created: golden.created, boot: golden.boot }, golden, c.function)
    t.regex(written.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    t.regex(written.boot, /^[0-9a-f]{16}$/)
  }
})

test('lease lines: what a computing process writes is the golden line format', (t) => {
  const dir = tempDir(t)
  const { lines } = read('leases.json')
  const format = /^([0-9a-f]{16}) (\d+) (\d+) (\S*)\n$/
  for (const l of lines) t.regex(l.line, format)
  // A process that holds a lease while it computes, read from outside.
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      `const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
       const fs = require('fs')
       const cache = new NumpyFuncCache(process.argv[1], { computeOnce: { staleAfter: 5000 } })
       cache.createCachedFunc(() => {
         const lock = fs.readdirSync(process.argv[1]).find((n) => n.endsWith('.lock'))
         process.stdout.write(JSON.stringify({ line: fs.readFileSync(process.argv[1] + '/' + lock, 'utf8'), pid: process.pid }))
         return new Float64Array(1)
       }, { name: 'f' })()`,
      dir,
    ],
    { encoding: 'utf8' },
  )
  const { line, pid } = JSON.parse(out)
  const [, tag, holderPid, staleAfter] = format.exec(line) ?? []
  t.is(tag, hostTag())
  t.is(Number(holderPid), pid)
  t.is(Number(staleAfter), 5000)
})

test('names: a directory holds the golden names of an entry', (t) => {
  const dir = tempDir(t)
  const layout = read('layout.json')
  const cache = new NumpyFuncCache(dir)
  cache.createCachedFunc(() => new Float64Array(1), { name: 'f' })()
  const [entry] = cache.entries()
  const of = (name: string) => name.replaceAll(layout.key, entry.key)
  // The index's own journal files (-wal, -shm) come and go beside it.
  const names = readdirSync(dir).filter((n) => !/^\.numpy-func-cache-index\.sqlite-/.test(n))
  t.deepEqual(names.sort(), [of(layout.directory.array), of(layout.directory.record), layout.directory.index].sort())
})

test('.npy: writeNpy writes the golden preamble NumPy writes, before the data', (t) => {
  const dir = tempDir(t)
  const { cases } = read('npy-headers.json')
  const CLASS: Record<string, Any> = { '<f8': Float64Array, '<f4': Float32Array, '|b1': Uint8Array, '<i2': Int16Array, '|u1': Uint8Array, '<c16': Float64Array, '<f2': Uint16Array, '<i8': BigInt64Array }
  for (const c of cases) {
    const count = c.shape.reduce((a: number, b: number) => a * b, 1) * (c.descr === '<c16' ? 2 : 1)
    const file = join(dir, 'a.npy')
    writeNpy(file, { data: new CLASS[c.descr](count), shape: c.shape, dtype: c.descr, fortranOrder: c.fortranOrder || undefined })
    t.is(readFileSync(file).subarray(0, c.preamble.length / 2).toString('hex'), c.preamble, c.about)
  }
})
