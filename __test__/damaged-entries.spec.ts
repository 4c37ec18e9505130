// Damaged entries: whatever is wrong with an entry's files, a load is a
// miss, the call recomputes and the entry is replaced; never a wrong array.
import test from 'ava'
import { readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { NumpyFuncCache, readNpy, writeNpy } from '../dist'
import { runPython, tempDir } from './helpers'
import { type Any, onlyEntry, hexOf, numpyLoad } from './entries'

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
