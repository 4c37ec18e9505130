// Interoperability of readNpy / writeNpy with real NumPy, in both directions.
//
// Every expected value here comes from NumPy (a Python run writes or reads the
// files and reports what it saw) or is derived independently in this file
// (our own dtype table, our own byte-level header parsing). Nothing is checked
// against the package's own idea of the format.
//
// Layout: Python sources and case builders first, then one `test.before` per
// direction that does the batched work (one Python process each), then the
// tests, which only compare.
import test from 'ava'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readNpy, writeNpy } from '../dist'
import type { NpyArray, TypedArray } from '../dist'
import { runPython } from './helpers'

// ---------------------------------------------------------------------------
// Our own dtype table (independent of the package's): little-endian descr,
// the TypedArray class readNpy must give, bytes per class element, class
// elements per array element (2 for interleaved complex).
// ---------------------------------------------------------------------------

interface Dtype {
  descr: string
  cls: string
  size: number
  per: number
}

const DTYPES: Dtype[] = [
  { descr: '|b1', cls: 'Uint8Array', size: 1, per: 1 },
  { descr: '|i1', cls: 'Int8Array', size: 1, per: 1 },
  { descr: '|u1', cls: 'Uint8Array', size: 1, per: 1 },
  { descr: '<i2', cls: 'Int16Array', size: 2, per: 1 },
  { descr: '<u2', cls: 'Uint16Array', size: 2, per: 1 },
  { descr: '<i4', cls: 'Int32Array', size: 4, per: 1 },
  { descr: '<u4', cls: 'Uint32Array', size: 4, per: 1 },
  { descr: '<i8', cls: 'BigInt64Array', size: 8, per: 1 },
  { descr: '<u8', cls: 'BigUint64Array', size: 8, per: 1 },
  { descr: '<f2', cls: 'Uint16Array', size: 2, per: 1 },
  { descr: '<f4', cls: 'Float32Array', size: 4, per: 1 },
  { descr: '<f8', cls: 'Float64Array', size: 8, per: 1 },
  { descr: '<c8', cls: 'Float32Array', size: 4, per: 2 },
  { descr: '<c16', cls: 'Float64Array', size: 8, per: 2 },
]
const dtypeOf = (descr: string): Dtype => DTYPES.find((d) => d.descr === descr)!

const CLASSES: Record<string, new (buffer: ArrayBuffer) => TypedArray> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
}

// Shapes from the brief: 0-d, empty, 1-d, 2-d, 3-d, and two with 8+ dims.
const SHAPES: number[][] = [
  [],
  [0],
  [3, 0],
  [7],
  [2, 3],
  [2, 3, 4],
  [2, 1, 3, 1, 2, 1, 2, 1, 2],
  [2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2],
]

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1)
const shapeStr = (shape: readonly number[]) => `(${shape.join(',')}${shape.length === 1 ? ',' : ''})`

/** The bytes of a TypedArray's elements (not its whole buffer). */
const bytesOf = (a: TypedArray) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)

/** A fresh TypedArray of the dtype's class holding exactly these bytes. */
function arrayFromBytes(cls: string, bytes: Buffer): TypedArray {
  const copy = new ArrayBuffer(bytes.length)
  new Uint8Array(copy).set(bytes)
  return new CLASSES[cls](copy)
}

/** readNpy's elements as strings in file order: integers as decimal, floats as their IEEE bit patterns. */
function elementStrings(a: NpyArray, dt: Dtype): string[] {
  const isFloat = dt.descr[1] === 'c' || (dt.descr[1] === 'f' && dt.size > 2)
  if (!isFloat) return Array.from(a.data as ArrayLike<number | bigint>, (x) => String(x))
  const view = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength)
  const out: string[] = []
  for (let off = 0; off < a.data.byteLength; off += dt.size) {
    out.push(dt.size === 4 ? String(view.getUint32(off, true)) : String(view.getBigUint64(off, true)))
  }
  return out
}

/** Our own parse of a .npy preamble: version, header length, where the data starts, the header text. */
function parsePreamble(file: Buffer) {
  const major = file[6]
  const minor = file[7]
  const lenBytes = major === 1 ? 2 : 4
  const headerLen = major === 1 ? file.readUInt16LE(8) : file.readUInt32LE(8)
  const dataStart = 8 + lenBytes + headerLen
  return { magic: file.subarray(0, 6), major, minor, headerLen, dataStart, header: file.subarray(8 + lenBytes, dataStart).toString('latin1') }
}

// Scratch directories shared by the hooks of this file, removed at the end.
const scratch = mkdtempSync(join(tmpdir(), 'nfc-interop-'))
test.after.always(() => rmSync(scratch, { recursive: true, force: true }))
const subdir = (name: string) => {
  const dir = join(scratch, name)
  mkdirSync(dir)
  return dir
}

// ---------------------------------------------------------------------------
// Python side. PY_COMMON: value generation (exercising each dtype's range)
// and `expectation`, which is what readNpy must return for a file, as NumPy
// itself reads that file (header via np.lib.format, data via np.load).
// ---------------------------------------------------------------------------

const PY_COMMON = String.raw`
import io, os, struct, warnings
from math import prod
warnings.simplefilter('ignore')
fmt = np.lib.format
BIG = 1 << 24

def header_of(path):
    with open(path, 'rb') as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=BIG)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=BIG)
    return version, shape, fortran, dtype

def bits_of(flat, size):
    return [str(int(x)) for x in flat.view('<u%d' % size)]

def expectation(path):
    version, shape, fortran, dtype = header_of(path)
    arr = np.load(path, max_header_size=BIG)
    le = arr.dtype.newbyteorder('<')
    order = 'F' if fortran else 'C'
    flat = np.ascontiguousarray(arr.astype(le).ravel(order=order))
    if le.kind == 'b' or le.kind in 'iu':
        values = [str(int(x)) for x in flat]
    elif le.kind == 'f':
        values = bits_of(flat, le.itemsize)
    else:
        values = bits_of(flat.view('<f%d' % (le.itemsize // 2)), le.itemsize // 2)
    return dict(version=list(version), dtype=le.str, shape=list(shape), fortranOrder=bool(fortran),
                hex=arr.astype(le).tobytes(order=order).hex(), values=values)

def pool(dt):
    # Values at the edges of each dtype's range, put first in every array.
    k = dt.kind
    if k == 'b':
        return [True, False, True, True, False]
    if k in 'iu':
        i = np.iinfo(dt)
        v = [int(i.min), int(i.max), 0, 1, int(i.max) - 1, int(i.min) + 1]
        if k == 'i':
            v += [-1, -2]
        if dt.itemsize == 8:
            v += [2**53 + 1, 2**62 + 12345] + ([-(2**53) - 1, -(2**63) + 7] if k == 'i' else [2**64 - 2, 2**63 + 1])
        return v
    if k == 'f':
        fi = np.finfo(dt)
        return [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.5, float(fi.max), float(fi.min), float(fi.tiny),
                float(fi.smallest_subnormal), -float(fi.smallest_subnormal), 1 / 3, 0.1, -np.nan]
    fi = np.finfo(dt)
    return [complex(1, -2), complex(-0.0, np.inf), complex(np.nan, -0.0), complex(-np.inf, 1 / 3),
            complex(float(fi.max), float(fi.tiny)), 0j, complex(-1.5, float(fi.smallest_subnormal))]

# NaNs with payloads (and a signalling one), as raw bits, so bit-exactness is really tested.
PAYLOAD_NANS = {2: [0x7e05, 0xfe01, 0x7d01], 4: [0x7fc00abc, 0xffc00001, 0x7fa00abc],
                8: [0x7ff8000000000abc, 0xfff8000000000001, 0x7ff4000000000abc]}

def make_array(descr, shape, order, seed):
    dt = np.dtype(descr)
    native = dt.newbyteorder('=')
    rng = np.random.default_rng(seed)
    n = prod(shape)
    k = dt.kind
    if k == 'b':
        flat = rng.integers(0, 2, n).astype(bool)
    elif k in 'iu':
        i = np.iinfo(native)
        flat = rng.integers(int(i.min), int(i.max), size=n, dtype=native, endpoint=True)
    elif k == 'f':
        flat = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(native)
    else:
        flat = (rng.standard_normal(n) * 100 + 1j * rng.standard_normal(n)).astype(native)
    p = pool(native)
    r = seed % len(p)
    p = p[r:] + p[:r]
    m = min(n, len(p))
    flat[:m] = np.array(p[:m], dtype=native)
    if k in 'fc' and n > m:
        comp = flat.view('<f%d' % (native.itemsize // (2 if k == 'c' else 1)))
        bits = comp.view('<u%d' % comp.itemsize)
        nans = PAYLOAD_NANS[comp.itemsize][: n - m]
        bits[m:m + len(nans)] = nans
    return flat.astype(dt).reshape(tuple(shape), order=order)
`

// ---------------------------------------------------------------------------
// 1. NumPy -> readNpy: every dtype, both byte orders, C and Fortran, all shapes.
// ---------------------------------------------------------------------------

interface ReadCase {
  name: string
  group: string
  descr: string // as NumPy writes it, e.g. '>i4'
  shape: number[]
  order: 'C' | 'F'
}

interface Expectation {
  version: [number, number]
  dtype: string
  shape: number[]
  fortranOrder: boolean
  hex: string
  values?: string[] // element values in file order, when known independently of the bytes
}

function buildReadCases(): ReadCase[] {
  const cases: ReadCase[] = []
  for (const dt of DTYPES) {
    const orders = dt.descr[0] === '|' ? ['|'] : ['<', '>']
    for (const bo of orders) {
      const descr = bo + dt.descr.slice(1)
      for (const shape of SHAPES) {
        // Fortran order only means something with 2+ dimensions.
        for (const order of shape.length >= 2 ? (['C', 'F'] as const) : (['C'] as const)) {
          cases.push({ name: `${descr} ${order} ${shapeStr(shape)}`, group: descr, descr, shape, order })
        }
      }
    }
  }
  return cases
}

const PY_WRITE_READ_CASES = String.raw`
out, spec = sys.argv[1], json.load(open(sys.argv[2]))
manifest = {}
for i, c in enumerate(spec):
    path = os.path.join(out, 'r%03d.npy' % i)
    np.save(path, make_array(c['descr'], c['shape'], c['order'], i + 1))
    manifest[c['name']] = dict(path=path, **expectation(path))
print(json.dumps(manifest))
`

/** Compares readNpy(path) with NumPy's expectation; returns what differs (empty when all is exact). */
function compareRead(path: string, want: Expectation): string[] {
  let got: NpyArray
  try {
    got = readNpy(path)
  } catch (e) {
    return [`readNpy threw: ${(e as Error).message}`]
  }
  const problems: string[] = []
  const dt = dtypeOf(want.dtype)
  if (got.dtype !== want.dtype) problems.push(`dtype ${got.dtype} != ${want.dtype}`)
  if (JSON.stringify(got.shape) !== JSON.stringify(want.shape)) problems.push(`shape ${JSON.stringify(got.shape)} != ${JSON.stringify(want.shape)}`)
  if (got.fortranOrder !== want.fortranOrder) problems.push(`fortranOrder ${got.fortranOrder} != ${want.fortranOrder}`)
  const cls = Object.prototype.toString.call(got.data).slice(8, -1)
  if (cls !== dt.cls) problems.push(`class ${cls} != ${dt.cls}`)
  if (got.data.length !== product(want.shape) * dt.per) problems.push(`length ${got.data.length} != ${product(want.shape) * dt.per}`)
  const hex = bytesOf(got.data).toString('hex')
  if (hex !== want.hex) problems.push(`bytes differ: ${hex.slice(0, 64)}… != ${want.hex.slice(0, 64)}…`)
  else if (want.values && cls === dt.cls) {
    // Same bytes and class already imply the values; this checks them as numbers too (sign, BigInt, bits).
    const values = elementStrings(got, dt)
    const bad = values.findIndex((v, i) => v !== want.values![i])
    if (bad >= 0 || values.length !== want.values.length) problems.push(`element ${bad}: ${values[bad]} != ${want.values[bad]}`)
  }
  return problems
}

const readCases = buildReadCases()
let readManifest: Record<string, Expectation & { path: string }> = {}

test.before('NumPy writes every read case (one Python run)', () => {
  const dir = subdir('numpy-written')
  const spec = join(dir, 'spec.json')
  writeFileSync(spec, JSON.stringify(readCases))
  readManifest = JSON.parse(runPython(PY_COMMON + PY_WRITE_READ_CASES, [dir, spec]))
})

for (const group of [...new Set(readCases.map((c) => c.group))]) {
  test(`readNpy reads NumPy's ${group} files exactly (all shapes, C and Fortran)`, (t) => {
    const failures: Record<string, string[]> = {}
    for (const c of readCases.filter((c) => c.group === group)) {
      const want = readManifest[c.name]
      const problems = compareRead(want.path, want)
      if (problems.length) failures[c.name] = problems
    }
    t.deepEqual(failures, {})
  })
}

test('the read cases really cover big-endian, Fortran, 0-d and empty files', (t) => {
  // Guards the generator: if NumPy never wrote these, the tests above would prove less.
  const all = Object.values(readManifest)
  t.true(all.some((m) => m.fortranOrder && m.shape.length >= 8))
  t.true(readCases.some((c) => c.descr === '>c16') && readCases.some((c) => c.descr === '>f2'))
  t.true(all.some((m) => m.shape.length === 0))
  t.true(all.some((m) => m.shape.includes(0) && m.shape.length === 2))
  t.is(all.length, readCases.length)
  // Payload NaNs and -0.0 made it into the f8 files (bit patterns as NumPy reports them).
  const f8 = all.filter((m) => m.dtype === '<f8').flatMap((m) => m.values)
  t.true(f8.includes(String(0x7ff8000000000abcn)) && f8.includes(String(0x8000000000000000n)))
  const i8 = all.filter((m) => m.dtype === '<i8').flatMap((m) => m.values)
  t.true(i8.includes(String(2n ** 53n + 1n)) && i8.includes(String(-(2n ** 63n))))
})

// ---------------------------------------------------------------------------
// 2. writeNpy -> NumPy: every dtype, every shape, C and Fortran, and bare
//    TypedArrays. Data is pseudo-random bytes with edge-case bit patterns up
//    front; NumPy must load exactly those bytes with the right dtype/shape/order.
// ---------------------------------------------------------------------------

/** A small deterministic PRNG (mulberry32), so failures are reproducible. */
function prng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Edge-case bit patterns per component size: integer extremes, and float NaN (with payloads), ±inf, -0, max, subnormal. */
function specialBits(dt: Dtype): bigint[] {
  const kind = dt.descr[1]
  if (kind === 'b') return [1n, 0n, 1n]
  const bits = BigInt(dt.size * 8)
  if (kind === 'i' || kind === 'u') {
    const top = 1n << (bits - 1n)
    const ones = (1n << bits) - 1n
    const extra = dt.size === 8 ? [2n ** 53n + 1n, (1n << 64n) - (2n ** 53n + 1n)] : []
    return [0n, 1n, ones, top, top - 1n, top + 1n, ...extra]
  }
  const f: Record<number, bigint[]> = {
    2: [0x7e00n, 0x7c00n, 0xfc00n, 0x8000n, 0n, 0x3c00n, 0x7bffn, 0x0001n, 0x7d01n, 0xfe01n],
    4: [0x7fc00000n, 0x7f800000n, 0xff800000n, 0x80000000n, 0n, 0x3f800000n, 0x7f7fffffn, 1n, 0x7fa00abcn, 0xffc00001n],
    8: [0x7ff8000000000000n, 0x7ff0000000000000n, 0xfff0000000000000n, 0x8000000000000000n, 0n, 0x3ff0000000000000n,
      0x7fefffffffffffffn, 1n, 0x7ff4000000000abcn, 0xfff8000000000001n],
  }
  return f[dt.size]
}

/** Pseudo-random data of the dtype's class for `count` array elements, edge cases first. */
function makeData(dt: Dtype, count: number, seed: number): TypedArray {
  const rand = prng(seed)
  const comps = count * dt.per
  const bytes = Buffer.alloc(comps * dt.size)
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256)
  if (dt.descr === '|b1') for (let i = 0; i < bytes.length; i++) bytes[i] &= 1
  const specials = specialBits(dt)
  const rot = seed % specials.length
  const rotated = [...specials.slice(rot), ...specials.slice(0, rot)]
  for (let i = 0; i < Math.min(comps, rotated.length); i++) {
    let v = rotated[i]
    for (let b = 0; b < dt.size; b++, v >>= 8n) bytes[i * dt.size + b] = Number(v & 0xffn)
  }
  return arrayFromBytes(dt.cls, bytes)
}

interface WriteCase {
  name: string
  group: string
  value: TypedArray | { data: TypedArray; shape: number[]; dtype?: string; fortranOrder?: boolean }
  // What NumPy must see:
  dtype: string
  shape: number[]
  fortranOrder: boolean
  hex: string
}

function buildWriteCases(): WriteCase[] {
  const cases: WriteCase[] = []
  let seed = 1
  for (const dt of DTYPES) {
    for (const shape of SHAPES) {
      for (const fortranOrder of shape.length >= 2 ? [false, true] : [false]) {
        const data = makeData(dt, product(shape), seed++)
        // Give dtype explicitly (it is required for b1, f2, c8, c16; harmless for the rest).
        cases.push({
          name: `${dt.descr} ${fortranOrder ? 'F' : 'C'} ${shapeStr(shape)}`,
          group: dt.descr,
          value: { data, shape, dtype: dt.descr, fortranOrder },
          dtype: dt.descr,
          shape,
          fortranOrder,
          hex: bytesOf(data).toString('hex'),
        })
      }
    }
  }
  // Without dtype, the class alone decides (the default dtype of each class).
  const classDefaults: [string, string][] = [
    ['Int8Array', '|i1'], ['Uint8Array', '|u1'], ['Uint8ClampedArray', '|u1'], ['Int16Array', '<i2'], ['Uint16Array', '<u2'],
    ['Int32Array', '<i4'], ['Uint32Array', '<u4'], ['BigInt64Array', '<i8'], ['BigUint64Array', '<u8'],
    ['Float32Array', '<f4'], ['Float64Array', '<f8'],
  ]
  for (const [cls, descr] of classDefaults) {
    const bytes = bytesOf(makeData(dtypeOf(descr), 11, seed++))
    const bare = arrayFromBytes(cls, bytes)
    cases.push({ name: `bare ${cls}`, group: 'bare', value: bare, dtype: descr, shape: [11], fortranOrder: false, hex: bytes.toString('hex') })
    const nd = arrayFromBytes(cls, bytesOf(makeData(dtypeOf(descr), 6, seed++)))
    cases.push({ name: `${cls} {data, shape: [3, 2]} without dtype`, group: 'bare', value: { data: nd, shape: [3, 2] }, dtype: descr, shape: [3, 2], fortranOrder: false, hex: bytesOf(nd).toString('hex') })
  }
  // A view into a larger buffer: only the view's elements are written.
  const big = makeData(dtypeOf('<f8'), 20, seed++) as Float64Array
  const view = big.subarray(5, 11)
  cases.push({ name: 'Float64Array subarray view', group: 'bare', value: { data: view, shape: [2, 3] }, dtype: '<f8', shape: [2, 3], fortranOrder: false, hex: bytesOf(view).toString('hex') })
  return cases
}

const PY_CHECK_WRITTEN = String.raw`
spec = json.load(open(sys.argv[1]))
report = {}
for c in spec:
    problems = []
    try:
        version, shape, fortran, dtype = header_of(c['path'])
        arr = np.load(c['path'])
        order = 'F' if c['fortranOrder'] else 'C'
        if version != (1, 0): problems.append('version %r' % (version,))
        if arr.dtype.str != c['dtype']: problems.append('dtype %s' % arr.dtype.str)
        if list(arr.shape) != c['shape']: problems.append('shape %r' % (arr.shape,))
        if bool(fortran) != c['fortranOrder']: problems.append('fortran_order %r' % fortran)
        if c['fortranOrder'] and arr.ndim >= 2 and not arr.flags.f_contiguous: problems.append('loaded array not F-contiguous')
        got = arr.tobytes(order=order).hex()
        if got != c['hex']: problems.append('data %s... != %s...' % (got[:64], c['hex'][:64]))
        # Value for value as NumPy compares them, from the bytes we handed to writeNpy.
        want = np.frombuffer(bytes.fromhex(c['hex']), dtype=c['dtype']).reshape(c['shape'], order=order)
        if not np.array_equal(arr, want, equal_nan=arr.dtype.kind in 'fc'): problems.append('values differ')
    except Exception as e:
        problems.append('np.load failed: %r' % e)
    report[c['name']] = problems
print(json.dumps(report))
`

const writeCases = buildWriteCases()
let writeReport: Record<string, string[]> = {}
const writeErrors: Record<string, string> = {}
const writtenFiles: { name: string; path: string; nbytes: number }[] = []

test.before('writeNpy writes every case, NumPy loads them all (one Python run)', () => {
  const dir = subdir('we-wrote')
  const spec: object[] = []
  writeCases.forEach((c, i) => {
    const path = join(dir, `w${String(i).padStart(3, '0')}.npy`)
    try {
      writeNpy(path, c.value)
    } catch (e) {
      writeErrors[c.name] = (e as Error).message
      return
    }
    writtenFiles.push({ name: c.name, path, nbytes: c.hex.length / 2 })
    spec.push({ name: c.name, path, dtype: c.dtype, shape: c.shape, fortranOrder: c.fortranOrder, hex: c.hex })
  })
  const specPath = join(dir, 'spec.json')
  writeFileSync(specPath, JSON.stringify(spec))
  writeReport = JSON.parse(runPython(PY_COMMON + PY_CHECK_WRITTEN, [specPath]))
})

for (const group of [...new Set(writeCases.map((c) => c.group))]) {
  const title = group === 'bare' ? 'bare TypedArrays and { data, shape } without dtype' : `${group} (all shapes, C and Fortran)`
  test(`NumPy loads writeNpy's ${title} value for value`, (t) => {
    const failures: Record<string, string[]> = {}
    for (const c of writeCases.filter((c) => c.group === group)) {
      if (c.name in writeErrors) failures[c.name] = [`writeNpy threw: ${writeErrors[c.name]}`]
      else if (writeReport[c.name]?.length !== 0) failures[c.name] = writeReport[c.name] ?? ['not checked by Python']
    }
    t.deepEqual(failures, {})
  })
}

// 6. Data-start alignment, checked by our own parse of the bytes we wrote.
test('files written by writeNpy: version 1.0, data starts at a multiple of 64, header ends in a newline, no extra bytes', (t) => {
  const failures: Record<string, string> = {}
  t.true(writtenFiles.length > 100)
  for (const f of writtenFiles) {
    const file = readFileSync(f.path)
    const p = parsePreamble(file)
    const problems: string[] = []
    if (!p.magic.equals(Buffer.from('\x93NUMPY', 'latin1'))) problems.push('magic')
    if (p.major !== 1 || p.minor !== 0) problems.push(`version ${p.major}.${p.minor}`)
    if (p.dataStart % 64 !== 0) problems.push(`data starts at ${p.dataStart}`)
    if (!p.header.endsWith('\n') || !p.header.startsWith('{')) problems.push(`header ${JSON.stringify(p.header)}`)
    if (file.length !== p.dataStart + f.nbytes) problems.push(`file is ${file.length} bytes, expected ${p.dataStart + f.nbytes}`)
    if (problems.length) failures[f.name] = problems.join('; ')
  }
  t.deepEqual(failures, {})
})

test('writeNpy output reads back with readNpy unchanged', (t) => {
  const failures: Record<string, string[]> = {}
  for (const f of writtenFiles) {
    const c = writeCases.find((w) => w.name === f.name)!
    const problems = compareRead(f.path, { version: [1, 0], dtype: c.dtype, shape: c.shape, fortranOrder: c.fortranOrder, hex: c.hex })
    if (problems.length) failures[f.name] = problems
  }
  t.deepEqual(failures, {})
})

// ---------------------------------------------------------------------------
// 3. Format versions 2.0 and 3.0 (np.lib.format.write_array), including
//    headers longer than 65535 bytes, which need the 4-byte header length.
// ---------------------------------------------------------------------------

const VERSION_CASES: { name: string; version: [number, number]; descr: string; shape: number[]; order: 'C' | 'F'; bigHeader?: boolean }[] = [
  { name: 'v1.0 explicit <f8 (2,3)', version: [1, 0], descr: '<f8', shape: [2, 3], order: 'C' },
  { name: 'v2.0 <f8 (2,3)', version: [2, 0], descr: '<f8', shape: [2, 3], order: 'C' },
  { name: 'v2.0 >i4 (3,4) Fortran', version: [2, 0], descr: '>i4', shape: [3, 4], order: 'F' },
  { name: 'v2.0 <c16 (5,)', version: [2, 0], descr: '<c16', shape: [5], order: 'C' },
  { name: 'v2.0 |b1 ()', version: [2, 0], descr: '|b1', shape: [], order: 'C' },
  { name: 'v2.0 >u8 (2,0)', version: [2, 0], descr: '>u8', shape: [2, 0], order: 'C' },
  { name: 'v3.0 >f4 (2,3,4) Fortran', version: [3, 0], descr: '>f4', shape: [2, 3, 4], order: 'F' },
  { name: 'v3.0 <u8 (0,)', version: [3, 0], descr: '<u8', shape: [0], order: 'C' },
  { name: 'v3.0 <f2 (7,)', version: [3, 0], descr: '<f2', shape: [7], order: 'C' },
  { name: 'v3.0 >c8 (2,2)', version: [3, 0], descr: '>c8', shape: [2, 2], order: 'C' },
  { name: 'v3.0 >i2 9-d Fortran', version: [3, 0], descr: '>i2', shape: [2, 1, 3, 1, 2, 1, 2, 1, 2], order: 'F' },
  { name: 'v2.0 header > 65535 bytes <i8 (2,3)', version: [2, 0], descr: '<i8', shape: [2, 3], order: 'C', bigHeader: true },
  { name: 'v3.0 header > 65535 bytes >f8 (2,2) Fortran', version: [3, 0], descr: '>f8', shape: [2, 2], order: 'F', bigHeader: true },
]

const PY_WRITE_VERSIONS = String.raw`
out, spec = sys.argv[1], json.load(open(sys.argv[2]))
def write_big_header(path, arr, version):
    # A valid header padded with spaces past 65535 bytes (NumPy's reader accepts it; only 2.0/3.0 can hold it).
    d = fmt.header_data_from_array_1_0(arr)
    text = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (d['descr'], d['fortran_order'], d['shape'])
    body = text.encode('latin1')
    total = 12 + len(body) + 1
    pad = 70000 - total + ((-70000) % 64)
    header = body + b' ' * pad + b'\n'
    assert (12 + len(header)) % 64 == 0 and len(header) > 65535
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY' + bytes(version) + struct.pack('<I', len(header)) + header)
        f.write(arr.tobytes(order='F' if d['fortran_order'] else 'C'))
manifest = {}
for i, c in enumerate(spec):
    path = os.path.join(out, 'v%02d.npy' % i)
    arr = make_array(c['descr'], c['shape'], c['order'], 1000 + i)
    if c.get('bigHeader'):
        write_big_header(path, arr, tuple(c['version']))
    else:
        with open(path, 'wb') as f:
            fmt.write_array(f, arr, version=tuple(c['version']))
    manifest[c['name']] = dict(path=path, **expectation(path))
print(json.dumps(manifest))
`

let versionManifest: Record<string, Expectation & { path: string }> = {}

test.before('NumPy writes format 1.0/2.0/3.0 files (one Python run)', () => {
  const dir = subdir('versions')
  const spec = join(dir, 'spec.json')
  writeFileSync(spec, JSON.stringify(VERSION_CASES))
  versionManifest = JSON.parse(runPython(PY_COMMON + PY_WRITE_VERSIONS, [dir, spec]))
})

for (const c of VERSION_CASES) {
  test(`readNpy reads format ${c.name}`, (t) => {
    const want = versionManifest[c.name]
    // The file really is of that version (as NumPy reads it and as its bytes say).
    t.deepEqual(want.version, c.version)
    const p = parsePreamble(readFileSync(want.path))
    t.deepEqual([p.major, p.minor], c.version)
    if (c.bigHeader) t.true(p.headerLen > 65535)
    t.deepEqual(compareRead(want.path, want), [])
  })
}

// ---------------------------------------------------------------------------
// 4. Byte-identical to np.save: NumPy saves an array, we writeNpy the same
//    values (from NumPy's bytes), and the two files must be equal.
// ---------------------------------------------------------------------------

const SAME_BYTES_CASES: { name: string; descr: string; shape: number[]; order: 'C' | 'F'; bare?: boolean }[] = [
  { name: '<f8 (2,3)', descr: '<f8', shape: [2, 3], order: 'C' },
  { name: '<f8 (2,3) Fortran', descr: '<f8', shape: [2, 3], order: 'F' },
  { name: '<f8 ()', descr: '<f8', shape: [], order: 'C' },
  { name: '<f8 (0,)', descr: '<f8', shape: [0], order: 'C' },
  { name: '|b1 (7,)', descr: '|b1', shape: [7], order: 'C' },
  { name: '|b1 (3,0)', descr: '|b1', shape: [3, 0], order: 'C' },
  { name: '|i1 (2,3,4) Fortran', descr: '|i1', shape: [2, 3, 4], order: 'F' },
  { name: '|u1 (5,)', descr: '|u1', shape: [5], order: 'C' },
  { name: '<i2 (4,1)', descr: '<i2', shape: [4, 1], order: 'C' },
  { name: '<u2 (3,2) Fortran', descr: '<u2', shape: [3, 2], order: 'F' },
  { name: '<i4 9-d', descr: '<i4', shape: [2, 1, 3, 1, 2, 1, 2, 1, 2], order: 'C' },
  { name: '<u4 16-d Fortran', descr: '<u4', shape: [2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2], order: 'F' },
  { name: '<i8 (1000,)', descr: '<i8', shape: [1000], order: 'C' },
  { name: '<u8 (10,10) Fortran', descr: '<u8', shape: [10, 10], order: 'F' },
  { name: '<f2 (2,3)', descr: '<f2', shape: [2, 3], order: 'C' },
  { name: '<f4 (4,5,6) Fortran', descr: '<f4', shape: [4, 5, 6], order: 'F' },
  { name: '<f4 (123456789,0) (long first dim)', descr: '<f4', shape: [123456789, 0], order: 'C' },
  { name: '|u1 (2,100000) Fortran (long last dim)', descr: '|u1', shape: [2, 100000], order: 'F' },
  { name: '<c8 (3,)', descr: '<c8', shape: [3], order: 'C' },
  { name: '<c16 (2,2) Fortran', descr: '<c16', shape: [2, 2], order: 'F' },
  { name: '<c16 ()', descr: '<c16', shape: [], order: 'C' },
  { name: 'bare Float64Array (7,)', descr: '<f8', shape: [7], order: 'C', bare: true },
  { name: 'bare Int8Array (9,)', descr: '|i1', shape: [9], order: 'C', bare: true },
  { name: 'bare BigInt64Array (4,)', descr: '<i8', shape: [4], order: 'C', bare: true },
  { name: 'bare Uint32Array (0,)', descr: '<u4', shape: [0], order: 'C', bare: true },
]

const PY_NP_SAVE = String.raw`
out, spec = sys.argv[1], json.load(open(sys.argv[2]))
manifest = {}
for i, c in enumerate(spec):
    path = os.path.join(out, 's%02d.npy' % i)
    np.save(path, make_array(c['descr'], c['shape'], c['order'], 2000 + i))
    manifest[c['name']] = dict(path=path, **expectation(path))
print(json.dumps(manifest))
`

let saveManifest: Record<string, Expectation & { path: string }> = {}
let sameBytesDir = ''

test.before('np.save writes the byte-identity cases (one Python run)', () => {
  const dir = subdir('np-save')
  sameBytesDir = subdir('np-save-ours')
  const spec = join(dir, 'spec.json')
  writeFileSync(spec, JSON.stringify(SAME_BYTES_CASES))
  saveManifest = JSON.parse(runPython(PY_COMMON + PY_NP_SAVE, [dir, spec]))
})

SAME_BYTES_CASES.forEach((c, i) => {
  test(`writeNpy is byte-identical to np.save: ${c.name}`, (t) => {
    const want = saveManifest[c.name]
    const dt = dtypeOf(want.dtype)
    const data = arrayFromBytes(dt.cls, Buffer.from(want.hex, 'hex'))
    const ours = join(sameBytesDir, `o${i}.npy`)
    // Fortran order as NumPy decided it (np.save writes C order for arrays that are both).
    writeNpy(ours, c.bare ? data : { data, shape: want.shape, dtype: want.dtype, fortranOrder: want.fortranOrder })
    const theirs = readFileSync(want.path)
    const mine = readFileSync(ours)
    if (!mine.equals(theirs)) {
      const a = parsePreamble(theirs)
      const b = parsePreamble(mine)
      t.deepEqual(
        { header: b.header, headerLen: b.headerLen, size: mine.length, dataEqual: mine.subarray(b.dataStart).equals(theirs.subarray(a.dataStart)) },
        { header: a.header, headerLen: a.headerLen, size: theirs.length, dataEqual: true },
        'writeNpy output differs from np.save',
      )
    }
    t.true(mine.equals(theirs))
  })
})

// ---------------------------------------------------------------------------
// 5. Invalid or unsupported files: readNpy must throw an Error naming the file
//    and saying what is wrong, never return an array. Python builds each file
//    (mostly by corrupting np.save output) and reports whether NumPy rejects it,
//    so we know each "invalid" case really is invalid.
// ---------------------------------------------------------------------------

const MAGIC = /magic|not an? (\.?npy|numpy)/i
const VERSION = /version/i
const HEADER = /header/i
const TRUNCATED_HEADER = /header|truncat|end of file|eof|too short/i
const DTYPE = /dtype|descr/i
const SHORT_DATA = /truncat|too short|missing|needs \d+|expected \d+/i
const LONG_DATA = /trailing|extra|too long|longer|needs only \d+|expected \d+/i

// numpyRejects: true = np.load must fail too (sanity check of the case); false = NumPy loads it
// (a valid .npy of a dtype we do not support, an .npz, or NumPy's lax handling of trailing bytes).
const INVALID_CASES: { name: string; message: RegExp; numpyRejects: boolean }[] = [
  { name: 'bad magic first byte', message: MAGIC, numpyRejects: true },
  { name: 'bad magic text', message: MAGIC, numpyRejects: true },
  { name: 'zip (npz) file', message: MAGIC, numpyRejects: false }, // np.load opens it as an NpzFile
  { name: 'plain text file', message: MAGIC, numpyRejects: true },
  { name: 'empty file', message: /magic|empty|truncat|too short|end of file|eof/i, numpyRejects: true },
  { name: 'shorter than the magic', message: /magic|truncat|too short|end of file|eof/i, numpyRejects: true },
  { name: 'unsupported version 4.0', message: VERSION, numpyRejects: true },
  { name: 'unsupported version 1.5', message: VERSION, numpyRejects: true },
  { name: 'cut inside the header length', message: TRUNCATED_HEADER, numpyRejects: true },
  { name: 'truncated header', message: TRUNCATED_HEADER, numpyRejects: true },
  { name: 'header length beyond end of file', message: TRUNCATED_HEADER, numpyRejects: true },
  { name: 'v2.0 header length beyond end of file', message: TRUNCATED_HEADER, numpyRejects: true },
  { name: 'v2.0 header length of 1 GiB', message: TRUNCATED_HEADER, numpyRejects: true },
  { name: 'header not a dict', message: HEADER, numpyRejects: true },
  { name: 'header missing shape', message: /header|shape/i, numpyRejects: true },
  { name: 'header missing descr', message: /header|descr/i, numpyRejects: true },
  { name: 'header missing fortran_order', message: /header|fortran/i, numpyRejects: true },
  { name: 'header extra key', message: HEADER, numpyRejects: true },
  { name: 'header fortran_order not a bool', message: /header|fortran/i, numpyRejects: true },
  { name: 'header shape not integers', message: /header|shape/i, numpyRejects: true },
  { name: 'header shape not a tuple', message: /header|shape/i, numpyRejects: true },
  { name: 'header unterminated dict', message: HEADER, numpyRejects: true },
  { name: 'header garbage bytes', message: HEADER, numpyRejects: true },
  { name: 'header descr not a dtype', message: /header|dtype|descr/i, numpyRejects: true },
  { name: 'object array |O', message: DTYPE, numpyRejects: true },
  { name: 'unicode <U5', message: DTYPE, numpyRejects: false },
  { name: 'bytes |S3', message: DTYPE, numpyRejects: false },
  { name: 'structured [(a,<i4),(b,<f8)]', message: DTYPE, numpyRejects: false },
  { name: 'datetime <M8[D]', message: DTYPE, numpyRejects: false },
  { name: 'void |V4', message: DTYPE, numpyRejects: false },
  { name: 'data cut mid-element', message: SHORT_DATA, numpyRejects: true },
  { name: 'data short by one element', message: SHORT_DATA, numpyRejects: true },
  { name: 'data missing entirely', message: SHORT_DATA, numpyRejects: true },
  { name: 'big-endian data cut mid-element', message: SHORT_DATA, numpyRejects: true },
  { name: '0-d array without its data', message: SHORT_DATA, numpyRejects: true },
  { name: 'Fortran data short by one element', message: SHORT_DATA, numpyRejects: true },
  { name: 'trailing bytes (one whole element)', message: LONG_DATA, numpyRejects: false },
  { name: 'one trailing byte', message: LONG_DATA, numpyRejects: false },
  { name: 'trailing bytes after an empty array', message: LONG_DATA, numpyRejects: false },
  { name: 'trailing bytes after a 0-d array', message: LONG_DATA, numpyRejects: false },
]

const PY_WRITE_INVALID = String.raw`
out, spec = sys.argv[1], json.load(open(sys.argv[2]))
def saved(arr, **kw):
    b = io.BytesIO(); np.save(b, arr, **kw); return b.getvalue()
def hand_made(text, data, version=(1, 0)):
    # A file exactly like NumPy's except for the header text we choose.
    body = text if isinstance(text, bytes) else text.encode('latin1')
    pre = 10 if version == (1, 0) else 12
    header = body + b' ' * ((-(pre + len(body) + 1)) % 64) + b'\n'
    size = struct.pack('<H', len(header)) if version == (1, 0) else struct.pack('<I', len(header))
    return b'\x93NUMPY' + bytes(version) + size + header + data
base = make_array('<f8', [2, 3], 'C', 7)
B = saved(base)
HL = struct.unpack('<H', B[8:10])[0]
D = base.tobytes()
def hdr(descr="'<f8'", fortran='False', shape='(2, 3)'):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
v2 = io.BytesIO(); fmt.write_array(v2, base, version=(2, 0)); V2 = v2.getvalue()
fort = saved(make_array('<i4', [3, 4], 'F', 8))
build = {
    'bad magic first byte': lambda: b'\x92' + B[1:],
    'bad magic text': lambda: B[:1] + b'NUMPI' + B[6:],
    'zip (npz) file': lambda: (lambda z: (np.savez(z, a=base), z.getvalue())[1])(io.BytesIO()),
    'plain text file': lambda: b'this is not a numpy file, just some text that is long enough to have a header\n' * 3,
    'empty file': lambda: b'',
    'shorter than the magic': lambda: B[:4],
    'unsupported version 4.0': lambda: B[:6] + bytes([4, 0]) + B[8:],
    'unsupported version 1.5': lambda: B[:6] + bytes([1, 5]) + B[8:],
    'cut inside the header length': lambda: B[:9],
    'truncated header': lambda: B[:10 + HL // 2],
    'header length beyond end of file': lambda: B[:8] + struct.pack('<H', 60000) + B[10:],
    'v2.0 header length beyond end of file': lambda: V2[:8] + struct.pack('<I', 70000) + V2[12:],
    'v2.0 header length of 1 GiB': lambda: V2[:8] + struct.pack('<I', 1 << 30) + V2[12:],
    'header not a dict': lambda: hand_made("[('descr', '<f8'), ('fortran_order', False), ('shape', (2, 3))]", D),
    'header missing shape': lambda: hand_made("{'descr': '<f8', 'fortran_order': False, }", D),
    'header missing descr': lambda: hand_made("{'fortran_order': False, 'shape': (2, 3), }", D),
    'header missing fortran_order': lambda: hand_made("{'descr': '<f8', 'shape': (2, 3), }", D),
    'header extra key': lambda: hand_made("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'extra': 1, }", D),
    'header fortran_order not a bool': lambda: hand_made(hdr(fortran="'no'"), D),
    'header shape not integers': lambda: hand_made(hdr(shape="(2, 'x')"), D),
    'header shape not a tuple': lambda: hand_made(hdr(shape="'2, 3'"), D),
    'header unterminated dict': lambda: hand_made("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), ", D),
    'header garbage bytes': lambda: hand_made(bytes(range(128, 250)), D),
    'header descr not a dtype': lambda: hand_made(hdr(descr="'not-a-dtype'"), D),
    'object array |O': lambda: saved(np.array([1, 'a', None], dtype=object), allow_pickle=True),
    'unicode <U5': lambda: saved(np.array(['hello', 'a'], dtype='<U5')),
    'bytes |S3': lambda: saved(np.array([b'abc', b'd'], dtype='|S3')),
    'structured [(a,<i4),(b,<f8)]': lambda: saved(np.zeros(3, dtype=[('a', '<i4'), ('b', '<f8')])),
    'datetime <M8[D]': lambda: saved(np.arange(3).astype('<M8[D]')),
    'void |V4': lambda: saved(np.zeros(2, dtype='V4')),
    'data cut mid-element': lambda: B[:-3],
    'data short by one element': lambda: B[:-8],
    'data missing entirely': lambda: B[:10 + HL],
    'big-endian data cut mid-element': lambda: saved(make_array('>i4', [5], 'C', 9))[:-1],
    '0-d array without its data': lambda: saved(np.float64(1.5))[:-8],
    'Fortran data short by one element': lambda: fort[:-4],
    'trailing bytes (one whole element)': lambda: B + D[:8],
    'one trailing byte': lambda: B + b'\x01',
    'trailing bytes after an empty array': lambda: saved(np.zeros((3, 0))) + b'\x00' * 8,
    'trailing bytes after a 0-d array': lambda: saved(np.int16(-3)) + b'\x00\x00',
}
manifest = {}
for i, c in enumerate(spec):
    path = os.path.join(out, 'x%02d.npy' % i)
    with open(path, 'wb') as f:
        f.write(build[c['name']]())
    try:
        np.load(path)
        rejected, error = False, None
    except Exception as e:
        rejected, error = True, repr(e)
    manifest[c['name']] = dict(path=path, numpyRejects=rejected, numpyError=error)
print(json.dumps(manifest))
`

let invalidManifest: Record<string, { path: string; numpyRejects: boolean; numpyError: string | null }> = {}

test.before('Python writes the invalid and unsupported files (one Python run)', () => {
  const dir = subdir('invalid')
  const spec = join(dir, 'spec.json')
  writeFileSync(spec, JSON.stringify(INVALID_CASES.map((c) => ({ name: c.name }))))
  invalidManifest = JSON.parse(runPython(PY_COMMON + PY_WRITE_INVALID, [dir, spec]))
})

for (const c of INVALID_CASES) {
  test(`readNpy rejects: ${c.name}`, (t) => {
    const m = invalidManifest[c.name]
    t.is(m.numpyRejects, c.numpyRejects, `NumPy's verdict on this case changed: ${m.numpyError}`)
    let result: unknown
    const error = t.throws(() => {
      result = readNpy(m.path)
    }, { instanceOf: Error })
    if (!error) {
      const r = result as NpyArray
      t.log(`returned dtype ${r.dtype} shape ${JSON.stringify(r.shape)} (${r.data.length} elements)`)
      return
    }
    t.true(error.message.includes(m.path), `message does not name the file: ${error.message}`)
    // What is wrong must be said in words, not just the path (the file names here are neutral).
    t.regex(error.message.split(m.path).join(''), c.message)
  })
}
