// The grounds a cache can stand on, for the conformance suite: a
// directory, an S3 store (versitygw), an Azure one (Azurite), and an S3
// store with a local directory in front. Each makes caches over fresh
// ground, and plants on it what a co-user could: damaged entries, leases.
import { existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import type { ExecutionContext } from 'ava'
import { NumpyFuncCache, type NumpyFuncCacheOptions } from '../../dist'
import { tempDir } from '../helpers'
import { type Azurite, CONTAINER, blobsUnder } from './azure'
import type { FaultProxy } from './faults'
import { BUCKET, type S3Endpoint, type S3Server, remoteOf, s3Client } from './s3'

/** How a co-user damages an entry: garbage in place of the array, the array cut short, the record gone, a data byte changed. */
export type Damage = 'garbage' | 'truncated' | 'no-record' | 'flipped'

export interface Place {
  /** The directory, or the store's location. */
  location: string
  /** The options every cache here is made with. */
  options: NumpyFuncCacheOptions
  /** The environment a worker process needs to reach the place. */
  env: Record<string, string>
  /** A new cache object here (with `extra` options besides). */
  cache(extra?: NumpyFuncCacheOptions): NumpyFuncCache
  /** For a store: a new cache object reaching it through `proxy`. */
  through?(proxy: FaultProxy, extra?: NumpyFuncCacheOptions): NumpyFuncCache
  /** Damages every copy of the entry of `key`. */
  damage(key: string, how: Damage): Promise<void>
  /** Plants a lease of `key` holding `line` (in the store, for a store with a local tier). */
  plantLease(key: string, line: string): Promise<void>
}

export interface Ground {
  name: string
  /** An object store is involved: the fault scenarios run on it. */
  store: boolean
  place(t: ExecutionContext): Place
}

/** An entry's bytes damaged as `how` says; `metadata` kept unless the record is to go. */
function damaged(bytes: Buffer, how: Damage): Buffer {
  if (how === 'garbage') return Buffer.from('garbage')
  if (how === 'truncated') return bytes.subarray(0, bytes.length - 8)
  if (how === 'flipped') {
    const copy = Buffer.from(bytes)
    copy[copy.length - 1] ^= 0x40
    return copy
  }
  return bytes
}

function damageFiles(dir: string, key: string, how: Damage): void {
  // An entry of several arrays is an .npz.
  const npz = join(dir, `${key}.npz`)
  const file = existsSync(npz) ? npz : join(dir, `${key}.npy`)
  if (how === 'no-record') return rmSync(join(dir, `${key}.json`))
  if (how === 'truncated') return truncateSync(file, readFileSync(file).length - 8)
  writeFileSync(file, damaged(readFileSync(file), how))
}

let unique = 0
const prefix = (t: ExecutionContext) => `${t.title.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-${process.pid}-${++unique}`

const fanned = (key: string, ext: string) => `${key.slice(0, 2)}/${key}.${ext}`

function s3Place(t: ExecutionContext, server: S3Endpoint, localDir?: string): Place {
  const location = `s3://${BUCKET}/${prefix(t)}`
  const objectKey = (key: string, ext: string) => `${location.slice(`s3://${BUCKET}/`.length)}/${fanned(key, ext)}`
  const options: NumpyFuncCacheOptions = { remote: remoteOf(server), ...(localDir === undefined ? {} : { localDir }) }
  const s3 = s3Client(server)
  return {
    location,
    options,
    env: server.env,
    cache: (extra) => new NumpyFuncCache(location, { ...options, ...extra }),
    through: (proxy, extra) => new NumpyFuncCache(location, { ...options, ...extra, remote: { ...remoteOf(server, proxy.endpoint), ...extra?.remote } }),
    async damage(key, how) {
      if (localDir !== undefined) damageFiles(localDir, key, how)
      // An entry of several arrays is an .npz object.
      const get = (Key: string) => s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }))
      let Key = objectKey(key, 'npz')
      const got = await get(Key).catch(() => get((Key = objectKey(key, 'npy'))))
      const bytes = Buffer.from(await got.Body!.transformToByteArray())
      const Metadata = how === 'no-record' ? {} : got.Metadata
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: damaged(bytes, how), Metadata }))
    },
    async plantLease(key, line) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: objectKey(key, 'lease'), Body: line }))
    },
  }
}

export function grounds(servers: { s3: () => S3Server; moto: () => S3Endpoint; azurite: () => Azurite }): Ground[] {
  return [
    {
      name: 'directory',
      store: false,
      place(t) {
        const dir = join(tempDir(t), 'cache')
        return {
          location: dir,
          options: {},
          env: {},
          cache: (extra) => new NumpyFuncCache(dir, extra),
          damage: async (key, how) => damageFiles(dir, key, how),
          plantLease: async (key, line) => writeFileSync(join(dir, `.${key}.lock`), line),
        }
      },
    },
    { name: 's3', store: true, place: (t) => s3Place(t, servers.s3()) },
    {
      name: 'azure',
      store: true,
      place(t) {
        const azurite = servers.azurite()
        const location = `az://${CONTAINER}/${prefix(t)}`
        const blob = (key: string, ext: string) => `${CONTAINER}/${location.slice(`az://${CONTAINER}/`.length)}/${fanned(key, ext)}`
        // Caches read the environment when they are made: Azurite's is set for them.
        const made = (env: Record<string, string>, options: NumpyFuncCacheOptions) => {
          const saved = { ...process.env }
          Object.assign(process.env, env)
          try {
            return new NumpyFuncCache(location, options)
          } finally {
            for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k]
            Object.assign(process.env, saved)
          }
        }
        return {
          location,
          options: {},
          env: azurite.env,
          cache: (extra) => made(azurite.env, { ...extra }),
          through: (proxy, extra) => made({ ...azurite.env, AZURITE_BLOB_STORAGE_URL: proxy.endpoint }, { ...extra }),
          async damage(key, how) {
            // An entry of several arrays is an .npz blob (a missing blob's HEAD throws).
            const ext = await azurite.request('HEAD', blob(key, 'npz')).then(() => 'npz', () => 'npy')
            const got = await azurite.request('GET', blob(key, ext))
            const record = got.headers.get('x-ms-meta-nfcrecord')
            const metadata: Record<string, string> = how === 'no-record' || record === null ? {} : { 'x-ms-meta-nfcrecord': record }
            const body = damaged(Buffer.from(await got.arrayBuffer()), how)
            await azurite.request('PUT', blob(key, ext), { headers: { 'x-ms-blob-type': 'BlockBlob', ...metadata }, body })
          },
          async plantLease(key, line) {
            await azurite.request('PUT', blob(key, 'lease'), { headers: { 'x-ms-blob-type': 'BlockBlob' }, body: Buffer.from(line) })
          },
        }
      },
    },
    { name: 's3 with a local tier', store: true, place: (t) => s3Place(t, servers.s3(), join(tempDir(t), 'local')) },
    // A second S3 implementation: the cache relies on S3's semantics, not on one server's.
    { name: 's3 on moto', store: true, place: (t) => s3Place(t, servers.moto()) },
  ]
}

/** The objects under an S3 location's prefix (the first 1,000), each by its name as stored. */
export async function objectsUnder(server: S3Endpoint, location: string): Promise<string[]> {
  const prefix = location.slice(`s3://${BUCKET}/`.length) + '/'
  // URL-encoded: a name in XML loses a carriage return (to a line feed) or a DEL.
  const listed = await s3Client(server).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, EncodingType: 'url' }))
  return (listed.Contents ?? []).map((o) => decodeURIComponent(o.Key!.replace(/\+/g, '%20')))
}

export { blobsUnder }
