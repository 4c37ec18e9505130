// Partial reads against whole hits: one entry of 256 MiB (4,096 rows of
// 64 KiB), in a directory and on an S3 store (versitygw), read whole by a
// hit, and in part through an opened entry: one row, and 41 rows (1%).
// The raw limit beside each: the same bytes by a positioned read of the
// entry's file, or by one ranged GET of its object (@aws-sdk), unchecked.
// Writes its section of BENCHMARKS.md (between the partial markers).
//   node --expose-gc bench/partial-reads.mjs [--quick]
import { closeSync, mkdtempSync, openSync, readSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { join } from 'node:path'
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { MiB, measureEach, randomF64, writeSection } from './lib.mjs'
import { createBucket, startS3Server } from '../scripts/s3-server.mjs'

const require = createRequire(import.meta.url)
const { NumpyFuncCache } = require('../dist')
const quick = process.argv.includes('--quick')
const samples = quick ? 3 : 21
const log = (...a) => console.error('[partial]', ...a)
const ms = (t) => (t >= 1 ? `${t.toFixed(2)} s` : t >= 1e-3 ? `${(t * 1e3).toFixed(2)} ms` : `${(t * 1e6).toFixed(1)} µs`)
const ratio = (peer, ours) => `${(peer / ours).toFixed(2)}x`

const COLS = 8192 // 64 KiB rows
const ROWS = quick ? 256 : 4096
const ROW_BYTES = COLS * 8
const data = randomF64(ROWS * COLS)
const grid = () => ({ data, shape: [ROWS, COLS] })
// Rows read: one in the middle, and 1% of them from there.
const [ROW, MANY] = [Math.floor(ROWS / 2) + 3, Math.ceil(ROWS / 100)]

const tmp = mkdtempSync(join(os.tmpdir(), 'nfc-partial-'))
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
const server = await startS3Server()
await createBucket(server, 'bench')
const remote = { endpoint: server.endpoint, region: 'us-east-1', accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, allowHttp: true }
const s3 = new S3Client({
  endpoint: server.endpoint,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
})
const rows = []
try {
  for (const place of ['directory', 'S3 store']) {
    log(place)
    const dir = join(tmp, 'cache')
    const cache = place === 'directory' ? new NumpyFuncCache(dir) : new NumpyFuncCache('s3://bench/partial', { remote })
    const cached = cache.createCachedFunc(grid, { name: 'grid', trackSource: false })
    cached()
    const handle = cached.open()
    const key = handle.key
    // The raw limit: the row's bytes where the entry's data lies, unchecked.
    let raw
    if (place === 'directory') {
      const file = join(dir, readdirSync(dir).find((f) => f.endsWith('.npy')))
      const fd = openSync(file, 'r')
      const head = Buffer.alloc(12)
      readSync(fd, head, 0, 12, 0)
      const start = head[6] === 1 ? 10 + head.readUInt16LE(8) : 12 + head.readUInt32LE(8)
      raw = (row, n) => {
        const out = Buffer.allocUnsafe(n * ROW_BYTES)
        readSync(fd, out, 0, out.length, start + row * ROW_BYTES)
        return out
      }
      process.on('exit', () => closeSync(fd))
    } else {
      const Key = `partial/${key.slice(0, 2)}/${key}.npy`
      const head = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'bench', Key, Range: 'bytes=0-11' }))).Body.transformToByteArray())
      const start = head[6] === 1 ? 10 + head.readUInt16LE(8) : 12 + head.readUInt32LE(8)
      raw = async (row, n) => {
        const from = start + row * ROW_BYTES
        const got = await s3.send(new GetObjectCommand({ Bucket: 'bench', Key, Range: `bytes=${from}-${from + n * ROW_BYTES - 1}` }))
        return got.Body.transformToByteArray()
      }
    }
    const checkRow = (r) => {
      if (r.data[0] !== data[ROW * COLS] || r.data.length !== COLS) throw new Error('a wrong row')
    }
    const t = await measureEach(samples, {
      whole: { op: () => cached(), check: (r) => r.data[ROW * COLS] === data[ROW * COLS] || fail() },
      openRow: { op: async () => (await cache.openAsync(key)).readRowsAsync(ROW), check: checkRow },
      row: { op: () => handle.readRowsAsync(ROW), check: checkRow },
      many: { op: () => handle.readRowsAsync(ROW, ROW + MANY) },
      rawRow: { op: () => raw(ROW, 1) },
      rawMany: { op: () => raw(ROW, MANY) },
    })
    rows.push({ place, t })
    handle.close()
    cache.clearCache()
    cache.close()
  }
} finally {
  await server.stop()
  rmSync(tmp, { recursive: true, force: true })
}

function fail() {
  throw new Error('a wrong hit')
}

const cell = (c) => (c.error ? `failed: ${c.error}` : `${ms(c.t)}; worst ${ms(c.worst)}`)
const line = (place, label, ours, whole, raw) =>
  `| ${place}: ${label} | ${cell(ours)} | ${ratio(whole.t, ours.t)} | ${raw ? ratio(raw.t, ours.t) : '—'} |`
const table = rows
  .flatMap(({ place, t }) => [
    line(place, `whole hit (${(ROWS * ROW_BYTES) / MiB} MiB)`, t.whole, t.whole),
    line(place, 'open, then one row (64 KiB)', t.openRow, t.whole, t.rawRow),
    line(place, 'one row (64 KiB) of an open entry', t.row, t.whole, t.rawRow),
    line(place, `${MANY} rows (1%) of an open entry`, t.many, t.whole, t.rawMany),
  ])
  .join('\n')
writeSection(
  'partial',
  `## Partial reads

Made by \`node --expose-gc bench/partial-reads.mjs\`${quick ? ' --quick (a harness check only)' : ''}, ${samples} interleaved samples of each case, on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}). One entry of ${(ROWS * ROW_BYTES) / MiB} MiB (${ROWS} rows of 64 KiB, float64) in a directory and on an S3 store (versitygw on loopback), read whole by a hit, and in part through \`cached.open()\` (async reads): every read fetches the 1 MiB blocks its rows touch and checks each against the entry's block digests. Columns are **time / our time**: a whole hit of the entry, and the raw limit, the same rows' bytes read unchecked (a positioned read of the entry's file; one ranged GET of its object with @aws-sdk).

| Row | this package (median; worst) | whole hit | raw read of the same bytes |
| --- | --- | --- | --- |
${table}`,
  ['several', 'reboot', 'loop', 'pool'],
)
