// A 1 GiB entry through the object store and back, run with the other
// memory-heavy tests (alone): stored by one machine, hit by another with
// a local tier and by one without, every byte compared.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { NumpyFuncCache } from '../dist'
import { root, tempDir } from './helpers'
import { type S3Server, location, remoteOf, startServer } from './support/s3'

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
