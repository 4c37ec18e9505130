// What the checks of an async call's arguments cost a large argument: the
// key's hash, then a hash before the computation and one after it (a result
// is stored only if the arguments were unchanged all along). Side by side:
// hits (one hash) and sync misses (one hash; nothing else runs meanwhile).
// Writes its section of BENCHMARKS.md (between the argument-checks markers).
//   node --expose-gc bench/argument-checks.mjs [--mib 256] [--samples 15]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { NumpyFuncCache } from '../dist/index.mjs'
import { MiB, measureEach, writeSection } from './lib.mjs'

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, samples: { type: 'string', default: '15' } } })
const mib = Number(values.mib)
const dir = mkdtempSync(join(tmpdir(), 'nfc-argument-checks-'))
try {
  const cache = new NumpyFuncCache(dir)
  const trivial = (a) => new Float64Array([a[0]])
  const sync = cache.createCachedFunc(trivial, { name: 'sync', version: '1' })
  const async_ = cache.createCachedFunc(async (a) => trivial(a), { name: 'async', version: '1' })
  const arg = new Float64Array((mib * MiB) / 8).fill(1)
  let fresh = 1 // a new first element: a new key for each miss
  sync(arg)
  await async_(arg)
  const results = await measureEach(Number(values.samples), {
    syncHit: { op: () => sync(arg) },
    asyncHit: { op: () => async_(arg) },
    syncMiss: { before: () => (arg[0] = ++fresh), op: () => sync(arg), check: (r) => assertIs(r[0], arg[0]) },
    asyncMiss: { before: () => (arg[0] = ++fresh), op: () => async_(arg), check: (r) => assertIs(r[0], arg[0]) },
  })
  const ms = (s) => `${(s * 1e3).toFixed(1)} ms`
  const cell = (r) => `${ms(r.t)}; worst ${ms(r.worst)}`
  const ratio = (a, b) => `${(a.t / b.t).toFixed(2)}x`
  writeSection(
    'argument-checks',
    `## Argument checks of async calls

Made by \`node bench/argument-checks.mjs\` (also run by \`npm run bench\`), side by side in one process: a function that returns one
number, called with a ${mib} MiB \`Float64Array\` argument; each miss changes the argument's first element, so its key is new.
An async miss hashes the argument three times (the key, a check before the computation, a check after it); a hit or a sync miss once.

| ${mib} MiB argument | median; worst | / async hit |
| --- | --- | --- |
| async hit (one hash, on the pool) | ${cell(results.asyncHit)} | 1.00x |
| async miss (three hashes, on the pool) | ${cell(results.asyncMiss)} | ${ratio(results.asyncMiss, results.asyncHit)} |
| sync hit (one hash) | ${cell(results.syncHit)} | ${ratio(results.syncHit, results.asyncHit)} |
| sync miss (one hash) | ${cell(results.syncMiss)} | ${ratio(results.syncMiss, results.asyncHit)} |
`,
    ['requests', 'bookkeeping', 'loop', 'pool'],
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}

function assertIs(a, b) {
  if (a !== b) throw new Error(`wrong result: ${a} for ${b}`)
}
