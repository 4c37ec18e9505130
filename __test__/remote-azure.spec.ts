// The object-store tier on az:// against Azurite (support/azure.ts), for
// what is Azure's own: blob metadata, uploads in blocks, the account's
// endpoint. What every tier does is the conformance suite's
// (conformance.spec.ts), which runs it on Azurite too.
import test from 'ava'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { ACCOUNT, type Azurite, CONTAINER, KEY, blobsUnder as blobsOf, startAzurite } from './support/azure'

type Any = any

let azurite: Azurite

test.before(async () => {
  const started = Date.now()
  azurite = await startAzurite()
  // This process's caches read the environment when they are made.
  Object.assign(process.env, azurite.env)
  console.log(`Azurite up with its container in ${Date.now() - started} ms at ${azurite.url}`)
})
test.after.always(async () => {
  await azurite?.stop()
})

const blobRequest = (method: string, path: string, options?: Parameters<Azurite['request']>[2]) => azurite.request(method, path, options)
const blobsUnder = (loc: string) => blobsOf(azurite, loc)

let unique = 0
/** A fresh prefix in the test container. */
function location(name: string): string {
  return `az://${CONTAINER}/${name}-${process.pid}-${++unique}`
}

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
