// Interoperability of readNpz / writeNpz with real NumPy, in both
// directions, and what each refuses.
import test from 'ava'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readNpz, writeNpz } from '../dist'
import { root, runPython, tempDir } from './helpers'

/** What NumPy's np.load makes of an .npz: per key, its dtype, shape and data as hex. */
function numpyView(path: string): Record<string, [string, number[], string]> {
  const out = runPython(
    `with np.load(sys.argv[1]) as z:\n    print(json.dumps({k: [z[k].dtype.str, list(z[k].shape), z[k].tobytes().hex()] for k in z.files}))`,
    [path],
  )
  return JSON.parse(out)
}

const hex = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex')

test('a tuple is written as arr_0, arr_1… and NumPy loads each member as written', (t) => {
  const path = join(tempDir(t), 'tuple.npz')
  const a = new Float64Array([1.5, -2, 3.25])
  const b = { data: new Int32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }
  const c = { data: new Uint8Array([1, 0, 1]), shape: [3], dtype: '|b1' }
  writeNpz(path, [a, b, c])
  t.deepEqual(numpyView(path), {
    arr_0: ['<f8', [3], hex(a)],
    arr_1: ['<i4', [2, 3], hex(b.data)],
    arr_2: ['|b1', [3], hex(c.data)],
  })
})

test('a record is written with its names in their order, and readNpz gives back the same object', (t) => {
  const path = join(tempDir(t), 'record.npz')
  const cov = { data: new Float32Array([1, 0.5, 0.5, 2]), shape: [2, 2] }
  const mean = new Float64Array([0.25, 0.75])
  writeNpz(path, { mean, cov, 'größe de ärger': new Uint16Array([7]) })
  const back = readNpz(path)
  t.deepEqual(Object.keys(back), ['mean', 'cov', 'größe de ärger'])
  t.deepEqual(back.mean, { data: mean, shape: [2], dtype: '<f8', fortranOrder: false })
  t.deepEqual(back.cov, { data: cov.data, shape: [2, 2], dtype: '<f4', fortranOrder: false })
  t.deepEqual(Object.keys(numpyView(path)), ['mean', 'cov', 'größe de ärger'])
})

test("NumPy's own np.savez is read, big-endian members in native order, keys as np.load gives them", (t) => {
  const path = join(tempDir(t), 'numpy.npz')
  runPython(`np.savez(sys.argv[1], np.arange(6, dtype='>f8').reshape(2, 3), labels=np.array([1, -2], dtype='<i2'), flags=np.array([True, False]))`, [path])
  const z = readNpz(path)
  t.deepEqual(Object.keys(z).sort(), ['arr_0', 'flags', 'labels'])
  t.deepEqual(z.arr_0, { data: new Float64Array([0, 1, 2, 3, 4, 5]), shape: [2, 3], dtype: '<f8', fortranOrder: false })
  t.deepEqual(z.labels.data, new Int16Array([1, -2]))
  t.is(z.flags.dtype, '|b1')
})

test('each member written is 64-byte aligned in the file, so it can be mapped', (t) => {
  const path = join(tempDir(t), 'aligned.npz')
  writeNpz(path, [new Uint8Array([1, 2, 3]), new Float64Array([4]), new Int8Array(100)])
  const offsets = JSON.parse(
    runPython(
      `import zipfile\nz = zipfile.ZipFile(sys.argv[1])\nf = open(sys.argv[1], 'rb')\nout = []\nfor i in z.infolist():\n    f.seek(i.header_offset + 26)\n    n, e = np.frombuffer(f.read(4), '<u2')\n    start = i.header_offset + 30 + int(n) + int(e)\n    f.seek(start)\n    v = np.lib.format.read_magic(f)\n    (np.lib.format.read_array_header_1_0 if v == (1, 0) else np.lib.format.read_array_header_2_0)(f)\n    out.append(f.tell())\nprint(json.dumps(out))`,
      [path],
    ),
  )
  t.is(offsets.length, 3)
  for (const o of offsets) t.is(o % 64, 0, `data at ${o}`)
})

test('the golden archive (test-vectors/npz.json) reads in NumPy and in readNpz as its members', (t) => {
  const golden = JSON.parse(readFileSync(join(root, 'test-vectors', 'npz.json'), 'utf8'))
  const path = join(tempDir(t), 'golden.npz')
  writeFileSync(path, Buffer.from(golden.archive, 'hex'))
  const view = numpyView(path)
  const z = readNpz(path)
  t.deepEqual(Object.keys(z), golden.members.map((m: any) => m.name))
  for (const m of golden.members) {
    t.deepEqual(view[m.name], [m.descr, m.shape, m.data], m.name)
    const stored = Buffer.from(m.data, 'hex')
    // readNpz gives native (little-endian) order.
    if (m.descr.startsWith('>')) stored.swap16()
    t.is(hex(z[m.name].data), stored.toString('hex'), m.name)
    t.deepEqual(z[m.name].shape, m.shape)
  }
})

test('a member that cannot be stored is a TypeError naming it', (t) => {
  const path = join(tempDir(t), 'bad.npz')
  t.throws(() => writeNpz(path, [new Float64Array(1), 3 as any]), { instanceOf: TypeError, message: /writeNpz: arrays\[1\]/ })
  t.throws(() => writeNpz(path, { mean: new Float64Array(1), cov: [1, 2] as any }), { instanceOf: TypeError, message: /writeNpz: arrays\.cov/ })
  t.throws(() => writeNpz(path, { 'a b': 'x' as any }), { instanceOf: TypeError, message: /writeNpz: arrays\["a b"\]/ })
  t.throws(() => writeNpz(path, new Float64Array(2) as any), { instanceOf: TypeError, message: /use writeNpy/ })
  // A hole in a sparse array is a missing member, named.
  // eslint-disable-next-line no-sparse-arrays
  t.throws(() => writeNpz(path, [new Float64Array(1), , new Float64Array(1)] as any), { instanceOf: TypeError, message: /writeNpz: arrays\[1\] .*got undefined/ })
})

test('a member name zip tools would unpack elsewhere is refused naming it, and nothing is written', (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'names.npz')
  writeFileSync(path, 'before')
  t.throws(() => writeNpz(path, { '../evil': new Float64Array(1) }), { instanceOf: TypeError, code: 'ERR_NFC_INVALID_ARG', message: /"\.\.\/evil".*path separator/ })
  const many = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`m${i}`, new Uint8Array(1)]))
  t.throws(() => writeNpz(path, many), { code: 'ERR_NFC_INVALID_ARG', message: /1025 members; at most 1024/ })
  t.is(readFileSync(path, 'utf8'), 'before', 'the file is untouched')
})

test('a flipped byte in a member is refused naming the file and the member', (t) => {
  const path = join(tempDir(t), 'flip.npz')
  writeNpz(path, { first: new Float64Array([1, 2, 3]), second: new Int32Array([4]) })
  const bytes = readFileSync(path)
  const at = bytes.indexOf(Buffer.from(new Float64Array([2]).buffer))
  bytes[at] ^= 1
  writeFileSync(path, bytes)
  const err = t.throws(() => readNpz(path), { code: 'ERR_NFC_BAD_NPY' })
  t.regex(err!.message, /flip\.npz/)
  t.regex(err!.message, /"first".*CRC-32/)
})

test("np.savez_compressed's members are refused naming the member and saying why", (t) => {
  const path = join(tempDir(t), 'packed.npz')
  runPython(`np.savez_compressed(sys.argv[1], weights=np.ones(10))`, [path])
  t.throws(() => readNpz(path), { message: /"weights".*compressed/ })
})
