// A 1 GiB entry through the object store and back, run with the other
// memory-heavy tests (alone): stored by one machine, hit by another with
// a local tier and by one without, every byte compared.
import test from 'ava'
import { join } from 'node:path'
import { NumpyFuncCache } from '../dist'
import { tempDir } from './helpers'
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
