// Results written straight into the cache against a copying store: a miss
// of one 1 GiB float64 result (filled by a JS loop), computed and stored
// in a directory and on an S3 store (versitygw), either filled in place
// (`output`: a shared map of the entry's file) or returned as a
// Float64Array that the cache then writes (a copying store). Each sample
// runs in a fresh process, interleaved, and reports the call's time and
// the process's anonymous memory at its peak (RssAnon, sampled after the
// fill and after the call): what a result costs beside the page cache.
// Writes its section of BENCHMARKS.md (between the output markers).
//   node bench/output.mjs [--quick]
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MiB, median, writeSection } from './lib.mjs'
import { createBucket, startS3Server } from '../scripts/s3-server.mjs'

const quick = process.argv.includes('--quick')
const samples = quick ? 2 : 7
const BYTES = (quick ? 128 : 1024) * MiB
const log = (...a) => console.error('[output]', ...a)
const dist = join(fileURLToPath(new URL('..', import.meta.url)), 'dist')

// One miss in a fresh process: mode 'output' (filled in place) or 'copy' (returned, then stored).
const CHILD = `
const { readFileSync } = require('node:fs')
const { NumpyFuncCache } = require(process.argv[1])
const [mode, location, options, n] = [process.argv[2], process.argv[3], JSON.parse(process.argv[4]), Number(process.argv[5])]
const status = (field) => Number(new RegExp(field + ':\\\\s+(\\\\d+)').exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
const base = status('RssAnon')
let peak = base
const sample = () => { peak = Math.max(peak, status('RssAnon')) }
const fill = (d) => { for (let i = 0; i < d.length; i++) d[i] = i * 0.5 }
const cache = new NumpyFuncCache(location, options)
const f = mode === 'output'
  ? cache.createCachedFunc(async (n, out) => { fill(out); sample() }, { name: 'ramp', output: (n) => ({ shape: [n], dtype: '<f8' }) })
  : cache.createCachedFunc(async (n) => { const a = new Float64Array(n); fill(a); sample(); return a }, { name: 'ramp' })
;(async () => {
  const t0 = performance.now()
  const r = await f(n)
  const t = (performance.now() - t0) / 1000
  sample()
  if (r.length !== n || r[n - 1] !== (n - 1) * 0.5) throw new Error('a wrong result')
  const stored = cache.entries().length === 1
  await cache.clearCacheAsync({ removeDir: !location.includes('://') })
  process.stdout.write(JSON.stringify({ t, anon: peak - base, stored }))
})().catch((e) => { console.error(e); process.exit(1) })
`

const tmp = mkdtempSync(join(os.tmpdir(), 'nfc-output-bench-'))
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
const server = await startS3Server()
await createBucket(server, 'bench')
const remote = { endpoint: server.endpoint, region: 'us-east-1', accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, allowHttp: true }
const places = [
  { name: 'directory', location: (i) => join(tmp, `cache-${i}`), options: {} },
  { name: 'S3 store', location: (i) => `s3://bench/output-${i}`, options: { remote } },
]
const results = {}
try {
  let i = 0
  for (let s = 0; s < samples; s++) {
    for (const place of places) {
      for (const mode of ['output', 'copy']) {
        const out = spawnSync(process.execPath, ['-e', CHILD, dist, mode, place.location(i++), JSON.stringify(place.options), String(BYTES / 8)], {
          encoding: 'utf8',
          env: { ...process.env, TMPDIR: tmp },
          maxBuffer: 1 << 20,
        })
        if (out.status !== 0) throw new Error(`${place.name} ${mode}: ${out.stderr}`)
        const r = JSON.parse(out.stdout)
        if (!r.stored) throw new Error(`${place.name} ${mode}: not stored`)
        ;(results[`${place.name} ${mode}`] ??= []).push(r)
        log(place.name, mode, r.t.toFixed(2), 's', (r.anon / MiB).toFixed(0), 'MiB')
      }
    }
  }
} finally {
  await server.stop()
  rmSync(tmp, { recursive: true, force: true })
}

const stat = (rs, f) => ({ median: median(rs.map(f)), worst: Math.max(...rs.map(f)) })
const table = places
  .flatMap(({ name }) => {
    const [ours, copy] = [results[`${name} output`], results[`${name} copy`]]
    const [t, tc, m, mc] = [stat(ours, (r) => r.t), stat(copy, (r) => r.t), stat(ours, (r) => r.anon), stat(copy, (r) => r.anon)]
    const s = (x) => `${x.toFixed(2)} s`
    const mib = (x) => `${(x / MiB).toFixed(0)} MiB`
    return [
      `| ${name}: written straight (\`output\`) | ${s(t.median)}; worst ${s(t.worst)} | ${mib(m.median)}; worst ${mib(m.worst)} | ${(tc.median / t.median).toFixed(2)}x |`,
      `| ${name}: copying store (returned array) | ${s(tc.median)}; worst ${s(tc.worst)} | ${mib(mc.median)}; worst ${mib(mc.worst)} | 1.00x |`,
    ]
  })
  .join('\n')
writeSection(
  'output',
  `## Results written straight into the cache

Made by \`node bench/output.mjs\`${quick ? ' --quick (a harness check only)' : ''}, ${samples} interleaved samples of each case, each a fresh process, on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}). One miss of a ${BYTES / MiB} MiB float64 result, filled by a JS loop and stored in a directory and on an S3 store (versitygw on loopback, no local tier): filled in place through \`output\` (a shared map of the entry's file, published by rename or uploaded from the file), against the same function returning a Float64Array that the cache writes (a copying store). **Anonymous memory** is the process's RssAnon at its peak above its start (sampled after the fill and after the call): the memory a result takes besides the page cache. The last column is the copying store's time over ours.

| Row | time of the miss (median; worst) | anonymous memory at peak (median; worst) | copying store / ours |
| --- | --- | --- | --- |
${table}`,
  ['several', 'reboot', 'loop', 'pool'],
)
