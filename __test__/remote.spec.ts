// The object-store tier against a real S3 server (versitygw on loopback,
// started here), for what is S3's own: objects NumPy reads, uploads in
// parts, the server killed midway through a transfer (a proxy counts the
// bytes), wrong credentials, the shared profile, the pause after an
// outage. What every tier does is the conformance suite's
// (conformance.spec.ts), which runs it on S3 too.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readdirSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { root, runPython, tempDir } from './helpers'
import { objectsUnder } from './support/grounds'
import {
  BUCKET,
  type S3Server,
  location,
  remoteOf,
  s3Client,
  startProxy,
  startServer,
} from './support/s3'

type Any = any
let server: S3Server

test.before(async () => {
  server = await startServer()
})
test.after.always(async () => {
  await server?.stop()
})

const s3 = () => s3Client(server)

test.serial('objects are plain .npy files that boto3 + NumPy read, with the record as metadata', async (t) => {
  const loc = location('interop')
  const cache = new NumpyFuncCache(loc, { remote: remoteOf(server) })
  const f = cache.createCachedFunc(function grid(n: number) {
    const data = new Float32Array(n * 3).map((_, i) => i / 4)
    return { data, shape: [n, 3], dtype: 'float32' }
  })
  f(4)
  const [key] = await objectsUnder(server, loc)
  t.regex(key, /\/[0-9a-f]{2}\/[0-9a-f]{64}\.npy$/)
  const out = runPython(
    `import boto3, io, base64
s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name='us-east-1')
o = s3.get_object(Bucket=sys.argv[4], Key=sys.argv[5])
a = np.load(io.BytesIO(o['Body'].read()))
record = json.loads(base64.b64decode(o['Metadata']['nfcrecord']))
print(json.dumps({'shape': list(a.shape), 'dtype': str(a.dtype), 'values': a.ravel().tolist(), 'function': record['function']}))`,
    [server.endpoint, server.accessKeyId, server.secretAccessKey, BUCKET, key],
  )
  const got = JSON.parse(out)
  t.deepEqual(got.shape, [4, 3])
  t.is(got.dtype, 'float32')
  t.deepEqual(got.values, Array.from({ length: 12 }, (_, i) => i / 4))
  t.is(got.function, 'grid')
})

test.serial('after an outage the store is used again: failures while paused do not extend the pause', async (t) => {
  const loc = location('pause')
  const cache = new NumpyFuncCache(loc, { remote: { ...remoteOf(server), maxRetries: 0, retryTimeout: 200 } })
  const errors: Any[] = []
  cache.on('storeError', (e) => errors.push(e))
  const f = cache.createCachedFunc(async (k: number) => new Float64Array(4).fill(k), { name: 'fill' })
  await server.kill()
  await f(0)
  t.is(errors[0]?.code, ErrorCodes.REMOTE_UNAVAILABLE)
  await server.restart()
  // A call every 500 ms: the pause (10 s from the failure) ends all the same.
  const start = Date.now()
  let k = 1
  while ((await objectsUnder(server, loc)).length === 0) {
    t.true(Date.now() - start < 60_000, 'the store was used again')
    if (Date.now() - start > 60_000) return
    await f(k++)
    await new Promise((r) => setTimeout(r, 500))
  }
  t.pass()
})

test.serial('damaged objects, empty or too large for one PUT, are replaced, and listings survive them', async (t) => {
  const loc = location('damaged-big')
  const remote = { ...remoteOf(server), multipartFrom: 6 << 20, partSize: 5 << 20 }
  let calls = 0
  const fill = async (n: number) => {
    calls++
    return new Float64Array(n).fill(7)
  }
  const n = 1 << 20 // 8 MiB: uploaded in parts
  await new NumpyFuncCache(loc, { remote }).createCachedFunc(fill)(n)
  await new NumpyFuncCache(loc, { remote }).createCachedFunc(fill)(16)
  const keys = await objectsUnder(server, loc)
  for (const [i, key] of keys.entries()) {
    // One emptied, one with garbage in place of the array.
    await s3().send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(i === 0 ? '' : 'garbage') }))
  }
  t.is(new NumpyFuncCache(loc, { remote }).entries().length, 2, 'entries() lists them')
  for (const size of [n, 16]) {
    const damaged: Any[] = []
    const errors: Any[] = []
    const cache = new NumpyFuncCache(loc, { remote })
    cache.on('damagedEntry', (e) => damaged.push(e)).on('storeError', (e) => errors.push(e))
    const got = (await cache.createCachedFunc(fill)(size)) as Float64Array
    t.true(got.length === size && got.every((x) => x === 7))
    t.is(damaged.length, 1)
    t.deepEqual(errors, [])
  }
  calls = 0
  for (const size of [n, 16]) t.is(((await new NumpyFuncCache(loc, { remote }).createCachedFunc(fill)(size)) as Float64Array).length, size)
  t.is(calls, 0, 'both replaced: the next machine hits')
})

test.serial('wrong credentials give one clear error', async (t) => {
  const cache = new NumpyFuncCache(location('denied'), { remote: { ...remoteOf(server), secretAccessKey: 'not-the-secret' } })
  let calls = 0
  const f = cache.createCachedFunc((n: number) => {
    calls++
    return new Float64Array(n)
  }, { name: 'zeros' })
  const e = t.throws(() => f(2)) as Any
  t.is(e.code, ErrorCodes.REMOTE_DENIED)
  t.regex(e.message, /refused this request's credentials/)
  t.regex(e.message, /SignatureDoesNotMatch/)
  t.is(calls, 0)
})

test.serial('the server killed mid-upload leaves nothing visible; killed mid-download, the call computes the right array', async (t) => {
  const proxy = await startProxy(server.endpoint)
  t.teardown(() => proxy.close())
  const loc = location('killed-server')
  const remote = { ...remoteOf(server, proxy.endpoint), maxRetries: 1, retryTimeout: 1000, requestTimeout: 5000 }
  const n = 8 << 20 // 64 MiB
  let calls = 0
  // One function for every cache here: its source is part of the key.
  const fill = async (v: number) => {
    calls++
    return new Float64Array(n).fill(v)
  }
  const errors: Any[] = []
  const up = new NumpyFuncCache(loc, { remote })
  up.on('storeError', (e) => errors.push(e))
  proxy.cutAfter(20 << 20, 'up', () => void server.kill())
  const stored = (await up.createCachedFunc(fill)(1)) as Float64Array
  t.true(stored.length === n && stored[0] === 1 && stored[n - 1] === 1)
  t.true(errors.some((e) => e.code === ErrorCodes.STORE_FAILED), 'the store failed')
  await server.restart()
  t.deepEqual(await objectsUnder(server, loc), [], 'no object, whole or partial')

  // Stored whole, then read through a proxy that kills the server 20 MiB into the download.
  await new NumpyFuncCache(loc, { remote: remoteOf(server) }).createCachedFunc(fill)(2)
  errors.length = 0
  calls = 0
  const down = new NumpyFuncCache(loc, { remote })
  down.on('storeError', (e) => errors.push(e))
  proxy.cutAfter(20 << 20, 'down', () => void server.kill())
  const got = (await down.createCachedFunc(fill)(2)) as Float64Array
  t.is(calls, 1, 'computed, not loaded')
  t.true(got.length === n && got.every((x) => x === 2))
  t.is(errors[0]?.code, ErrorCodes.REMOTE_UNAVAILABLE)
  await server.restart()
})

test.serial('a store never reads the result after the call returns, even when the server answers before the body is sent', async (t) => {
  // A fake endpoint: a GET is a 404; a PUT is answered 412 as soon as its
  // headers arrive, and its body is then read slowly, looking for bytes the
  // caller wrote into the result after the call returned.
  let marked = 0
  const sockets = new Set<net.Socket>()
  const fake = net.createServer((sock) => {
    sockets.add(sock)
    let head = Buffer.alloc(0)
    let inBody = false
    sock.on('data', (d) => {
      if (inBody) {
        for (const b of d) if (b === 0xab) marked++
        return
      }
      head = Buffer.concat([head, d])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      const line = head.subarray(0, head.indexOf('\r\n')).toString()
      head = head.subarray(end + 4)
      if (line.startsWith('GET')) {
        const body = '<Error><Code>NoSuchKey</Code></Error>'
        sock.write(`HTTP/1.1 404 Not Found\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
      } else {
        inBody = true
        sock.write('HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n')
        sock.pause()
        setTimeout(() => sock.resume(), 300)
      }
    })
    sock.on('error', () => {})
  })
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r))
  // The client keeps idle connections: they must not keep this process alive.
  t.teardown(() => {
    for (const sock of sockets) sock.destroy()
    fake.close()
  })
  const endpoint = `http://127.0.0.1:${(fake.address() as net.AddressInfo).port}`
  const cache = new NumpyFuncCache('s3://bucket/lent', { remote: { ...remoteOf(server, endpoint), maxRetries: 0, requestTimeout: 5000 } })
  const errors: Any[] = []
  cache.on('storeError', (e) => errors.push(e))
  const result = (await cache.createCachedFunc(async (n: number) => new Uint8Array(n).fill(0x11), { name: 'fill' })(32 << 20)) as Uint8Array
  result.fill(0xab)
  await new Promise((r) => setTimeout(r, 1000))
  t.is(marked, 0, 'no byte written after the call returned was sent')
  t.deepEqual(errors, [], 'a 412 on a create-only store means another writer was first')
})

test.serial('a large entry goes up in parts and comes back whole; sync wrappers work too', async (t) => {
  const loc = location('parts')
  const remote = { ...remoteOf(server), multipartFrom: 6 << 20, partSize: 5 << 20 }
  let calls = 0
  const fn = (n: number) => {
    calls++
    return Float64Array.from({ length: n }, (_, i) => i)
  }
  const a = new NumpyFuncCache(loc, { remote }).createCachedFunc(fn, { name: 'range' })
  t.is(a(2 << 20).length, 2 << 20)
  const b = new NumpyFuncCache(loc, { remote }).createCachedFunc(fn, { name: 'range' })
  const got = b(2 << 20) as Float64Array
  t.is(calls, 1)
  t.true(got.length === 2 << 20 && got[12345] === 12345 && got[(2 << 20) - 1] === (2 << 20) - 1)
})

test.serial('uploads in parts are create-only too: of two machines uploading one key, the first to complete wins', async (t) => {
  const proxy = await startProxy(server.endpoint)
  t.teardown(() => proxy.close())
  const loc = location('parts-race')
  const parts = { multipartFrom: 6 << 20, partSize: 5 << 20 }
  // A nondeterministic function: which machine computed it shows in the data.
  let variant = 0
  const fn = async (n: number) => new Float64Array(n).fill(variant)
  const n = 4 << 20 // 32 MiB, 7 parts
  const slow = new NumpyFuncCache(loc, { remote: { ...remoteOf(server, proxy.endpoint), ...parts } })
  const errors: Any[] = []
  slow.on('storeError', (e) => errors.push(e))
  // The slow machine's upload is held 12 MiB in, after it found no object there.
  const hold = proxy.pauseAfter(12 << 20)
  variant = 1
  const slowCall = slow.createCachedFunc(fn, { name: 'fill' })(n)
  await hold.paused
  variant = 2
  await new NumpyFuncCache(loc, { remote: { ...remoteOf(server), ...parts } }).createCachedFunc(fn, { name: 'fill' })(n)
  hold.resume()
  t.is(((await slowCall) as Float64Array)[0], 1, 'the slow machine still returns what it computed')
  t.deepEqual(errors, [], 'losing the race is not a failure')
  variant = 3 // a computation now would give 3s
  const stored = (await new NumpyFuncCache(loc, { remote: remoteOf(server) }).createCachedFunc(fn, { name: 'fill' })(n)) as Float64Array
  t.true(stored.length === n && stored.every((x) => x === 2), 'the first to complete stands')
})

test.serial('stats, entries, prune and clearCache work on an s3:// location, and leave foreign objects', async (t) => {
  const loc = location('maintenance')
  const remote = remoteOf(server)
  const cache = new NumpyFuncCache(loc, { remote })
  const f = cache.createCachedFunc((n: number) => new Float64Array(n).fill(n), { name: 'fill' })
  for (const n of [10, 20, 30]) f(n)
  const foreign = loc.slice(`s3://${BUCKET}/`.length) + '/notes.txt'
  await s3().send(new PutObjectCommand({ Bucket: BUCKET, Key: foreign, Body: 'not the cache' }))
  const progress: number[] = []
  const stats = cache.stats({ onProgress: (done) => progress.push(done) })
  t.like(stats, { entries: 3, bytes: 3 * 128 + 8 * 60 })
  t.true(progress.length > 0)
  const entries = cache.entries()
  t.deepEqual(entries.map((e) => e.function), ['fill', 'fill', 'fill'])
  t.deepEqual(entries.map((e) => e.shape[0]).sort(), [10, 20, 30])
  t.true(entries.every((e) => e.dtype === '<f8'))
  const report = cache.prune({ maxEntries: 1 })
  t.like(report, { removedEntries: 2, entries: 1 })
  cache.clearCache()
  t.like(cache.stats(), { entries: 0, bytes: 0 })
  t.deepEqual(await objectsUnder(server, loc), [foreign])
})

test.serial('the async maintenance calls on an s3:// location, and a signal that stops a listing in flight', async (t) => {
  const loc = location('maintenance-async')
  const proxy = await startProxy(server.endpoint)
  t.teardown(() => proxy.close())
  // Sync calls go straight to the server: the proxy runs on this event loop.
  const direct = new NumpyFuncCache(loc, { remote: remoteOf(server) })
  const cache = new NumpyFuncCache(loc, { remote: remoteOf(server, proxy.endpoint) })
  const f = direct.createCachedFunc((n: number) => new Float64Array(n).fill(n), { name: 'fill' })
  for (const n of [10, 20, 30]) f(n)
  const progress: number[] = []
  t.like(await cache.statsAsync({ onProgress: (done) => void progress.push(done) }), { entries: 3, bytes: 3 * 128 + 8 * 60 })
  t.true(progress.length > 0 && progress.at(-1)! >= 3, 'every page reported before the promise settled')
  t.deepEqual(await cache.entriesAsync(), direct.entries())

  // A clear whose listing is held at the proxy is aborted meanwhile: once
  // the listing goes on, the clear stops at its next step and deletes nothing.
  const hold = proxy.pauseAfter(0)
  const controller = new AbortController()
  const reason = new Error('stop the clear')
  const clearing = cache.clearCacheAsync({ signal: controller.signal })
  await hold.paused
  controller.abort(reason)
  hold.resume()
  t.is(await t.throwsAsync(clearing), reason)
  t.is((await objectsUnder(server, loc)).filter((k) => k.endsWith('.npy')).length, 3)

  t.like(await cache.pruneAsync({ maxEntries: 1 }), { removedEntries: 2, entries: 1 })
  await cache.clearCacheAsync()
  t.deepEqual(await objectsUnder(server, loc), [])
})

test.serial('the async maintenance calls with a local tier: prune without limits is the tier\'s, with limits both; clear both', async (t) => {
  const loc = location('maintenance-async-tier')
  const localDir = tempDir(t)
  const cache = new NumpyFuncCache(loc, { remote: remoteOf(server), localDir, maxEntries: 1 })
  const f = cache.createCachedFunc(async (n: number) => new Float64Array(n).fill(n), { name: 'fill' })
  for (const n of [10, 20, 30]) await f(n)
  const localEntries = () => readdirSync(localDir).filter((name) => name.endsWith('.npy')).length
  t.is(localEntries(), 1, 'the tier keeps its own limit')
  t.like(await cache.pruneAsync(), { entries: 1 })
  t.like(await cache.statsAsync(), { entries: 3 }, 'the store is pruned only to limits given')
  // A verify checks both: the tier's one entry and the store's three.
  t.like(await cache.verifyAsync(), { checked: 4, removed: 0 })
  t.like(await cache.pruneAsync({ maxEntries: 2 }), { removedEntries: 1, entries: 2 })
  await cache.clearCacheAsync()
  t.is(localEntries(), 0)
  t.deepEqual(await objectsUnder(server, loc), [])
})

test.serial('keys, region and endpoint come from a shared AWS profile when the environment has none', async (t) => {
  const dir = tempDir(t)
  const loc = location('profile')
  new NumpyFuncCache(loc, { remote: remoteOf(server) }).createCachedFunc((n: number) => new Float64Array(n), { name: 'zeros' })(3)
  writeFileSync(join(dir, 'credentials'), `[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n[team]\naws_access_key_id = ${server.accessKeyId}\naws_secret_access_key = ${server.secretAccessKey}\n`)
  writeFileSync(join(dir, 'config'), `[profile team]\nregion = ${server.region}\nendpoint_url = ${server.endpoint}\n`)
  const env: Record<string, string | undefined> = { ...process.env, AWS_ALLOW_HTTP: 'true', AWS_PROFILE: 'team' }
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT']) delete env[k]
  env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'credentials')
  env.AWS_CONFIG_FILE = join(dir, 'config')
  const out = execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'stats', loc, '--json'], { env, encoding: 'utf8' })
  t.like(JSON.parse(out), { entries: 1 })
})

test.serial("the CLI's ls, stats, prune and clear take an s3:// location", async (t) => {
  const loc = location('cli')
  const cache = new NumpyFuncCache(loc, { remote: remoteOf(server) })
  const f = cache.createCachedFunc((n: number) => new Float64Array(n), { name: 'zeros' })
  f(1)
  f(2)
  const cli = (...args: string[]) =>
    execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { env: { ...process.env, ...server.env }, encoding: 'utf8' })
  const listed = JSON.parse(cli('ls', loc, '--json'))
  t.deepEqual(listed.map((e: Any) => e.function), ['zeros', 'zeros'])
  t.like(JSON.parse(cli('stats', loc, '--json')), { entries: 2 })
  t.like(JSON.parse(cli('prune', loc, '--max-entries', '1', '--json')), { removedEntries: 1, entries: 1 })
  t.regex(cli('ls', loc), /zeros/)
  t.like(JSON.parse(cli('clear', loc, '--json')), { removedEntries: 1 })
  t.deepEqual(await objectsUnder(server, loc), [])
})
