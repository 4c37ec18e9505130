// What the remote tier costs in requests: a hit, a miss, a compute-once
// miss, large transfers, and a prune, counted at a proxy in front of a real
// S3 server (versitygw) on loopback. The README's cost table for 10 million
// entries is these counts times S3's published prices. Writes its section
// of BENCHMARKS.md (between the requests markers).
//
//   node bench/remote-requests.mjs [--entries 10000]
import { fork } from 'node:child_process'
import net from 'node:net'
import { URLSearchParams, fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { NumpyFuncCache } from '../dist/index.js'
import { createBucket, startS3Server } from '../scripts/s3-server.mjs'
import { writeSection } from './lib.mjs'

const { values } = parseArgs({ options: { entries: { type: 'string', default: '10000' }, 'proxy-to': { type: 'string' } } })
const ENTRIES = Number(values.entries)
if (values['proxy-to']) await runProxy(new URL(values['proxy-to']))

/** The proxy: counts requests by their line ("GET", "PUT", "POST ?delete", "GET (LIST)"), read from the client's bytes. */
async function runProxy(target) {
  let counts = {}
  process.on('message', (what) => {
    if (what === 'clear') counts = {}
    process.send(counts)
  })
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    client.on('data', (d) => {
      // Bodies of float data do not look like request lines.
      for (const m of d.toString('latin1').matchAll(/^(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP\/1\.1\r$/gm)) {
        const query = m[2].includes('?') ? new URLSearchParams(m[2].split('?')[1]) : new URLSearchParams()
        const name = query.has('list-type') ? 'LIST' : query.has('delete') ? 'DeleteObjects' : query.has('uploadId') || query.has('uploads') ? `${m[1]} (multipart)` : m[1]
        counts[name] = (counts[name] ?? 0) + 1
      }
      upstream.write(d)
    })
    upstream.on('data', (d) => client.write(d))
    const end = () => (client.destroy(), upstream.destroy())
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r))
  process.send(proxy.address().port)
  await new Promise(() => {})
}

// (Only the parent gets here.)
const server = await startS3Server()
await createBucket(server, 'bench')

// The counting proxy runs in a child process: the cache's synchronous
// calls (stats, prune) block this process's event loop while they wait.
const proxy = fork(fileURLToPath(import.meta.url), ['--proxy-to', server.endpoint])
const port = await new Promise((r) => proxy.once('message', r))
const counts = {
  get: () => ask('get'),
  clear: () => ask('clear'),
}
function ask(what) {
  proxy.send(what)
  return new Promise((r) => proxy.once('message', r))
}
const remote = {
  endpoint: `http://127.0.0.1:${port}`,
  region: 'us-east-1',
  accessKeyId: server.accessKeyId,
  secretAccessKey: server.secretAccessKey,
  allowHttp: true,
}

/** Runs `work` and returns the requests it made, as "3 GET, 1 PUT". */
async function requestsOf(work) {
  await counts.clear()
  const t0 = performance.now()
  await work()
  const ms = performance.now() - t0
  // Uses are recorded off the hit path: let them land before reading the counts.
  await new Promise((r) => setTimeout(r, 200))
  const list = Object.entries(await counts.get()).sort().map(([k, v]) => `${v} ${k}`)
  return { requests: list.join(', ') || 'none', ms }
}

const rows = []
const fresh = (loc, extra = {}) => new NumpyFuncCache(loc, { remote, ...extra })
const fill = async (n, v) => new Float64Array(n).fill(v)

rows.push(['miss, 8 KiB (GET 404, then the PUT)', await requestsOf(() => fresh('s3://bench/a').createCachedFunc(fill)(1024, 1))])
rows.push(['hit, 8 KiB (a fresh process: new connection)', await requestsOf(() => fresh('s3://bench/a').createCachedFunc(fill)(1024, 1))])
const warm = fresh('s3://bench/a').createCachedFunc(fill)
await warm(1024, 1)
rows.push(['hit, 8 KiB (connection reused)', await requestsOf(() => warm(1024, 1))])
rows.push(['has(), 8 KiB (the checks a load makes)', await requestsOf(() => warm.has(1024, 1))])
rows.push(['invalidate(), 8 KiB', await requestsOf(() => fresh('s3://bench/a').createCachedFunc(fill).invalidate(1024, 1))])
rows.push([
  'miss with computeOnce, 8 KiB',
  await requestsOf(() => fresh('s3://bench/b', { computeOnce: true }).createCachedFunc(fill)(1024, 2)),
])
// Another machine computes for WAIT_S (its requests go straight to the server, uncounted); this one waits for its entry.
const WAIT_S = 3
let started
const computing = new Promise((r) => (started = r))
const slow = { name: 'slow', trackSource: false }
const holding = new NumpyFuncCache('s3://bench/w', { remote: { ...remote, endpoint: server.endpoint }, computeOnce: true })
  .createCachedFunc(async (n) => (started(), await new Promise((r) => setTimeout(r, WAIT_S * 1000)), new Float64Array(n).fill(4)), slow)
const held = holding(1024)
await computing
rows.push([
  `wait with computeOnce for another machine's computation of ${WAIT_S} s, 8 KiB`,
  await requestsOf(() => fresh('s3://bench/w', { computeOnce: true }).createCachedFunc(async (n) => new Float64Array(n).fill(5), slow)(1024)),
])
await held
rows.push(['miss, 256 MiB', await requestsOf(() => fresh('s3://bench/c').createCachedFunc(fill)(32 << 20, 3))])
rows.push(['hit, 256 MiB', await requestsOf(() => fresh('s3://bench/c').createCachedFunc(fill)(32 << 20, 3))])
rows.push(['has(), 256 MiB (its data is not read)', await requestsOf(() => fresh('s3://bench/c').createCachedFunc(fill).has(32 << 20, 3))])

// A prune over many entries: store them, then halve them.
const many = fresh('s3://bench/many')
const small = many.createCachedFunc(fill)
const t0 = performance.now()
for (let i = 0; i < ENTRIES; i += 16) await Promise.all(Array.from({ length: Math.min(16, ENTRIES - i) }, (_, j) => small(16, i + j)))
const storeMs = performance.now() - t0
const stats = await requestsOf(() => many.stats())
const prune = await requestsOf(() => many.prune({ maxEntries: ENTRIES / 2 }))

const table = [
  '| operation | requests | time on loopback |',
  '| --- | --- | --- |',
  ...rows.map(([what, r]) => `| ${what} | ${r.requests} | ${r.ms.toFixed(1)} ms |`),
  `| stats of ${ENTRIES.toLocaleString('en-US')} entries | ${stats.requests} | ${stats.ms.toFixed(0)} ms |`,
  `| prune of ${ENTRIES.toLocaleString('en-US')} entries to half | ${prune.requests} | ${prune.ms.toFixed(0)} ms |`,
]
writeSection(
  'requests',
  `## Object-store requests per operation

Made by \`node bench/remote-requests.mjs\` (also run by \`npm run bench\`): requests counted at a proxy in front of a versitygw
S3 server on loopback; the README's cost table is these counts times S3's published prices. Times are one run each, for scale only.

${table.join('\n')}

(${ENTRIES.toLocaleString('en-US')} stores of 128 B, 16 at a time: ${(storeMs / ENTRIES).toFixed(2)} ms each.)
`,
  ['bookkeeping', 'loop', 'pool'],
)
proxy.kill()
await server.stop()
process.exit(0)
