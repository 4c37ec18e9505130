// A process killed with SIGKILL at random moments while storing must leave
// only whole entries under real names: every key then loads right or misses.
import test from 'ava'
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache, readNpy } from '../dist'
import { root, tempDir } from './helpers'

const KEYS = 10
const SALTS = 4
const LENGTH = 1 << 18 // 2 MiB of float64 per entry: a store takes a few ms

// Runs in the child and in the test: the same function source gives the same keys.
const WORKER = `
const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
const cache = new NumpyFuncCache(process.argv[1])
const f = cache.createCachedFunc((k, n, salt) => {
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = k * 1e6 + i
  return a
}, { name: 'ramp', trackSource: false })
process.stdout.write('ready\\n')
for (let i = 0; ; i++) {
  // Mostly misses, so most moments fall inside a store.
  if (i % 30 === 29) cache.clearCache()
  f(Math.floor(Math.random() * ${KEYS}), ${LENGTH}, Math.floor(Math.random() * ${SALTS}))
}
`

function ramp(k: number, n: number): Float64Array {
  const a = new Float64Array(n)
  for (let i = 0; i < n; i++) a[i] = k * 1e6 + i
  return a
}

function killAtRandom(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', WORKER, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
    child.stdout.once('data', () => setTimeout(() => child.kill('SIGKILL'), 2 + Math.random() * 40))
    child.on('error', reject)
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`worker exited with ${code}`))))
  })
}

test('SIGKILL during stores never leaves a wrong or partial entry under a real name', async (t) => {
  t.timeout(180_000)
  const dir = tempDir(t)
  const kills = 40
  for (let i = 0; i < kills; i++) await killAtRandom(dir)

  // Every .npy under a real name is whole.
  const files = readdirSync(dir)
  for (const name of files.filter((f) => /^[0-9a-f]{64}\.npy$/.test(f))) {
    t.is(readNpy(join(dir, name)).data.length, LENGTH, name)
  }
  // Every other file is a temporary one.
  t.true(files.every((f) => /^[0-9a-f]{64}\.(npy|json)$/.test(f) || /^\.[0-9a-f]{64}\.(npy|json)\..+\.tmp$/.test(f)), files.join(' '))

  // Every key either hits with the right values or is a clean miss.
  const cache = new NumpyFuncCache(dir)
  let calls = 0
  const f = cache.createCachedFunc(
    (k: number, n: number, _salt: number) => {
      calls++
      return ramp(k, n)
    },
    { name: 'ramp', trackSource: false },
  )
  const entries = files.filter((f) => f.endsWith('.json')).length
  let hits = 0
  for (let k = 0; k < KEYS; k++) {
    for (let salt = 0; salt < SALTS; salt++) {
      const before = calls
      t.deepEqual(f(k, LENGTH, salt), ramp(k, LENGTH), `key ${k}, salt ${salt}`)
      if (calls === before) hits++
    }
  }
  t.log(`${kills} kills; afterwards ${entries} entries, ${hits} hits, ${files.length} files`)
  // Each entry the worker completed is a hit; nothing else is.
  t.is(hits, entries)
  t.true(entries > 0, 'the worker completed some stores')
})
