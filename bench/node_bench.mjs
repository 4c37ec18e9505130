// The Node side of the benchmark: this package, memoize-fs, a plain Node
// cache, bare fs calls and memcpy, on the same data in one process.
// Returns { rowId: { ours, memoizeFs, node, raw, memcpy } } of cells.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import {
  measure, measureEach, attempt, na, randomF64, bytesOf, plainCache, memoizeFsCache,
  memoizeFsJsonLength, V8_MAX_STRING, pool, mapsFileUnder,
} from './lib.mjs'

const log = (...a) => console.error('  ', ...a)
const sameAs = (want) => (r) => {
  if (!(r instanceof Float64Array) || r.length !== want.length || r[0] !== want[0] || r[r.length - 1] !== want[want.length - 1]) {
    throw new Error(`wrong result: ${r?.constructor?.name} of length ${r?.length}`)
  }
}
const mapped = (dir, want) => (r) => {
  sameAs(want)(r)
  if (!mapsFileUnder(dir)) throw new Error('the hit was not memory-mapped (no mmap in this build?)')
}

export async function runNode({ NumpyFuncCache, memoizeFs, tmp, cfg }) {
  const rows = {}
  const sub = (name) => {
    const d = join(tmp, name)
    mkdirSync(d, { recursive: true })
    return d
  }

  // 1. Small hit and miss: Float64Array(1024) (8 KiB) under two scalar args.
  {
    log('small hit / miss')
    const SMALL = randomF64(1024)
    const dir = sub('ours-small')
    const cache = new NumpyFuncCache(dir)
    const small = function small(i, tag) { return SMALL }
    const smallAsync = async function smallAsync(i, tag) { return SMALL }
    const f = cache.createCachedFunc(small, { name: 'small' })
    const g = cache.createCachedFunc(smallAsync, { name: 'small' })
    const plain = plainCache(sub('plain-small'))
    const pf = plain.sync('small', small)
    const pg = plain.async('small', smallAsync)
    const mfs = await memoizeFsCache(memoizeFs, sub('mfs-small'))
    const mf = await mfs.fn(function small(i, tag) { return Array.from(SMALL) })
    const rawFile = join(sub('raw-small'), 'small.bin') // kept: joblib_bench.py loads the same bytes
    const rawDir = sub('raw-small-misses')
    writeFileSync(rawFile, bytesOf(SMALL))
    const hit = { samples: cfg.smallSamples, inner: cfg.smallInner, check: sameAs(SMALL) }
    const miss = { samples: cfg.smallSamples, inner: cfg.missInner }
    let k = 1000 // fresh argument per miss

    const rawHit = await attempt(() => measure({ ...hit, check: undefined, op: () => readFileSync(rawFile) }))
    const mfsHit = await attempt(async () => (await mf(7, 's'), measure({ ...hit, op: () => mf(7, 's') })))
    rows['small-hit-sync'] = {
      ours: await attempt(() => (f(7, 's'), measure({ ...hit, op: () => f(7, 's') }))),
      node: await attempt(() => (pf(7, 's'), measure({ ...hit, op: () => pf(7, 's') }))),
      memoizeFs: mfsHit, raw: rawHit,
    }
    rows['small-hit-async'] = {
      ours: await attempt(async () => (await g(7, 's'), measure({ ...hit, op: () => g(7, 's') }))),
      node: await attempt(async () => (await pg(7, 's'), measure({ ...hit, op: () => pg(7, 's') }))),
      memoizeFs: mfsHit, raw: rawHit,
    }
    rows['small-hit-mmap'] = {
      ours: await attempt(() => {
        const fm = new NumpyFuncCache(dir, { mmap: true }).createCachedFunc(small, { name: 'small' })
        fm(7, 's')
        return measure({ ...hit, check: mapped(dir, SMALL), op: () => fm(7, 's') })
      }),
      node: na('Node has no mmap'), memoizeFs: mfsHit, raw: rawHit,
    }
    const rawMiss = await attempt(() =>
      measure({ ...miss, before: () => { rmSync(rawDir, { recursive: true }); mkdirSync(rawDir) }, op: () => writeFileSync(join(rawDir, `${k++}`), bytesOf(SMALL)) }))
    const mfsMiss = await attempt(() => measure({ ...miss, before: mfs.clear, op: () => mf(k++, 's') }))
    rows['small-miss-sync'] = {
      ours: await attempt(() => measure({ ...miss, before: () => cache.clearCache(), op: () => f(k++, 's') })),
      node: await attempt(() => measure({ ...miss, before: plain.clear, op: () => pf(k++, 's') })),
      memoizeFs: mfsMiss, raw: rawMiss,
    }
    rows['small-miss-async'] = {
      ours: await attempt(() => measure({ ...miss, before: () => cache.clearCache(), op: () => g(k++, 's') })),
      node: await attempt(() => measure({ ...miss, before: plain.clear, op: () => pg(k++, 's') })),
      memoizeFs: mfsMiss, raw: rawMiss,
    }
    await mfs.clear()
    cache.clearCache()
  }

  // 2. Large store and load; 3. hashing a large argument. One size at a time so at most ~3 N is live.
  for (const { label, bytes, withMemoizeFs } of cfg.large) {
    log(`large ${label}`)
    const n = bytes / 8
    let data = randomF64(n)
    const dir = sub(`ours-${label}`)
    const cache = new NumpyFuncCache(dir)
    const large = function large(n) { return data }
    const largeAsync = async function largeAsync(n) { return data }
    const f = cache.createCachedFunc(large, { name: 'large' })
    const g = cache.createCachedFunc(largeAsync, { name: 'large' })
    const plain = plainCache(sub(`plain-${label}`))
    const pf = plain.sync('large', large)
    const pg = plain.async('large', largeAsync)
    const rawFile = join(sub(`raw-${label}`), 'large.bin') // kept: joblib_bench.py loads the same bytes
    const R = { samples: cfg.largeRepeats }
    const mfsR = { samples: cfg.memoizeFsRepeats }

    // memoize-fs writes one JSON string; past V8's string limit it throws after minutes of work, so such sizes are not run.
    const resultJson = memoizeFsJsonLength(data, false)
    const mfsOff = !withMemoizeFs
      ? na(resultJson > V8_MAX_STRING
        ? `JSON ~${Math.round(resultJson / 1e6)}M chars > V8 string limit ${Math.round(V8_MAX_STRING / 1e6)}M`
        : 'capped: over the time budget')
      : undefined
    const mfs = withMemoizeFs ? await memoizeFsCache(memoizeFs, sub(`mfs-${label}`)) : undefined
    const mf = mfs && (await mfs.fn(function large(n) { return Array.from(data) }))

    const mfsStore = mfsOff ?? (await attempt(() => measure({ ...mfsR, before: mfs.clear, op: () => mf(n) })))
    const mfsLoad = mfsOff ?? (await attempt(async () => (await mf(n), measure({ ...mfsR, op: () => mf(n), check: sameAs(data) }))))

    // Interleaved, one op of each case per repeat: on this VM the cost of first-touching freshly
    // allocated memory drifts over seconds, and interleaving makes every peer see the same drift.
    const dst = new Float64Array(n).fill(1) // pre-faulted: memcpy is the pure copy
    const st = await measureEach(R.samples, {
      oursAsync: { before: () => cache.clearCache(), op: () => g(n) },
      oursSync: { before: () => cache.clearCache(), op: () => f(n) },
      nodeAsync: { before: plain.clear, op: () => pg(n) },
      nodeSync: { before: plain.clear, op: () => pf(n) },
      raw: { before: () => rmSync(rawFile, { force: true }), op: () => writeFileSync(rawFile, bytesOf(data)) },
      memcpy: { op: () => dst.set(data) },
    })
    const ld = await measureEach(R.samples, {
      oursSync: { setup: () => f(n), op: () => f(n), check: sameAs(data) },
      oursAsync: { setup: () => g(n), op: () => g(n), check: sameAs(data) },
      oursMmap: ((fm) => ({
        setup: () => (fm = new NumpyFuncCache(dir, { mmap: true }).createCachedFunc(large, { name: 'large' })),
        op: () => fm(n),
        check: mapped(dir, data),
      }))(),
      // What checking all of a large hit's data against its digest costs.
      oursVerify: ((fv) => ({
        setup: () => (fv = new NumpyFuncCache(dir, { verify: true }).createCachedFunc(large, { name: 'large' })),
        op: () => fv(n),
        check: sameAs(data),
      }))(),
      nodeSync: { setup: () => pf(n), op: () => pf(n), check: sameAs(data) },
      nodeAsync: { setup: () => pg(n), op: () => pg(n), check: sameAs(data) },
      raw: { op: () => readFileSync(rawFile) },
    })
    const storeRow = (ours, node) => ({ ours, node, memoizeFs: mfsStore, raw: st.raw, memcpy: st.memcpy })
    const loadRow = (ours, node) => ({ ours, node, memoizeFs: mfsLoad, raw: ld.raw, memcpy: st.memcpy })
    rows[`store-${label}-async`] = storeRow(st.oursAsync, st.nodeAsync)
    rows[`store-${label}-sync`] = storeRow(st.oursSync, st.nodeSync)
    rows[`load-${label}-sync`] = loadRow(ld.oursSync, ld.nodeSync)
    rows[`load-${label}-async`] = loadRow(ld.oursAsync, ld.nodeAsync)
    rows[`load-${label}-mmap`] = loadRow(ld.oursMmap, na('Node has no mmap'))
    rows[`load-${label}-verify`] = loadRow(ld.oursVerify, ld.nodeSync)
    cache.clearCache()
    plain.clear()

    // 3. Hashing: a hit whose argument is the whole array; the result is tiny, so the time is the key.
    if (cfg.hashSizes.includes(label)) {
      const TINY = new Float64Array(8).fill(0.5)
      const tiny = function tiny(x) { return TINY }
      const h = cache.createCachedFunc(tiny, { name: 'tiny' })
      const ph = plain.sync('tiny', tiny)
      const argJson = memoizeFsJsonLength(data, true)
      const mh = mfs && (await mfs.fn(function tiny(x) { return Array.from(TINY) }))
      rows[`hash-${label}`] = {
        ours: await attempt(() => (h(data), measure({ ...R, op: () => h(data), check: sameAs(TINY) }))),
        node: await attempt(() => (ph(data), measure({ ...R, op: () => ph(data), check: sameAs(TINY) }))),
        memoizeFs: mh
          ? await attempt(async () => (await mh(data), measure({ ...mfsR, op: () => mh(data) })))
          : na(argJson > V8_MAX_STRING
            ? `argument JSON ~${Math.round(argJson / 1e6)}M chars > V8 string limit ${Math.round(V8_MAX_STRING / 1e6)}M`
            : 'capped: over the time budget'),
        memcpy: na('not a copy'),
      }
      cache.clearCache()
      plain.clear()
    }
    if (mfs) await mfs.clear()
    data = undefined
    globalThis.gc?.()
  }

  // 4. Hit cost with 100 and with 100,000 entries in the directory (Float64Array(8) each).
  const notes = {}
  {
    const TINY = new Float64Array(8).fill(0.25)
    const entry = function entry(i) { return TINY }
    // Each call hits another entry (stride coprime to the count), spread over the whole directory.
    // Every entry is hit once first (untimed), for every peer: the rows compare repeated hits, so
    // what grows with the directory is the filesystem's cost, not a first read into a process's memory.
    const timeHits = async (count, call, check = sameAs(TINY)) => {
      for (let i = 0; i < count; i++) await call(i)
      let s = 0
      return measure({ samples: cfg.smallSamples, inner: cfg.smallInner, op: () => call((s = (s + 7919) % count)), check })
    }
    for (const count of cfg.entryCounts) {
      log(`${count} entries`)
      const cache = new NumpyFuncCache(sub(`ours-entries-${count}`))
      const f = cache.createCachedFunc(entry, { name: 'entry' })
      const plain = plainCache(sub(`plain-entries-${count}`))
      const pf = plain.sync('entry', entry)
      const mfs = await memoizeFsCache(memoizeFs, sub(`mfs-entries-${count}`))
      const mf = await mfs.fn(function entry(i) { return Array.from(TINY) })
      const fill = async (name, make) => {
        const t0 = performance.now()
        await make()
        notes[`fill-${name}-${count}`] = (performance.now() - t0) / 1000
      }
      rows[`entries-${count}`] = {
        ours: await attempt(async () => {
          await fill('ours', () => { for (let i = 0; i < count; i++) f(i) })
          // The first hit of each entry in a process reads its files (later ones copy what was kept).
          let fresh
          let s = 0
          notes[`first-hit-ours-${count}`] = await measure({
            samples: 3,
            inner: Math.min(count, cfg.smallInner),
            before: () => {
              const c = new NumpyFuncCache(join(tmp, `ours-entries-${count}`))
              c.stats() // opens the index now, not in the first timed hit
              fresh = c.createCachedFunc(entry, { name: 'entry' })
            },
            op: () => fresh((s = (s + 7919) % count)),
          })
          return timeHits(count, f)
        }),
        node: await attempt(async () => {
          await fill('node', () => { for (let i = 0; i < count; i++) pf(i) })
          return timeHits(count, pf)
        }),
        memoizeFs: await attempt(async () => {
          await fill('memoizeFs', () => pool(count, 16, (i) => mf(i))) // 16 writes in flight: memoize-fs is async
          return timeHits(count, mf)
        }),
        raw: await attempt(() => {
          // bare reads of the plain baseline's files, in the same big directory
          const dir = join(tmp, `plain-entries-${count}`)
          const names = readdirSync(dir)
          return timeHits(names.length, (i) => readFileSync(join(dir, names[i])), null)
        }),
        memcpy: na('not a copy'),
      }
      cache.clearCache()
      plain.clear()
      await mfs.clear()
    }
  }
  return { rows, notes }
}
