// NODE_DEBUG=numpy-func-cache: the cache's log on stderr (util.debuglog),
// read from a real child process as a user would see it.
import test from 'ava'
import { spawnSync } from 'node:child_process'
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
