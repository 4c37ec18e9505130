// npm run bench: installs the peers it needs, times this package against
// memoize-fs, a plain Node cache, joblib.Memory and the raw limits on the same
// data in one run, and writes BENCHMARKS.md and bench/chart.png. Sections of
// their own come from bench/remote.mjs (the S3 tier against boto3 and the AWS
// SDK), bench/bookkeeping.mjs and bench/reboot.mjs, each in a fresh process.
//   node bench/run.mjs [--quick]   (--quick: small sizes, to check the harness)
import { spawnSync, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MiB } from './lib.mjs'
import { runNode } from './node_bench.mjs'

const self = fileURLToPath(import.meta.url)
const here = dirname(self)
const root = join(here, '..')
const python = join(root, '.venv', 'bin', 'python')
const quick = process.argv.includes('--quick')

// Large rows free 1 GiB arrays between samples, which needs global.gc.
if (!globalThis.gc) {
  const r = spawnSync(process.execPath, ['--expose-gc', self, ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

const cfg = quick
  ? {
      smallSamples: 3, smallInner: 200, missInner: 50, largeRepeats: 2, memoizeFsRepeats: 1,
      large: [{ label: '4 MiB', bytes: 4 * MiB, withMemoizeFs: true }, { label: '64 MiB', bytes: 64 * MiB, withMemoizeFs: false }],
      hashSizes: ['4 MiB', '64 MiB'], entryCounts: [100, 1000], joblibFillSeconds: 30, memoryBytes: 64 * MiB,
    }
  : {
      smallSamples: 15, smallInner: 2000, missInner: 500, largeRepeats: 5, memoizeFsRepeats: 3,
      // 32 MiB is there because memoize-fs still works at that size; at 256 MiB its JSON is over V8's string limit.
      large: [
        { label: '32 MiB', bytes: 32 * MiB, withMemoizeFs: true },
        { label: '256 MiB', bytes: 256 * MiB, withMemoizeFs: false },
        { label: '1 GiB', bytes: 1024 * MiB, withMemoizeFs: false },
      ],
      hashSizes: ['32 MiB', '256 MiB'], entryCounts: [100, 100_000], joblibFillSeconds: 240, memoryBytes: 1024 * MiB,
    }

const log = (...a) => console.error('[bench]', ...a)
const quiet = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })

/** Installs memoize-fs into bench/node_modules and joblib, numpy, blake3, matplotlib, boto3 into .venv, if missing. */
function setup() {
  if (!existsSync(join(here, 'node_modules', 'memoize-fs', 'package.json'))) {
    run('npm', ['install', '--prefix', here, '--no-audit', '--no-fund'])
  }
  if (!quiet(python, ['-c', 'import joblib, numpy, blake3, matplotlib, boto3'])) {
    if (!existsSync(python)) run('python3', ['-m', 'venv', join(root, '.venv')])
    run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'joblib', 'numpy', 'blake3', 'matplotlib', 'boto3'])
  }
}

/** The built package; dist/ may be mid-rebuild, so a failed require is retried for a while. */
async function loadPackage() {
  const require = createRequire(self)
  for (let tries = 0; ; tries++) {
    try {
      return require('../dist')
    } catch (e) {
      if (tries >= 12) throw new Error(`cannot load ../dist (run npm run build): ${e.message}`)
      log(`../dist does not load yet (${e.message.split('\n')[0]}); retrying in 10 s`)
      for (const k of Object.keys(require.cache)) if (k.startsWith(root)) delete require.cache[k]
      await new Promise((r) => setTimeout(r, 10_000))
    }
  }
}

function cpuModel(cpuinfo) {
  const field = (name) => cpuinfo.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]
  const flags = ['avx2', 'avx512f', 'sha_ni'].filter((f) => new RegExp(`\\b${f}\\b`).test(field('flags') ?? ''))
  return `${field('model name') ?? os.cpus()[0]?.model ?? '?'} (family ${field('cpu family')}, model ${field('model')}, ` +
    `${Math.round(Number(field('cpu MHz')))} MHz; ${flags.join(' ') || 'no avx2'})`
}

function machine(tmp, versions) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const mem = Number(readFileSync('/proc/meminfo', 'utf8').match(/MemTotal:\s+(\d+)/)[1])
  // The filesystem of the temp dir: the longest mount point that contains it.
  const mount = readFileSync('/proc/mounts', 'utf8').trim().split('\n').map((l) => l.split(' '))
    .filter(([, point]) => tmp === point || tmp.startsWith(point.endsWith('/') ? point : point + '/'))
    .sort((a, b) => b[1].length - a[1].length)[0]
  const mfs = JSON.parse(readFileSync(join(here, 'node_modules', 'memoize-fs', 'package.json'), 'utf8')).version
  return [
    ['CPU', cpuModel(cpuinfo)],
    ['Cores', `${os.availableParallelism()} (${cpuinfo.match(/^processor/gm).length} in /proc/cpuinfo)`],
    ['Memory', `${(mem / 1024 / 1024).toFixed(1)} GiB`],
    ['OS', `${os.type()} ${os.release()}`],
    ['Temp dir', `${os.tmpdir()}: ${mount ? `${mount[2]} (${mount[0]} on ${mount[1]})` : '?'}`],
    ['Node', process.version],
    ['Python', versions.python ?? '?'],
    ['numpy / joblib / blake3 (PyPI)', `${versions.numpy} / ${versions.joblib} / ${versions.blake3}`],
    ['memoize-fs', mfs],
    ['Load average at start', os.loadavg().map((x) => x.toFixed(2)).join(', ')],
  ]
}

/** Peak RSS over the baseline, as a multiple of N, for one case in a fresh process. */
function memoryCase(peer, op, mode, dir) {
  const n = cfg.memoryBytes / 8
  const args = peer === 'joblib'
    ? [python, [join(here, 'joblib_bench.py'), '--memory', mode === 'mmap' ? 'load-mmap' : op, dir, String(n)]]
    : [process.execPath, ['--expose-gc', join(here, 'memory.mjs'), peer, op, mode, dir, String(n)]]
  const r = spawnSync(args[0], args[1], { encoding: 'utf8', timeout: 300_000 })
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').filter((l) => /Error|error/.test(l))[0]?.slice(0, 160) ?? `exit ${r.status}` }
  const { base, afterCall, afterRead } = JSON.parse(r.stdout.trim().split('\n').pop())
  return { call: ((afterCall - base) * 1024) / cfg.memoryBytes, read: ((afterRead - base) * 1024) / cfg.memoryBytes }
}

function memorySection(tmp) {
  const out = {}
  for (const peer of ['ours', 'node', 'joblib']) {
    const dir = join(tmp, `memory-${peer}`)
    const fresh = () => { rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true }) }
    for (const mode of ['async', 'sync']) { // the sync store leaves the entry the loads read
      out[`store-${mode}`] ??= {}
      if (peer === 'joblib' && mode === 'async') {
        out[`store-${mode}`][peer] = { na: "joblib's async form (AsyncMemorizedFunc) blocks on its file work: see its sync row" }
        continue
      }
      log(`memory: ${peer} store ${mode}`)
      fresh()
      out[`store-${mode}`][peer] = memoryCase(peer, 'store', mode, dir)
    }
    for (const mode of ['sync', 'async', 'mmap']) {
      out[`load-${mode}`] ??= {}
      const na = peer === 'node' && mode === 'mmap' ? 'Node has no mmap' : peer === 'joblib' && mode === 'async' ? "joblib's async form (AsyncMemorizedFunc) blocks on its file work: see its sync row" : undefined
      if (!na) log(`memory: ${peer} load ${mode}`)
      out[`load-${mode}`][peer] = na ? { na } : memoryCase(peer, 'load', mode, dir)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  return out
}

// ---- formatting ----

const PEERS = [
  ['memoizeFs', 'memoize-fs'],
  ['node', 'plain Node'],
  ['joblib', 'joblib.Memory'],
  ['raw', 'raw limit (bare fs / BLAKE3)'],
  ['memcpy', 'memcpy (TypedArray.set)'],
]
const fmtTime = (t) => (t < 1e-3 ? `${(t * 1e6).toFixed(1)} µs` : t < 1 ? `${(t * 1e3).toFixed(1)} ms` : `${t.toFixed(2)} s`)
const fmtRatio = (r) => (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + 'x'
const esc = (s) => String(s).replaceAll('|', '\\|')
const other = (c) => (c?.na !== undefined ? `n/a (${c.na})` : c?.error !== undefined ? `error: ${c.error}` : '—')

function rowLabel(id) {
  let m
  if ((m = id.match(/^small-(hit|miss)-(\w+)$/))) return `Small ${m[1]}, 8 KiB result, ${m[2]}`
  if ((m = id.match(/^(store|load)-(.+)-(\w+)$/))) return `${m[1] === 'store' ? 'Store (miss)' : 'Load (hit)'} ${m[2]}, ${m[3]}`
  if ((m = id.match(/^hash-(.+)$/))) return `Hash a ${m[1]} argument (hit, tiny result)`
  if ((m = id.match(/^entries-(\d+)$/))) return `Small hit, ${Number(m[1]).toLocaleString('en-US')} entries in the dir`
  return id
}
const bytesOfRow = (id) => {
  const m = id.match(/(\d+) (MiB|GiB)/)
  return m ? Number(m[1]) * (m[2] === 'GiB' ? 1024 : 1) * MiB : 0
}

function largeLoadTable(runs) {
  const lines = [
    '| copying load | rounds (processes) | this package: median; worst | readFileSync: median; worst | per-round ratio ours / readFileSync: median; worst | peak RSS |',
    '| --- | --- | --- | --- | --- | --- |',
  ]
  const how = { yield: 'sync, the event loop turns between rounds', async: 'async API', sync: 'sync loop that never yields' }
  for (const r of runs) {
    const label = `${r.mib >= 1024 ? `${r.mib / 1024} GiB` : `${r.mib} MiB`}, ${how[r.mode]}`
    if (r.error) lines.push(`| ${label} | ${esc(r.error)} | | | | |`)
    else {
      const ms = (x) => fmtTime(x / 1000)
      lines.push(`| ${label} | ${r.rounds} (${r.processes}) | ${ms(r.ours.median)}; ${ms(r.ours.worst)} | ${ms(r.readFileSync.median)}; ${ms(r.readFileSync.worst)} | ` +
        `${r.ratio.median.toFixed(2)}x; ${r.ratio.worst.toFixed(2)}x | ${r.peakRssMiB.toFixed(0)} MiB |`)
    }
  }
  return lines.join('\n') + `

Each round loads the entry once with this package and once with \`fs.readFileSync\` of its file (alternating which goes
first), in fresh processes, with no forced GC: the cost of fresh memory and of collecting earlier results is in every
round. The ratio is per round; below 1.00x this package is faster.`
}

function mainTable(rows) {
  const head = ['Row', 'this package (median; worst)', ...PEERS.map(([, name]) => name)]
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`]
  for (const [id, cells] of Object.entries(rows)) {
    const ours = cells.ours
    const bytes = bytesOfRow(id)
    const oursText = ours?.t !== undefined
      ? fmtTime(ours.t) + (bytes && !id.endsWith('mmap') ? ` (${(bytes / 2 ** 30 / ours.t).toFixed(2)} GiB/s)` : '') +
        (ours.worst !== undefined ? `; worst ${fmtTime(ours.worst)}` : '')
      : other(ours)
    const peerText = ([key]) => {
      const c = cells[key]
      if (c?.t === undefined) return other(c)
      return ours?.t !== undefined ? fmtRatio(c.t / ours.t) : `(${fmtTime(c.t)})`
    }
    lines.push(`| ${[rowLabel(id), oursText, ...PEERS.map(peerText)].map(esc).join(' | ')} |`)
  }
  return lines.join('\n')
}

function flatnessTable(rows, notes) {
  const [lo, hi] = cfg.entryCounts.map((c) => rows[`entries-${c}`])
  const peers = [['ours', 'this package'], ...PEERS.slice(0, 4)]
  const cell = ([key]) => (lo?.[key]?.t !== undefined && hi?.[key]?.t !== undefined ? fmtRatio(hi[key].t / lo[key].t) : other(hi?.[key] ?? lo?.[key]))
  const made = notes[`fill-joblib-${cfg.entryCounts[1]}`]?.made
  return [
    `| hit cost ${cfg.entryCounts[1].toLocaleString('en-US')} entries / ${cfg.entryCounts[0]} entries (1.00x = flat) | ${peers.map(([, n]) => n).join(' | ')} |`,
    `| --- |${peers.map(() => ' --- ').join('|')}|`,
    `| per-call hit time ratio | ${peers.map(cell).join(' | ')} |`,
    '',
    `Entries made: ${cfg.entryCounts[1].toLocaleString('en-US')} for every Node peer` +
      (made !== undefined ? `, ${made.toLocaleString('en-US')} for joblib (its fill is capped at ${cfg.joblibFillSeconds} s)` : '') +
      '. Time to make them: ' +
      ['ours', 'node', 'memoizeFs', 'joblib']
        .map((p) => [p, notes[`fill-${p}-${cfg.entryCounts[1]}`]])
        .filter(([, v]) => v !== undefined)
        .map(([p, v]) => `${p === 'ours' ? 'this package' : p === 'node' ? 'plain Node' : p === 'memoizeFs' ? 'memoize-fs (16 in flight)' : 'joblib'} ${(v.seconds ?? v).toFixed(1)} s`)
        .join(', ') + '.',
    '',
    'Every peer hits each entry once before the timed hits, so the ratio is what the directory\'s size adds to a repeated hit. ' +
      'The first hit of an entry in a process reads its files: ' +
      (cfg.entryCounts.map((c) => notes[`first-hit-ours-${c}`]).every((n) => n?.t !== undefined)
        ? `this package's first hits cost ${cfg.entryCounts.map((c) => `${fmtTime(notes[`first-hit-ours-${c}`].t)} with ${c.toLocaleString('en-US')} entries`).join(', ')}.`
        : 'not measured in this run.'),
  ].join('\n')
}

function memoryTable(mem) {
  const peers = [['ours', 'this package'], ['node', 'plain Node'], ['joblib', 'joblib.Memory']]
  const cell = (c, load) =>
    c?.call === undefined ? other(c) : `${c.call.toFixed(2)}x N` + (load ? ` (${c.read.toFixed(2)}x once every page is read)` : '')
  const size = cfg.memoryBytes >= 1024 * MiB ? `${cfg.memoryBytes / 1024 / MiB} GiB` : `${cfg.memoryBytes / MiB} MiB`
  const lines = [`| ${size} Float64Array | ${peers.map(([, n]) => n).join(' | ')} |`, `| --- |${peers.map(() => ' --- ').join('|')}|`]
  for (const [id, cells] of Object.entries(mem)) {
    lines.push(`| ${id.replace('-', ', ')} | ${peers.map(([k]) => esc(cell(cells[k], id.startsWith('load')))).join(' | ')} |`)
  }
  return lines.join('\n')
}

/** Modification times of the built package, to notice a rebuild during the run (it would mix two builds). */
const buildStamp = () =>
  [...readdirSync(root).filter((f) => f.endsWith('.node')), ...readdirSync(join(root, 'dist')).map((f) => join('dist', f))]
    .map((f) => `${f}@${statSync(join(root, f)).mtimeMs}`).join(',')

// ---- main ----

const started = performance.now()
setup()
const { NumpyFuncCache } = await loadPackage()
const stampAtStart = buildStamp()
const memoizeFs = (await import('memoize-fs')).default
// Same filesystem as os.tmpdir(): that is where users' caches usually live too.
const tmp = mkdtempSync(join(os.tmpdir(), 'nfc-bench-'))
let result
try {
  log(`temp dir ${tmp}; Node rows`)
  const node = await runNode({ NumpyFuncCache, memoizeFs, tmp, cfg })
  log('joblib rows (Python)')
  const py = spawnSync(python, [join(here, 'joblib_bench.py'), JSON.stringify({ tmp, ...cfg })], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 })
  const pyOut = py.status === 0 ? JSON.parse(py.stdout) : { rows: {}, notes: {}, versions: {}, error: `joblib_bench.py exited ${py.status}` }
  for (const [id, cells] of Object.entries(pyOut.rows)) Object.assign((node.rows[id] ??= {}), cells)
  if (pyOut.error) for (const cells of Object.values(node.rows)) cells.joblib ??= { error: pyOut.error }
  log('large loads without forced GC, fresh processes (bench/large-load.mjs)')
  const largeLoads = [['256', 'yield'], ['1024', 'yield'], ['256', 'async'], ['256', 'sync']].map(([mib, mode]) => {
    const rounds = quick ? '4' : '30'
    const r = spawnSync(process.execPath, [join(here, 'large-load.mjs'), '--json', '--mib', quick ? '16' : mib, '--mode', mode, '--rounds', rounds, '--processes', '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    return r.status === 0 ? JSON.parse(r.stdout) : { mib, mode, error: `large-load.mjs exited ${r.status}` }
  })
  const memory = memorySection(tmp)
  result = { rows: node.rows, notes: { ...node.notes, ...pyOut.notes }, largeLoads, memory, machine: machine(tmp, pyOut.versions), cfg }
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
const seconds = (performance.now() - started) / 1000
result.seconds = seconds
const rebuilt = (() => { try { return buildStamp() !== stampAtStart } catch { return true } })()
const warning = rebuilt ? '**Warning: the package (dist/ or the .node addon) was rebuilt during this run, so rows may mix two builds: run it again.**\n\n' : ''
if (rebuilt) log('warning: the package was rebuilt during the run; rows may mix two builds')

writeFileSync(join(here, 'results.json'), JSON.stringify(result, null, 1) + '\n')
const chart = join(here, 'chart.png')
const charted = quiet(python, [join(here, 'chart.py'), join(here, 'results.json'), chart])

const b3one = Object.entries(result.notes).filter(([k]) => k.startsWith('blake3-1thread-')).map(([k, v]) => `${k.slice(15)}: ${v.t !== undefined ? fmtTime(v.t) : other(v)}`).join(', ')
const md = `# Benchmarks

Made by \`npm run bench\` (\`bench/run.mjs\`) in one run of ${(seconds / 60).toFixed(1)} minutes${quick ? ' (--quick: small sizes, a harness check only)' : ''}.
Every figure is a median over repeats (our column also gives the worst repeat), measured side by side on the same data in this run.
Peer columns are **peer time / our time**: above 1.00x this package is faster, below it is slower.

${warning}
## Machine

| | |
| --- | --- |
${result.machine.map(([k, v]) => `| ${k} | ${esc(v)} |`).join('\n')}

## Time

${mainTable(result.rows)}

${charted ? '![ratio of each peer to this package, log scale](bench/chart.png)\n' : '(chart.py failed; no chart)\n'}
### Large loads without forced GC, against \`fs.readFileSync\`

${largeLoadTable(result.largeLoads)}

### Hit cost as the directory grows

${flatnessTable(result.rows, result.notes)}

## Memory

Peak RSS (VmHWM) over the process's baseline while storing or loading a Float64Array of N = ${cfg.memoryBytes / MiB} MiB,
each case in a fresh process. A store counts the array the function makes (1.00x N);
anything above that is a copy. A memory-mapped load counts file pages only once they are read.

${memoryTable(result.memory)}

## How it is measured

- Small rows: ${cfg.smallSamples} samples of ${cfg.smallInner} hits (${cfg.missInner} misses, each with a fresh argument, the
  cache cleared between samples, untimed); per-call median. The 8 KiB result is \`Float64Array(1024)\` under two scalar arguments.
- Large rows: ${cfg.largeRepeats} repeats (memoize-fs ${cfg.memoizeFsRepeats}); a store is a miss on a cleared cache, a load a hit.
  The Node cases are interleaved (each repeat runs one op of every case), because on this VM the cost of first-touching
  freshly allocated memory drifts between fast and ~10x slower phases lasting seconds; interleaving makes every Node
  peer see the same phases (joblib runs in its own process, later, so its ratios carry that drift). Uniform random
  doubles, the same bytes for every peer (joblib reads the Node side's file). Files are in the page cache (warm): dropping
  caches is not possible here, so loads measure the copy from the page cache, not the disk.
- Hashing: a hit whose argument is the whole array and whose result is \`Float64Array(8)\`, so the time is the key.
  The raw limit is the \`blake3\` PyPI package on all cores (${b3one || 'one thread: n/a'} on one thread); plain Node is sha256.
- Directory size: each call hits another entry (stride 7919 over all entries); entries are \`Float64Array(8)\`.
- **memoize-fs** is async-only (its number stands in the sync and async rows) and stores JSON: its function returns
  \`Array.from(result)\` and the caller gets \`Float64Array.from(hit)\`, the least a user has to do to get a typed array back.
  Sizes whose JSON would pass V8's string limit are not run: it throws \`RangeError: Invalid string length\`
  (a 256 MiB trial on this machine threw after ~100 s at 5.4 GB RSS).
- **plain Node**: key = sha256 of \`JSON.stringify\` of the arguments (TypedArray arguments by their bytes), one \`<key>.bin\`
  written with \`fs.writeFileSync\` and read with \`fs.readFileSync\` into a \`Float64Array\` (\`fs.promises\` in async rows).
- **joblib.Memory**: \`Memory(location=tmp, verbose=0)\`, \`mmap_mode='r'\` in mmap rows,
  timed in its own Python process the same way.
- **raw limit**: bare \`fs.readFileSync\` / \`fs.writeFileSync\` of the same bytes (sync, also in async and mmap rows, as the
  limit of a copying load); a miss writes a new file each call. **memcpy**: \`TypedArray.prototype.set\` into a pre-faulted array.
- Our mmap rows check \`/proc/self/maps\`: a hit that is not memory-mapped is reported as an error, not timed.
`
writeFileSync(join(root, 'BENCHMARKS.md'), md)
// The remote tier, in a section of its own (spliced into BENCHMARKS.md before
// bookkeeping's, which goes in next); it starts its own S3 server.
log('remote tier on a loopback S3 server (bench/remote.mjs)')
const remote = spawnSync(process.execPath, ['--expose-gc', join(here, 'remote.mjs'), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
if (remote.status !== 0) {
  const why = `bench/remote.mjs ${remote.status === null ? `was killed (${remote.signal})` : `exited ${remote.status}`}; its error is in this run's output`
  log(`remote tier not measured: ${why}`)
  const failed = `<!-- remote:start -->\n## Remote tier (S3 on loopback)\n\nNot measured in this run: ${why}.\n<!-- remote:end -->`
  writeFileSync(join(root, 'BENCHMARKS.md'), md.replace(/\n## Memory\n/, `\n${failed}\n\n## Memory\n`))
}
// The index's own costs, in a section of their own (spliced into BENCHMARKS.md).
spawnSync(process.execPath, ['--expose-gc', join(here, 'bookkeeping.mjs'), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
// Results of several arrays (one .npz entry) against joblib, np.load and one array.
spawnSync(process.execPath, ['--expose-gc', join(here, 'several-arrays.mjs'), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
// Partial reads through an opened entry (directory and S3) against whole hits and raw reads.
spawnSync(process.execPath, ['--expose-gc', join(here, 'partial-reads.mjs'), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
// Results written straight into the cache (output) against a copying store, with peak memory.
spawnSync(process.execPath, [join(here, 'output.mjs'), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
// The first hit after a reboot against a normal hit, and a store against a synced one.
spawnSync(process.execPath, ['--expose-gc', join(here, 'reboot.mjs'), ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
// Requests per object-store operation, the event loop under maintenance
// calls, libuv's pool under pending remote calls, and the checks of async
// calls' arguments: sections of their own.
spawnSync(process.execPath, [join(here, 'remote-requests.mjs'), ...(quick ? ['--entries', '1000'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
spawnSync(process.execPath, [join(here, 'maintenance-loop.mjs'), '--entries', quick ? '2000' : '20000'], { stdio: ['ignore', 'ignore', 'inherit'] })
spawnSync(process.execPath, [join(here, 'pool-starvation.mjs'), ...(quick ? ['--rounds', '1', '--answer-ms', '500'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
spawnSync(process.execPath, ['--expose-gc', join(here, 'argument-checks.mjs'), ...(quick ? ['--mib', '32', '--samples', '5'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] })
console.log(mainTable(result.rows))
console.log()
console.log(flatnessTable(result.rows, result.notes))
console.log()
console.log(memoryTable(result.memory))
console.log(`\nWrote ${relative(process.cwd(), join(root, 'BENCHMARKS.md')) || 'BENCHMARKS.md'}${charted ? ' and bench/chart.png' : ''} in ${(seconds / 60).toFixed(1)} min.`)
