// Azurite (the Azure Storage emulator, from npm; its blob service only) on
// a free loopback port, for the tests of az:// locations. The cache reaches
// it the standard way: AZURE_STORAGE_USE_EMULATOR=true (account
// devstoreaccount1, its well-known key) and AZURITE_BLOB_STORAGE_URL.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

export const ACCOUNT = 'devstoreaccount1'
/** Azurite's well-known account key (public, in Microsoft's docs). */
export const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export const CONTAINER = 'nfc-test'

export interface Azurite {
  /** http://127.0.0.1:<port>, the blob service (the account is the first path segment). */
  url: string
  /** What the cache needs to reach it: AZURE_STORAGE_USE_EMULATOR, AZURITE_BLOB_STORAGE_URL. */
  env: Record<string, string>
  /** A request to the blob service, signed with the account's key. */
  request(method: string, path: string, options?: BlobRequestOptions): Promise<Response>
  stop(): Promise<void>
}

export interface BlobRequestOptions {
  query?: Record<string, string>
  headers?: Record<string, string>
  body?: Buffer
}

/** Azurite's blob service on a port the system picks, over a fresh directory, with `CONTAINER` made. */
export async function startAzurite(): Promise<Azurite> {
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
  const azurite: Azurite = {
    url,
    env: { AZURE_STORAGE_USE_EMULATOR: 'true', AZURITE_BLOB_STORAGE_URL: url },
    request: (method, path, options) => blobRequest(url, method, path, options),
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
  await azurite.request('PUT', CONTAINER, { query: { restype: 'container' } })
  return azurite
}

/**
 * A request to the blob service signed with the account's key (SharedKey,
 * as the REST docs spell it; Azurite is path-style, so the account appears
 * twice in the signed resource). `path` is `<container>[/<blob>]`.
 */
async function blobRequest(base: string, method: string, path: string, { query = {}, headers = {}, body }: BlobRequestOptions = {}): Promise<Response> {
  const url = new URL(`${base}/${ACCOUNT}/${path}`)
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

/** Names of the blobs under a location's prefix (`az://<container>/<prefix>`). */
export async function blobsUnder(azurite: Azurite, location: string): Promise<string[]> {
  const prefix = location.slice(`az://${CONTAINER}/`.length) + '/'
  const res = await azurite.request('GET', CONTAINER, { query: { restype: 'container', comp: 'list', prefix } })
  return [...(await res.text()).matchAll(/<Name>([^<]*)<\/Name>/g)].map((m) => m[1])
}
