// A throwaway S3 server for tests: versitygw (Go) with its posix backend in
// a temporary directory, on a free loopback port.
//
//   import { startS3Server, createBucket } from './s3-server.mjs'
//   node scripts/s3-server.mjs -- <command...>   (bucket nfc-test, env set)
//
// The binary is built once with `go install` into <repo>/.tools/, which is
// git-ignored; the folder name carries the version so a bump reinstalls.
import { execFile, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { mkdtemp, rename, rm } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const VERSION = 'v1.8.0'
// The module's main package is in cmd/, not at the module root.
const PACKAGE = `github.com/versity/versitygw/cmd/versitygw@${VERSION}`
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TOOLS = path.join(ROOT, '.tools', `versitygw-${VERSION}`)
const EXE = process.platform === 'win32' ? 'versitygw.exe' : 'versitygw'
export const VERSITYGW = path.join(TOOLS, EXE)

const run = promisify(execFile)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Builds versitygw if missing: about 75 s cold on 2 cores (module download
// plus compile), 5 s with Go's build cache warm. It goes into a private GOBIN
// and is renamed into place, so workers starting at once never run a
// half-written file.
export async function ensureVersitygw() {
  if (existsSync(VERSITYGW)) return VERSITYGW
  const gobin = path.join(TOOLS, `tmp-${process.pid}-${Date.now()}`)
  mkdirSync(gobin, { recursive: true })
  try {
    await run('go', ['install', PACKAGE], {
      env: { ...process.env, GOBIN: gobin },
      maxBuffer: 64 << 20,
    })
    await rename(path.join(gobin, EXE), VERSITYGW)
  } catch (e) {
    throw new Error(`go install ${PACKAGE} failed (is Go >= 1.25 installed?): ${e.stderr || e.message}`)
  } finally {
    rmSync(gobin, { recursive: true, force: true })
  }
  return VERSITYGW
}

/** A port on 127.0.0.1 that nothing listens on now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

// Any HTTP answer at all (an unsigned GET / gets 403) means it is serving.
export function answers(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 500 }, (res) => {
      res.resume()
      resolve(true)
    })
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolve(false))
  })
}

// Servers still running when this process exits are killed, so a crashed
// test run leaves no orphan gateway holding a port or a temp directory.
const live = new Set()
process.once('exit', () => {
  for (const s of live) {
    try { s.child.kill('SIGKILL') } catch { /* already gone */ }
    rmSync(s.base, { recursive: true, force: true })
  }
})

/**
 * Starts versitygw on 127.0.0.1:<free port>, backed by a fresh temporary
 * directory created under `dir` (default: the OS temp dir). No bucket exists.
 */
export async function startS3Server({ dir = os.tmpdir() } = {}) {
  const bin = await ensureVersitygw()
  const base = await mkdtemp(path.join(dir, 'nfc-s3-'))
  const data = path.join(base, 'data') // the posix backend: one folder per bucket
  const meta = path.join(base, 'meta') // sidecar metadata, used only without user xattrs
  // An (empty) internal IAM store: without one versitygw runs single-account
  // and answers an unknown access key with 404 XAdminUserNotFound, where S3
  // says 403 InvalidAccessKeyId.
  const iam = path.join(base, 'iam')
  mkdirSync(data)
  mkdirSync(iam)
  const log = path.join(base, 'server.log')
  const port = await freePort()
  const accessKeyId = 'nfctestkey'
  const secretAccessKey = 'nfctestsecret'
  const endpoint = `http://127.0.0.1:${port}`
  // null until the first start finds out; then restarts reuse the choice.
  let sidecar = null
  const state = { child: null, base }

  const launch = async () => {
    // --keep-alive: versitygw closes every connection after one response unless told.
    // --quiet: no per-request line in the log.
    const args = ['--access', accessKeyId, '--secret', secretAccessKey, '--region', 'us-east-1',
      '--port', `127.0.0.1:${port}`, '--iam-dir', iam, '--keep-alive', '--quiet', 'posix']
    if (sidecar) args.push('--sidecar', meta)
    args.push(data)
    const fd = openSync(log, 'a')
    // Same process group, so a Ctrl-C in the terminal ends it too. Unref'd:
    // a test that forgets stop() still exits, and the exit hook kills it.
    const child = spawn(bin, args, { stdio: ['ignore', fd, fd] })
    child.unref()
    closeSync(fd)
    let gone = null
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      gone = { code, signal }
      if (state.child === child) live.delete(state)
      resolve(gone)
    }))
    state.child = child
    live.add(state)
    for (const deadline = Date.now() + 15_000; Date.now() < deadline;) {
      if (gone) {
        const text = readFileSync(log, 'utf8')
        // The posix backend refuses a filesystem without user xattrs at
        // start; a sidecar directory keeps the metadata in plain files.
        if (sidecar === null && /xattr/i.test(text)) {
          sidecar = true
          mkdirSync(meta, { recursive: true })
          return launch()
        }
        throw new Error(`versitygw exited (${gone.code ?? gone.signal}) at start:\n${text.slice(-2000)}`)
      }
      if (await answers(port)) {
        if (sidecar === null) sidecar = false
        return
      }
      await sleep(20)
    }
    child.kill('SIGKILL')
    throw new Error(`versitygw did not answer on ${endpoint} in 15 s`)
  }

  // Signal and wait; SIGKILL if it has not gone within 5 s. SIGTERM can
  // wait on clients' idle keep-alive connections, so stop() kills outright:
  // the data is thrown away anyway.
  const halt = async (signal) => {
    const child = state.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    // Referenced while we wait, or the loop could end before the exit arrives.
    child.ref()
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await child.exited
    clearTimeout(timer)
  }

  try {
    await launch()
  } catch (e) {
    await halt('SIGKILL')
    await rm(base, { recursive: true, force: true })
    throw e
  }

  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region: 'us-east-1',
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_ALLOW_HTTP: 'true',
    },
    get pid() { return state.child.pid },
    dataDir: data,
    /** Stops the server and removes its directories. */
    async stop() {
      await halt('SIGKILL')
      live.delete(state)
      await rm(base, { recursive: true, force: true })
    },
    /** SIGKILL, as a crash would; data stays for restart(). */
    async kill() {
      await halt('SIGKILL')
    },
    /** Starts it again on the same port over the same data. */
    async restart() {
      await halt('SIGKILL')
      await launch()
    },
  }
}

/** Creates a bucket owned by the server's root user, via versitygw's admin API. */
export async function createBucket(server, name) {
  const bin = await ensureVersitygw()
  try {
    await run(bin, ['admin', '--access', server.accessKeyId, '--secret', server.secretAccessKey,
      '--region', server.region, '--endpoint-url', server.endpoint,
      'create-bucket', '--bucket', name, '--owner', server.accessKeyId])
  } catch (e) {
    throw new Error(`create bucket ${name}: ${(e.stderr || e.message).trim()}`)
  }
}

// Command use: start, make bucket nfc-test, run the command, stop.
async function main(argv) {
  const sep = argv.indexOf('--')
  const cmd = sep === -1 ? argv : argv.slice(sep + 1)
  if (cmd.length === 0) {
    console.error('usage: node scripts/s3-server.mjs -- <command...>')
    return 2
  }
  const server = await startS3Server()
  let child = null
  let stopping = null
  const stop = () => (stopping ??= server.stop())
  // On SIGINT/SIGTERM: pass it on to the command; its exit then stops the server.
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (child) child.kill(sig)
      else stop().then(() => process.exit(128 + os.constants.signals[sig]))
    })
  }
  try {
    await createBucket(server, 'nfc-test')
    child = spawn(cmd[0], cmd.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, ...server.env, NFC_S3_BUCKET: 'nfc-test' },
      shell: process.platform === 'win32',
    })
    const { code, signal } = await new Promise((resolve) => {
      child.once('error', (e) => { console.error(`${cmd[0]}: ${e.message}`); resolve({ code: 127 }) })
      child.once('exit', (c, s) => resolve({ code: c, signal: s }))
    })
    return code ?? 128 + os.constants.signals[signal]
  } finally {
    await stop()
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (status) => process.exit(status),
    (e) => { console.error(e.message ?? e); process.exit(1) },
  )
}
