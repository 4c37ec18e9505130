// One memory case in a fresh process: peak RSS (VmHWM) over the baseline
// while storing or loading an n-element Float64Array. Prints JSON (KiB).
//   node memory.mjs ours|node store|load sync|async|mmap DIR N
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { plainCache } from './lib.mjs'

const [peer, , mode, dir, nText] = process.argv.slice(2)
const n = Number(nText)
const vmHwm = () => Number(readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/)[1])

// The array is made inside the function, so a store's peak counts it once (1.0x N) plus any copy.
const big = function big(n) { return new Float64Array(n).fill(1.5) }
const bigAsync = async function big(n) { return new Float64Array(n).fill(1.5) }
const asyncMode = mode === 'async'

let f
if (peer === 'ours') {
  const { NumpyFuncCache } = createRequire(import.meta.url)('../dist')
  const cache = new NumpyFuncCache(dir, mode === 'mmap' ? { mmap: true } : undefined)
  // no source tracking, so the sync, async and mmap wrappers share one entry
  f = cache.createCachedFunc(asyncMode ? bigAsync : big, { name: 'big', trackSource: false, async: asyncMode })
} else {
  const plain = plainCache(dir)
  f = asyncMode ? plain.async('big', bigAsync) : plain.sync('big', big)
}

globalThis.gc?.()
const base = vmHwm()
const r = await f(n)
const afterCall = vmHwm()
let total = 0
for (let i = 0; i < r.length; i += 512) total += r[i] // touch every 4 KiB page, so a mapped load counts its pages too
const afterRead = vmHwm()
if (r.length !== n || total !== 1.5 * Math.ceil(n / 512)) throw new Error(`wrong result (${r.length} elements)`)
console.log(JSON.stringify({ base, afterCall, afterRead }))
