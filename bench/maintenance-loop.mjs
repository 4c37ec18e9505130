// How long the maintenance calls hold up the event loop, sync against async:
// two caches of N small entries each, then entries(), verify() and a prune
// of every entry in each form, with the event loop's longest delay measured
// (perf_hooks.monitorEventLoopDelay) while each runs. Writes its section of
// BENCHMARKS.md (between the loop markers); npm run bench runs it with 20,000.
//   node bench/maintenance-loop.mjs [--entries N]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { NumpyFuncCache } from '../dist/index.mjs'
import { writeSection } from './lib.mjs'

const { values } = parseArgs({ options: { entries: { type: 'string', default: '5000' } } })
const n = Number(values.entries)

function filled() {
  const dir = mkdtempSync(join(tmpdir(), 'nfc-loop-bench-'))
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc((i) => new Float64Array(16).fill(i), { name: 'small' })
  for (let i = 0; i < n; i++) f(i)
  return { dir, cache }
}

/** Runs `work`, returning its time and the event loop's longest delay meanwhile (ms). */
async function measured(work) {
  const h = monitorEventLoopDelay({ resolution: 1 })
  h.enable()
  // A timer ticking all along: a sync call holds it up for as long as it runs.
  const tick = setInterval(() => {}, 1)
  // The monitor's first samples, so the delay of a call that starts at once counts.
  await new Promise((resolve) => setTimeout(resolve, 5))
  const t0 = performance.now()
  await work()
  const ms = performance.now() - t0
  // One more turn so a delay that ends with the call is recorded.
  await new Promise((resolve) => setTimeout(resolve, 2))
  clearInterval(tick)
  h.disable()
  return { ms, maxDelay: h.max / 1e6 }
}

const a = filled()
const b = filled()
const rows = []
for (const [label, sync, async] of [
  ['entries()', () => a.cache.entries(), () => b.cache.entriesAsync()],
  ['verify()', () => a.cache.verify({ dryRun: true }), () => b.cache.verifyAsync({ dryRun: true })],
  ['prune({ maxEntries: 0 })', () => a.cache.prune({ maxEntries: 0 }), () => b.cache.pruneAsync({ maxEntries: 0 })],
]) {
  const s = await measured(sync)
  const x = await measured(async)
  rows.push(`| ${label} | ${s.ms.toFixed(0)} | ${s.maxDelay.toFixed(0)} | ${x.ms.toFixed(0)} | ${x.maxDelay.toFixed(1)} |`)
}
writeSection(
  'loop',
  `## Maintenance calls and the event loop

Made by \`node bench/maintenance-loop.mjs --entries ${n}\` (also run by \`npm run bench\`): two caches of ${n.toLocaleString('en-US')} entries
of 128 bytes each; each call's time, and the event loop's longest delay while it ran (\`monitorEventLoopDelay\`, 1 ms
resolution, a 1 ms timer ticking all along), in ms. A sync call holds the loop for as long as it runs; its async form should not.

| call | sync: time | sync: longest loop delay | async: time | async: longest loop delay |
| --- | --- | --- | --- | --- |
${rows.join('\n')}
`,
  ['pool'],
)
for (const { dir } of [a, b]) rmSync(dir, { recursive: true, force: true })
