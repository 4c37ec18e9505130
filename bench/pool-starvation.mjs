// How long an unrelated fs.promises.stat waits while N async cached calls
// are pending on an object store that answers each request after a delay
// (versitygw on loopback, behind a proxy that holds every request that
// long). Calls that waited on libuv's thread pool (4 threads) held fs work
// up behind them; calls that await their requests on the cache's runtime
// hold up nothing. Per N, the stat's median and worst delay over the
// rounds, against the same stat with no call pending: written as its section
// of BENCHMARKS.md (between the pool markers), or with --package (another
// build of the package, to compare) printed as JSON only.
//   node bench/pool-starvation.mjs [--package <dir with dist/>] [--pending 20,100] [--answer-ms 2000] [--rounds 5]
import { promises as fsp } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { createRequire } from 'node:module'
import { createBucket, startS3Server } from '../scripts/s3-server.mjs'
import { writeSection } from './lib.mjs'

const { values } = parseArgs({
  options: {
    package: { type: 'string' },
    pending: { type: 'string', default: '20,100' },
    'answer-ms': { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
  },
})
const packageDir = values.package ?? join(import.meta.dirname, '..')
const { NumpyFuncCache } = createRequire(import.meta.url)(join(packageDir, 'dist'))
const answerMs = Number(values['answer-ms'])
const rounds = Number(values.rounds)

const server = await startS3Server()
await createBucket(server, 'nfc-bench')
// Every request is forwarded after `answerMs`: a store that answers slowly.
const upstream = new URL(server.endpoint)
const proxy = http.createServer((req, res) => {
  setTimeout(() => {
    const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    out.on('error', () => res.destroy())
    req.pipe(out)
  }, answerMs)
})
await new Promise((r) => proxy.listen(0, '127.0.0.1', r))
const remote = {
  endpoint: `http://127.0.0.1:${proxy.address().port}`,
  region: server.region,
  accessKeyId: server.accessKeyId,
  secretAccessKey: server.secretAccessKey,
  allowHttp: true,
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
async function statMs() {
  const t0 = performance.now()
  await fsp.stat(import.meta.filename)
  return performance.now() - t0
}

const rows = []
const idle = []
for (let r = 0; r < rounds; r++) idle.push(await statMs())
rows.push({ pending: 0, medianMs: median(idle), worstMs: Math.max(...idle) })
let round = 0
for (const n of values.pending.split(',').map(Number)) {
  const delays = []
  for (let r = 0; r < rounds; r++) {
    const cache = new NumpyFuncCache(`s3://nfc-bench/starve-${n}-${++round}`, { remote })
    const f = cache.createCachedFunc(async (k) => new Float64Array(4).fill(k), { name: 'fill' })
    const calls = Array.from({ length: n }, (_, k) => f(k))
    // Let every call reach its first request.
    await new Promise((resolve) => setTimeout(resolve, 100))
    delays.push(await statMs())
    await Promise.all(calls)
  }
  rows.push({ pending: n, medianMs: median(delays), worstMs: Math.max(...delays) })
}
console.log(JSON.stringify({ package: packageDir, answerMs, rounds, rows }, null, 2))
const ms = (x) => (x < 10 ? x.toFixed(2) : x.toFixed(0))
if (values.package === undefined) {
  writeSection(
    'pool',
    `## Pool starvation: remote calls pending, \`fs\` work going on

Made by \`node bench/pool-starvation.mjs\` (also run by \`npm run bench\`): N async cached calls are pending on an S3 store
(versitygw on loopback, behind a proxy that holds every request for ${answerMs} ms), and an unrelated \`fs.promises.stat\`,
which needs a thread of libuv's pool (4 threads), is timed meanwhile: ${rounds} rounds each, a fresh cache per round, the stat
100 ms after the calls start. The raw limit is the same stat with no call pending. Remote calls await their requests on the
cache's own runtime, so the stat should not wait for them.

| remote calls pending | \`fs.promises.stat\`: median ms | worst ms | median against no call pending |
| --- | --- | --- | --- |
${rows.map((r) => `| ${r.pending} | ${ms(r.medianMs)} | ${ms(r.worstMs)} | ${(r.medianMs / rows[0].medianMs).toFixed(2)}x |`).join('\n')}
`,
  )
}
proxy.close()
proxy.closeAllConnections()
await server.stop()
