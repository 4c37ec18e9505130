// Limits and bookkeeping of the shared cache: LRU eviction by count and by
// file size, expiry by age, prune (explicit limits, progress, adopting and
// dropping, leftovers of dead processes), arrays that outlive their entry in
// another process, has/invalidate, and hit/miss counts across processes.
import test, { type ExecutionContext } from 'ava'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, fstatSync, openSync, readdirSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { advanceClock } from '../dist/testing'
import { root, tempDir } from './helpers'

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const HOUR = 3_600_000
/** Moves the cache's clock on a millisecond, so successive calls fall at distinct times without sleeping. */
const tick = (cache: NumpyFuncCache) => advanceClock(cache, 1)

function filled(k: number, n: number): Float64Array {
  return new Float64Array(n).fill(k)
}

/** A cache over `dir` and a wrapped `filled` that counts its calls. */
function counted(dir: string, options?: ConstructorParameters<typeof NumpyFuncCache>[1]) {
  const cache = new NumpyFuncCache(dir, options)
  const state = { calls: 0 }
  const f = cache.createCachedFunc(
    (k: number, n = 16) => {
      state.calls++
      return filled(k, n)
    },
    { name: 'filled', trackSource: false },
  )
  return { cache, f, state }
}

function npyKeys(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((n) => /^[0-9a-f]{64}\.npy$/.test(n))
    .map((n) => n.slice(0, 64))
    .sort()
}

/** Runs `call` and returns the key of the one entry it added to `dir`. */
function storedKey(t: ExecutionContext, dir: string, call: () => unknown): string {
  const before = new Set(npyKeys(dir))
  call()
  const added = npyKeys(dir).filter((k) => !before.has(k))
  t.is(added.length, 1, 'the call stored one entry')
  return added[0]
}

const hasFiles = (dir: string, key: string) => existsSync(join(dir, `${key}.npy`)) && existsSync(join(dir, `${key}.json`))
const noFiles = (dir: string, key: string) => !existsSync(join(dir, `${key}.npy`)) && !existsSync(join(dir, `${key}.json`))
const entrySize = (dir: string, key: string) => statSync(join(dir, `${key}.npy`)).size + statSync(join(dir, `${key}.json`)).size

/** The index and the disk agree: the same entries, the sizes it records, the totals. */
function checkAgainstDisk(t: ExecutionContext, cache: NumpyFuncCache, dir: string): void {
  const rows = cache.entries()
  t.deepEqual(rows.map((r) => r.key).sort(), npyKeys(dir))
  for (const r of rows) t.is(r.bytes, entrySize(dir, r.key), `row ${r.key} size`)
  const stats = cache.stats()
  t.is(stats.entries, rows.length)
  t.is(stats.bytes, rows.reduce((s, r) => s + r.bytes, 0))
}

/** This host as temporary names and leases carry it (a digest of its name, boot and pid namespace). */
function hostTag(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../binding/index.js').hostTag()
}

// ---------------------------------------------------------------- LRU by count and by size

test('maxEntries evicts the least recently used: store a, b, c; use a; store d: b goes, a stays', (t) => {
  const dir = tempDir(t)
  const { cache, f, state } = counted(dir, { maxEntries: 3 })
  const a = storedKey(t, dir, () => f(1))
  tick(cache)
  const b = storedKey(t, dir, () => f(2))
  tick(cache)
  const c = storedKey(t, dir, () => f(3))
  tick(cache)
  t.deepEqual(f(1), filled(1, 16))
  t.is(state.calls, 3, 'using a is a hit')
  tick(cache)
  const d = storedKey(t, dir, () => f(4))

  t.true(f.has(1), 'a, used after b and c were stored, stays')
  t.false(f.has(2), 'b, the least recently used, was evicted')
  t.true(f.has(3))
  t.true(f.has(4))
  t.true(hasFiles(dir, a) && hasFiles(dir, c) && hasFiles(dir, d))
  t.true(noFiles(dir, b), "b's files were removed")
  t.deepEqual(npyKeys(dir), [a, c, d].sort())
  t.deepEqual(
    cache.entries().map((e) => e.key),
    [d, a, c],
    'entries() lists the most recently used first',
  )
  checkAgainstDisk(t, cache, dir)
  // b computes again; that evicts c, now the least recently used.
  t.deepEqual(f(2), filled(2, 16))
  t.is(state.calls, 5)
  t.false(f.has(3))
  t.true(noFiles(dir, c))
})

// Uses within one millisecond must still order: store a; store b; use a (in the
// same millisecond, mostly); store c => b is evicted, not a. Stops at the first
// wrong eviction; passes only if none in 300 tries.
test.serial('LRU order holds when a use falls in the same millisecond as the previous store', (t) => {
  const pair = [1, 2].sort((x, y) => (storedKeyOf(t, x) < storedKeyOf(t, y) ? -1 : 1))
  const [a, b] = pair
  let tries = 0
  let wrong = 0
  for (; tries < 300 && wrong === 0; tries++) {
    const dir = tempDir(t)
    const { cache, f } = counted(dir, { maxEntries: 2 })
    f(a)
    tick(cache)
    f(b)
    f(a)
    tick(cache)
    f(3)
    if (!f.has(a) || f.has(b)) wrong++
  }
  t.is(wrong, 0, `try ${tries} evicted a, used after b was stored, instead of b`)
})

test('maxBytes counts the size of both files of each entry (.npy and .json)', (t) => {
  const work = tempDir(t)
  // Sizes of the two entries, measured in a directory without limits.
  const probe = join(work, 'probe')
  const { f: p } = counted(probe)
  const pa = storedKey(t, probe, () => p(1, 1000))
  const pb = storedKey(t, probe, () => p(2, 3000))
  const sizeA = entrySize(probe, pa)
  const sizeB = entrySize(probe, pb)
  const npyA = statSync(join(probe, `${pa}.npy`)).size
  const npyB = statSync(join(probe, `${pb}.npy`)).size

  // Exactly enough room for both: both stay.
  const fits = join(work, 'fits')
  const one = counted(fits, { maxBytes: sizeA + sizeB })
  const a1 = storedKey(t, fits, () => one.f(1, 1000))
  tick(one.cache)
  const b1 = storedKey(t, fits, () => one.f(2, 3000))
  t.true(hasFiles(fits, a1) && hasFiles(fits, b1))
  t.is(one.cache.stats().bytes, sizeA + sizeB)
  checkAgainstDisk(t, one.cache, fits)

  // One byte less: the arrays alone would fit, with their metadata they do not; the older goes.
  const tight = join(work, 'tight')
  const max = sizeA + sizeB - 1
  t.true(npyA + npyB <= max, 'the .npy files alone are within the limit')
  const two = counted(tight, { maxBytes: max })
  const a2 = storedKey(t, tight, () => two.f(1, 1000))
  tick(two.cache)
  const b2 = storedKey(t, tight, () => two.f(2, 3000))
  t.true(noFiles(tight, a2), 'the least recently used entry was evicted')
  t.true(hasFiles(tight, b2))
  t.is(two.cache.stats().bytes, sizeB)
  checkAgainstDisk(t, two.cache, tight)

  // Further stores of mixed sizes keep the total within the limit, newest kept.
  for (let k = 3; k < 12; k++) {
    tick(two.cache)
    two.f(k, 200 * k)
    const s = two.cache.stats()
    t.true(s.bytes <= max, `after storing ${k}: ${s.bytes} bytes`)
    t.true(two.f.has(k, 200 * k), `the entry just stored (${k}) is kept`)
    checkAgainstDisk(t, two.cache, tight)
  }
})

// ---------------------------------------------------------------- maxAge

// Ages come from the cache's clock, moved on by hours: however slow this
// machine, its own run time (seconds) cannot decide which side of maxAge an entry is.
test('maxAge: an entry unused for longer is a miss and its files go; a used one stays; has() is not a use', (t) => {
  const dir = tempDir(t)
  const { cache, f, state } = counted(dir, { maxAge: 2 * HOUR })
  const x = storedKey(t, dir, () => f(1))
  const y = storedKey(t, dir, () => f(2))
  const z = storedKey(t, dir, () => f(3))
  advanceClock(cache, HOUR)
  t.deepEqual(f(1), filled(1, 16), 'x is a hit while young')
  t.is(state.calls, 3)
  t.true(f.has(2), 'y is there (has() does not count as a use)')
  advanceClock(cache, 1.5 * HOUR)
  // Now y and z went unused 2.5 hours, x 1.5 hours. The cache's time is at least:
  const now = Date.now() + 2.5 * HOUR

  t.true(hasFiles(dir, y) && hasFiles(dir, z), 'nothing removed the old entries yet')
  t.false(f.has(2), 'y expired: has() says a call would miss')
  t.true(noFiles(dir, y), "and y's files were removed")

  // Held open, so its inode number cannot be reused by the new file.
  const oldZ = openSync(join(dir, `${z}.npy`), 'r')
  t.teardown(() => closeSync(oldZ))
  t.deepEqual(f(3), filled(3, 16))
  t.is(state.calls, 4, 'z expired: the call was a miss and recomputed it')
  t.is(fstatSync(oldZ).nlink, 0, "z's old file was removed")
  t.not(statSync(join(dir, `${z}.npy`)).ino, fstatSync(oldZ).ino, 'z was stored anew')
  t.true(cache.entries().find((e) => e.key === z)!.created.getTime() >= now, "z's row is the new entry")

  t.deepEqual(f(1), filled(1, 16))
  t.is(state.calls, 4, 'x, used within maxAge, is still a hit')
  t.true(hasFiles(dir, x))
  checkAgainstDisk(t, cache, dir)
})

test('maxAge: a store removes the other entries that went unused for longer', (t) => {
  const dir = tempDir(t)
  const { cache, f, state } = counted(dir, { maxAge: HOUR })
  const old = storedKey(t, dir, () => f(1))
  advanceClock(cache, 2 * HOUR)
  t.true(hasFiles(dir, old))
  const fresh = storedKey(t, dir, () => f(2))
  t.true(noFiles(dir, old), 'the expired entry went with the next store, untouched')
  t.true(hasFiles(dir, fresh))
  t.deepEqual(cache.entries().map((e) => e.key), [fresh])
  t.is(cache.stats().entries, 1)
  t.is(state.calls, 2)
})

test('maxBytes and maxAge also take the command line\'s forms (\'1KB\', \'1.5KiB\', \'1h\'), and a bad one is named', (t) => {
  const work = tempDir(t)
  // '1KB' is 1000 bytes and '1.5KiB' 1536: two entries of about 700 bytes fit in the second only.
  for (const [maxBytes, kept] of [['1KB', 1], ['1.5KiB', 2]] as const) {
    const dir = join(work, maxBytes)
    const { cache, f } = counted(dir, { maxBytes })
    const a = storedKey(t, dir, () => f(1, 40))
    tick(cache)
    const b = storedKey(t, dir, () => f(2, 40))
    const size = entrySize(dir, b)
    t.true(size > 500 && size < 768, `an entry is ${size} bytes`)
    t.is(cache.stats().entries, kept, maxBytes)
    t.is(hasFiles(dir, a), kept === 2, maxBytes)
  }

  const dir = join(work, 'age')
  const { cache, f } = counted(dir, { maxAge: '1h' })
  const old = storedKey(t, dir, () => f(1))
  advanceClock(cache, 2 * HOUR)
  storedKey(t, dir, () => f(2))
  t.true(noFiles(dir, old), "an entry unused for longer than '1h' went")
  t.deepEqual(cache.prune({ maxAge: '30m' }).removedEntries, 0)
  advanceClock(cache, HOUR)
  t.is(cache.prune({ maxAge: '30m' }).removedEntries, 1)

  for (const options of [{ maxBytes: '10 parsecs' }, { maxAge: 'soon' }, { maxBytes: '-1GB' }]) {
    const error = t.throws(() => new NumpyFuncCache(dir, options))
    t.regex(error.message, new RegExp(`${Object.keys(options)[0]} must be a number or a string such as`), error.message)
  }
  t.throws(() => cache.prune({ maxAge: 'later' }), { message: /prune: maxAge must be a number or a string such as 7d/ })
})

test('maxEntryBytes takes what maxBytes takes, and a bad one is a RangeError or TypeError naming it; prune does not take it', (t) => {
  const dir = tempDir(t)
  for (const maxEntryBytes of [1000, '1MB', '1.5KiB', Infinity, 0]) t.notThrows(() => new NumpyFuncCache(dir, { maxEntryBytes }))
  t.throws(() => new NumpyFuncCache(dir, { maxEntryBytes: -1 }), { instanceOf: RangeError, message: /NumpyFuncCache: maxEntryBytes must be a non-negative number, got -1/ })
  t.throws(() => new NumpyFuncCache(dir, { maxEntryBytes: Number.NaN }), { instanceOf: RangeError, message: /maxEntryBytes/ })
  t.throws(() => new NumpyFuncCache(dir, { maxEntryBytes: '10 parsecs' }), { instanceOf: TypeError, message: /maxEntryBytes must be a number or a string such as/ })
  t.throws(() => new NumpyFuncCache(dir, { maxEntryBytes: true as never }), { instanceOf: TypeError, message: /options.maxEntryBytes must be a number/ })
  t.throws(() => new NumpyFuncCache(dir).prune({ maxEntryBytes: 1 } as never), { message: /unknown option 'maxEntryBytes'/ })
})

test('one result larger than maxBytes is not stored, writes no file and evicts nothing; the entries before it stay', (t) => {
  const dir = tempDir(t)
  // The case: 1 MB, three entries of 320 kB, then one of 1.28 MB.
  const { cache, f, state } = counted(dir, { maxBytes: '1MB' })
  const seen: unknown[] = []
  cache.on('entryTooLarge', (info) => seen.push(info))
  const keys = [1, 2, 3].map((k) => storedKey(t, dir, () => f(k, 40_000)))
  const before = readdirSync(dir).sort()
  t.is(f(4, 160_000).length, 160_000)
  t.deepEqual(readdirSync(dir).sort(), before, 'no file written, none removed')
  t.true(keys.every((k) => hasFiles(dir, k)))
  f(4, 160_000)
  t.is(state.calls, 5, 'computed each time')
  t.is(seen.length, 2)
  t.like(cache.stats(), { entries: 3, misses: 5 })
  t.like(seen[0], { functionName: 'filled', bytes: entrySize(dir, keys[0]) + 960_000, limit: 1_000_000, location: dir })
})

// ---------------------------------------------------------------- prune

test('prune(limits) removes the least recently used, reporting progress up to the total', (t) => {
  t.timeout(120_000)
  const dir = tempDir(t)
  const { cache, f } = counted(dir)
  const N = 2500
  for (let k = 0; k < N; k++) f(k, 4)
  const before = cache.entries()
  t.is(before.length, N)

  const progress: Array<[number, number]> = []
  const report = cache.prune({ maxEntries: 100 }, { onProgress: (done, total) => progress.push([done, total]) })
  t.is(report.removedEntries, N - 100)
  t.is(report.entries, 100)
  t.is(report.adopted, 0)
  t.is(report.dropped, 0)
  t.is(report.removedLeftovers, 0)
  t.true(progress.length >= 3, `progress reported in steps: ${JSON.stringify(progress)}`)
  t.deepEqual(progress[0], [0, N - 100], 'starts at 0 of the total')
  t.deepEqual(progress.at(-1), [N - 100, N - 100], 'ends at the total')
  for (let i = 1; i < progress.length; i++) {
    t.true(progress[i][0] > progress[i - 1][0], 'done increases')
    t.is(progress[i][1], N - 100, 'total stays the same')
  }

  // The 100 kept are the most recently used (times are in milliseconds: ties at the edge are either way).
  const kept = new Set(cache.entries().map((e) => e.key))
  const removed = before.filter((e) => !kept.has(e.key))
  t.is(report.removedBytes, removed.reduce((s, e) => s + e.bytes, 0))
  const newestRemoved = Math.max(...removed.map((e) => e.lastUsed.getTime()))
  for (const e of before.filter((e) => kept.has(e.key))) t.true(e.lastUsed.getTime() >= newestRemoved)
  t.is(report.bytes, cache.stats().bytes)
  checkAgainstDisk(t, cache, dir)
  t.is(npyKeys(dir).length, 100)

  // By size: the total goes under maxBytes.
  const maxBytes = Math.floor(cache.stats().bytes / 3)
  const bySize = cache.prune({ maxBytes })
  t.true(bySize.bytes <= maxBytes)
  t.true(bySize.removedEntries > 0)
  checkAgainstDisk(t, cache, dir)
})

test('prune({ maxAge }) removes entries unused for longer, keeps those used since', (t) => {
  const dir = tempDir(t)
  const { cache, f } = counted(dir)
  for (let k = 0; k < 6; k++) f(k)
  advanceClock(cache, 2 * HOUR)
  f(0)
  f(1)
  const report = cache.prune({ maxAge: HOUR })
  t.is(report.removedEntries, 4)
  t.deepEqual(
    cache.entries().map((e) => e.key).sort(),
    [storedKeyOf(t, 0), storedKeyOf(t, 1)].sort(),
  )
  checkAgainstDisk(t, cache, dir)
})

/** The key of `filled(k, 16)`'s call, by storing it in a scratch directory. */
function storedKeyOf(t: ExecutionContext, k: number): string {
  const dir = tempDir(t)
  const { f } = counted(dir)
  return storedKey(t, dir, () => f(k))
}

test('prune() without limits applies the cache\'s own, also to entries another instance stored without any', (t) => {
  const dir = tempDir(t)
  const { cache, f } = counted(dir)
  for (let k = 0; k < 10; k++) {
    f(k)
    tick(cache)
  }
  const limited = new NumpyFuncCache(dir, { maxEntries: 4 })
  const report = limited.prune()
  t.is(report.removedEntries, 6)
  t.is(report.entries, 4)
  const keys = new Set(npyKeys(dir))
  for (let k = 6; k < 10; k++) t.true(keys.has(storedKeyOf(t, k)), `the recent entry ${k} stays`)
  checkAgainstDisk(t, limited, dir)
})

test('prune adopts an entry on disk that the index lacks, drops rows whose files were deleted, removes half entries', (t) => {
  const dir = tempDir(t)
  const { cache, f, state } = counted(dir)
  const k1 = storedKey(t, dir, () => f(1, 100))
  const k2 = storedKey(t, dir, () => f(2, 200))
  const k3 = storedKey(t, dir, () => f(3, 300))
  // An entry the index does not know: k1's files under another valid key.
  const orphan = 'ab'.repeat(32)
  copyFileSync(join(dir, `${k1}.npy`), join(dir, `${orphan}.npy`))
  copyFileSync(join(dir, `${k1}.json`), join(dir, `${orphan}.json`))
  // A row whose files are gone.
  unlinkSync(join(dir, `${k3}.json`))
  unlinkSync(join(dir, `${k3}.npy`))
  // Half an entry: an array without metadata.
  const half = 'cd'.repeat(32)
  copyFileSync(join(dir, `${k2}.npy`), join(dir, `${half}.npy`))
  t.is(cache.stats().entries, 3, 'the index does not know yet')

  const report = cache.prune()
  t.is(report.adopted, 1)
  t.is(report.dropped, 1)
  t.is(report.removedLeftovers, 1, 'the half entry')
  t.is(report.removedEntries, 0)
  t.is(report.entries, 3)
  t.false(existsSync(join(dir, `${half}.npy`)))
  t.deepEqual(cache.entries().map((e) => e.key).sort(), [k1, k2, orphan].sort())
  const adopted = cache.entries().find((e) => e.key === orphan)!
  t.is(adopted.function, 'filled')
  t.is(adopted.dtype, '<f8')
  t.deepEqual(adopted.shape, [100])
  t.is(adopted.bytes, entrySize(dir, orphan))
  checkAgainstDisk(t, cache, dir)
  t.deepEqual(readNpy(join(dir, `${orphan}.npy`)).data, filled(1, 100))
  // The dropped key computes again; the others hit.
  t.deepEqual(f(3, 300), filled(3, 300))
  t.deepEqual(f(1, 100), filled(1, 100))
  t.deepEqual(f(2, 200), filled(2, 200))
  t.is(state.calls, 4)
  // A limit now counts the adopted entry too.
  t.is(cache.prune({ maxEntries: 2 }).removedEntries, 2)
  checkAgainstDisk(t, cache, dir)
})

test('prune removes temporary files of dead processes on this host, keeps those of live ones and recent ones of other hosts', (t) => {
  const dir = tempDir(t)
  const { cache, f } = counted(dir)
  const key = storedKey(t, dir, () => f(1))
  // A pid that existed and is gone: a finished child's.
  const dead = spawnSync(process.execPath, ['-e', '']).pid!
  t.throws(() => process.kill(dead, 0), { code: 'ESRCH' })
  const host = hostTag()
  const name = (kind: string, owner: string) => `.${key}.${kind}.${owner}-0123456789abcdef.tmp`
  const removed = [name('npy', `${host}-${dead}`), name('json', `${host}-${dead}`), name('lock', `${host}-${dead}`), name('npy', `other-host-42`)]
  const kept = [name('npy', `${host}-${process.pid}`), name('json', `${host}-${process.pid}`), name('npy', 'other-host-43'), `.${key}.lock.broken-0123456789abcdef.tmp`]
  for (const n of [...removed, ...kept]) writeFileSync(join(dir, n), 'partial')
  // The other host's first file is two days old; its second is recent.
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000)
  utimesSync(join(dir, removed[3]), twoDaysAgo, twoDaysAgo)
  // An old broken lease (renamed aside and not removed) goes after a minute.
  const oldBroken = `.${key}.lock.broken-fedcba9876543210.tmp`
  writeFileSync(join(dir, oldBroken), 'x')
  utimesSync(join(dir, oldBroken), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000))
  removed.push(oldBroken)

  const report = cache.prune()
  t.is(report.removedLeftovers, removed.length)
  for (const n of removed) t.false(existsSync(join(dir, n)), `${n} removed`)
  for (const n of kept) t.true(existsSync(join(dir, n)), `${n} kept`)
  t.true(hasFiles(dir, key), 'the entry stays')
  t.is(report.entries, 1)
})

// ---------------------------------------------------------------- arrays outlive their entries

test.serial('an entry evicted, invalidated or replaced while another process holds it mapped or loaded stays right there', async (t) => {
  t.timeout(60_000)
  const work = tempDir(t)
  const dir = join(work, 'cache')
  const go = join(work, 'go')
  const N = 1 << 18 // 2 MiB per entry
  const { f } = counted(dir)
  const k1 = storedKey(t, dir, () => f(1, N))
  const k2 = storedKey(t, dir, () => f(2, N))

  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
      const fs = require('fs')
      const [dir, go, k1] = process.argv.slice(1)
      const N = ${N}
      const fn = () => { throw new Error('expected a hit') }
      const mapped = new NumpyFuncCache(dir, { mmap: true }).createCachedFunc(fn, { name: 'filled', trackSource: false })(1, N)
      const copied = new NumpyFuncCache(dir).createCachedFunc(fn, { name: 'filled', trackSource: false })(2, N)
      const maps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes(k1 + '.npy'))
      const check = (a, v) => a.length === N && a.every((x) => x === v)
      const before = { mappedLine: maps(), mappedRight: check(mapped, 1), copiedRight: check(copied, 2) }
      process.stdout.write('loaded\\n')
      const cell = new Int32Array(new SharedArrayBuffer(4))
      while (!fs.existsSync(go)) Atomics.wait(cell, 0, 0, 5)
      process.stdout.write(JSON.stringify({ before, after: { mappedLine: maps(), mappedRight: check(mapped, 1), copiedRight: check(copied, 2) } }))
      `,
      dir,
      go,
      k1,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => child.on('close', r))
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d
      if (out.includes('loaded\n')) resolve()
    })
    void exited.then(() => reject(new Error(`child exited early: ${err}`)))
  })

  // Invalidate the copied one; evict the mapped one with a store under maxEntries 1; then store
  // different values under the mapped one's key (same name, source not tracked: same key).
  t.true(f.invalidate(2, N))
  t.true(noFiles(dir, k2))
  counted(dir, { maxEntries: 1 }).f(3, N)
  t.true(noFiles(dir, k1), 'the mapped entry was evicted')
  const other = new NumpyFuncCache(dir).createCachedFunc((_k: number, n: number) => filled(-7, n), { name: 'filled', trackSource: false })
  other(1, N)
  t.true(hasFiles(dir, k1), 'its key holds a new entry')
  t.is((readNpy(join(dir, `${k1}.npy`)).data as Float64Array)[0], -7)

  writeFileSync(go, '')
  t.is(await exited, 0, err)
  const r = JSON.parse(out.slice(out.indexOf('{')))
  t.is(r.before.mappedLine.length, 1, 'the hit was a memory map of the entry file')
  t.true(r.before.mappedRight && r.before.copiedRight)
  t.true(r.after.mappedRight, 'the mapped array still has the evicted entry\'s values')
  t.true(r.after.copiedRight, 'the loaded array still has the invalidated entry\'s values')
  t.regex(r.after.mappedLine.join('\n'), /\(deleted\)/, 'the mapping is of the removed file')
})

// ---------------------------------------------------------------- has / invalidate

test('has() and invalidate() on a sync wrapper: no use counted, files and row removed, next call recomputes', (t) => {
  const dir = tempDir(t)
  const { cache, f, state } = counted(dir)
  t.false(f.has(1))
  t.false(f.invalidate(1), 'nothing to invalidate (and no directory yet)')
  const key = storedKey(t, dir, () => f(1))
  t.true(f.has(1))
  t.false(f.has(2))
  const s = cache.stats()
  t.deepEqual([s.hits, s.misses, s.entries], [0, 1, 1], 'has() is not a hit')
  t.deepEqual(f(1), filled(1, 16))
  t.is(state.calls, 1)
  t.true(f.invalidate(1))
  t.true(noFiles(dir, key))
  t.is(cache.stats().entries, 0)
  t.deepEqual(cache.entries(), [])
  t.false(f.has(1))
  t.false(f.invalidate(1), 'already gone')
  t.deepEqual(f(1), filled(1, 16))
  t.is(state.calls, 2, 'recomputed after invalidate')
  t.true(hasFiles(dir, key))
})

test('has() and invalidate() on an async wrapper return booleans at once and act the same', async (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const g = cache.createCachedFunc(
    async (k: number) => {
      calls++
      return filled(k, 8)
    },
    { name: 'afilled', trackSource: false },
  )
  t.is(g.has(1), false)
  const before = new Set(npyKeys(dir))
  t.deepEqual(await g(1), filled(1, 8))
  const [key] = npyKeys(dir).filter((k) => !before.has(k))
  t.is(g.has(1), true)
  t.deepEqual(await g(1), filled(1, 8))
  t.is(calls, 1)
  const r = g.invalidate(1)
  t.is(r, true)
  t.true(noFiles(dir, key))
  t.is(g.invalidate(1), false)
  t.is(g.has(1), false)
  t.deepEqual(await g(1), filled(1, 8))
  t.is(calls, 2)
  checkAgainstDisk(t, cache, dir)
})

test('has() does not count as a use for eviction either', (t) => {
  const dir = tempDir(t)
  const { cache, f } = counted(dir, { maxEntries: 2 })
  const a = storedKey(t, dir, () => f(1))
  tick(cache)
  storedKey(t, dir, () => f(2))
  tick(cache)
  for (let i = 0; i < 5; i++) t.true(f.has(1))
  tick(cache)
  f(3)
  t.true(noFiles(dir, a), 'a, only asked about, was the least recently used')
})

// ---------------------------------------------------------------- stats across processes

function startChild(source: string, dir: string): { child: ChildProcess; line: Promise<string>; exit: Promise<{ code: number | null; err: string }> } {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
      const cache = new NumpyFuncCache(process.argv[1])
      const f = cache.createCachedFunc((k, n = 16) => new Float64Array(n).fill(k), { name: 'filled', trackSource: false })
      ${source}
      `,
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const line = new Promise<string>((resolve) => child.stdout!.on('data', (d) => (out += d).includes('\n') && resolve(out)))
  const exit = new Promise<{ code: number | null; err: string }>((r) => child.on('close', (code) => r({ code, err })))
  return { child, line, exit }
}

test.serial('stats() totals hits and misses over processes: at exit, and within about a second from a live one', async (t) => {
  t.timeout(60_000)
  const dir = tempDir(t)
  const { cache, f } = counted(dir)
  f(1)
  f(2)
  f(1)
  f(1)
  f(2)
  t.like(cache.stats(), { hits: 3, misses: 2, entries: 2 })

  // A child: 3 hits, 2 misses, then it exits normally.
  const one = startChild(`f(1); f(3); f(3); f(4); f(1)`, dir)
  t.is((await one.exit).code, 0)
  t.like(cache.stats(), { hits: 6, misses: 4, entries: 4 })

  // A child that stays alive: a store (written at once), then 2 hits held in memory.
  const two = startChild(`f(5); f(5); f(1); process.stdout.write('done\\n'); setInterval(() => {}, 1000)`, dir)
  try {
    await two.line
    const said = Date.now()
    t.is(cache.stats().misses, 5, 'its store was counted at once')
    // It writes them about a second later; a busy machine may take longer, so the wait is generous.
    let stats = cache.stats()
    while (stats.hits < 8 && Date.now() - said < 30_000) {
      await sleep(50)
      stats = cache.stats()
    }
    const after = Date.now() - said
    t.like(stats, { hits: 8, misses: 5, entries: 5 })
    t.true(two.child.exitCode === null && two.child.signalCode === null, 'the hits were written by the live process, not at its exit')
    t.log(`hits of the live process visible after ${after} ms`)
  } finally {
    two.child.kill('SIGKILL')
    await two.exit
  }
  // This process's own uses count as well, flushed by stats().
  f(5)
  t.like(cache.stats(), { hits: 9, misses: 5 })
})

test('remove(key) and clearFunction(name) remove entries by key and by function, from the index too', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const a = cache.createCachedFunc((k: number) => filled(k, 4), { name: 'a', trackSource: false })
  const b = cache.createCachedFunc((k: number) => filled(k, 4), { name: 'b', trackSource: false })
  a(1)
  a(2)
  b(1)
  const [one] = cache.entries().filter((e) => e.function === 'a')
  t.true(cache.remove(one!.key))
  t.false(cache.remove(one!.key), 'gone already')
  t.true(noFiles(dir, one!.key))
  t.is(cache.clearFunction('a'), 1)
  t.is(cache.clearFunction('nobody'), 0)
  t.deepEqual(cache.entries().map((e) => e.function), ['b'])
  t.is(cache.stats().entries, 1)
  t.false(a.has(1) || a.has(2))
  t.true(b.has(1))
  t.throws(() => cache.remove('abc'), { instanceOf: TypeError, message: /remove: key must be 64 lower-case hex digits/ })
  t.throws(() => cache.clearFunction(''), { instanceOf: TypeError, message: /clearFunction: name must be a non-empty string/ })
})
