// Results of several arrays: a hit of a record of three arrays, against
// joblib.Memory caching the same tuple and against NumPy's np.load of the
// very .npz the cache wrote (the raw limit of reading it), and against a
// hit of one array of the same total size. Writes its section of
// BENCHMARKS.md (between the several markers).
//   node --expose-gc bench/several-arrays.mjs [--quick]
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { join } from 'node:path'
import { MiB, measure, randomF64, writeSection } from './lib.mjs'

const require = createRequire(import.meta.url)
const { NumpyFuncCache } = require('../dist')
const quick = process.argv.includes('--quick')
const samples = quick ? 3 : 15
const python = process.env.NFC_PYTHON ?? join(import.meta.dirname, '..', '.venv', 'bin', 'python')
const log = (...a) => console.error('[several]', ...a)
const ms = (t) => (t >= 1 ? `${t.toFixed(2)} s` : t >= 1e-3 ? `${(t * 1e3).toFixed(1)} ms` : `${(t * 1e6).toFixed(1)} µs`)
const ratio = (peer, ours) => `${(peer / ours).toFixed(2)}x`

// Python's side, timed the same way (median of `samples`, worst), in its own process.
const PY = `
import json, statistics, sys, time, gc
import numpy as np, joblib
npz, cachedir, n, samples, inner, mmap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == '1'
rng = np.random.default_rng(1)
a, b, c = rng.random(n), rng.random(n), rng.random(n)
def stats(k):
    return a, b, c
memory = joblib.Memory(cachedir, verbose=0, mmap_mode='r' if mmap else None)
cached = memory.cache(stats)
cached(1)
def measure(op):
    times = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            r = op()
        times.append((time.perf_counter_ns() - t0) / 1e9 / inner)
        del r
        gc.collect()
    return {'t': statistics.median(times), 'worst': max(times)}
def np_load():
    with np.load(npz) as z:
        return [z[k] for k in z.files]
print(json.dumps({'joblib': measure(lambda: cached(1)), 'npload': measure(np_load)}))
`

const tmp = mkdtempSync(join(os.tmpdir(), 'nfc-several-'))
const rows = []
try {
  for (const [label, bytesEach] of quick ? [['3 × 8 KiB', 8 << 10]] : [['3 × 8 KiB', 8 << 10], ['3 × 32 MiB', 32 * MiB]]) {
    const n = bytesEach / 8
    const [a, b, c] = [randomF64(n), randomF64(n), randomF64(n)]
    const one = new Float64Array(3 * n)
    one.set(a, 0)
    one.set(b, n)
    one.set(c, 2 * n)
    for (const mmap of [false, true]) {
      log(label, mmap ? 'mmap' : 'read')
      const dir = join(tmp, `${label.replace(/\W+/g, '')}-${mmap}`)
      const cache = new NumpyFuncCache(dir, { mmap })
      const several = cache.createCachedFunc(() => ({ a, b, c }), { name: 'several', trackSource: false })
      const single = cache.createCachedFunc(() => one, { name: 'single', trackSource: false })
      several()
      single()
      // As the main table measures: many hits a sample when they are small, one when large.
      const inner = bytesEach < MiB ? 200 : 1
      const check = (r) => {
        if (r.c.length !== n || r.a[7] !== a[7]) throw new Error('a wrong hit')
      }
      const t = { several: await measure({ samples, inner, op: several, check }), single: await measure({ samples, inner, op: single }) }
      const npz = join(dir, readdirSync(dir).find((f) => f.endsWith('.npz')))
      const py = spawnSync(python, ['-c', PY, npz, join(dir, 'joblib'), String(n), String(samples), String(inner), mmap ? '1' : '0'], { encoding: 'utf8' })
      if (py.status !== 0) throw new Error(`python: ${py.stderr}`)
      rows.push({ label, mmap, ...t, ...JSON.parse(py.stdout) })
      cache.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true })
}

const line = (r) =>
  `| Hit of a record of ${r.label} (float64), ${r.mmap ? 'mmap' : 'sync'} | ${ms(r.several.t)}; worst ${ms(r.several.worst)} | ${ratio(r.joblib.t, r.several.t)} | ${ratio(r.npload.t, r.several.t)} | ${ratio(r.single.t, r.several.t)} |`
writeSection(
  'several',
  `## Results of several arrays

Made by \`node --expose-gc bench/several-arrays.mjs\`${quick ? ' --quick (a harness check only)' : ''}, ${samples} samples of each case (of 200 hits each for the small rows), on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}). A cached function returns a record \`{ a, b, c }\` of three float64 arrays; a hit loads the entry's \`.npz\` (one read of it, or one map) and returns the record. Peer columns are **peer time / our time**: joblib.Memory caching a function that returns the tuple \`(a, b, c)\` (\`mmap_mode='r'\` in mmap rows); \`np.load\` of the very \`.npz\` the cache wrote, reading each member (NumPy reads an \`.npz\`'s members into memory whatever its \`mmap_mode\`); and a hit of one \`Float64Array\` of the same total size, what the same bytes cost as one array.

| Row | this package (median; worst) | joblib.Memory | np.load of the .npz | one array of the same size |
| --- | --- | --- | --- | --- |
${rows.map(line).join('\n')}`,
  ['reboot', 'loop', 'pool'],
)
