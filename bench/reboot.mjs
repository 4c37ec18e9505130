// What crash safety costs (README, "No wrong array"): the first hit of a
// large entry written in an earlier boot checks all its data once (a BLAKE3
// pass), against a normal hit; and a store as it is (not synced) against a
// store followed by an fsync of its files, what syncing before publishing
// would cost instead. Writes its section of BENCHMARKS.md (between the
// reboot markers).
//   node --expose-gc bench/reboot.mjs [--quick]
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { join } from 'node:path'
import { MiB, measureEach, randomF64, writeSection } from './lib.mjs'

// This process's boot, set before the binding reads it (the testing hook).
process.env.NFC_TEST_BOOT = 'bench-reboot-this-boot'
const require = createRequire(import.meta.url)
const native = require('../binding/index.js')
const quick = process.argv.includes('--quick')
const cfg = quick ? { samples: 3, sizes: [32] } : { samples: 11, sizes: [32, 256] }
const log = (...a) => console.error('[reboot]', ...a)

const keyOf = (i) => i.toString(16).padStart(64, '0')
const ms = (t) => (t >= 1 ? `${t.toFixed(2)} s` : `${(t * 1e3).toFixed(1)} ms`)
const ratio = (r) => `${r.toFixed(2)}x`
const layout = (n) => ({ shape: [n], dtype: '<f8', fortranOrder: false })
const ENTRY = { function: 'reboot', result: 'typedarray', class: 'Float64Array' }

const tmp = mkdtempSync(join(os.tmpdir(), 'nfc-reboot-'))
const rows = []
try {
  for (const mib of cfg.sizes) {
    log(`${mib} MiB`)
    const data = randomF64((mib * MiB) / 8)
    const dir = join(tmp, `${mib}`)
    const read = new native.Cache(dir)
    const mapped = new native.Cache(dir, { mmap: true })
    // Each case its own entry, all as if written in an earlier boot (their
    // records note another): `normal` is checked once, at setup; the first-hit
    // entries are touched before each hit.
    const [normalKey, firstKey, firstMapKey] = [keyOf(1), keyOf(2), keyOf(3)]
    for (const key of [normalKey, firstKey, firstMapKey]) {
      read.store(key, data, layout(data.length), ENTRY)
      const json = join(dir, `${key}.json`)
      const record = readFileSync(json, 'utf8')
      const earlier = record.replace(/"boot":"[0-9a-f]{16}"/, '"boot":"0000000000000000"')
      if (earlier === record) throw new Error(`no boot in the record: ${record}`)
      writeFileSync(json, earlier)
    }
    let touched = 0
    // A new time changes the file's stamp: no mark of an earlier check (in
    // memory or in the index) holds for it, so the next hit checks it all.
    const unchecked = (key) => () => utimesSync(join(dir, `${key}.npy`), 1e9 + ++touched, 1e9 + touched)
    const meta = new Float64Array(6 + native.defaults().maxDims)
    const hit = (c, key) => () => {
      const r = c.load(key, meta)
      if (r === null || r.notes?.length) throw new Error(`not a hit: ${JSON.stringify(r?.notes)}`)
      return r
    }
    let n = 4
    const made = []
    const fresh = () => {
      made.push(keyOf(n++))
      return made.at(-1)
    }
    // Untimed, before each store: the last stores' entries go.
    const tidy = () => {
      for (const k of made.splice(0)) read.remove(k)
    }
    const fsyncFile = (p) => {
      const fd = openSync(p, 'r')
      fsyncSync(fd)
      closeSync(fd)
    }
    const t = await measureEach(cfg.samples, {
      normal: { setup: hit(read, normalKey), op: hit(read, normalKey) },
      first: { before: unchecked(firstKey), op: hit(read, firstKey) },
      normalMap: { setup: hit(mapped, normalKey), op: hit(mapped, normalKey) },
      firstMap: { before: unchecked(firstMapKey), op: hit(mapped, firstMapKey) },
      store: { before: tidy, op: () => read.store(fresh(), data, layout(data.length), ENTRY) },
      synced: {
        before: tidy,
        op: () => {
          const k = fresh()
          read.store(k, data, layout(data.length), ENTRY)
          fsyncFile(join(dir, `${k}.npy`))
          fsyncFile(join(dir, `${k}.json`))
          fsyncFile(dir)
        },
      },
    })
    for (const [k, v] of Object.entries(t)) if (v.t === undefined) throw new Error(`${mib} MiB ${k}: ${v.error}`)
    rows.push({ mib, t })
    rmSync(dir, { recursive: true, force: true })
  }
} finally {
  rmSync(tmp, { recursive: true, force: true })
}

const line = (name, v, base) => `| ${name} | ${ms(v.t)} | ${ms(v.worst)} | ${ratio(v.t / base.t)} |`
const tables = rows.map(({ mib, t }) => `| ${mib} MiB entry | median | worst | / normal |
| --- | --- | --- | --- |
${line(`Normal hit, ${mib} MiB, read`, t.normal, t.normal)}
${line(`First hit after a reboot, ${mib} MiB, read`, t.first, t.normal)}
${line(`Normal hit, ${mib} MiB, mmap`, t.normalMap, t.normalMap)}
${line(`First hit after a reboot, ${mib} MiB, mmap`, t.firstMap, t.normalMap)}
${line(`Store, ${mib} MiB (not synced, as the cache stores)`, t.store, t.store)}
${line(`Store then fsync, ${mib} MiB (what syncing before publishing would cost)`, t.synced, t.store)}`)
writeSection(
  'reboot',
  `## Crash safety: the first hit after a reboot

Made by \`node --expose-gc bench/reboot.mjs\`${quick ? ' --quick (a harness check only)' : ''}, ${cfg.samples} samples of each case, interleaved, in one process, on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}). A "first hit after a reboot" is a hit of an entry whose record notes an earlier boot and whose file no one checked in this boot: it checks all its data (a BLAKE3 pass on all cores) once per boot; later hits, in any process of the boot, are normal hits. The file is in the page cache in both cases: after a real reboot the read itself comes from the disk either way. A store is not synced, so a store costs nothing for this; the fsync rows show what syncing instead would add (on this machine's disk).

${tables.join('\n\n')}`,
  ['loop', 'pool'],
)
