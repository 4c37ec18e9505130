// What is not the cache's never stops it: objects of others under an
// object store's prefixes (names that are not even paths included) are
// skipped and counted by every listing; index rows that are not the
// cache's are skipped and repaired; and the command line prints no
// terminal control from anyone's text, errors included.
import test, { type ExecutionContext } from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import http from 'node:http'
import type net from 'node:net'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { NumpyFuncCache } from '../dist'
import { root, runPython, tempDir } from './helpers'
import { objectsUnder } from './support/grounds'
import { startMoto } from './support/moto'
import { BUCKET, type S3Endpoint, type S3Server, location, remoteOf, s3Client, startServer } from './support/s3'

const CLI = join(root, 'dist', 'cli.js')
let server: S3Server

test.before(async () => {
  server = await startServer()
})
test.after.always(async () => {
  await server?.stop()
})

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** `cli`, without holding up this process's event loop (where a test's server runs). */
function cliAsync(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })))
}

/** Names the cache writes: entries and leases in `<ab>/`, use marks in `uses/<ab>/`. */
const CACHE_NAME = /\/(([0-9a-f]{2})\/[0-9a-f]{64}\.(npy|lease)|uses\/[0-9a-f]{2}\/[0-9a-f]{64})$/

/**
 * Plants `names` (after the fan-out prefix `<ab>` of an entry, as `${fan}`)
 * under a location on `server`, and checks that every listing skips and
 * counts them, that `kept` are there as planted, and that a clear leaves them.
 */
async function foreignObjects(t: ExecutionContext, server: S3Endpoint, names: (fan: string) => string[], kept: string[]) {
  const loc = location('foreign')
  const prefix = loc.slice(`s3://${BUCKET}/`.length)
  const cache = new NumpyFuncCache(loc, { remote: remoteOf(server) })
  const f = cache.createCachedFunc((n: number) => new Float64Array(n).fill(n), { name: 'fill' })
  const store = async () => {
    for (const n of [10, 20, 30]) await f(n)
  }
  await store()
  const fan = cache.entries()[0].key.slice(0, 2)
  for (const key of names(fan)) {
    await s3Client(server).send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${key}`, Body: 'not the cache' }))
  }
  const foreign = (await objectsUnder(server, loc)).sort().filter((k) => !CACHE_NAME.test(k))
  t.true(kept.every((c) => foreign.some((k) => k.includes(c))), 'the server kept the names as planted')

  t.like(cache.stats(), { entries: 3, foreign: foreign.length })
  t.like(await cache.statsAsync(), { entries: 3, foreign: foreign.length })
  t.deepEqual(cache.entries().map((e) => e.function), ['fill', 'fill', 'fill'])
  t.like(cache.prune({ maxEntries: 2 }), { removedEntries: 1, entries: 2, foreign: foreign.length })
  t.is(cache.clearFunction('fill'), 2)

  const env = server.env
  await store()
  const ls = cli(['ls', loc, '--json'], env)
  t.is(ls.status, 0, ls.stderr)
  t.is(JSON.parse(ls.stdout).length, 3)
  const pruned = cli(['prune', loc, '--max-entries', '2', '--json'], env)
  t.is(pruned.status, 0, pruned.stderr)
  t.like(JSON.parse(pruned.stdout), { removedEntries: 1, foreign: foreign.length })
  const rm = cli(['rm', loc, '--function', 'fill', '--json'], env)
  t.is(rm.status, 0, rm.stderr)
  t.is(JSON.parse(rm.stdout).removedEntries, 2)
  const stats = cli(['stats', loc], env)
  t.is(stats.status, 0, stats.stderr)
  t.regex(stats.stdout, new RegExp(`foreign +${foreign.length} objects not the cache's, skipped`))

  await store()
  cache.clearCache()
  t.deepEqual((await objectsUnder(server, loc)).sort(), foreign, 'the clear left exactly what is not the cache\'s')
}

test.serial('objects of others under the cache\'s prefixes, names that are not paths included, are skipped and counted by every listing', (t) =>
  // Control characters that XML carries (tab, LF, CR: object_store refuses
  // them in paths), and `..`, `//` and `.` segments (versitygw, a filesystem
  // underneath, normalizes those). Not \x01 or ESC: versitygw lists them as
  // U+FFFD, and then its own continuation tokens skip the rest of the prefix
  // (the Rust tests cover them).
  foreignObjects(
    t,
    server,
    (fan) => [`${fan}/tab\tname`, `uses/${fan}/line\nfeed`, `${fan}/cr\rname`, `${fan}/a\tb/c`, `${fan}/x/../other`, '01//double', '02/./dot', `${fan}/notes.txt`],
    ['\t', '\n', '\r'],
  ))

test.serial('on another S3 server, whose XML listing shows a carriage return in a name as a line feed, listings get past that name too', async (t) => {
  // moto keeps `cr\rname` but lists it as `cr\nname`, so a listing that
  // starts after the name it was shown finds the object again. It takes
  // \x01 and ESC as they are; it refuses LF in a name, and the SDK's `..`.
  const moto = await startMoto(BUCKET)
  try {
    await foreignObjects(
      t,
      moto,
      (fan) => [`${fan}/cr\rname`, `${fan}/tab\tname`, `uses/${fan}/cr\rline`, `${fan}/x\u0001y`, `${fan}/esc\u001bz`, '01//double', '02/./dot', `${fan}/notes.txt`],
      ['\r', '\t', '\u0001', '\u001b'],
    )
  } finally {
    await moto.stop()
  }
})

/** Adds rows to the index of `dir` as another program could (python's sqlite3). */
function tamper(dir: string, statements: string[]): void {
  runPython(
    `import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for s in sys.argv[2:]:
    c.execute(s)
c.commit()`,
    [join(dir, '.numpy-func-cache-index.sqlite'), ...statements],
  )
}

function indexKeys(dir: string): string[] {
  const out = runPython(
    `import sqlite3, sys, json
print(json.dumps(sorted(str(k) for (k,) in sqlite3.connect(sys.argv[1]).execute("SELECT key FROM entries"))))`,
    [join(dir, '.numpy-func-cache-index.sqlite')],
  )
  return JSON.parse(out)
}

function filled(t: ExecutionContext) {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc((n: number) => new Float64Array(n).fill(n), { name: 'fill' })
  for (const n of [1, 2, 3]) f(n)
  const keys = cache.entries().map((e) => e.key).sort()
  cache.close()
  return { dir, f, keys }
}

const BAD_ROWS = [
  // A key that is not a key, of the cache's function, used last of all.
  "INSERT INTO entries VALUES ('not-a-key', 'fill', '<f8', x'', 8, 0, 9000000000000000)",
  "INSERT INTO entries VALUES ('../../outside', 'fill', '<f8', x'', 8, 0, 9000000000000000)",
]

test('index rows that are not the cache\'s are skipped by entries(), clearFunction and rm --function, and a prune repairs them', (t) => {
  const { dir, keys } = filled(t)
  tamper(dir, BAD_ROWS)
  const cache = new NumpyFuncCache(dir)
  t.deepEqual(cache.entries().map((e) => e.key).sort(), keys)
  t.is(cache.clearFunction('fill'), 3)
  t.deepEqual(cache.entries(), [])
  cache.close()

  const again = filled(t)
  tamper(again.dir, BAD_ROWS)
  const rm = cli(['rm', again.dir, '--function', 'fill', '--json'])
  t.is(rm.status, 0, rm.stderr)
  t.deepEqual(JSON.parse(rm.stdout).keys.sort(), again.keys)

  // A row of a real entry whose function is not text: skipped, then described anew by a prune.
  const third = filled(t)
  tamper(third.dir, [...BAD_ROWS, `UPDATE entries SET function = x'00' WHERE key = '${third.keys[0]}'`])
  const c3 = new NumpyFuncCache(third.dir)
  t.deepEqual(c3.entries().map((e) => e.key).sort(), third.keys.slice(1))
  t.like(c3.prune({ maxEntries: 10 }), { removedEntries: 0, entries: 3 })
  t.deepEqual(indexKeys(third.dir), third.keys)
  t.deepEqual(c3.entries().map((e) => e.function), ['fill', 'fill', 'fill'])
  c3.close()
})

// eslint-disable-next-line no-control-regex -- the point is that none are printed
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/

/** An S3 endpoint that answers every request 400 with terminal control in its error body. */
async function hostileStore(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>Bad\x1b[31mRequest</Code><Message>\x1b]0;owned\x07 \x9b2J</Message></Error>'
  const sockets = new Set<net.Socket>()
  const srv = http.createServer((req, res) => {
    req.resume()
    res.writeHead(400, { 'content-type': 'application/xml' }).end(body)
  })
  srv.on('connection', (s) => sockets.add(s))
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const { port } = srv.address() as net.AddressInfo
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        srv.close(() => r())
      }),
  }
}

test.serial('the command line prints no terminal control in any line, errors and usage errors included', async (t) => {
  const hostile = await hostileStore()
  t.teardown(() => hostile.close())
  const env = { ...server.env, AWS_ENDPOINT_URL: hostile.endpoint }
  const missing = join(tempDir(t), 'gone\x1b[31m\x07')
  const runs = {
    ls: cli(['ls', missing]),
    stats: cli(['stats', missing]),
    prune: cli(['prune', missing, '--max-entries', '1']),
    rm: cli(['rm', missing, '--function', 'f\x1b[2J']),
    clear: cli(['clear', missing]),
    verify: cli(['verify', missing]),
    'ls of a store': await cliAsync(['ls', `s3://${BUCKET}/p`], env),
    'stats of a store': await cliAsync(['stats', `s3://${BUCKET}/p`], env),
    'prune of a store': await cliAsync(['prune', `s3://${BUCKET}/p`, '--max-entries', '1'], env),
    'rm of a store': await cliAsync(['rm', `s3://${BUCKET}/p`, '--function', 'f'], env),
    'a bad size': cli(['prune', missing, '--max-bytes', '\x1b[31m']),
    'an unknown command': cli(['\x1b]0;x\x07']),
  }
  for (const [name, r] of Object.entries(runs)) {
    t.not(r.status, 0, name)
    t.true(r.stderr.length > 0, name)
    t.false(CONTROL.test(r.stdout + r.stderr), `${name}: ${JSON.stringify(r.stdout + r.stderr)}`)
  }
  t.regex(runs.ls.stderr, /no such cache directory: .*gone\\u001b\[31m\\u0007/)
  t.regex(runs['ls of a store'].stderr, /\\u001b/, 'the store\'s message is shown, escaped')
})
