// Large copying loads against fs.readFileSync of the same file, side by
// side: interleaved rounds in fresh processes, no forced GC, so the cost of
// fresh memory and of collecting earlier results is in every round.
//
//   node bench/large-load.mjs [--mib 256] [--rounds 30] [--processes 2] [--mode yield|sync|async] [--json] [--check 1.5]
//
// Each round loads once with this package and once with readFileSync (in
// alternating order) and keeps the per-round ratio ours / readFileSync.
// `yield` lets the event loop turn between rounds (what a program doing
// any I/O does); `sync` never yields (a tight synchronous loop); `async`
// loads through the Promise API. The parent prints medians and worst cases;
// with --check, it fails when the median ratio is above the bound (the perf
// regression test, `npm run test:perf`: generous, never a tight timing).
import { spawnSync } from 'node:child_process'
import { setImmediate } from 'node:timers'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { values: opts } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    rounds: { type: 'string', default: '30' },
    processes: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'yield' },
    json: { type: 'boolean', default: false },
    check: { type: 'string' },
    child: { type: 'string' },
  },
})
const mib = Number(opts.mib)
const rounds = Number(opts.rounds)
const mode = opts.mode

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function child(dir) {
  const { NumpyFuncCache } = require('../dist/index.js')
  const cache = new NumpyFuncCache(dir)
  const n = (mib << 20) / 8
  const make = function big() {
    const a = new Float64Array(n)
    for (let i = 0; i < n; i += 4096) a[i] = i
    return a
  }
  const f = cache.createCachedFunc(make, { name: 'big' })
  const g = cache.createCachedFunc(async () => make(), { name: 'big' })
  f() // the miss stores it
  const file = join(dir, cache.entries()[0].key + '.npy')
  const check = (a) => {
    if (a.length !== n || a[4096] !== 4096) throw new Error('wrong result')
  }
  const out = []
  for (let r = 0; r < rounds; r++) {
    const t = {}
    const ours = async () => {
      const t0 = process.hrtime.bigint()
      const a = mode === 'async' ? await g() : f()
      t.ours = Number(process.hrtime.bigint() - t0) / 1e6
      check(a)
    }
    const plain = () => {
      const t0 = process.hrtime.bigint()
      const b = readFileSync(file)
      t.plain = Number(process.hrtime.bigint() - t0) / 1e6
      if (b.length < mib << 20) throw new Error('short read')
    }
    if (r % 2) {
      plain()
      await ours()
    } else {
      await ours()
      plain()
    }
    out.push(t)
    if (mode !== 'sync') await new Promise((resolve) => setImmediate(resolve))
  }
  // VmHWM: this process's own peak (maxRSS can carry the parent's from before exec).
  const hwmKiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1])
  return { rounds: out, peakRssMiB: hwmKiB / 1024 }
}

if (opts.child) {
  const result = await child(opts.child)
  process.stdout.write(JSON.stringify(result))
} else {
  const processes = Number(opts.processes)
  const all = []
  const peaks = []
  for (let p = 0; p < processes; p++) {
    const dir = mkdtempSync(join(tmpdir(), 'nfc-large-load-'))
    try {
      const args = [fileURLToPath(import.meta.url), '--child', dir, '--mib', String(mib), '--rounds', String(rounds), '--mode', mode]
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 })
      if (r.status !== 0) throw new Error(`benchmark process failed (status ${r.status}, signal ${r.signal})`)
      const { rounds: got, peakRssMiB } = JSON.parse(r.stdout)
      all.push(...got)
      peaks.push(peakRssMiB)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  const ratios = all.map((t) => t.ours / t.plain)
  const summary = {
    mib, mode, rounds: all.length, processes,
    ours: { median: median(all.map((t) => t.ours)), worst: Math.max(...all.map((t) => t.ours)) },
    readFileSync: { median: median(all.map((t) => t.plain)), worst: Math.max(...all.map((t) => t.plain)) },
    ratio: { median: median(ratios), worst: Math.max(...ratios) },
    peakRssMiB: Math.max(...peaks),
  }
  if (opts.json) process.stdout.write(JSON.stringify(summary) + '\n')
  else {
    const ms = (x) => `${x.toFixed(1)} ms`
    console.log(`${mib} MiB, ${mode}, ${summary.rounds} rounds in ${processes} processes: ` +
      `ours ${ms(summary.ours.median)} (worst ${ms(summary.ours.worst)}), readFileSync ${ms(summary.readFileSync.median)} ` +
      `(worst ${ms(summary.readFileSync.worst)}); ratio median ${summary.ratio.median.toFixed(2)}x, worst ${summary.ratio.worst.toFixed(2)}x; ` +
      `peak RSS ${summary.peakRssMiB.toFixed(0)} MiB`)
  }
  if (opts.check !== undefined && !(summary.ratio.median <= Number(opts.check))) {
    console.error(`perf regression: large loads took a median ${summary.ratio.median.toFixed(2)}x of readFileSync, above the bound ${opts.check}x`)
    process.exit(1)
  }
}
