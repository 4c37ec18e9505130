// Caches a real computation (a 1200 x 1200 Mandelbrot escape-time image),
// then shows a miss, a hit, and a hit from a fresh cache object on the same
// directory, with times. The entry is a plain .npy file NumPy can load.
import { mkdtempSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { performance } from 'node:perf_hooks'
import { NumpyFuncCache, readNpy } from '../dist/index.mjs'

function mandelbrot(size, { maxIter }) {
  const out = new Float64Array(size * size)
  for (let y = 0; y < size; y++) {
    const ci = (y / size) * 3 - 1.5
    for (let x = 0; x < size; x++) {
      const cr = (x / size) * 3.5 - 2.5
      let zr = 0, zi = 0, i = 0
      while (i < maxIter && zr * zr + zi * zi <= 4) {
        const t = zr * zr - zi * zi + cr
        zi = 2 * zr * zi + ci
        zr = t
        i++
      }
      out[y * size + x] = i
    }
  }
  return { data: out, shape: [size, size] }
}

// A fresh temporary directory, so the first call is a miss; name a directory
// to keep the cache between runs (then later runs hit from the start).
const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'numpy-func-cache-demo-'))
const cache = new NumpyFuncCache(dir)

let computed = 0
const cached = cache.createCachedFunc((size, opts) => {
  computed++
  return mandelbrot(size, opts)
}, { name: 'mandelbrot' })

/** Runs `f`, timed; `label` may be a function of whether `f` computed. */
function timed(label, f) {
  const before = computed
  const t0 = performance.now()
  const result = f()
  const ms = performance.now() - t0
  const text = typeof label === 'function' ? label(computed > before) : label
  console.log(`${text.padEnd(34)} ${ms.toFixed(2).padStart(9)} ms   calls so far: ${computed}`)
  return { result, ms }
}

console.log(`cache directory: ${dir}`)
const miss = timed((c) => (c ? 'miss (computes and stores)' : 'hit (kept from an earlier run)'), () => cached(1200, { maxIter: 1000 }))
const hit = timed('hit (loads the .npy)', () => cached(1200, { maxIter: 1000 }))
const fresh = new NumpyFuncCache(dir).createCachedFunc((size, opts) => {
  computed++
  return mandelbrot(size, opts)
}, { name: 'mandelbrot' })
timed('hit from a new cache object', () => fresh(1200, { maxIter: 1000 }))

const same = miss.result.data.every((v, i) => v === hit.result.data[i])
console.log(`shape [${hit.result.shape}], dtype ${hit.result.dtype}, identical to computed: ${same}`)
if (computed === 1) console.log(`hit was ${(miss.ms / hit.ms).toFixed(0)}x faster than the miss`)
const file = readdirSync(dir).find((f) => f.endsWith('.npy'))
console.log(`entry: ${join(dir, file)} (readNpy shape [${readNpy(join(dir, file)).shape}])`)
console.log(`in Python: np.load(${JSON.stringify(join(dir, file))})`)
// Only the first call may compute (none when the directory kept the entry).
if (!same || computed > 1) process.exit(1)
const s = cache.stats()
console.log(`stats (all processes, from the index): ${s.entries} entry, ${(s.bytes / 1e6).toFixed(1)} MB, ${s.hits} hits, ${s.misses} miss`)
console.log(`inspect it: node dist/cli.js ls ${dir}   (where the package is installed: npx numpy-func-cache ls ${dir})`)
