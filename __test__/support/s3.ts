// A real S3 server (versitygw, scripts/s3-server.mjs) for the remote-tier
// tests, a TCP proxy in front of it that can cut a transfer midway, and
// workers: real processes, each standing in for a machine.
import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import { type S3Server, createBucket, startS3Server } from '../../scripts/s3-server.mjs'
import { root } from '../helpers'

export type { S3Server }
/** What a client needs of a server: where it is and the keys it takes. */
export type S3Endpoint = Pick<S3Server, 'endpoint' | 'accessKeyId' | 'secretAccessKey' | 'region' | 'env'>
// The SDK warns that its releases from 2027 need Node 22; the version pinned here supports Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'

export const BUCKET = 'nfc-test'

/** A fresh server on loopback with `bucket` made. */
export async function startServer(bucket = BUCKET): Promise<S3Server> {
  const server = await startS3Server()
  await createBucket(server, bucket)
  return server
}

/** An SDK client of `server`, to plant and list objects as someone else would. */
export function s3Client(server: S3Endpoint): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  })
}

let unique = 0
/** A fresh prefix in the test bucket. */
export function location(name: string): string {
  return `s3://${BUCKET}/${name}-${process.pid}-${++unique}`
}

/** The cache's `remote` option for `server` (or for an endpoint given). */
export function remoteOf(server: S3Endpoint, endpoint = server.endpoint) {
  return {
    endpoint,
    region: server.region,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    allowHttp: true,
  }
}

/**
 * A TCP proxy to `target`: `cutAfter(bytes, dir, onCut)` calls `onCut` once
 * that many bytes have gone through in direction `dir` (`up`: client to
 * server), after which the proxy forwards nothing more. `pauseAfter(bytes)`
 * holds client-to-server bytes past that many until `resume()`.
 */
export async function startProxy(target: string): Promise<{
  endpoint: string
  cutAfter(bytes: number, dir: 'up' | 'down', onCut: () => void): void
  pauseAfter(bytes: number): { paused: Promise<void>; resume(): void }
  close(): Promise<void>
}> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<net.Socket>()
  let cut: { bytes: number; dir: 'up' | 'down'; onCut: () => void; seen: number; done: boolean } | undefined
  let pause: { bytes: number; seen: number; held: (() => void)[]; reached: () => void } | undefined
  const count = (dir: 'up' | 'down', n: number) => {
    if (!cut || cut.dir !== dir || cut.done) return
    cut.seen += n
    if (cut.seen >= cut.bytes) {
      cut.done = true
      cut.onCut()
      for (const s of sockets) s.destroy()
    }
  }
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname)
    sockets.add(client).add(upstream)
    const forward = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') =>
      from.on('data', (d) => {
        if (cut?.done) return
        if (dir === 'up' && pause) {
          pause.seen += d.length
          if (pause.seen > pause.bytes) {
            pause.held.push(() => to.write(d))
            pause.reached()
            return
          }
        }
        to.write(d)
        count(dir, d.length)
      })
    forward(client, upstream, 'up')
    forward(upstream, client, 'down')
    const end = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  const { port: proxyPort } = proxy.address() as net.AddressInfo
  return {
    endpoint: `http://127.0.0.1:${proxyPort}`,
    cutAfter(bytes, dir, onCut) {
      cut = { bytes, dir, onCut, seen: 0, done: false }
    },
    pauseAfter(bytes) {
      let reached!: () => void
      const paused = new Promise<void>((r) => (reached = r))
      const p = { bytes, seen: 0, held: [] as (() => void)[], reached }
      pause = p
      return {
        paused,
        resume() {
          pause = undefined
          for (const write of p.held) write()
        },
      }
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        proxy.close(() => r())
      }),
  }
}

/** The function every worker caches: its result says which call it is. */
export const EMBED_MODULE = `
const fs = require('fs')
exports.embed = async function embed(k, n, log) {
  fs.appendFileSync(log, process.pid + '\\n')
  // How long the computation takes is not an argument: it is not part of the key.
  const ms = Number(process.env.EMBED_MS || 0)
  if (ms) await new Promise((r) => setTimeout(r, ms))
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = k * 1e6 + i
  return a
}
`

export function expected(k: number, n: number): Float64Array {
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = k * 1e6 + i
  return a
}

/** A worker: one call of the cached `embed`; prints `computing`-style lines and a result line. */
const WORKER = `
const { NumpyFuncCache } = require(process.argv[2])
const { embed } = require(process.argv[3])
const cfg = JSON.parse(process.argv[4])
const cache = new NumpyFuncCache(cfg.location, { localDir: cfg.localDir, computeOnce: cfg.computeOnce })
const errors = []
cache.on('storeError', (e) => errors.push(e.code + ' ' + e.message))
const f = cache.createCachedFunc(embed)
process.stdout.write('ready\\n')
f(cfg.k, cfg.n, cfg.log).then((a) => {
  let right = a.length === cfg.n
  for (let i = 0; right && i < cfg.n; i++) right = a[i] === cfg.k * 1e6 + i
  process.stdout.write('result ' + JSON.stringify({ right, errors }) + '\\n')
})
`

export interface WorkerConfig {
  location: string
  localDir?: string
  computeOnce?: unknown
  k: number
  n: number
  log: string
  ms?: number
}

export function writeWorker(dir: string): { worker: string; module: string } {
  const module = join(dir, 'embed.js')
  const worker = join(dir, 'worker.js')
  writeFileSync(module, EMBED_MODULE)
  writeFileSync(worker, WORKER)
  return { worker, module }
}

export interface Run {
  child: ChildProcess
  /** Resolves once a line starting with `prefix` is printed. */
  line(prefix: string): Promise<string>
  /** The result line, parsed, once the process exits. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; result?: { right: boolean; errors: string[] }; stderr: string }>
}

/** A worker process (a machine) reaching the cache with `place.env` added to this process's environment. */
export function startWorker(files: { worker: string; module: string }, place: { env: Record<string, string> }, cfg: WorkerConfig): Run {
  const child = spawn(process.execPath, [files.worker, join(root, 'dist'), files.module, JSON.stringify(cfg)], {
    env: { ...process.env, ...place.env, EMBED_MS: String(cfg.ms ?? 0) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const waiting: { prefix: string; resolve: (l: string) => void }[] = []
  child.stdout!.on('data', (d) => {
    stdout += d
    for (const w of [...waiting]) {
      const l = stdout.split('\n').find((x) => x.startsWith(w.prefix))
      if (l !== undefined) {
        waiting.splice(waiting.indexOf(w), 1)
        w.resolve(l)
      }
    }
  })
  child.stderr!.on('data', (d) => (stderr += d))
  const done = new Promise<Awaited<Run['done']>>((resolve) =>
    child.on('exit', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith('result '))
      resolve({ code, signal, result: line ? JSON.parse(line.slice(7)) : undefined, stderr })
    }),
  )
  return {
    child,
    done,
    line: (prefix) =>
      new Promise((resolve) => {
        const l = stdout.split('\n').find((x) => x.startsWith(prefix))
        if (l !== undefined) resolve(l)
        else waiting.push({ prefix, resolve })
      }),
  }
}
