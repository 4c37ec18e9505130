// The object-store tier on az:// against Azurite (the Azure Storage
// emulator, from npm; its blob service only) on a free loopback port,
// started here. Workers with their own localDir stand in for machines, as
// in remote.spec.ts. The cache reaches Azurite the standard way:
// AZURE_STORAGE_USE_EMULATOR=true (account devstoreaccount1, its well-known
// key) and AZURITE_BLOB_STORAGE_URL for the port.
import test from 'ava'
import { type ChildProcess, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { tempDir } from './helpers'
import { type S3Server, startWorker, writeWorker } from './support/s3'

type Any = any

const ACCOUNT = 'devstoreaccount1'
/** Azurite's well-known account key (public, in Microsoft's docs). */
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const CONTAINER = 'nfc-test'

interface Azurite {
  /** http://127.0.0.1:<port>, the blob service (the account is the first path segment). */
  url: string
  /** What the cache needs to reach it: AZURE_STORAGE_USE_EMULATOR, AZURITE_BLOB_STORAGE_URL. */
  env: Record<string, string>
  stop(): Promise<void>
}

/** Azurite's blob service on a port the system picks, over a fresh directory. */
async function startAzurite(): Promise<Azurite> {
  const pkg = require.resolve('azurite/package.json')
  const main = join(dirname(pkg), JSON.parse(readFileSync(pkg, 'utf8')).bin['azurite-blob'])
  const dir = mkdtempSync(join(tmpdir(), 'nfc-azurite-'))
  const args = ['--blobHost', '127.0.0.1', '--blobPort', '0', '--location', dir]
  // --skipApiVersionCheck: object_store may send a newer x-ms-version than this Azurite knows.
  args.push('--silent', '--skipApiVersionCheck', '--disableTelemetry')
  const child: ChildProcess = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  let output = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start in 30 s:\n${output}`)), 30_000)
    const seen = (d: Buffer) => {
      output += d
      const m = /listens on (http:\/\/[\d.]+:\d+)/.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    }
    child.stdout!.on('data', seen)
    child.stderr!.on('data', (d) => (output += d))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`Azurite exited (${code}):\n${output}`))
    })
  })
  return {
    url,
    env: { AZURE_STORAGE_USE_EMULATOR: 'true', AZURITE_BLOB_STORAGE_URL: url },
    stop: async () => {
      process.off('exit', killOnExit)
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

let azurite: Azurite

/**
 * A request to the blob service signed with the account's key (SharedKey,
 * as the REST docs spell it; Azurite is path-style, so the account appears
 * twice in the signed resource). `path` is `<container>[/<blob>]`.
 */
async function blobRequest(
  method: string,
  path: string,
  { query = {}, headers = {}, body }: { query?: Record<string, string>; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<Response> {
  const url = new URL(`${azurite.url}/${ACCOUNT}/${path}`)
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  const all: Record<string, string> = { 'x-ms-date': new Date().toUTCString(), 'x-ms-version': '2021-08-06' }
  for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v
  const standard = ['content-encoding', 'content-language', 'content-length', 'content-md5', 'content-type', 'date']
  standard.push('if-modified-since', 'if-match', 'if-none-match', 'if-unmodified-since', 'range')
  const value = (h: string) => (h === 'content-length' ? (body?.length ? String(body.length) : '') : (all[h] ?? ''))
  const msHeaders = Object.keys(all)
    .filter((h) => h.startsWith('x-ms-'))
    .sort()
    .map((h) => `${h}:${all[h]}\n`)
    .join('')
  const params = [...url.searchParams.keys()].sort().map((k) => `\n${k.toLowerCase()}:${url.searchParams.get(k)}`)
  const toSign = [method, ...standard.map(value)].join('\n') + '\n' + msHeaders + `/${ACCOUNT}${url.pathname}` + params.join('')
  const signature = createHmac('sha256', Buffer.from(KEY, 'base64')).update(toSign, 'utf8').digest('base64')
  const res = await fetch(url, { method, headers: { ...all, authorization: `SharedKey ${ACCOUNT}:${signature}` }, body })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return res
}

test.before(async () => {
  const started = Date.now()
  azurite = await startAzurite()
  await blobRequest('PUT', CONTAINER, { query: { restype: 'container' } })
  // This process's caches read the environment when they are made; workers inherit it.
  Object.assign(process.env, azurite.env)
  console.log(`Azurite up with its container in ${Date.now() - started} ms at ${azurite.url}`)
})
test.after.always(async () => {
  await azurite?.stop()
})

let unique = 0
/** A fresh prefix in the test container. */
function location(name: string): string {
  return `az://${CONTAINER}/${name}-${process.pid}-${++unique}`
}

/** Names of the blobs under a location's prefix. */
async function blobsUnder(loc: string): Promise<string[]> {
  const prefix = loc.slice(`az://${CONTAINER}/`.length) + '/'
  const res = await blobRequest('GET', CONTAINER, { query: { restype: 'container', comp: 'list', prefix } })
  return [...(await res.text()).matchAll(/<Name>([^<]*)<\/Name>/g)].map((m) => m[1])
}

/** Workers take the environment (this process's, with Azurite's). */
const machines = () => ({ env: azurite.env }) as S3Server

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [])

test.serial('a second machine hits what the first stored, without computing', async (t) => {
  const dir = tempDir(t)
  const files = writeWorker(dir)
  const loc = location('second')
  const log = join(dir, 'computed.log')
  const cfg = { location: loc, k: 7, n: 5000, log }
  const a = await startWorker(files, machines(), { ...cfg, localDir: join(dir, 'machine-a') }).done
  t.deepEqual(a.result, { right: true, errors: [] }, a.stderr)
  const stored = await blobsUnder(loc)
  t.is(stored.length, 1)
  t.regex(stored[0], /\/([0-9a-f]{2})\/\1[0-9a-f]{62}\.npy$/, '<prefix>/<ab>/<key>.npy')
  const b = await startWorker(files, machines(), { ...cfg, localDir: join(dir, 'machine-b') }).done
  t.deepEqual(b.result, { right: true, errors: [] }, b.stderr)
  // A machine with no local tier hits too.
  const c = await startWorker(files, machines(), cfg).done
  t.deepEqual(c.result, { right: true, errors: [] }, c.stderr)
  t.is(lines(log).length, 1, 'computed once, on the first machine')
})

test.serial('computeOnce across 3 machines computes once', async (t) => {
  const dir = tempDir(t)
  const files = writeWorker(dir)
  const loc = location('once')
  const log = join(dir, 'computed.log')
  const runs = [0, 1, 2].map((i) =>
    startWorker(files, machines(), { location: loc, localDir: join(dir, `m${i}`), computeOnce: { staleAfter: 5000 }, k: 3, n: 20_000, log, ms: 1500 }),
  )
  for (const r of await Promise.all(runs.map((r) => r.done))) t.deepEqual(r.result, { right: true, errors: [] }, r.stderr)
  t.is(lines(log).length, 1)
  // The lease is deleted in the background once the result is published.
  let left = await blobsUnder(loc)
  for (let i = 0; i < 50 && left.some((b) => b.endsWith('.lease')); i++) {
    await new Promise((r) => setTimeout(r, 100))
    left = await blobsUnder(loc)
  }
  t.false(left.some((b) => b.endsWith('.lease')), left.join(', '))
})

test.serial('computeOnce: when the holder is SIGKILLed, one other machine takes the lease over (If-Match) and computes', async (t) => {
  const dir = tempDir(t)
  const files = writeWorker(dir)
  const loc = location('killed')
  const log = join(dir, 'computed.log')
  const cfg = { location: loc, computeOnce: { staleAfter: 1000 }, k: 5, n: 1000, log }
  const holder = startWorker(files, machines(), { ...cfg, localDir: join(dir, 'holder'), ms: 3_600_000 })
  while (lines(log).length === 0) await new Promise((r) => setTimeout(r, 20))
  const waiters = [1, 2].map((i) => startWorker(files, machines(), { ...cfg, localDir: join(dir, `w${i}`) }))
  await Promise.all(waiters.map((w) => w.line('ready')))
  holder.child.kill('SIGKILL')
  t.is((await holder.done).signal, 'SIGKILL')
  for (const r of await Promise.all(waiters.map((w) => w.done))) t.deepEqual(r.result, { right: true, errors: [] }, r.stderr)
  t.is(lines(log).length, 2, 'the killed holder, then exactly one taker')
})

test.serial('a damaged blob under an entry name is a damagedEntry, recomputed and replaced', async (t) => {
  const loc = location('damaged')
  let calls = 0
  const fn = (n: number) => {
    calls++
    return new Float64Array(n).fill(2)
  }
  new NumpyFuncCache(loc).createCachedFunc(fn, { name: 'fill' })(10)
  const [name] = await blobsUnder(loc)
  const original = await blobRequest('GET', `${CONTAINER}/${name}`)
  const record = original.headers.get('x-ms-meta-nfcrecord')
  t.truthy(record, 'the record travels as blob metadata')
  const bytes = Buffer.from(await original.arrayBuffer())

  // 1. Same record, other data: what a writer sharing the container could plant.
  const forged = Buffer.from(bytes)
  forged[forged.length - 1] ^= 0x40
  // 2. Bytes that are not an entry at all, with no record.
  const junk = Buffer.from('not an entry')
  const plants: [string, Buffer, Record<string, string>, RegExp][] = [
    ['forged', forged, { 'x-ms-meta-nfcrecord': record! }, /digest/],
    ['junk', junk, {}, /missing/],
  ]
  for (const [what, body, metadata, reason] of plants) {
    await blobRequest('PUT', `${CONTAINER}/${name}`, { headers: { 'x-ms-blob-type': 'BlockBlob', ...metadata }, body })
    calls = 0
    const second = new NumpyFuncCache(loc)
    const damaged: Any[] = []
    const errors: Any[] = []
    second.on('damagedEntry', (e) => damaged.push(e))
    second.on('storeError', (e) => errors.push(e))
    const got = second.createCachedFunc(fn, { name: 'fill' })(10)
    t.deepEqual(Array.from(got as Float64Array), new Array(10).fill(2), what)
    t.is(calls, 1, what)
    t.deepEqual(errors, [], what)
    t.is(damaged.length, 1, what)
    t.is(damaged[0].code, ErrorCodes.DAMAGED_ENTRY)
    t.regex(damaged[0].message, reason)
    t.true(damaged[0].message.includes(`az://${CONTAINER}/${name}`), damaged[0].message)
    // Replaced: the blob is whole again and a third machine hits it.
    const now = Buffer.from(await (await blobRequest('GET', `${CONTAINER}/${name}`)).arrayBuffer())
    t.true(now.subarray(now.length - 80).equals(bytes.subarray(bytes.length - 80)), `${what}: replaced`)
    const third = new NumpyFuncCache(loc).createCachedFunc(fn, { name: 'fill' })(10)
    t.deepEqual(Array.from(third as Float64Array), new Array(10).fill(2))
    t.is(calls, 1, `${what}: a hit after the replacement`)
  }
})

test.serial('a large entry goes up in blocks and comes back whole through ranged reads', async (t) => {
  const loc = location('parts')
  const remote = { multipartFrom: 6 << 20, partSize: 5 << 20 }
  let calls = 0
  const fn = (n: number) => {
    calls++
    return Float64Array.from({ length: n }, (_, i) => i)
  }
  const n = 3 << 20 // 24 MiB: 5 blocks up; the first 8 MiB and 4 ranges of 5 MiB down
  const errors: Any[] = []
  const a = new NumpyFuncCache(loc, { remote })
  a.on('storeError', (e) => errors.push(e))
  t.is((a.createCachedFunc(fn, { name: 'range' })(n) as Float64Array).length, n)
  t.deepEqual(errors, [])
  const b = new NumpyFuncCache(loc, { remote })
  b.on('storeError', (e) => errors.push(e))
  b.on('damagedEntry', (e) => errors.push(e))
  const got = b.createCachedFunc(fn, { name: 'range' })(n) as Float64Array
  t.deepEqual(errors, [])
  t.is(calls, 1)
  let wrong = 0
  for (let i = 0; i < n; i++) if (got[i] !== i) wrong++
  t.is(wrong, 0)
})

test.serial('stats, entries, prune and clearCache work on an az:// location, and leave foreign blobs', async (t) => {
  const loc = location('maintenance')
  const cache = new NumpyFuncCache(loc)
  const f = cache.createCachedFunc((n: number) => new Float64Array(n).fill(n), { name: 'fill' })
  for (const n of [10, 20, 30]) f(n)
  const foreign = loc.slice(`az://${CONTAINER}/`.length) + '/notes.txt'
  await blobRequest('PUT', `${CONTAINER}/${foreign}`, { headers: { 'x-ms-blob-type': 'BlockBlob' }, body: Buffer.from('not the cache') })
  const progress: number[] = []
  t.like(cache.stats({ onProgress: (done) => progress.push(done) }), { entries: 3, bytes: 3 * 128 + 8 * 60 })
  t.true(progress.length > 0)
  const entries = cache.entries()
  t.deepEqual(entries.map((e) => e.function), ['fill', 'fill', 'fill'])
  t.deepEqual(entries.map((e) => e.shape[0]).sort(), [10, 20, 30])
  t.true(entries.every((e) => e.dtype === '<f8'))
  t.like(cache.prune({ maxEntries: 1 }), { removedEntries: 2, entries: 1 })
  t.like(cache.stats(), { entries: 1 })
  cache.clearCache()
  t.like(cache.stats(), { entries: 0, bytes: 0 })
  t.deepEqual(await blobsUnder(loc), [foreign])
})

test.serial('remote.endpoint and allowHttp reach the account without the emulator switch', async (t) => {
  // The account's own URL, its name and key from the standard variables: how
  // a deployment that is not the emulator on its default port is configured.
  const saved = { ...process.env }
  t.teardown(() => {
    for (const k of ['AZURE_STORAGE_ACCOUNT_NAME', 'AZURE_STORAGE_ACCOUNT_KEY']) delete process.env[k]
    Object.assign(process.env, saved)
  })
  delete process.env.AZURE_STORAGE_USE_EMULATOR
  delete process.env.AZURITE_BLOB_STORAGE_URL
  Object.assign(process.env, { AZURE_STORAGE_ACCOUNT_NAME: ACCOUNT, AZURE_STORAGE_ACCOUNT_KEY: KEY })
  const loc = location('endpoint')
  const remote = { endpoint: `${azurite.url}/${ACCOUNT}`, allowHttp: true, maxRetries: 0 }
  let calls = 0
  const fn = (n: number) => {
    calls++
    return new Float64Array(n).fill(3)
  }
  const errors: Any[] = []
  const a = new NumpyFuncCache(loc, { remote })
  a.on('storeError', (e) => errors.push(e))
  a.createCachedFunc(fn, { name: 'three' })(4)
  const b = new NumpyFuncCache(loc, { remote })
  b.on('storeError', (e) => errors.push(e))
  t.deepEqual(Array.from(b.createCachedFunc(fn, { name: 'three' })(4) as Float64Array), [3, 3, 3, 3])
  t.deepEqual(errors, [])
  t.is(calls, 1)
  t.is((await blobsUnder(loc)).length, 1)
})
