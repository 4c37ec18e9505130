// A 1 GiB entry through the object store and back, run with the other
// memory-heavy tests (alone): stored by one machine, hit by another with
// a local tier and by one without, every byte compared.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { root, tempDir } from './helpers'
import { startFaultProxy } from './support/faults'
import { BUCKET, type S3Server, location, remoteOf, startServer } from './support/s3'

let server: S3Server
test.before(async () => {
  server = await startServer()
})
test.after.always(async () => {
  await server?.stop()
})

test.serial('a 1 GiB entry makes the round trip whole', async (t) => {
  const dir = tempDir(t)
  const loc = location('gib')
  const n = 1 << 27 // 1 GiB of float64
  let calls = 0
  const big = async (seed: number) => {
    calls++
    const a = new Float64Array(n)
    for (let i = 0; i < n; i++) a[i] = seed + i
    return a
  }
  const stored = (await new NumpyFuncCache(loc, { remote: remoteOf(server) }).createCachedFunc(big)(0.5)) as Float64Array
  t.is(stored.length, n)
  const check = (a: Float64Array) => {
    t.is(a.length, n)
    let wrong = 0
    for (let i = 0; i < n; i++) if (a[i] !== 0.5 + i) wrong++
    t.is(wrong, 0)
  }
  // Another machine, no local tier: straight into memory.
  check((await new NumpyFuncCache(loc, { remote: remoteOf(server) }).createCachedFunc(big)(0.5)) as Float64Array)
  // Another, with a local tier: kept there, then a local hit.
  const local = join(dir, 'local')
  check((await new NumpyFuncCache(loc, { remote: remoteOf(server), localDir: local }).createCachedFunc(big)(0.5)) as Float64Array)
  const again = new NumpyFuncCache(loc, { remote: { ...remoteOf(server), endpoint: 'http://127.0.0.1:9' }, localDir: local })
  check((await again.createCachedFunc(big)(0.5)) as Float64Array)
  t.is(calls, 1)
})

test.serial('one row of a 4 GiB entry on a store costs the blocks it touches, and a byte flipped in them is refused', async (t) => {
  t.timeout(900_000)
  const BLOCK = 1 << 20
  // Rows of 800,000 bytes, which straddle block boundaries: 5,369 of them, 4.3 GB.
  const [ROWS, COLS] = [5369, 100_000]
  const grid = (seed: number) => {
    const data = new Float64Array(ROWS * COLS)
    for (let i = 0; i < data.length; i++) data[i] = seed + i
    return { data, shape: [ROWS, COLS] }
  }
  const loc = location('partial')
  const key = (await new NumpyFuncCache(loc, { remote: remoteOf(server) }).createCachedFunc(grid, { name: 'grid' }).openAsync(0.5)).key
  const proxy = await startFaultProxy(server.endpoint)
  t.teardown(() => proxy.close())
  const cache = new NumpyFuncCache(loc, { remote: remoteOf(server, proxy.endpoint) })
  const sent = () => proxy.log.reduce((a, r) => a + r.bytes, 0)
  const handle = (await cache.openAsync(key))!
  t.deepEqual([handle.shape, handle.bytes], [[ROWS, COLS], ROWS * COLS * 8])
  const opening = sent()
  // The first bytes (headers) and 32 bytes of block digests per MiB.
  t.true(opening < 256 * 1024, `opening took ${opening} bytes: ${JSON.stringify(proxy.log)}`)
  const ROW = 4000
  const rowBytes = COLS * 8
  const row = (await handle.readRowsAsync(ROW)) as { data: Float64Array; shape: number[] }
  t.deepEqual(row.shape, [1, COLS])
  t.true(row.data.every((x, i) => x === 0.5 + ROW * COLS + i))
  const reading = sent() - opening
  t.true(reading >= rowBytes && reading <= rowBytes + 2 * BLOCK, `one row of ${rowBytes} bytes took ${reading}`)
  t.is(proxy.log.filter((r) => r.method === 'GET').length, 3, 'one GET to open, one for the block digests, one for the row')
  t.log(`open: ${opening} bytes; one row of ${rowBytes} bytes: ${reading} bytes`)

  // A byte of that row flipped on the server's disk (its ETag kept): refused, and the first row still reads.
  const file = join(server.dataDir, BUCKET, loc.slice(`s3://${BUCKET}/`.length), key.slice(0, 2), `${key}.npy`)
  const fd = openSync(file, 'r+')
  try {
    const head = Buffer.alloc(12)
    readSync(fd, head, 0, 12, 0)
    const preamble = head[6] === 1 ? 10 + head.readUInt16LE(8) : 12 + head.readUInt32LE(8)
    const at = preamble + ROW * rowBytes + 12_345
    const byte = Buffer.alloc(1)
    readSync(fd, byte, 0, 1, at)
    byte[0] ^= 0x10
    writeSync(fd, byte, 0, 1, at)
  } finally {
    closeSync(fd)
  }
  await t.throwsAsync(handle.readRowsAsync(ROW), { code: ErrorCodes.DAMAGED_ENTRY, message: /digest/ })
  const first = (await handle.readRowsAsync(0)) as { data: Float64Array }
  t.true(first.data.every((x, i) => x === 0.5 + i))
})

test.serial('a sync loop of hits that never yields stays within the same memory on a store as in a directory', (t) => {
  t.timeout(300_000)
  const loc = location('sync-loop')
  const dir = tempDir(t)
  // 64 hits of a 64 MiB entry, 4 GiB in all, in a loop that never lets Node
  // finalize the arrays it drops: past 1 GiB awaiting that, loads read into
  // memory V8 collects by itself, whichever tier they come from.
  const growth = (where: string, options: object) =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [
          '-e',
          `
          const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
          const peak = () => Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
          const f = new NumpyFuncCache(process.argv[1], JSON.parse(process.argv[2])).createCachedFunc(() => new Float64Array(8 << 20).fill(3), { name: 'big', trackSource: false })
          f()
          const before = peak()
          let sum = 0
          for (let i = 0; i < 64; i++) sum += f()[i]
          process.stdout.write(JSON.stringify({ growth: peak() - before, sum }))
          `,
          where,
          JSON.stringify(options),
        ],
        { encoding: 'utf8', env: { ...process.env, ...server.env } },
      ),
    ) as { growth: number; sum: number }
  const store = growth(loc, { remote: remoteOf(server) })
  const local = growth(dir, {})
  const GiB = 1 << 30
  t.log(`peak growth over 64 sync hits of 64 MiB: store ${(store.growth / GiB).toFixed(2)} GiB, directory ${(local.growth / GiB).toFixed(2)} GiB`)
  t.is(store.sum, 64 * 3)
  t.is(local.sum, 64 * 3)
  t.true(store.growth < 2 * GiB, 'the loads awaiting finalization are bounded on a store too')
  t.true(local.growth < 2 * GiB)
})
