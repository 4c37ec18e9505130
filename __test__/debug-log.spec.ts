// NODE_DEBUG=numpy-func-cache: the cache's log on stderr (util.debuglog),
// read from a real child process as a user would see it.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { root, tempDir } from './helpers'

test('NODE_DEBUG=numpy-func-cache logs misses, leases, stores, hits, evictions and prunes to stderr; without it, nothing', (t) => {
  const dir = tempDir(t)
  const script = `
    const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
    const cache = new NumpyFuncCache(${JSON.stringify(dir)}, { maxEntries: 1, computeOnce: true })
    const f = cache.createCachedFunc(function squares(n) { return new Float64Array(n) })
    f(1); f(1); f(2); cache.prune()`
  const run = (env: Record<string, string>) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, NODE_DEBUG: '', ...env }, encoding: 'utf8' })
  const on = run({ NODE_DEBUG: 'numpy-func-cache' })
  t.is(on.status, 0, on.stderr)
  const lines = on.stderr.split('\n').filter((l) => l.startsWith('NUMPY-FUNC-CACHE '))
  const said = (re: RegExp) => t.true(lines.some((l) => re.test(l)), `no line matches ${re}:\n${lines.join('\n')}`)
  said(/: miss squares [0-9a-f]{12} in /)
  said(/: lease of [0-9a-f]{12} taken: computing it/)
  said(/: stored squares [0-9a-f]{12} in /)
  said(/: hit squares [0-9a-f]{12} in /)
  said(/: evicted 1 least recently used entries from .* to keep its limits/)
  said(/: prune of .* removed 0 entries/)
  t.is(run({}).stderr, '', 'silent without NODE_DEBUG')
})

/** Runs `script` in a child Node with the cache's debug log on; resolves to its log lines. */
function logged(script: string, env: Record<string, string> = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, ...env, NODE_DEBUG: 'numpy-func-cache' } })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve(stderr.split('\n').filter((l) => l.startsWith('NUMPY-FUNC-CACHE ')))
      else reject(new Error(`exited with ${code}: ${stderr}`))
    })
  })
}

test('the debug log reports the evictions a store made: none when two processes store one key without limits, else the true count', async (t) => {
  const dir = tempDir(t)
  const dist = JSON.stringify(join(root, 'dist'))
  // Each process computes the same key (one source, so one key), and
  // stores it only once both have computed it.
  const racer = `
    const fs = require('node:fs')
    const { NumpyFuncCache } = require(${dist})
    const cache = new NumpyFuncCache(${JSON.stringify(dir)})
    const f = cache.createCachedFunc(function same(n) {
      fs.writeFileSync(process.env.ME, '')
      while (!fs.existsSync(process.env.OTHER)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)
      return new Float64Array(n)
    })
    f(1000)`
  const [a, b] = [join(dir, 'a.ready'), join(dir, 'b.ready')]
  const both = await Promise.all([logged(racer, { ME: a, OTHER: b }), logged(racer, { ME: b, OTHER: a })])
  const all = both.flat()
  t.is(all.filter((l) => / miss same /.test(l)).length, 2, `both computed:\n${all.join('\n')}`)
  t.is(all.filter((l) => / stored same /.test(l)).length, 1, `one store published:\n${all.join('\n')}`)
  t.false(
    all.some((l) => /evicted/.test(l)),
    `no eviction line:\n${all.join('\n')}`,
  )
  // With three entries there (the racers' and two more), a process with maxEntries: 1 stores a fourth and removes three.
  await logged(`
    const { NumpyFuncCache } = require(${dist})
    const f = new NumpyFuncCache(${JSON.stringify(dir)}).createCachedFunc(function other(n) { return new Float64Array(n) })
    f(1); f(2)`)
  const limited = await logged(`
    const { NumpyFuncCache } = require(${dist})
    const f = new NumpyFuncCache(${JSON.stringify(dir)}, { maxEntries: 1 }).createCachedFunc(function more(n) { return new Float64Array(n) })
    f(3)`)
  const evicted = limited.filter((l) => /evicted/.test(l))
  t.is(evicted.length, 1, limited.join('\n'))
  t.regex(evicted[0], /: evicted 3 least recently used entries from .* to keep its limits/)
})

test('the debug log says when a result is over the limits on its own and not stored', (t) => {
  const dir = tempDir(t)
  const script = `
    const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
    const cache = new NumpyFuncCache(${JSON.stringify(dir)}, { maxEntryBytes: '1kB' })
    cache.createCachedFunc(function big(n) { return new Float64Array(n) })(1000)`
  const run = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, NODE_DEBUG: 'numpy-func-cache' }, encoding: 'utf8' })
  t.is(run.status, 0, run.stderr)
  t.regex(run.stderr, /: not stored big [0-9a-f]{12} in .*: 8\d{3} bytes, over its limit of 1000/)
  t.notRegex(run.stderr, /: stored big|evicted/)
})
