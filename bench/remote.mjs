// The remote tier (an s3:// location, no localDir) against boto3 + np.load,
// @aws-sdk/client-s3 and the raw limit, on a versitygw S3 server on loopback
// that it starts itself. Each round runs every peer once, in an order that
// rotates, so all peers see the same phases of this VM. Writes its section
// of BENCHMARKS.md (between the remote markers) and bench/remote.json.
//   node bench/remote.mjs [--rounds N] [--sizes 8KiB,256MiB,1GiB] [--dir DIR] [--quick] [--render bench/remote.json]
// --rounds: for every size (default 50 up to 1 MiB, 7 above); --dir: where
// the server keeps its objects (default the OS temp dir); --render: no
// measuring, the section again from an earlier run's results.
import { GetObjectCommand, ListObjectsV2Command, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join } from 'node:path'
import readline from 'node:readline'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { createBucket, startS3Server, VERSITYGW } from '../scripts/s3-server.mjs'
import { MiB, bytesOf, median, pool, randomF64, writeSection } from './lib.mjs'

const self = fileURLToPath(import.meta.url)
const here = dirname(self)
const root = join(here, '..')
// Results are dropped between ops (1 GiB each), which needs global.gc.
if (!globalThis.gc) {
  const r = spawnSync(process.execPath, ['--expose-gc', self, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'

const { values: opt } = parseArgs({
  options: { rounds: { type: 'string' }, sizes: { type: 'string' }, dir: { type: 'string' }, quick: { type: 'boolean', default: false }, render: { type: 'string' } },
})
const UNITS = { B: 1, KiB: 1024, MiB, GiB: 1024 * MiB }
const sizes = (opt.sizes ?? (opt.quick ? '8KiB,16MiB' : '8KiB,256MiB,1GiB')).split(',').map((s) => {
  const m = s.trim().match(/^(\d+)\s*(B|KiB|MiB|GiB)$/)
  if (!m || Number(m[1]) * UNITS[m[2]] % 8) throw new Error(`--sizes: ${s} is not a whole number of doubles like 8KiB, 256MiB, 1GiB`)
  return { label: `${m[1]} ${m[2]}`, tag: `${m[1]}${m[2]}`, bytes: Number(m[1]) * UNITS[m[2]] }
})
const roundsOf = (bytes) => Number(opt.rounds ?? (opt.quick ? 3 : bytes <= MiB ? 50 : 7))
const log = (...a) => console.error('[remote]', ...a)
const gc = () => globalThis.gc()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => process.hrtime.bigint()
const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e9
const require = createRequire(self)
const { NumpyFuncCache } = require('../dist')
// Modification times of the built package, to notice a rebuild during the run.
const buildStamp = () => [join(root, 'binding'), join(root, 'dist')]
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.node') || f.endsWith('.js')).map((f) => `${f}@${statSync(join(d, f)).mtimeMs}`)).join(',')
const stampAtStart = buildStamp()
const loadAtStart = os.loadavg().map((x) => x.toFixed(2)).join(', ')

// ---- this process's memory: VmHWM is reset before each of our ops ----

const status = () => readFileSync('/proc/self/status', 'utf8')
const kib = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status())[1])
let canResetPeak = true
function resetPeak() {
  try {
    writeFileSync('/proc/self/clear_refs', '5')
  } catch {
    canResetPeak = false
  }
  return kib('VmRSS')
}

// ---- .npy bytes for the peers that write their own ----

function npyHeader(n) {
  const dict = `{'descr': '<f8', 'fortran_order': False, 'shape': (${n},), }`
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64
  const h = Buffer.alloc(total, 0x20)
  h.write('\x93NUMPY', 0, 'latin1')
  h[6] = 1
  h[7] = 0
  h.writeUInt16LE(total - 10, 8)
  h.write(dict, 10, 'latin1')
  h[total - 1] = 0x0a
  return h
}

/** A Float64Array over the data of a version-1 .npy in `buf` (no copy when aligned, as np.save's are). */
function npyView(buf) {
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY' || buf[6] !== 1) throw new Error('not a version-1 .npy')
  const at = 10 + buf.readUInt16LE(8)
  const b = (at + buf.byteOffset) % 8 ? new Uint8Array(buf.subarray(at)) : buf.subarray(at)
  return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8)
}

// ---- the boto3 + NumPy worker ----

function pythonWorker(env) {
  const child = spawn(join(root, '.venv', 'bin', 'python'), [join(here, 'remote_boto3.py')], { env, stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting = []
  let gone = null
  const fail = (why) => {
    gone = why
    for (const w of waiting.splice(0)) w.reject(new Error(why))
  }
  child.once('error', (e) => fail(`remote_boto3.py: ${e.message}`))
  child.once('exit', (code) => fail(`remote_boto3.py exited ${code} (is boto3 in .venv? npm run bench installs it)`))
  child.stdin.on('error', () => {}) // the exit handler reports it
  readline.createInterface({ input: child.stdout }).on('line', (l) => waiting.shift()?.resolve(JSON.parse(l)))
  return {
    async ask(req) {
      if (gone) throw new Error(gone)
      const out = await new Promise((resolve, reject) => {
        waiting.push({ resolve, reject })
        child.stdin.write(JSON.stringify(req) + '\n')
      })
      if (out.error) throw new Error(out.error)
      return out
    },
    close: () => child.stdin.end(),
  }
}

// ---- main ----

async function measure() {
  const started = performance.now()
  const server = await startS3Server({ dir: opt.dir })
  const Bucket = 'nfc-bench'
  const tmp = mkdtempSync(join(opt.dir ?? os.tmpdir(), 'nfc-remote-bench-'))
  const out = { sizes: [], rows: {}, notes: {}, versions: {} }
  let py
  try {
    await createBucket(server, Bucket)
    // Our caches read the standard AWS_* environment when they are made.
    Object.assign(process.env, server.env)
    py = pythonWorker({ ...process.env, NFC_S3_BUCKET: Bucket })
    // requestStreamBufferSize: the SDK's own advice for a streamed body whose first chunk (the .npy header) is under 8 KiB.
    const s3 = new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: server, requestStreamBufferSize: 64 * 1024 })
    const curlAuth = ['-sSf', '--aws-sigv4', `aws:amz:${server.region}:s3`, '--user', `${server.accessKeyId}:${server.secretAccessKey}`,
      '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD']
    const urlOf = (key) => `${server.endpoint}/${Bucket}/${key}`
    const curl = promisify(execFile)

    out.versions = {
      ...(await py.ask({ op: 'versions' }).catch((e) => ({ error: e.message }))),
      node: process.version,
      clientS3: JSON.parse(readFileSync(require.resolve('@aws-sdk/client-s3/package.json'), 'utf8')).version,
      libStorage: JSON.parse(readFileSync(require.resolve('@aws-sdk/lib-storage/package.json'), 'utf8')).version,
      curl: execFileSync('curl', ['--version'], { encoding: 'utf8' }).split(' ')[1],
      versitygw: VERSITYGW.match(/versitygw-(v[\d.]+)/)?.[1] ?? '?',
    }

    const keysUnder = async (prefix) => {
      const r = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix }))
      return (r.Contents ?? []).map((c) => c.Key)
    }
    const removeUnder = async (prefix) => {
      for (const Key of await keysUnder(prefix)) await s3.send(new DeleteObjectCommand({ Bucket, Key }))
    }

    for (const size of sizes) {
      const { label, tag, bytes } = size
      const n = bytes / 8
      const rounds = roundsOf(bytes)
      log(`${label}: making the data, storing the entry the hits read`)
      let data = randomF64(n)
      const check = (a, who) => {
        if (a?.length !== n || a[0] !== data[0] || a[n - 1] !== data[n - 1]) throw new Error(`${who}: wrong result`)
      }
      let computed = 0
      // Our cached function: the computation hands back a ready array at once.
      const make = async function big(kind, round) {
        computed++
        return data
      }
      const hitLoc = `s3://${Bucket}/hit-${tag}`
      check(await new NumpyFuncCache(hitLoc).createCachedFunc(make)('hit'), 'first store')
      const hitKey = (await keysUnder(`hit-${tag}/`)).find((k) => k.endsWith('.npy') && !k.includes('/uses/'))
      await py.ask({ op: 'source', key: hitKey }).catch((e) => log(`boto3 cannot read the entry: ${e.message}`))
      const storeCache = new NumpyFuncCache(`s3://${Bucket}/store-${tag}`)
      const storeF = storeCache.createCachedFunc(make)
      // object_store signs each request body's SHA-256 unless told not to; this
      // diagnostic cache is told (AWS_UNSIGNED_PAYLOAD, read when a cache is made).
      process.env.AWS_UNSIGNED_PAYLOAD = 'true'
      const unsignedF = new NumpyFuncCache(`s3://${Bucket}/store-unsigned-${tag}`).createCachedFunc(make)
      delete process.env.AWS_UNSIGNED_PAYLOAD
      // The BLAKE3 cost of N bytes: a local hit keyed by an N-byte argument (the same hasher as a remote hit's digest check).
      const hashF = new NumpyFuncCache(join(tmp, `hash-${tag}`)).createCachedFunc(function tiny(a) {
        return new Float64Array(8)
      })
      hashF(data)
      const header = npyHeader(n)
      const npyFile = join(tmp, `${tag}.npy`)
      writeFileSync(npyFile, header)
      writeFileSync(npyFile, bytesOf(data), { flag: 'a' })
      const body = () => Readable.from([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)])
      const peak = { hit: 0, store: 0 }
      const ours = async (kind, op) => {
        gc()
        const base = resetPeak()
        const t0 = now()
        const a = await op()
        const t = since(t0)
        peak[kind] = Math.max(peak[kind], kib('VmHWM') - base)
        return [t, a]
      }
      const timed = async (op) => {
        const t0 = now()
        const r = await op()
        return [since(t0), r]
      }

      const hit = {
        ours: async () => {
          const f = new NumpyFuncCache(hitLoc).createCachedFunc(make)
          const before = computed
          const [t, a] = await ours('hit', () => f('hit'))
          check(a, 'ours')
          if (computed !== before) throw new Error('ours computed instead of hitting')
          return t
        },
        boto3: async (round) => {
          const r = await py.ask({ op: 'get', key: hitKey })
          if (r.bytes !== bytes || r.first !== data[0] || r.last !== data[n - 1]) throw new Error('boto3: wrong result')
          if (round >= 0) (out.notes[`boto3-read-${tag}`] ??= []).push(r.get)
          return r.t
        },
        sdk: async () => {
          const [t, a] = await timed(async () => {
            const got = await s3.send(new GetObjectCommand({ Bucket, Key: hitKey }))
            const buf = Buffer.allocUnsafeSlow(got.ContentLength)
            let at = 0
            for await (const c of got.Body) at += c.copy(buf, at)
            if (at !== buf.length) throw new Error(`got ${at} of ${buf.length} bytes`)
            return npyView(buf)
          })
          check(a, '@aws-sdk')
          return t
        },
        // Our request plan in JS, without the digest: the first 8 MiB, then 16 MiB ranges, 8 in flight.
        sdkPlan: async () => {
          const [t, a] = await timed(async () => {
            const get = async (from, to, into, IfMatch) => {
              const got = await s3.send(new GetObjectCommand({ Bucket, Key: hitKey, Range: `bytes=${from}-${to - 1}`, IfMatch }))
              let at = from
              for await (const c of got.Body) at += c.copy(into, at)
              if (at !== to) throw new Error(`range ${from}-${to}: got ${at - from} bytes`)
              return got
            }
            const first = await s3.send(new GetObjectCommand({ Bucket, Key: hitKey, Range: `bytes=0-${8 * MiB - 1}` }))
            const total = Number(first.ContentRange.split('/')[1])
            const buf = Buffer.allocUnsafeSlow(total)
            let at = 0
            for await (const c of first.Body) at += c.copy(buf, at)
            const parts = []
            for (let p = at; p < total; p += 16 * MiB) parts.push(p)
            await pool(parts.length, 8, (i) => get(parts[i], Math.min(total, parts[i] + 16 * MiB), buf, first.ETag))
            return npyView(buf)
          })
          check(a, '@aws-sdk plan')
          return t
        },
        // curl's own clock (no process start): 8 ranged GETs at once, one connection each, into /dev/null.
        raw: async () => {
          const total = bytes + header.length
          const parts = total < 8 * MiB ? 1 : 8
          const step = Math.ceil(total / parts)
          const args = ['--parallel', '--parallel-immediate', '--parallel-max', '8']
          for (let i = 0; i < parts; i++) {
            if (i) args.push('--next')
            args.push(...curlAuth, '-r', `${i * step}-${Math.min(total, (i + 1) * step) - 1}`, '-o', '/dev/null',
              '-w', '%{time_total} %{size_download}\\n', urlOf(hitKey))
          }
          const { stdout } = await curl('curl', args)
          const got = stdout.trim().split('\n').map((l) => l.split(' ').map(Number))
          if (got.reduce((s, [, b]) => s + b, 0) !== total) throw new Error(`curl fetched ${got.map(([, b]) => b)} bytes`)
          return Math.max(...got.map(([t]) => t))
        },
        // Diagnostics, not peers: BLAKE3 of N bytes, and first-touching N bytes of fresh memory (page faults).
        hash: async () => timed(() => hashF(data)).then(([t]) => t),
        touch: async () => timed(() => new Uint8Array(bytes).fill(1)).then(([t]) => t),
      }

      let seq = 0
      const peerKey = (peer) => `peers-${tag}/${peer}-${seq}.npy`
      const store = {
        ours: async () => {
          const before = computed
          const [t, a] = await ours('store', () => storeF('store', seq))
          if (a !== data || computed !== before + 1) throw new Error('ours did not compute')
          return t
        },
        oursUnsigned: async () => {
          const before = computed
          const [t] = await timed(() => unsignedF('store', seq))
          if (computed !== before + 1) throw new Error('ours did not compute')
          return t
        },
        boto3Put: async () => (await py.ask({ op: 'put', key: peerKey('boto3put') })).t,
        boto3Upload: async () => (await py.ask({ op: 'upload', key: peerKey('boto3upload') })).t,
        sdkPut: async () => (await timed(() => s3.send(new PutObjectCommand({ Bucket, Key: peerKey('sdkput'), Body: body(), ContentLength: header.length + bytes }))))[0],
        sdkUpload: async () => (await timed(() => new Upload({ client: s3, params: { Bucket, Key: peerKey('sdkupload'), Body: body() } }).done()))[0],
        raw: async () => {
          const { stdout } = await curl('curl', [...curlAuth, '-T', npyFile, '-o', '/dev/null', '-w', '%{time_total}', urlOf(peerKey('curl'))])
          return Number(stdout)
        },
      }

      const times = { hit: {}, store: {} }
      const errors = { hit: {}, store: {} }
      // Round -1 is a warm-up: connections, JIT, the server's first touches.
      for (let r = -1; r < rounds; r++) {
        log(`${label}: round ${r < 0 ? 'warm-up' : `${r + 1}/${rounds}`}`)
        for (const [kind, cases] of [['hit', hit], ['store', store]]) {
          const ids = Object.keys(cases)
          const k = ((r % ids.length) + ids.length) % ids.length
          for (const id of [...ids.slice(k), ...ids.slice(0, k)]) {
            if (errors[kind][id]) continue
            gc()
            try {
              const t = await cases[id](r)
              if (r >= 0) (times[kind][id] ??= []).push(t)
            } catch (e) {
              errors[kind][id] = String(e?.message ?? e).split('\n')[0].slice(0, 160)
              log(`${label} ${kind} ${id}: ${errors[kind][id]}`)
            }
            // Lets background work end before the next op: our hit's use mark is a small PUT after it returns.
            await sleep(10)
          }
          seq++
        }
        // Every stored object goes before the next round: at 1 GiB they would fill memory and disk.
        for (const p of ['store-', 'store-unsigned-', 'peers-']) await removeUnder(`${p}${tag}/`)
      }
      if (!canResetPeak) peak.hit = peak.store = NaN
      for (const kind of ['hit', 'store']) {
        const row = (out.rows[`${kind}-${tag}`] = { label, bytes, rounds, cells: {} })
        for (const id of Object.keys(kind === 'hit' ? hit : store)) {
          const ts = times[kind][id]
          row.cells[id] = errors[kind][id] ? { error: errors[kind][id] } : { t: median(ts), worst: Math.max(...ts), times: ts }
        }
        row.peakRssMiB = peak[kind] / 1024
      }
      out.notes[`boto3-read-${tag}`] = median(out.notes[`boto3-read-${tag}`] ?? [NaN])
      out.sizes.push({ label, tag, bytes, rounds })
      await removeUnder(`hit-${tag}/`)
      rmSync(npyFile, { force: true })
      data = null
      gc()
    }
  } finally {
    py?.close()
    await server.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
  out.seconds = (performance.now() - started) / 1000
  out.quick = opt.quick
  out.dir = opt.dir ?? os.tmpdir()
  out.loadAtStart = loadAtStart
  out.rebuilt = buildStamp() !== stampAtStart
  if (out.rebuilt) log('warning: the package was rebuilt during the run; rows may mix two builds')
  return out
}

// --render: only the section again, from an earlier run's bench/remote.json.
const out = opt.render ? JSON.parse(readFileSync(opt.render, 'utf8')) : await measure()

// ---- the section ----

const fmtTime = (t) => (!Number.isFinite(t) ? '?' : t < 1e-3 ? `${(t * 1e6).toFixed(1)} µs` : t < 1 ? `${(t * 1e3).toFixed(1)} ms` : `${t.toFixed(2)} s`)
const fmtRatio = (r) => `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`
const rate = (bytes, t) => (bytes >= MiB ? ` (${(bytes / 2 ** 30 / t).toFixed(2)} GiB/s)` : '')
/** Our median / the peer's, and the worst of the per-round ratios. */
function ratio(ours, peer) {
  if (ours?.t === undefined || peer?.t === undefined) return undefined
  const perRound = ours.times.map((t, i) => t / peer.times[i])
  return { median: ours.t / peer.t, worst: Math.max(...perRound) }
}
function table(kind, peers) {
  const head = [kind === 'hit' ? 'Hit, into memory' : 'Store (miss, new key)', 'rounds', 'this package: median; worst', ...peers.map(([, name]) => name), 'our peak RSS over baseline']
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`]
  for (const { tag } of out.sizes) {
    const row = out.rows[`${kind}-${tag}`]
    const ours = row.cells.ours
    const oursText = ours.t !== undefined ? `${fmtTime(ours.t)}${rate(row.bytes, ours.t)}; worst ${fmtTime(ours.worst)}` : `error: ${ours.error.replaceAll('|', '\\|')}`
    const cell = ([id]) => {
      const c = row.cells[id]
      if (c.t === undefined) return `error: ${c.error.replaceAll('|', '\\|')}`
      const r = ratio(ours, c)
      return `${r ? `**${fmtRatio(r.median)}** ` : ''}(${fmtTime(c.t)}; worst ${fmtTime(c.worst)})`
    }
    const rss = Number.isFinite(row.peakRssMiB) ? `${row.peakRssMiB.toFixed(0)} MiB (${(row.peakRssMiB * MiB / row.bytes).toFixed(2)}x N)` : 'n/a'
    lines.push(`| ${[row.label, row.rounds, oursText, ...peers.map(cell), row.bytes >= MiB ? rss : '—'].join(' | ')} |`)
  }
  return lines.join('\n')
}
const HIT_PEERS = [['boto3', 'boto3 + np.load'], ['sdk', '@aws-sdk GetObject'], ['sdkPlan', '@aws-sdk, our request plan'], ['raw', 'raw limit (curl, 8 ranged GETs)']]
const STORE_PEERS = [['oursUnsigned', 'this package, unsigned payload (diagnostic)'], ['boto3Put', 'boto3 np.save + put_object'],
  ['boto3Upload', 'boto3 np.save + upload_fileobj'], ['sdkPut', '@aws-sdk PutObject'], ['sdkUpload', '@aws-sdk lib-storage Upload'], ['raw', 'raw limit (curl, one PUT)']]

const large = out.sizes.filter((s) => s.bytes >= 256 * MiB)
const verdict = large.map(({ label, tag }) => {
  const c = out.rows[`hit-${tag}`].cells
  const vsBoto = ratio(c.ours, c.boto3)
  const vsRaw = ratio(c.ours, c.raw)
  if (!vsBoto || !vsRaw) return `- ${label}: not measured (an error above).`
  const ok = (r, bound) => (r <= bound ? 'met' : 'not met')
  return `- ${label}: ${fmtRatio(vsBoto.median)} of boto3 + np.load (worst round ${fmtRatio(vsBoto.worst)}), target ≤ 0.50x: **${ok(vsBoto.median, 0.5)}**; ` +
    `${fmtRatio(vsRaw.median)} of the raw limit (worst round ${fmtRatio(vsRaw.worst)}), target ≤ 1.30x: **${ok(vsRaw.median, 1.3)}**.`
})
const where = out.sizes.filter((s) => s.bytes >= MiB).map(({ label, tag, bytes }) => {
  const h = out.rows[`hit-${tag}`].cells
  const s = out.rows[`store-${tag}`].cells
  const parts = []
  if (h.ours?.t !== undefined && h.raw?.t !== undefined && h.hash?.t !== undefined && h.touch?.t !== undefined) {
    parts.push(`our hit, ${fmtTime(h.ours.t)}, against the raw transfer into /dev/null (${fmtTime(h.raw.t)}) + first-touching ${label} of fresh memory ` +
      `(${fmtTime(h.touch.t)}: page faults, which the raw limit never pays) + BLAKE3 of the data (${fmtTime(h.hash.t)} at ${(bytes / 2 ** 30 / h.hash.t).toFixed(2)} GiB/s, ` +
      `which a hit spreads over its ranges as they land) = sum ${fmtTime(h.raw.t + h.hash.t + h.touch.t)}`)
  }
  const read = out.notes[`boto3-read-${tag}`]
  if (Number.isFinite(read) && h.boto3?.t !== undefined) parts.push(`boto3 spends ${fmtTime(read)} in get_object + read and ${fmtTime(h.boto3.t - read)} in np.load`)
  if (s.ours?.t !== undefined && s.oursUnsigned?.t !== undefined) {
    parts.push(`our store with an unsigned payload (no SHA-256 of the body by client or server) takes ${fmtTime(s.oursUnsigned.t)}, ${fmtRatio(s.oursUnsigned.t / s.ours.t)} of the signed default`)
  }
  return `- ${label}: ${parts.join('; ')}.`
})

const v = out.versions
const section = `## Remote tier (S3 on loopback)

Made by \`node bench/remote.mjs\`${out.quick ? ' --quick (a harness check only)' : ''} (also run by \`npm run bench\`) in one run of ${(out.seconds / 60).toFixed(1)} minutes:
a versitygw ${v.versitygw} S3 server (posix backend, objects in ${out.dir}) on 127.0.0.1, sharing the machine's cores with the clients
(load average at start: ${out.loadAtStart}).
Peer columns are **our time / peer time** (median over median; below 1.00x this package is faster), then the peer's own median; worst.
${out.rebuilt ? '\n**Warning: the package (dist/ or the .node addon) was rebuilt during this run, so rows may mix two builds: run it again.**\n' : ''}
${table('hit', HIT_PEERS)}

${table('store', STORE_PEERS)}

Targets of the remote tier (large hits):
${verdict.join('\n') || '- no size of 256 MiB or more in this run.'}

Where the time goes (medians of the diagnostics, timed in the same rounds):
${where.join('\n') || '- no large size in this run.'}

How it is measured:
- Rounds: every size has one untimed warm-up round, then each round runs every hit case and every store case once, in an order
  that rotates by one each round; a forced GC runs (untimed) before each op. Uniform random doubles (\`Float64Array\`); N is their size.
- **this package, hit**: a fresh \`NumpyFuncCache('s3://…')\` (no \`localDir\`) each round, so fresh connections; the time of
  \`await cached('hit')\` (async wrapper), which returns the array in memory with its BLAKE3 digest checked.
  **store**: one long-lived cache; a miss with a new argument each round whose computation returns a ready array, so the time is
  the lookup (a 404), the digest and the create-only upload (one PUT, or parts above the \`multipartFrom\` of the build measured). The unsigned-payload column is the same with \`AWS_UNSIGNED_PAYLOAD=true\`
  when the cache is made. Peak RSS: VmHWM (reset before each of our ops) over VmRSS before it, the worst round.
- **boto3 + np.load** (boto3 ${v.boto3}, numpy ${v.numpy}, Python ${v.python}): a long-lived Python process, one client, timing itself:
  \`np.load(io.BytesIO(s3.get_object(…)['Body'].read()))\` of our entry's object (a plain .npy); stores \`np.save\` into a BytesIO then
  \`put_object(Body=buf)\` or \`upload_fileobj\` (default TransferConfig: 8 MiB parts, 10 threads). \`payload_signing_enabled=False\`:
  over plain HTTP botocore would SHA-256 every body for the signature, which it does not over HTTPS; its CRC32 checksums stay on.
- **@aws-sdk/client-s3** ${v.clientS3} (one long-lived client, default checksums, \`requestStreamBufferSize\` 64 KiB): GetObject, the body collected into a buffer of its
  ContentLength, the array a view of it; "our request plan" is the first 8 MiB then 16 MiB ranged GETs, 8 in flight, pinned by
  If-Match, into one buffer, with no digest. PutObject and \`@aws-sdk/lib-storage\` ${v.libStorage} Upload (defaults: 5 MiB parts, 4 in flight)
  stream the .npy header and the array's own bytes.
- **raw limit**: curl ${v.curl} (\`--aws-sigv4\`, UNSIGNED-PAYLOAD), a new process and connections each round, timed by curl's own
  \`time_total\` (no process start): a hit is 8 ranged GETs at once (one GET below 8 MiB) into /dev/null, the largest time_total of
  them; a store one PUT of the .npy from a file in the page cache.
- **BLAKE3 cost**: a local cache's hit keyed by the N-byte array as its argument (tiny result): the hasher (\`update_rayon\`) of a remote hit's check.
  **First touch**: \`new Uint8Array(N).fill(1)\`. Both run in the hit rounds, interleaved with the peers.
- A 10 ms pause follows every op, so background work (our hit's use mark, a small PUT) ends before the next op.
`

if (!opt.render) writeFileSync(join(here, 'remote.json'), JSON.stringify(out, null, 1) + '\n')
writeSection('remote', section, ['requests', 'bookkeeping', 'loop', 'pool'])
