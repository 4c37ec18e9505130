// A process killed with SIGKILL at random moments while storing, evicting
// (it runs under a limit) and clearing must leave only whole entries under
// real names: every key then loads right or misses, no index row points at
// a missing or partial file, and a prune tidies up what the kills left.
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { root, tempDir } from './helpers'

const KEYS = 10
const SALTS = 4
const LENGTH = 1 << 18 // 2 MiB of float64 per entry: a store takes a few ms
/** The worker's limit: fewer than the KEYS * SALTS keys, so its stores evict. */
const MAX_ENTRIES = 6

// Runs in the child and in the test: the same function source gives the same keys.
// After each call that stored a new entry the worker says whether the count of
// entries stayed the same (an eviction made room). It clears the cache every
// argv[2] calls (0: never).
const WORKER = `
const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
const cache = new NumpyFuncCache(process.argv[1], { maxEntries: ${MAX_ENTRIES} })
// The results are made up front, so the moments of the loop go to storing, not computing.
const ramps = Array.from({ length: ${KEYS} }, (_, k) => {
  const a = new Float64Array(${LENGTH})
  for (let i = 0; i < a.length; i++) a[i] = k * 1e6 + i
  return a
})
let computed = 0
const f = cache.createCachedFunc((k, n, salt) => {
  computed++
  return ramps[k]
}, { name: 'ramp', trackSource: false })
process.stdout.write('ready\\n')
for (let i = 0; ; i++) {
  // Mostly misses, so most moments fall inside a store (or the eviction after it).
  const clearEvery = Number(process.argv[2])
  if (clearEvery > 0 && i % clearEvery === clearEvery - 1) cache.clearCache()
  const before = cache.stats().entries
  const stored = computed
  f(Math.floor(Math.random() * ${KEYS}), ${LENGTH}, Math.floor(Math.random() * ${SALTS}))
  if (computed > stored && before === ${MAX_ENTRIES} && cache.stats().entries === ${MAX_ENTRIES}) process.stdout.write('evicted\\n')
}
`

function ramp(k: number, n: number): Float64Array {
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = k * 1e6 + i
  return a
}

/** Runs the worker and SIGKILLs it at a random moment; resolves with how many evictions it reported. */
function killAtRandom(dir: string, clearEvery: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', WORKER, dir, String(clearEvery)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => {
      if (out === '') setTimeout(() => child.kill('SIGKILL'), 1 + Math.random() * 30)
      out += d
    })
    child.on('error', reject)
    child.on('close', (code, signal) =>
      signal === 'SIGKILL' ? resolve(out.split('\n').filter((l) => l === 'evicted').length) : reject(new Error(`worker exited with ${code}`)),
    )
  })
}

const ENTRY_FILE = /^[0-9a-f]{64}\.(npy|json)$/
/** An entry's block digests: beside its record, or a leftover. */
const BLOCKS_FILE = /^[0-9a-f]{64}\.blocks$/
const TEMP_FILE = /^\.[0-9a-f]{64}\.(npy|json|blocks|lock)\..+\.tmp$/
const LEASE_FILE = /^\.[0-9a-f]{64}\.lock$/
const INDEX_FILE = /^\.numpy-func-cache-index\.sqlite(-wal|-shm|-journal)?$/

const pairsOnDisk = (files: string[]) =>
  files.filter((f) => /^[0-9a-f]{64}\.npy$/.test(f) && files.includes(`${f.slice(0, 64)}.json`)).map((f) => f.slice(0, 64))

/**
 * What any kill may leave: whole .npy files under real names; besides
 * entries only temporary files, leases and the index; and index rows that
 * all have both files, of the size recorded, holding a whole right array.
 */
function checkState(t: ExecutionContext, dir: string, when: string): { files: string[]; rows: number } {
  const files = readdirSync(dir)
  for (const name of files.filter((f) => /^[0-9a-f]{64}\.npy$/.test(f))) {
    t.is(readNpy(join(dir, name)).data.length, LENGTH, `${when}: ${name}`)
  }
  const strays = files.filter((f) => !ENTRY_FILE.test(f) && !BLOCKS_FILE.test(f) && !TEMP_FILE.test(f) && !LEASE_FILE.test(f) && !INDEX_FILE.test(f))
  t.deepEqual(strays, [], `${when}: only entries, temporary files, leases and index files`)
  const cache = new NumpyFuncCache(dir)
  const rows = cache.entries()
  for (const row of rows) {
    const npy = join(dir, `${row.key}.npy`)
    const json = join(dir, `${row.key}.json`)
    t.true(existsSync(npy), `${when}: row ${row.key} has its .npy`)
    t.true(existsSync(json), `${when}: row ${row.key} has its .json`)
    if (!existsSync(npy) || !existsSync(json)) continue
    t.is(row.bytes, statSync(npy).size + statSync(json).size, `${when}: row ${row.key} records its files' size`)
    const data = readNpy(npy).data as Float64Array
    t.deepEqual(data, ramp(data[0] / 1e6, LENGTH), `${when}: row ${row.key} holds a whole ramp`)
    t.like(JSON.parse(readFileSync(json, 'utf8')), { function: 'ramp', result: 'typedarray', class: 'Float64Array' })
    t.like(row, { function: 'ramp', dtype: '<f8', shape: [LENGTH] })
  }
  const stats = cache.stats()
  t.is(stats.entries, rows.length, `${when}: the totals match the rows`)
  t.is(stats.bytes, rows.reduce((s, r) => s + r.bytes, 0))
  return { files, rows: rows.length }
}

test('SIGKILL during stores, evictions and clears never leaves a wrong or partial entry, nor an index row without whole files', async (t) => {
  t.timeout(180_000)
  const dir = tempDir(t)
  const ROUNDS = 10
  const KILLS_PER_ROUND = 20
  const started = Date.now()
  let evictions = 0
  let maxRows = 0
  for (let round = 0; round < ROUNDS; round++) {
    // The last round does not clear, so what its kills leave is there for the prune below.
    const clearEvery = round < ROUNDS - 1 ? 8 : 0
    for (let i = 0; i < KILLS_PER_ROUND; i++) evictions += await killAtRandom(dir, clearEvery)
    maxRows = Math.max(maxRows, checkState(t, dir, `after round ${round}`).rows)
  }
  const killing = Date.now() - started
  t.true(evictions > 0, 'the workers evicted entries to stay under their limit')

  const files = readdirSync(dir)
  const temps = files.filter((f) => TEMP_FILE.test(f))
  // Halves of entries: a file whose partner is missing (a kill between the two renames, or in a clear).
  const partner = (f: string) => `${f.slice(0, 64)}.${f.endsWith('.npy') ? 'json' : 'npy'}`
  const halves = files.filter(
    (f) => (ENTRY_FILE.test(f) && !files.includes(partner(f))) || (BLOCKS_FILE.test(f) && !files.includes(`${f.slice(0, 64)}.json`)),
  )
  t.true(temps.length > 0, 'the kills left temporary files (for the prune to remove)')
  const cache = new NumpyFuncCache(dir)
  const rows = cache.entries()

  // A prune removes every temporary file (their processes are dead) and every
  // half entry, and counts exactly the entries on disk.
  const report = cache.prune()
  const after = readdirSync(dir)
  t.deepEqual(after.filter((f) => TEMP_FILE.test(f)), [], 'no temporary file left')
  t.is(report.removedLeftovers, temps.length + halves.length, 'the temporary files and the halves of entries were the leftovers')
  t.deepEqual(
    after.filter((f) => !INDEX_FILE.test(f) && !LEASE_FILE.test(f) && !BLOCKS_FILE.test(f)).sort(),
    pairsOnDisk(after).flatMap((k) => [`${k}.json`, `${k}.npy`]).sort(),
    'only whole entries remain',
  )
  t.deepEqual(after.filter((f) => BLOCKS_FILE.test(f) && !after.includes(`${f.slice(0, 64)}.json`)), [], 'block digests only beside entries')
  const pairs = pairsOnDisk(after)
  t.is(cache.stats().entries, pairs.length)
  t.is(report.entries, pairs.length)
  t.deepEqual(cache.entries().map((r) => r.key).sort(), pairs.sort())
  t.is(report.entries, rows.length + report.adopted - report.dropped, 'the report adds up')
  t.is(report.dropped, 0, 'no row had lost its files')
  // With the workers' limit, the prune brings the cache within it.
  const limited = cache.prune({ maxEntries: MAX_ENTRIES })
  t.true(limited.entries <= MAX_ENTRIES)
  const kept = pairsOnDisk(readdirSync(dir))
  t.is(kept.length, limited.entries)
  t.is(cache.stats().entries, kept.length)

  // Every key either hits with the right values or is a clean miss.
  let calls = 0
  const f = cache.createCachedFunc(
    (k: number, n: number, _salt: number) => {
      calls++
      return ramp(k, n)
    },
    { name: 'ramp', trackSource: false },
  )
  let hits = 0
  for (let k = 0; k < KEYS; k++) {
    for (let salt = 0; salt < SALTS; salt++) {
      const before = calls
      t.deepEqual(f(k, LENGTH, salt), ramp(k, LENGTH), `key ${k}, salt ${salt}`)
      if (calls === before) hits++
    }
  }
  t.log(
    `${ROUNDS * KILLS_PER_ROUND} kills in ${killing} ms, ${evictions} evictions seen, at most ${maxRows} rows; at the end ${rows.length} rows, ` +
      `${temps.length} temporary files, ${halves.length} half entries, ` +
      `prune: ${JSON.stringify(report)}; ${kept.length} entries within the limit, ${hits} hits`,
  )
  // Each entry that remained is a hit; nothing else is.
  t.is(hits, kept.length)
  t.true(kept.length > 0, 'the workers completed some stores')
})

test('SIGKILL while a declared output is filled leaves no entry; the next call computes it, and prune removes the draft', async (t) => {
  const dir = tempDir(t)
  // The same source in both processes: the same key.
  const make = `(cache) => cache.createCachedFunc((k, out) => {
    out.fill(k)
    if (globalThis.stopWhileFilling) globalThis.stopWhileFilling()
  }, { name: 'ramp', trackSource: false, output: (k) => ({ shape: [1 << 20], dtype: '<f8' }) })`
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
      const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
      globalThis.stopWhileFilling = () => {
        process.stdout.write('filling\\n')
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
      }
      ;(${make})(new NumpyFuncCache(process.argv[1]))(3)
      `,
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
  const drafts = () => readdirSync(dir).filter((f) => f.endsWith('.tmp'))
  t.is(drafts().length, 1, 'the half-filled draft, under a temporary name')
  child.kill('SIGKILL')
  await new Promise((resolve) => child.once('exit', resolve))
  const cache = new NumpyFuncCache(dir)
  const f = new Function(`return ${make}`)()(cache) as (k: number) => Float64Array
  t.deepEqual(cache.entries(), [])
  const pruned = cache.prune()
  t.is(pruned.removedLeftovers, 1)
  t.deepEqual(drafts(), [])
  const a = f(3)
  t.true(a.length === 1 << 20 && a.every((x) => x === 3))
})
