// What the cache's index costs: a hit with uses recorded against one
// without, and stats and prune on 100,000 entries against the raw limit of
// listing or unlinking that many files. Writes its section of BENCHMARKS.md
// (between the bookkeeping markers) and bench/bookkeeping.json.
//   node bench/bookkeeping.mjs [--quick]
import { mkdtempSync, readdirSync, lstatSync, rmSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { measureEach, writeSection } from './lib.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const native = require('../binding/index.js')
const { NumpyFuncCache } = require('../dist')
const quick = process.argv.includes('--quick')
const cfg = quick ? { samples: 5, inner: 500, entries: 5_000 } : { samples: 21, inner: 5_000, entries: 100_000 }
const log = (...a) => console.error('[bookkeeping]', ...a)

const keyOf = (i) => i.toString(16).padStart(64, '0')
const seconds = (f) => {
  const t0 = process.hrtime.bigint()
  const r = f()
  return [Number(process.hrtime.bigint() - t0) / 1e9, r]
}
const us = (t) => `${(t * 1e6).toFixed(1)} µs`
const ms = (t) => (t >= 1 ? `${t.toFixed(2)} s` : `${(t * 1e3).toFixed(1)} ms`)
const ratio = (r) => `${r.toFixed(2)}x`

const tmp = mkdtempSync(join(os.tmpdir(), 'nfc-bookkeeping-'))
const out = { cfg, hit: {}, prune: {} }
try {
  // 1. One small hit (Float64Array(1024), 8 KiB) through the binding, three ways, interleaved.
  log('hit cost')
  const SMALL = new Float64Array(1024).fill(0.5)
  const layout = (n) => ({ shape: [n], dtype: '<f8', fortranOrder: false })
  const entry = (name) => ({ function: name, result: 'typedarray', class: 'Float64Array' })
  const store = (d) => d.store(keyOf(1), SMALL, layout(1024), entry('small'))
  const off = new native.Cache(join(tmp, 'hit-off'))
  off.setRecording(false)
  const on = new native.Cache(join(tmp, 'hit-on'))
  const aged = new native.Cache(join(tmp, 'hit-aged'), { limits: { maxAge: 1e12 } })
  for (const d of [off, on, aged]) store(d)
  // A plain hit comes back as its bare ArrayBuffer, the rest written into `meta`.
  const meta = new Float64Array(6 + native.defaults().maxDims)
  const check = (r) => {
    if (!(r instanceof ArrayBuffer) || r.byteLength !== SMALL.byteLength) throw new Error(`not a hit: ${JSON.stringify(r)}`)
  }
  const loop = (d) => () => {
    let r
    for (let i = 0; i < cfg.inner; i++) r = d.load(keyOf(1), meta)
    check(r)
  }
  // The public API's hit, for scale: a wrapper around the same load.
  const cache = new NumpyFuncCache(join(tmp, 'hit-api'))
  const f = cache.createCachedFunc(function small(i) { return SMALL })
  f(1)
  const t = await measureEach(cfg.samples, {
    off: { op: loop(off) },
    on: { op: loop(on) },
    aged: { op: loop(aged) },
    api: { op: () => { for (let i = 0; i < cfg.inner; i++) f(1) } },
  })
  for (const [k, v] of Object.entries(t)) {
    if (v.t === undefined) throw new Error(`hit case ${k}: ${v.error}`)
    out.hit[k] = v.t / cfg.inner
  }
  if (on.stats().hits < cfg.samples * cfg.inner) throw new Error('the recording cache did not count its hits')

  // 2. 100,000 entries (Float64Array(8) each): stats, a prune that only reconciles, a prune that halves the cache.
  log(`${cfg.entries} entries`)
  const TINY = new Float64Array(8).fill(0.25)
  const big = new native.Cache(join(tmp, 'entries'))
  const [fill] = seconds(() => { for (let i = 0; i < cfg.entries; i++) big.store(keyOf(i), TINY, layout(8), entry('tiny')) })
  out.prune.fill = fill
  const [stats, totals] = seconds(() => big.stats())
  if (totals.entries !== cfg.entries) throw new Error(`stats says ${totals.entries} entries`)
  out.prune.stats = stats
  const [reconcile, kept] = seconds(() => big.prune({}))
  if (kept.removedEntries !== 0 || kept.entries !== cfg.entries) throw new Error(`reconcile removed entries: ${JSON.stringify(kept)}`)
  out.prune.reconcile = reconcile
  const dirPath = join(tmp, 'entries')
  const [listing] = seconds(() => { for (const n of readdirSync(dirPath)) lstatSync(join(dirPath, n)) })
  out.prune.rawList = listing
  // The raw limit of removing as many entries: unlinking their 2 files each,
  // nothing else; made first and unlinked right after our prune, so both see one filesystem state.
  const half = cfg.entries / 2
  const plain = join(tmp, 'plain')
  mkdirSync(plain)
  const names = []
  for (let i = 0; i < half; i++) for (const ext of ['npy', 'json']) {
    const name = join(plain, `${keyOf(i)}.${ext}`)
    writeFileSync(name, 'x')
    names.push(name)
  }
  let progressCalls = 0
  const [halve, report] = seconds(() => big.prune({ maxEntries: half }, () => progressCalls++))
  if (report.removedEntries !== half || report.entries !== half) throw new Error(`prune: ${JSON.stringify(report)}`)
  out.prune.halve = halve
  out.prune.progressCalls = progressCalls
  const [unlinkAll] = seconds(() => { for (const n of names) unlinkSync(n) })
  out.prune.rawUnlink = unlinkAll
} finally {
  rmSync(tmp, { recursive: true, force: true })
}

const h = out.hit
const p = out.prune
const n = cfg.entries.toLocaleString('en-US')
const section = `## Bookkeeping: the index

Made by \`node bench/bookkeeping.mjs\`${quick ? ' --quick (a harness check only)' : ''} (also run by \`npm run bench\`), side by side in one process.

| Small hit (8 KiB), one binding call | per hit | / no recording |
| --- | --- | --- |
| recording off (what a hit costs without the index) | ${us(h.off)} | 1.00x |
| recording uses (default: batched, written once a second) | ${us(h.on)} | ${ratio(h.on / h.off)} |
| with \`maxAge\` (also reads the entry's last use from the index) | ${us(h.aged)} | ${ratio(h.aged / h.off)} |
| the public API's hit, for scale | ${us(h.api)} | ${ratio(h.api / h.off)} |

| ${n} entries | time | against the raw limit |
| --- | --- | --- |
| \`stats()\` | ${ms(p.stats)} | no listing at all |
| \`prune()\` within limits (reconciles: lists the directory, reads only entries the index lacks) | ${ms(p.reconcile)} | ${ratio(p.reconcile / p.rawList)} of \`readdirSync\` + \`lstatSync\` of every file, the least a pruner that scans must do (${ms(p.rawList)}) |
| \`prune({ maxEntries: ${(cfg.entries / 2).toLocaleString('en-US')} })\` (reconcile, then remove half, LRU first) | ${ms(p.halve)} | ${ratio(p.halve / (p.rawList + p.rawUnlink))} of listing plus \`unlinkSync\` of the removed files (${ms(p.rawList + p.rawUnlink)}) |

Making the ${n} entries took ${ms(p.fill)} (${us(p.fill / cfg.entries)} per store, index transaction included).
`

writeFileSync(join(here, 'bookkeeping.json'), JSON.stringify(out, null, 1) + '\n')
writeSection('bookkeeping', section, ['loop', 'pool'])
