// Probes which S3 semantics the test server really honours, with real
// requests through @aws-sdk/client-s3, and prints a table.
//
//   node scripts/s3-probe.mjs                                  (own server)
//   node scripts/s3-server.mjs -- node scripts/s3-probe.mjs    (uses the env)
//
// Each row: what AWS S3 does, what came back, and whether they agree. Exits 1
// if any row disagrees, so a versitygw upgrade that changes one shows up.
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, DeleteObjectsCommand,
  GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3'
import { createBucket, startS3Server } from './s3-server.mjs'

// SDK releases after early 2027 need Node 22; the pinned one only warns.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'

let server = null
let conf
if (process.env.AWS_ENDPOINT_URL && process.env.NFC_S3_BUCKET) {
  const e = process.env
  conf = { endpoint: e.AWS_ENDPOINT_URL, accessKeyId: e.AWS_ACCESS_KEY_ID, secretAccessKey: e.AWS_SECRET_ACCESS_KEY, region: e.AWS_REGION ?? 'us-east-1' }
} else {
  server = await startS3Server()
  conf = server
}
const Bucket = process.env.NFC_S3_BUCKET ?? 'nfc-probe'
if (server) await createBucket(server, Bucket)

const client = (accessKeyId = conf.accessKeyId, secretAccessKey = conf.secretAccessKey) => {
  // Path-style: versitygw serves virtual-host buckets only with --virtual-domain.
  const c = new S3Client({ endpoint: conf.endpoint, region: conf.region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } })
  // The SDK hides response headers; keep the last raw response to read Date.
  c.middlewareStack.add((next) => async (args) => {
    const out = await next(args)
    c.last = out.response
    return out
  }, { step: 'deserialize', name: 'keepRawResponse' })
  return c
}
const s3 = client()
const P = `probe-${Date.now()}/`

// Runs a request; returns 'ok' or the HTTP status and S3 error code.
async function status(cmd, c = s3) {
  try {
    const out = await c.send(cmd)
    return { res: `${out.$metadata.httpStatusCode}`, out }
  } catch (e) {
    return { res: `${e.$metadata?.httpStatusCode} ${e.name}`, err: e }
  }
}
const rows = []
// `known`: a deviation already known, reported but not counted as a failure.
const row = (probe, expected, got, ok, known) => rows.push({ probe, expected, got, ok: ok ?? got.startsWith(expected), known })
const text = async (out) => Buffer.from(await out.Body.transformToByteArray()).toString()
const put = (Key, Body, extra = {}) => status(new PutObjectCommand({ Bucket, Key, Body, ...extra }))

// --- conditional PUT
{
  const Key = P + 'cond'
  row('PUT If-None-Match:* (absent)', '200', (await put(Key, 'one', { IfNoneMatch: '*' })).res)
  row('PUT If-None-Match:* (exists)', '412', (await put(Key, 'two', { IfNoneMatch: '*' })).res)
  const etag = (await s3.send(new HeadObjectCommand({ Bucket, Key }))).ETag
  row('PUT If-Match (matching)', '200', (await put(Key, 'three', { IfMatch: etag })).res)
  row('PUT If-Match (stale etag)', '412', (await put(Key, 'four', { IfMatch: etag })).res)
  row('PUT If-Match (absent)', '404', (await put(P + 'nothing-here', 'x', { IfMatch: etag })).res)
  const body = await text(await s3.send(new GetObjectCommand({ Bucket, Key })))
  row('  ...content after those', 'three', body)
  // First writer wins: of racing create-only PUTs exactly one may succeed.
  const race = await Promise.all([...Array(16).keys()].map((i) => put(P + 'race', `w${i}`, { IfNoneMatch: '*' })))
  const won = race.filter((r) => r.res === '200').length
  row('16 racing PUT If-None-Match:*', '1 x 200, 15 x 412', `${won} x 200, ${race.filter((r) => r.res.startsWith('412')).length} x 412`)
  const kept = await text(await s3.send(new GetObjectCommand({ Bucket, Key: P + 'race' })))
  row('  ...stored body is the winner\'s', `w${race.findIndex((r) => r.res === '200')}`, kept)
}

// --- multipart: metadata, ETag format, conditional complete
const part = Buffer.alloc(5 << 20, 7) // every part but the last must be >= 5 MiB
async function multipart(Key, complete = {}) {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, Metadata: { origin: 'mpu' } }))
  const parts = []
  for (const [i, Body] of [part, Buffer.from('tail')].entries()) {
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body }))
    parts.push({ ETag, PartNumber: i + 1 })
  }
  return status(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts }, ...complete }))
}
{
  const Key = P + 'mpu'
  const first = await multipart(Key, { IfNoneMatch: '*' })
  row('Complete MPU If-None-Match:* (absent)', '200', first.res)
  row('Complete MPU If-None-Match:* (exists)', '412', (await multipart(Key, { IfNoneMatch: '*' })).res)
  const etag = first.out?.ETag ?? ''
  row('multipart ETag format', '"<32 hex>-<parts>"', etag, /^"[0-9a-f]{32}-2"$/.test(etag))
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key }))
  row('MPU metadata on HEAD', 'origin=mpu', `origin=${head.Metadata?.origin}`)
  row('  ...HEAD ETag = Complete ETag', etag, head.ETag)
  const get = await s3.send(new GetObjectCommand({ Bucket, Key }))
  get.Body.destroy()
  row('MPU metadata on GET', 'origin=mpu', `origin=${get.Metadata?.origin}`)
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: P + 'small' }))
  const parts = []
  for (const PartNumber of [1, 2]) parts.push({ PartNumber, ETag: (await s3.send(new UploadPartCommand({ Bucket, Key: P + 'small', UploadId, PartNumber, Body: 'tiny' }))).ETag })
  row('Complete MPU with a part < 5 MiB', '400 EntityTooSmall', (await status(new CompleteMultipartUploadCommand({ Bucket, Key: P + 'small', UploadId, MultipartUpload: { Parts: parts } }))).res)
  await status(new AbortMultipartUploadCommand({ Bucket, Key: P + 'small', UploadId }))
}

// --- user metadata on PUT
{
  const Key = P + 'meta'
  await put(Key, 'm', { Metadata: { 'nfc-shape': '2x3', 'nfc-dtype': '<f8' } })
  const fmt = (m) => `nfc-shape=${m?.['nfc-shape']} nfc-dtype=${m?.['nfc-dtype']}`
  row('PUT metadata on HEAD', 'nfc-shape=2x3 nfc-dtype=<f8', fmt((await s3.send(new HeadObjectCommand({ Bucket, Key }))).Metadata))
  const get = await s3.send(new GetObjectCommand({ Bucket, Key }))
  await text(get)
  row('PUT metadata on GET', 'nfc-shape=2x3 nfc-dtype=<f8', fmt(get.Metadata))
}

// --- GET: Range, If-Match, missing
{
  const Key = P + 'range'
  const { out } = await put(Key, '0123456789')
  const r = await status(new GetObjectCommand({ Bucket, Key, Range: 'bytes=2-5' }))
  row('GET Range bytes=2-5', '206 2345', `${r.res} ${await text(r.out)} (${r.out.ContentRange})`)
  const tail = await status(new GetObjectCommand({ Bucket, Key, Range: 'bytes=-3' }))
  row('GET Range bytes=-3 (suffix)', '206 789', `${tail.res} ${await text(tail.out)}`)
  row('GET Range past the end', '416', (await status(new GetObjectCommand({ Bucket, Key, Range: 'bytes=100-200' }))).res)
  const m = await status(new GetObjectCommand({ Bucket, Key, IfMatch: out.ETag }))
  row('GET If-Match (matching)', '200', m.res)
  m.out?.Body.destroy()
  row('GET If-Match (not matching)', '412', (await status(new GetObjectCommand({ Bucket, Key, IfMatch: '"0123"' }))).res)
  const rm = await status(new GetObjectCommand({ Bucket, Key, Range: 'bytes=0-1', IfMatch: out.ETag }))
  row('GET Range + If-Match (matching)', '206', rm.res)
  rm.out?.Body.destroy()
  row('GET If-None-Match (matching)', '304', (await status(new GetObjectCommand({ Bucket, Key, IfNoneMatch: out.ETag }))).res)
  row('GET missing key', '404 NoSuchKey', (await status(new GetObjectCommand({ Bucket, Key: P + 'missing' }))).res)
  row('HEAD missing key', '404', (await status(new HeadObjectCommand({ Bucket, Key: P + 'missing' }))).res)
}

// --- ListObjectsV2
{
  const L = P + 'list/'
  for (const k of ['a/1', 'a/2', 'a/3', 'a/sub/4', 'b/5']) await put(L + k, k)
  const one = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: L + 'a/', Delimiter: '/' }))
  row('List prefix+delimiter: keys', 'a/1 a/2 a/3', (one.Contents ?? []).map((o) => o.Key.slice(L.length)).join(' '))
  row('List prefix+delimiter: CommonPrefixes', 'a/sub/', (one.CommonPrefixes ?? []).map((o) => o.Prefix.slice(L.length)).join(' '))
  const o = one.Contents?.[0]
  row('List: LastModified, Size, ETag', 'Date 3 "..."', `${o?.LastModified?.constructor.name} ${o?.Size} ${o?.ETag}`,
    o?.LastModified instanceof Date && o.Size === 3 && /^".+"$/.test(o.ETag ?? ''))
  const keys = []
  let ContinuationToken
  let pages = 0
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: L, MaxKeys: 2, ContinuationToken }))
    keys.push(...(page.Contents ?? []).map((c) => c.Key.slice(L.length)))
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
    pages++
  } while (ContinuationToken)
  row('List MaxKeys=2 continuation', '3 pages, 5 keys in order', `${pages} pages, ${keys.length} keys ${keys.join(' ')}`,
    pages === 3 && keys.join() === 'a/1,a/2,a/3,a/sub/4,b/5')
  row('List StartAfter', 'a/3 a/sub/4 b/5', ((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: L, StartAfter: L + 'a/2' }))).Contents ?? []).map((c) => c.Key.slice(L.length)).join(' '))

  // --- DeleteObjects
  const del = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [...['a/1', 'a/2', 'nope'].map((k) => ({ Key: L + k }))] } }))
  row('DeleteObjects (2 real + 1 absent)', '3 deleted, 0 errors', `${del.Deleted?.length ?? 0} deleted, ${del.Errors?.length ?? 0} errors`)
  const left = (await s3.send(new ListObjectsV2Command({ Bucket, Prefix: L }))).KeyCount
  row('  ...keys left', '3', `${left}`)
  row('DeleteObject (absent)', '204', (await status(new DeleteObjectCommand({ Bucket, Key: L + 'never' }))).res)
  const { out } = await put(L + 'c', 'c')
  row('DeleteObject If-Match (stale)', '412', (await status(new DeleteObjectCommand({ Bucket, Key: L + 'c', IfMatch: '"0123"' }))).res)
  row('DeleteObject If-Match (matching)', '204', (await status(new DeleteObjectCommand({ Bucket, Key: L + 'c', IfMatch: out.ETag }))).res)
  // The posix backend maps keys to paths: a key cannot also be a "folder".
  row('PUT k when k/x exists', '200', (await put(L + 'b', 'x')).res, undefined, 'posix backend')
  row('PUT k/x when k exists', '200', (await put(L + 'b/5/x', 'x')).res, undefined, 'posix backend')
}

// --- Date header on success and on error
{
  await s3.send(new HeadObjectCommand({ Bucket, Key: P + 'cond' }))
  const ok = s3.last?.headers?.date
  const bad = await status(new GetObjectCommand({ Bucket, Key: P + 'missing' }))
  const errDate = bad.err?.$response?.headers?.date
  row('Date header (200 HEAD)', 'present', ok ? `present: ${ok}` : 'absent')
  row('Date header (404 GET)', 'present', errDate ? `present: ${errDate}` : 'absent')
}

// --- wrong credentials
row('PUT wrong secret', '403 SignatureDoesNotMatch', (await status(new PutObjectCommand({ Bucket, Key: P + 'x', Body: 'x' }), client(conf.accessKeyId, 'wrong'))).res)
row('PUT unknown access key', '403 InvalidAccessKeyId', (await status(new PutObjectCommand({ Bucket, Key: P + 'x', Body: 'x' }), client('nosuchkey', 'wrong'))).res)

// --- tidy up and report
const all = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: P }))
if (all.Contents?.length) await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: all.Contents.map((c) => ({ Key: c.Key })) } }))
s3.destroy()
if (server) await server.stop()

const cell = (s) => String(s).replaceAll('|', '\\|')
console.log('| probe | AWS S3 | got | same |\n| --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${cell(r.probe)} | ${cell(r.expected)} | ${cell(r.got)} | ${r.ok ? 'yes' : r.known ? `no (known: ${r.known})` : '**NO**'} |`)
const known = rows.filter((r) => !r.ok && r.known).length
const differ = rows.filter((r) => !r.ok && !r.known).length
console.log(`\n${known} known deviations\n${rows.length - known - differ} passed, ${differ} failed`)
process.exit(differ ? 1 : 0)
