// Hostile cache directories, faults and bad arguments: every call returns
// the computed result or a clear error, nothing is read or deleted outside
// the cache, and no entry is left half-written.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy, writeNpy } from '../dist'
import { fromNative, nativeCall } from '../dist/errors'
import { root, runUnprivileged, tempDir, withoutIndex } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const native = require('../binding/index.js')

const entryFiles = (dir: string) => readdirSync(dir).filter((f) => /^[0-9a-f]{64}\.(npy|json)$/.test(f))
const tempFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'))

/** A cache whose one function counts its calls and returns [n, n+1, n+2]. */
function counted(dir: string) {
  const cache = new NumpyFuncCache(dir)
  const events: { storeError: Error[]; damagedEntry: Error[] } = { storeError: [], damagedEntry: [] }
  cache.on('storeError', (e) => events.storeError.push(e))
  cache.on('damagedEntry', (e) => events.damagedEntry.push(e))
  const state = { calls: 0 }
  const f = cache.createCachedFunc(
    (n: number) => {
      state.calls++
      return new Float64Array([n, n + 1, n + 2])
    },
    { name: 'counted', trackSource: false },
  )
  return { cache, f, state, events }
}

/** Stores f(n) once and returns the paths of its two files. */
function entryOf(dir: string, n: number): { npy: string; json: string } {
  counted(dir).f(n)
  const npy = entryFiles(dir).find((x) => x.endsWith('.npy'))!
  return { npy: join(dir, npy), json: join(dir, npy.replace(/\.npy$/, '.json')) }
}

test('a panic in the native core is an Error on the JS thread and on the cache\'s runtime, and the process lives on', async (t) => {
  // The binding says its kind; the package gives every error its public code from it.
  t.throws(() => nativeCall(() => native.panicForTests(false)), { instanceOf: Error, code: 'ERR_NFC_PANIC', message: /panic in the native core: a deliberate panic/ })
  const onRuntime = native.panicForTests(true).catch((e: unknown) => Promise.reject(fromNative(e)))
  await t.throwsAsync(onRuntime, { instanceOf: Error, code: 'ERR_NFC_PANIC', message: /panic in the native core: a deliberate panic on the runtime/ })
  t.is(native.hashKey(new Uint8Array(3), [], []).length, 64)
})

test('an entry replaced by a link to a file outside is not followed: recomputed, and the link replaced', (t) => {
  const dir = tempDir(t)
  const outside = join(tempDir(t), 'secret.npy')
  writeNpy(outside, new Float64Array([666, 666, 666]))
  const { npy } = entryOf(dir, 1)
  unlinkSync(npy)
  symlinkSync(outside, npy)
  const { f, state, events } = counted(dir)
  t.deepEqual(f(1), new Float64Array([1, 2, 3]))
  t.is(state.calls, 1, 'the link was a miss')
  t.is(events.damagedEntry.length, 1)
  t.true(lstatSync(npy).isFile(), 'the store replaced the link itself')
  t.deepEqual(readNpy(outside).data, new Float64Array([666, 666, 666]), 'the link target is untouched')
  t.deepEqual(f(1), new Float64Array([1, 2, 3]))
  t.is(state.calls, 1)
})

test('entry files that are links to themselves, metadata links, and dangling links are misses', (t) => {
  const dir = tempDir(t)
  const { npy, json } = entryOf(dir, 2)
  unlinkSync(npy)
  symlinkSync(npy, npy) // a loop
  const first = counted(dir)
  t.deepEqual(first.f(2), new Float64Array([2, 3, 4]))
  t.is(first.state.calls, 1)
  const target = join(tempDir(t), 'meta.json')
  writeFileSync(target, readFileSync(json))
  unlinkSync(json)
  symlinkSync(target, json)
  const second = counted(dir)
  t.deepEqual(second.f(2), new Float64Array([2, 3, 4]))
  t.is(second.state.calls, 1, 'a metadata link is not followed either')
  unlinkSync(npy)
  symlinkSync(join(dir, 'nowhere'), npy)
  const third = counted(dir)
  t.deepEqual(third.f(2), new Float64Array([2, 3, 4]))
  t.is(third.state.calls, 1)
})

test('a directory where an entry file is expected: the result is returned, the store fails cleanly, the directory is kept', (t) => {
  const dir = tempDir(t)
  const { npy } = entryOf(dir, 3)
  unlinkSync(npy)
  mkdirSync(npy)
  writeFileSync(join(npy, 'inside.txt'), 'user data')
  const { f, state, events } = counted(dir)
  t.deepEqual(f(3), new Float64Array([3, 4, 5]))
  t.deepEqual(f(3), new Float64Array([3, 4, 5]))
  t.is(state.calls, 2, 'never a hit')
  t.is(events.storeError.length, 2)
  t.is(readFileSync(join(npy, 'inside.txt'), 'utf8'), 'user data')
  t.deepEqual(tempFiles(dir), [], 'no temporary file is left behind')
  new NumpyFuncCache(dir).clearCache()
  t.true(existsSync(join(npy, 'inside.txt')), 'clearCache does not descend into it')
})

test('entry files the process may not read are misses, recomputed and replaced (as an unprivileged user)', (t) => {
  const work = tempDir(t)
  chmodSync(work, 0o755)
  const dir = join(work, 'cache')
  mkdirSync(dir)
  const { npy, json } = entryOf(dir, 4)
  chmodSync(dir, 0o777)
  chmodSync(npy, 0o000)
  chmodSync(json, 0o600)
  const out = runUnprivileged(
    t,
    `
    const { NumpyFuncCache } = require(process.argv[2])
    const cache = new NumpyFuncCache(process.argv[3])
    const damaged = []
    cache.on('damagedEntry', (e) => damaged.push(e.message))
    let calls = 0
    const f = cache.createCachedFunc((n) => { calls++; return new Float64Array([n, n + 1, n + 2]) }, { name: 'counted', trackSource: false })
    const a = Array.from(f(4)), b = Array.from(f(4))
    process.stdout.write(JSON.stringify({ uid: process.getuid(), a, b, calls, damaged }))
    `,
    [dir],
  )
  t.not(out.uid, 0)
  t.deepEqual(out.a, [4, 5, 6])
  t.deepEqual(out.b, [4, 5, 6])
  t.is(out.calls, 1, 'unreadable: a miss; after the store it hits')
  t.true(out.damaged.length >= 1, JSON.stringify(out.damaged))
  t.is(statSync(npy).mode & 0o777, 0o644, 'the unreadable file was replaced by a new entry')
})

test('a cache directory that another user can write: loads stay in it and clearing deletes nothing outside', (t) => {
  const dir = tempDir(t)
  chmodSync(dir, 0o777)
  const outsideDir = tempDir(t)
  const victim = join(outsideDir, 'victim.npy')
  writeNpy(victim, new Float64Array([1]))
  const { f } = counted(dir)
  f(5)
  // Another user plants links under names the cache owns.
  symlinkSync(victim, join(dir, `${'a'.repeat(64)}.npy`))
  symlinkSync(outsideDir, join(dir, `${'b'.repeat(64)}.json`))
  new NumpyFuncCache(dir).clearCache()
  t.deepEqual(withoutIndex(readdirSync(dir)), [], 'only the emptied index is left')
  t.true(existsSync(victim))
  t.deepEqual(readdirSync(outsideDir), ['victim.npy'])
})

/** A fresh tmpfs of `size`, or undefined (with a logged reason) where this run cannot mount one. */
function withSmallFilesystem(t: import('ava').ExecutionContext, size: string): string | undefined {
  const skip = () => void t.log(`skipped: mounting a ${size} tmpfs needs Linux and root; this run has neither`)
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return skip()
  const mnt = join(tempDir(t), 'fs')
  mkdirSync(mnt)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt], { stdio: 'ignore' })
  } catch {
    return skip()
  }
  t.teardown(() => execFileSync('umount', ['-l', mnt]))
  return mnt
}

test.serial('disk full: the result is returned, the failure reported, nothing half-written, earlier entries intact', (t) => {
  const mnt = withSmallFilesystem(t, '1m')
  if (!mnt) return t.pass()
  const dir = join(mnt, 'cache')
  const { cache, f, events } = counted(dir)
  f(6) // a small entry that fits
  const big = cache.createCachedFunc((n: number) => new Float64Array(256 * 1024).fill(n), { name: 'big' })
  const result = big(7) as Float64Array
  t.is(result.length, 256 * 1024)
  t.is(result[result.length - 1], 7)
  t.is(events.storeError.length, 1)
  t.regex(events.storeError[0].message, /No space left on device|ENOSPC|os error 28/)
  // Codes a program can branch on: ours, and the OS's beneath it.
  const error = events.storeError[0] as Error & { code: string; cause: { code: string; osCode: string; path: string } }
  t.is(error.code, 'ERR_NFC_STORE_FAILED')
  t.like(error.cause, { code: 'ERR_NFC_IO', osCode: 'ENOSPC' })
  t.true(error.cause.path.startsWith(dir), error.cause.path)
  t.deepEqual(tempFiles(dir), [], 'the partial temporary file was removed')
  t.is(entryFiles(dir).length, 2, 'only the small entry is there')
  const again = counted(dir)
  t.deepEqual(again.f(6), new Float64Array([6, 7, 8]))
  t.is(again.state.calls, 0, 'the earlier entry still hits')
})

test.serial('a read-only filesystem: results are returned and the failure is reported', (t) => {
  const mnt = withSmallFilesystem(t, '1m')
  if (!mnt) return t.pass()
  const dir = join(mnt, 'cache')
  // Stored by a child: this process's open index would keep the filesystem busy and the remount would fail.
  execFileSync(process.execPath, [
    '-e',
    `const { NumpyFuncCache } = require(process.argv[1])
     new NumpyFuncCache(process.argv[2]).createCachedFunc((n) => new Float64Array([n, n + 1, n + 2]), { name: 'counted', trackSource: false })(8)`,
    join(root, 'dist'),
    dir,
  ])
  execFileSync('mount', ['-o', 'remount,ro', mnt])
  const { f, state, events } = counted(dir)
  t.deepEqual(f(8), new Float64Array([8, 9, 10]), 'an existing entry still hits')
  t.is(state.calls, 0)
  t.deepEqual(f(9), new Float64Array([9, 10, 11]))
  t.is(events.storeError.length, 1)
  t.regex(events.storeError[0].message, /Read-only file system|EROFS|os error 30/)
})

test('the cache directory removed while in use: the next call computes and recreates it, sync and async', async (t) => {
  const dir = join(tempDir(t), 'cache')
  const { cache, f, state } = counted(dir)
  const g = cache.createCachedFunc(async (n: number) => new Int32Array([n]), { name: 'g' })
  f(10)
  await g(1)
  rmSync(dir, { recursive: true })
  t.deepEqual(f(10), new Float64Array([10, 11, 12]))
  t.is(state.calls, 2)
  t.deepEqual(await g(1), new Int32Array([1]))
  t.is(entryFiles(dir).length, 4, 'both entries were stored again')
})

test('a lease promising forever, untouched for 30 days, is broken past the ceiling: a computeOnce call takes it, prune and clearCache remove it', async (t) => {
  const dir = join(tempDir(t), 'cache')
  const cache = new NumpyFuncCache(dir, { computeOnce: { signal: AbortSignal.timeout(60_000) } })
  let calls = 0
  const f = cache.createCachedFunc(async (k: number) => (calls++, new Float64Array(2).fill(k)), { name: 'fill', trackSource: false })
  await f(1)
  const [{ key }] = cache.entries()
  cache.remove(key)
  const lease = join(dir, `.${key}.lock`)
  const plant = () => {
    writeFileSync(lease, '0123456789abcdef 4242 10000000000000000 elsewhere\n')
    const monthAgo = new Date(Date.now() - 30 * 24 * 3600 * 1000)
    utimesSync(lease, monthAgo, monthAgo)
  }
  plant()
  t.deepEqual(await f(1), new Float64Array([1, 1]))
  t.is(calls, 2, 'computed, not waited for forever')
  cache.remove(key)
  plant()
  t.true(cache.prune().removedLeftovers >= 1)
  t.false(existsSync(lease), 'prune removed it')
  plant()
  cache.clearCache()
  t.false(existsSync(lease), 'clearCache removed it')
})

test('file descriptors exhausted: the call returns its result, and the cache works again once descriptors free up', (t) => {
  const out = JSON.parse(
    execFileSync(
      'bash',
      [
        '-c',
        `ulimit -n 64 && exec "${process.execPath}" -e "$0" "$@"`,
        `
        const fs = require('fs')
        const { NumpyFuncCache } = require(process.argv[1])
        const dir = process.argv[2]
        const cache = new NumpyFuncCache(dir)
        const events = []
        cache.on('storeError', (e) => events.push('storeError'))
        cache.on('damagedEntry', (e) => events.push('damagedEntry'))
        let calls = 0
        const f = cache.createCachedFunc((n) => { calls++; return new Float64Array([n, 2 * n]) }, { name: 'fd', trackSource: false })
        f(1)
        const fds = []
        try { for (;;) fds.push(fs.openSync('/dev/null', 'r')) } catch (e) { if (e.code !== 'EMFILE') throw e }
        const starved = [Array.from(f(1)), Array.from(f(2))]
        for (const fd of fds) fs.closeSync(fd)
        const after = [Array.from(f(1)), Array.from(f(2)), Array.from(f(2))]
        process.stdout.write(JSON.stringify({ starved, after, calls, events, opened: fds.length, tmp: fs.readdirSync(dir).filter((x) => x.endsWith('.tmp')) }))
        `,
        join(root, 'dist'),
        join(tempDir(t), 'cache'),
      ],
      { encoding: 'utf8' },
    ),
  )
  t.log(`descriptors opened until EMFILE: ${out.opened}; events while starved: ${out.events.join(', ')}`)
  t.deepEqual(out.starved, [[1, 2], [2, 4]])
  t.deepEqual(out.after, [[1, 2], [2, 4], [2, 4]])
  t.true(out.events.includes('storeError'), 'the store without descriptors was reported')
  t.deepEqual(out.tmp, [])
  // f(1): stored, then recomputed while starved (unreadable: a miss); f(2): starved, then stored once.
  t.true(out.calls >= 3 && out.calls <= 4, `calls: ${out.calls}`)
})

// Every public function, every parameter: the wrong type is a TypeError and
// a bad value a RangeError, and the message names the parameter.
const badCalls: [string, () => unknown, ErrorConstructor, RegExp][] = [
  ['new NumpyFuncCache(42)', () => new NumpyFuncCache(42 as never), TypeError, /path/],
  ["new NumpyFuncCache('')", () => new NumpyFuncCache(''), TypeError, /path/],
  ['new NumpyFuncCache(dir, 3)', () => new NumpyFuncCache('/tmp/x-nfc', 3 as never), TypeError, /options/],
  ['new NumpyFuncCache(dir, { mmap: 1 })', () => new NumpyFuncCache('/tmp/x-nfc', { mmap: 1 } as never), TypeError, /mmap/],
  ['new NumpyFuncCache(dir, { maxBites: 1 })', () => new NumpyFuncCache('/tmp/x-nfc', { maxBites: 1 } as never), TypeError, /maxBites/],
  ['createCachedFunc(null)', () => new NumpyFuncCache('/tmp/x-nfc').createCachedFunc(null as never), TypeError, /fn/],
  ['createCachedFunc(f, { name: 3 })', () => new NumpyFuncCache('/tmp/x-nfc').createCachedFunc(() => new Int8Array(), { name: 3 } as never), TypeError, /name/],
  ['createCachedFunc(f, { version: 1 })', () => new NumpyFuncCache('/tmp/x-nfc').createCachedFunc(() => new Int8Array(), { version: 1 } as never), TypeError, /version/],
  ['createCachedFunc(f, { trackSource: "no" })', () => new NumpyFuncCache('/tmp/x-nfc').createCachedFunc(() => new Int8Array(), { trackSource: 'no' } as never), TypeError, /trackSource/],
  ['createCachedFunc(f, { async: 1 })', () => new NumpyFuncCache('/tmp/x-nfc').createCachedFunc(() => new Int8Array(), { async: 1 } as never), TypeError, /async/],
  ['createCachedFunc(f, { nmae: "x" })', () => new NumpyFuncCache('/tmp/x-nfc').createCachedFunc(() => new Int8Array(), { nmae: 'x' } as never), TypeError, /nmae/],
  ['clearCache({ removeDir: "yes" })', () => new NumpyFuncCache('/tmp/x-nfc-none').clearCache({ removeDir: 'yes' } as never), TypeError, /removeDir/],
  ['clearCache({ recursive: true })', () => new NumpyFuncCache('/tmp/x-nfc-none').clearCache({ recursive: true } as never), TypeError, /recursive/],
  ['readNpy(5)', () => readNpy(5 as never), TypeError, /path/],
  ['writeNpy(5, a)', () => writeNpy(5 as never, new Int8Array(1)), TypeError, /path/],
  ['writeNpy(p, [1, 2])', () => writeNpy('/tmp/x-nfc.npy', [1, 2] as never), TypeError, /array/],
  ['writeNpy(p, { data: [1], shape: [1] })', () => writeNpy('/tmp/x-nfc.npy', { data: [1], shape: [1] } as never), TypeError, /data/],
  ['writeNpy(p, { data, shape: 3 })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(3), shape: 3 as never }), TypeError, /shape/],
  ['writeNpy(p, { data, shape: [-3] })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(3), shape: [-3] }), RangeError, /shape\[0\]/],
  ['writeNpy(p, { data, shape: [1.5, 2] })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(3), shape: [1.5, 2] }), RangeError, /shape\[0\]/],
  ['writeNpy(p, { data, shape: ["3"] })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(3), shape: ['3'] as never }), TypeError, /shape\[0\]/],
  ['writeNpy(p, { data(3), shape: [2, 2] })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(3), shape: [2, 2] }), RangeError, /data has 3 elements/],
  ['writeNpy(p, { data, shape, dtype: "<U5" })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(3), shape: [3], dtype: '<U5' }), TypeError, /dtype/],
  ['writeNpy(p, { data: Int8Array, dtype: "<f8" })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(8), shape: [1], dtype: '<f8' }), TypeError, /dtype/],
  ['writeNpy(p, { data, shape, fortranOrder: 1 })', () => writeNpy('/tmp/x-nfc.npy', { data: new Int8Array(3), shape: [3], fortranOrder: 1 as never }), TypeError, /fortranOrder/],
  ['cached returns a number', () => new NumpyFuncCache('/tmp/x-nfc').createCachedFunc(() => 3 as never, { name: 'n' })(), TypeError, /result of n\(\)/],
]

for (const [label, call, type, message] of badCalls) {
  test(`bad argument: ${label} is a ${type.name} naming it`, (t) => {
    const error = t.throws(call, { instanceOf: type })
    t.regex(error!.message, message)
  })
}
