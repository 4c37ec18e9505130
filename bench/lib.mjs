// Shared helpers of the Node side of the benchmark: timing, cells, peers.
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const MiB = 1024 * 1024

const BENCHMARKS = join(dirname(fileURLToPath(import.meta.url)), '..', 'BENCHMARKS.md')

/**
 * Writes a section of BENCHMARKS.md, between `<!-- name:start -->` and
 * `<!-- name:end -->`: in place of the last run's, else before the first of
 * `before` (other sections' start markers) found, else before "## Memory".
 */
export function writeSection(name, body, before = []) {
  const section = `<!-- ${name}:start -->\n${body.trim()}\n<!-- ${name}:end -->`
  const md = readFileSync(BENCHMARKS, 'utf8')
  const marked = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`)
  const next = before.map((b) => `<!-- ${b}:start -->`).find((m) => md.includes(m))
  writeFileSync(
    BENCHMARKS,
    // Replacements as functions: a section's text may hold `$`.
    marked.test(md)
      ? md.replace(marked, () => section)
      : next
        ? md.replace(next, () => `${section}\n\n${next}`)
        : md.replace(/\n## Memory\n/, () => `\n${section}\n\n## Memory\n`),
  )
  console.log(section)
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const gc = () => globalThis.gc?.()

/**
 * Median and worst seconds per op ({ t, worst }) over `samples` samples of `inner` ops each. `before`
 * and `after` run untimed around each sample; `check` sees the last result of
 * the first sample (untimed) and throws if it is wrong.
 */
export async function measure({ samples, inner = 1, before, after, op, check }) {
  const times = []
  for (let s = 0; s < samples; s++) {
    if (before) await before(s)
    let r
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < inner; i++) {
      r = op(i)
      if (r && typeof r.then === 'function') r = await r
    }
    times.push(Number(process.hrtime.bigint() - t0) / 1e9 / inner)
    if (s === 0 && check) check(r)
    r = undefined
    if (after) await after(s)
    gc() // drop large results between samples so memory stays flat
  }
  return { t: median(times), worst: Math.max(...times) }
}

/**
 * Median seconds of each case, the cases interleaved: each repeat runs one op
 * of every case in turn. `setup` runs once first; `before` untimed before each
 * op; `check` sees the first result. A case that throws becomes { error }.
 */
export async function measureEach(samples, cases) {
  const times = {}
  const errors = {}
  const run = async (key, f) => {
    if (errors[key]) return
    try {
      await f(cases[key])
    } catch (e) {
      errors[key] = errorText(e)
    }
  }
  for (const key of Object.keys(cases)) await run(key, async (c) => c.setup && (await c.setup()))
  for (let s = 0; s < samples; s++) {
    for (const key of Object.keys(cases)) {
      await run(key, async (c) => {
        if (c.before) await c.before()
        const t0 = process.hrtime.bigint()
        let r = c.op()
        if (r && typeof r.then === 'function') r = await r
        ;(times[key] ??= []).push(Number(process.hrtime.bigint() - t0) / 1e9)
        if (s === 0 && c.check) c.check(r)
      })
      gc()
    }
  }
  return Object.fromEntries(Object.keys(cases).map((k) => [k, errors[k] ? { error: errors[k] } : { t: median(times[k]), worst: Math.max(...times[k]) }]))
}

const errorText = (e) => String(e?.message ?? e).split('\n')[0].slice(0, 160)

/** A table cell: { t } seconds, { na } a reason, or { error } the error text. */
export async function attempt(f) {
  try {
    const v = await f()
    return typeof v === 'number' ? { t: v } : v
  } catch (e) {
    return { error: errorText(e) }
  } finally {
    gc()
  }
}
export const na = (why) => ({ na: why })

/** Uniform [0, 1) doubles, deterministic (xorshift), so every run stores the same bytes. */
export function randomF64(n, seed = 0x9e3779b9) {
  const a = new Float64Array(n)
  let x = seed >>> 0 || 1
  const step = () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    return (x >>>= 0)
  }
  for (let i = 0; i < n; i++) a[i] = (step() * 2097152 + (step() >>> 11)) / 2 ** 53 // all 53 bits random
  return a
}

export const bytesOf = (a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

// readFileSync gives an unpooled buffer at offset 0; copy only if it is not 8-aligned.
const toF64 = (b) =>
  b.byteOffset % 8 === 0 ? new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8) : new Float64Array(new Uint8Array(b).buffer)

/** sha256 of JSON.stringify of the args, typed arrays by their bytes: the obvious hand-written key. */
function plainKey(name, args) {
  const h = createHash('sha256').update(name)
  for (const a of args) h.update(ArrayBuffer.isView(a) ? bytesOf(a) : JSON.stringify(a ?? null))
  return h.digest('hex')
}

/** The plain Node baseline: one `<sha256>.bin` file of raw bytes per call. */
export function plainCache(dir) {
  mkdirSync(dir, { recursive: true })
  return {
    sync: (name, fn) => (...args) => {
      const file = join(dir, plainKey(name, args) + '.bin')
      try {
        return toF64(readFileSync(file))
      } catch (e) {
        if (e.code !== 'ENOENT') throw e
      }
      const r = fn(...args)
      writeFileSync(file, bytesOf(r))
      return r
    },
    async: (name, fn) => async (...args) => {
      const file = join(dir, plainKey(name, args) + '.bin')
      try {
        return toF64(await readFile(file))
      } catch (e) {
        if (e.code !== 'ENOENT') throw e
      }
      const r = await fn(...args)
      await writeFile(file, bytesOf(r))
      return r
    },
    clear: () => {
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
    },
  }
}

/** memoize-fs the way a user has to use it for arrays: JSON needs a plain Array, the caller converts back. */
export async function memoizeFsCache(memoizeFs, dir) {
  mkdirSync(dir, { recursive: true })
  const memo = memoizeFs({ cachePath: dir })
  return {
    fn: async (fn) => {
      const m = await memo.fn(fn)
      return async (...args) => Float64Array.from(await m(...args))
    },
    clear: async () => {
      await memo.invalidate()
      mkdirSync(dir, { recursive: true }) // invalidate removes the directory memoize-fs writes into
    },
  }
}

/**
 * Length of the JSON memoize-fs would write for `a`: as a result (a plain
 * Array) or as an argument (its serializer turns a TypedArray into {"0":..}).
 * Estimated from a 1 Mi-element sample, so an infeasible size is not tried.
 */
export function memoizeFsJsonLength(a, asArgument) {
  const k = Math.min(a.length, 1 << 20)
  const perValue = (JSON.stringify(Array.from(a.subarray(0, k))).length - 2) / k
  let keys = 0
  if (asArgument) for (let d = 1, lo = 0; lo < a.length; d++, lo = 10 ** (d - 1)) keys += (Math.min(a.length, 10 ** d) - lo) * (d + 3)
  return Math.round(a.length * perValue + keys)
}
export const V8_MAX_STRING = 2 ** 29 - 24

/** Runs `task(i)` for i < count, `width` at a time. */
export async function pool(count, width, task) {
  let next = 0
  const worker = async () => {
    while (next < count) await task(next++)
  }
  await Promise.all(Array.from({ length: width }, worker))
}

/** True if some file under `dir` is memory-mapped into this process. */
export const mapsFileUnder = (dir) => readFileSync('/proc/self/maps', 'utf8').includes(dir + '/')
