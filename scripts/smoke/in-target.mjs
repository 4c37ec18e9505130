// Runs inside the Node under test (native, qemu-aarch64 or wine), from a
// project where numpy-func-cache is installed: a real cached call (a miss,
// then a hit that does not compute) and a read of a file NumPy wrote.
// Prints what it did as JSON for the harness (smoke.mjs) to check.
// Usage: node in-target.mjs <work dir>
import { createRequire } from 'node:module'
import { join } from 'node:path'

const work = process.argv[2]
const { NumpyFuncCache, readNpy } = createRequire(join(process.cwd(), 'package.json'))('numpy-func-cache')

const cache = new NumpyFuncCache(join(work, 'cache'))
let computed = 0
const cached = cache.createCachedFunc(function smokeSquares(n) {
  computed++
  return Float64Array.from({ length: n }, (_, i) => i * i)
})
const miss = cached(1000)
const hit = cached(1000)
const fromNumpy = readNpy(join(work, 'from-numpy.npy'))
console.log(
  JSON.stringify({
    computed,
    same: hit.length === miss.length && hit.every((v, i) => v === miss[i]),
    hitSum: hit.reduce((a, b) => a + b, 0),
    fromNumpy: { dtype: fromNumpy.dtype, shape: fromNumpy.shape, values: Array.from(fromNumpy.data) },
    platform: `${process.platform}-${process.arch}`,
  }),
)
