// Loopback throughput of the test S3 server: one big PUT, one big GET, and
// the GET split into parallel ranged GETs, each repeated; prints MB/s.
//
//   node scripts/s3-throughput.mjs [--mib 256] [--repeats 3] [--parallel 8] [--dir /dev/shm]
//
// Rows "sdk" go through @aws-sdk/client-s3 as the tests will; "sdk, no crc"
// turn its default CRC32 request checksums / response validation off; "curl"
// (when installed) shows the server with a client that costs next to nothing.
// Client and server share this machine's cores, so these are lower bounds.
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3'
import { execFileSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { createBucket, startS3Server } from './s3-server.mjs'

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
const { values: opt } = parseArgs({ options: { mib: { type: 'string', default: '256' }, repeats: { type: 'string', default: '3' }, parallel: { type: 'string', default: '8' }, dir: { type: 'string' } } })
const size = Number(opt.mib) << 20
const repeats = Number(opt.repeats)
const parallel = Number(opt.parallel)

const server = await startS3Server({ dir: opt.dir })
const Bucket = 'nfc-bench'
await createBucket(server, Bucket)
const Key = 'big.bin'
const data = randomFillSync(Buffer.allocUnsafe(size)) // random: nothing on the way can compress it

const client = (checksums) => new S3Client({
  endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: server,
  ...(checksums ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
})

// Reads a body through, counting bytes, without gathering it.
async function drain(body) {
  let n = 0
  for await (const chunk of body) n += chunk.length
  return n
}

async function get(s3, Range) {
  const out = await s3.send(new GetObjectCommand({ Bucket, Key, Range }))
  return drain(out.Body)
}

async function ranged(s3) {
  const step = Math.ceil(size / parallel)
  const sizes = await Promise.all([...Array(parallel).keys()].map((i) =>
    get(s3, `bytes=${i * step}-${Math.min(size, (i + 1) * step) - 1}`)))
  return sizes.reduce((a, b) => a + b, 0)
}

const results = []
async function time(name, fn) {
  const rates = []
  for (let i = 0; i < repeats; i++) {
    const t = performance.now()
    const n = await fn()
    const s = (performance.now() - t) / 1000
    if (n !== size) throw new Error(`${name}: moved ${n} bytes, expected ${size}`)
    rates.push(size / 1e6 / s)
  }
  results.push({ name, rates })
}

for (const checksums of [true, false]) {
  const s3 = client(checksums)
  const tag = checksums ? 'sdk' : 'sdk, no crc'
  await time(`PUT 1 request (${tag})`, async () => { await s3.send(new PutObjectCommand({ Bucket, Key, Body: data })); return size })
  await time(`GET 1 request (${tag})`, () => get(s3))
  await time(`GET ${parallel} ranged in parallel (${tag})`, () => ranged(s3))
  s3.destroy()
}

// curl signs with UNSIGNED-PAYLOAD, so it neither hashes nor checksums the body.
let hasCurl = true
try { execFileSync('curl', ['--version'], { stdio: 'ignore' }) } catch { hasCurl = false }
if (hasCurl) {
  const file = path.join(os.tmpdir(), `nfc-s3-throughput-${process.pid}.bin`)
  writeFileSync(file, data)
  const curl = (...args) => execFileSync('curl', ['-sf', '--aws-sigv4', `aws:amz:${server.region}:s3`,
    '--user', `${server.accessKeyId}:${server.secretAccessKey}`, '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', ...args])
  const url = `${server.endpoint}/${Bucket}/${Key}`
  await time('PUT 1 request (curl)', () => { curl('-T', file, '-o', '/dev/null', url); return size })
  await time('GET 1 request (curl)', () => { curl('-o', '/dev/null', url); return size })
  rmSync(file, { force: true })
}
await server.stop()

console.log(`${opt.mib} MiB object, ${repeats} repeats, MB/s = 10^6 bytes/s\n`)
console.log('| transfer | runs (MB/s) | best |\n| --- | --- | --- |')
for (const r of results) console.log(`| ${r.name} | ${r.rates.map((x) => x.toFixed(0)).join(', ')} | ${Math.max(...r.rates).toFixed(0)} |`)
