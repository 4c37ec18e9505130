// The numpy-func-cache command line: the built dist/cli.js run as a child
// process against real cache directories filled through the real API.
import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type CacheEntryInfo, NumpyFuncCache } from '../dist'
import { advanceClock } from '../dist/testing'
import { root, tempDir } from './helpers'

const CLI = join(root, 'dist', 'cli.js')
const ENTRY_FILE = /^[0-9a-f]{64}\.(npy|json)$/
const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

function cli(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Runs the CLI with `--json`, expecting success; returns the parsed stdout. */
function cliJson(t: ExecutionContext, ...args: string[]): any {
  const r = cli(...args, '--json')
  t.is(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

/** Entries as `--json` prints them: dates as ISO strings. */
const asJson = (entries: CacheEntryInfo[]) => JSON.parse(JSON.stringify(entries))

/** Keys of the entries whose files are in `dir`. */
function keysOnDisk(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => ENTRY_FILE.test(n))
  return [...new Set(names.map((n) => n.slice(0, 64)))].sort()
}

/** Every file's name and bytes, to show a directory was left unchanged. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((n) => {
      const path = join(dir, n)
      return [n, statSync(path).isDirectory() ? 'directory' : readFileSync(path).toString('hex')]
    }),
  )
}

/** Sizes as the CLI shows them: binary units, one decimal, a trailing .0 dropped. */
function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 ** 2) return `${+(bytes / 1024).toFixed(1)} KiB`
  return `${+(bytes / 1024 ** 2).toFixed(1)} MiB`
}

/**
 * A cache with four functions of different shapes and dtypes, used in a known
 * order: most recently used first, embed, flags, spectrum, counts.
 */
function populated(t: ExecutionContext): { dir: string; cache: NumpyFuncCache } {
  const dir = join(tempDir(t), 'cache')
  const cache = new NumpyFuncCache(dir)
  const embed = cache.createCachedFunc(function embed(n: number) {
    return { data: new Float64Array(n * 3).fill(n), shape: [n, 3] }
  })
  const counts = cache.createCachedFunc(function counts(n: number) {
    return new Int32Array(n).fill(7)
  })
  const spectrum = cache.createCachedFunc(function spectrum(n: number) {
    return { data: new Float32Array(2 * n), shape: [n], dtype: '<c8' }
  })
  const flags = cache.createCachedFunc(function flags() {
    return { data: new Uint8Array([1, 0, 0, 1]), shape: [2, 2], dtype: '|b1' }
  })
  // Apart in time (on the cache's clock, moved on), so "most recently used" has one answer.
  for (const call of [() => embed(1000), () => counts(10), () => spectrum(64), () => flags(), () => embed(1000)]) {
    call()
    advanceClock(cache, 1)
  }
  cache.stats() // writes the hit just recorded to the index, for the CLI to see
  return { dir, cache }
}

/**
 * Fills `dir` with `ages.length` entries, copies of one tiny entry under new
 * keys, entry i last used ages[i] ms ago; the index adopts them from the
 * files' times. Returns their keys.
 */
function aged(t: ExecutionContext, dir: string, ages: number[]): string[] {
  const stage = join(tempDir(t), 'stage')
  new NumpyFuncCache(stage).createCachedFunc(function tiny() {
    return new Uint8Array(4)
  })()
  const [source] = keysOnDisk(stage)
  mkdirSync(dir, { recursive: true })
  const now = Date.now()
  const record = JSON.parse(readFileSync(join(stage, `${source}.json`), 'utf8'))
  return ages.map((age, i) => {
    const key = createHash('sha256').update(`entry ${i}`).digest('hex')
    const when = new Date(now - age)
    copyFileSync(join(stage, `${source}.npy`), join(dir, `${key}.npy`))
    // Stored then (the record says when), and not used since (the files' times say so).
    writeFileSync(join(dir, `${key}.json`), JSON.stringify({ ...record, created: when.toISOString() }))
    for (const ext of ['npy', 'json']) utimesSync(join(dir, `${key}.${ext}`), when, when)
    return key
  })
}

test.before(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build:ts first`)
})

test('ls lists every entry, most recently used first, with function, shape, dtype, size and key', (t) => {
  const { dir, cache } = populated(t)
  const entries = cache.entries()
  t.deepEqual(
    entries.map((e) => e.function),
    ['embed', 'flags', 'spectrum', 'counts'],
  )

  const json = cliJson(t, 'ls', dir)
  t.deepEqual(json, asJson(entries))
  for (const e of json) {
    const files = statSync(join(dir, `${e.key}.npy`)).size + statSync(join(dir, `${e.key}.json`)).size
    t.is(e.bytes, files, `bytes of ${e.function}`)
  }

  const r = cli('ls', dir)
  t.is(r.status, 0, r.stderr)
  const lines = r.stdout.trimEnd().split('\n')
  t.regex(lines[0], /^FUNCTION +SHAPE +DTYPE +SIZE +CREATED +LAST USED +KEY$/)
  const expected = [
    ['embed', '1000×3', '<f8 float64'],
    ['flags', '2×2', '|b1 bool'],
    ['spectrum', '64', '<c8 complex64'],
    ['counts', '10', '<i4 int32'],
  ]
  for (const [i, [name, shape, dtype]] of expected.entries()) {
    const e = entries[i]
    const cells = lines[i + 1].split(/ {2,}/)
    t.is(cells.length, 7)
    t.deepEqual([...cells.slice(0, 4), cells[6]], [name, shape, dtype, human(e.bytes), e.key.slice(0, 12)])
    // Created and last used: the tests run side by side, so some seconds may have passed.
    for (const age of cells.slice(4, 6)) t.regex(age, /^(just now|\d+s ago)$/)
  }
  const total = entries.reduce((sum, e) => sum + e.bytes, 0)
  t.is(lines[5], `4 entries, ${human(total)}`)
  t.is(lines.length, 6)
})

test('ls shows ages, and an empty directory as an empty cache without writing into it', (t) => {
  const dir = join(tempDir(t), 'cache')
  // Ages are real time, as the CLI's own clock sees them, and round to the nearest unit: 4 min 31 s
  // shows as 5m until it is 5 min 30 s old, so the CLI has most of a minute to start.
  aged(t, dir, [3 * DAY, 4.5 * MINUTE + 1000])
  const lines = cli('ls', dir).stdout.trimEnd().split('\n')
  t.regex(lines[1], / 5m ago +5m ago /)
  t.regex(lines[2], / 3d ago +3d ago /)

  const empty = tempDir(t)
  const r = cli('ls', empty)
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, `no entries in ${empty}\n`)
  t.deepEqual(cliJson(t, 'ls', empty), [])
  t.deepEqual(cliJson(t, 'stats', empty), { entries: 0, bytes: 0, hits: 0, misses: 0, foreign: 0 })
  t.deepEqual(readdirSync(empty), [])
})

test('stats prints the totals cache.stats() gives', (t) => {
  const { dir, cache } = populated(t)
  const stats = cache.stats()
  t.like(stats, { entries: 4, hits: 1, misses: 4 })
  t.deepEqual(cliJson(t, 'stats', dir), stats)

  const r = cli('stats', dir)
  t.is(r.status, 0, r.stderr)
  t.deepEqual(r.stdout.trimEnd().split('\n'), [
    'entries   4',
    `size      ${human(stats.bytes)} (${stats.bytes.toLocaleString('en-US')} bytes)`,
    'hits      1',
    'misses    4',
    'hit rate  20.0%',
  ])
})

test('prune --max-entries removes the least recently used entries and their files', (t) => {
  const { dir, cache } = populated(t)
  const before = cache.entries()
  const report = cliJson(t, 'prune', dir, '--max-entries', '2')
  const kept = before.slice(0, 2)
  t.deepEqual(report, {
    removedEntries: 2,
    removedBytes: before[2].bytes + before[3].bytes,
    adopted: 0,
    dropped: 0,
    removedLeftovers: 0,
    entries: 2,
    bytes: kept[0].bytes + kept[1].bytes,
    foreign: 0,
  })
  t.deepEqual(keysOnDisk(dir), kept.map((e) => e.key).sort())
  t.deepEqual(cache.entries(), kept)

  const r = cli('prune', dir, '--max-entries', '1')
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, `removed 1 entry (${human(kept[1].bytes)})\nkept 1 entry (${human(kept[0].bytes)})\n`)
  t.is(r.stderr, '', 'no progress bar when stderr is not a terminal')
  t.deepEqual(keysOnDisk(dir), [kept[0].key])
})

test('prune --max-bytes keeps the most recently used entries that fit', (t) => {
  const { dir, cache } = populated(t)
  const before = cache.entries()
  const limit = before[0].bytes + before[1].bytes
  const report = cliJson(t, 'prune', dir, '--max-bytes', `${limit}B`)
  t.like(report, { removedEntries: 2, entries: 2, bytes: limit })
  t.deepEqual(keysOnDisk(dir), [before[0].key, before[1].key].sort())
  t.like(cliJson(t, 'prune', dir, '--max-bytes', '1GB'), { removedEntries: 0, entries: 2 })
})

test('prune --max-bytes units: MB are powers of 1000, MiB and M powers of 1024', (t) => {
  const dir = join(tempDir(t), 'cache')
  const cache = new NumpyFuncCache(dir)
  cache.createCachedFunc(function small() {
    return new Uint8Array(40_000)
  })()
  advanceClock(cache, 1)
  cache.createCachedFunc(function big() {
    return new Float64Array(127_500) // 1,020,000 bytes of data: between 1 MB and 1 MiB
  })()
  const [big, small] = cache.entries()
  t.true(big.function === 'big' && big.bytes > 1e6 && big.bytes < 1024 ** 2)
  t.true(big.bytes + small.bytes > 1024 ** 2)
  for (const unit of ['1MiB', '1M', '1.0 MiB']) {
    t.like(cliJson(t, 'prune', dir, '--max-bytes', unit), { removedEntries: unit === '1MiB' ? 1 : 0, entries: 1 }, unit)
  }
  t.like(cliJson(t, 'prune', dir, '--max-bytes', '1MB'), { removedEntries: 1, entries: 0 })
  t.deepEqual(keysOnDisk(dir), [])
})

test('prune --max-age removes entries unused for longer, in days, minutes or milliseconds', (t) => {
  const dir = join(tempDir(t), 'cache')
  const keys = aged(t, dir, [10 * DAY, 3 * DAY, 60 * 60_000, 60_000])
  t.like(cliJson(t, 'prune', dir, '--max-age', '2d'), { removedEntries: 2, entries: 2 })
  t.deepEqual(keysOnDisk(dir), keys.slice(2).sort())
  t.like(cliJson(t, 'prune', dir, '--max-age', '30m'), { removedEntries: 1, entries: 1 })
  t.like(cliJson(t, 'prune', dir, '--max-age', String(10 * 60_000)), { removedEntries: 0, entries: 1 })
  t.deepEqual(keysOnDisk(dir), [keys[3]])
})

test('prune of 20,000 entries removes the oldest and draws a progress bar when asked', (t) => {
  const dir = join(tempDir(t), 'cache')
  const n = 20_000
  // Entry i was last used (n - i) hours ago (plus half an hour, away from the limits): the
  // ages are real time, and writing and pruning 20,000 entries on a busy machine takes a while.
  const keys = aged(t, dir, Array.from({ length: n }, (_, i) => (n - i) * HOUR + HOUR / 2))
  const cache = new NumpyFuncCache(dir)
  cache.prune() // adopts the copies into the index
  t.is(cache.stats().entries, n)

  const r = cli('prune', dir, '--max-entries', '5000', '--progress', '--json')
  t.is(r.status, 0, r.stderr)
  t.like(JSON.parse(r.stdout), { removedEntries: 15_000, entries: 5000 })
  t.regex(r.stderr, /removing \[=+\] 100% 15000\/15000 entries/)
  t.deepEqual(keysOnDisk(dir), keys.slice(15_000).sort())
  t.is(cache.stats().entries, 5000)

  const rows = cli('ls', dir)
    .stdout.trimEnd()
    .split('\n')
    .slice(1, -1)
    .map((line) => line.split(/ {2,}/))
  const newestFirst = keys.slice(15_000).reverse()
  t.deepEqual(
    rows.map((cells) => cells[6]),
    newestFirst.map((key) => key.slice(0, 12)),
  )
  t.deepEqual(rows[0].slice(4, 6), ['2h ago', '2h ago']) // 1.5 hours
  t.deepEqual(rows[4999].slice(4, 6), ['208d ago', '208d ago']) // 5000.5 hours

  // 1000 hours: the 999 entries used 1.5 to 999.5 hours ago stay.
  t.like(cliJson(t, 'prune', dir, '--max-age', '1000h'), { removedEntries: 5000 - 999, entries: 999 })
  t.deepEqual(keysOnDisk(dir), keys.slice(n - 999).sort())
})

const script = spawnSync('script', ['--version']).status === 0

;(process.platform === 'linux' && script ? test : test.skip)('prune draws the progress bar on a terminal by itself', (t) => {
  const dir = join(tempDir(t), 'cache')
  aged(t, dir, Array.from({ length: 3000 }, (_, i) => (3000 - i) * 1000))
  // script(1) runs the command on a pseudo-terminal and copies what it writes.
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} prune ${JSON.stringify(dir)} --max-entries 1000`
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /removing \[=+\] 100% 2000\/2000 entries/)
  t.regex(r.stdout, /removed 2,000 entries/)
  t.is(keysOnDisk(dir).length, 1000)
})

test('clear removes every entry and leaves other files alone; --remove-dir removes the directory', (t) => {
  const { dir, cache } = populated(t)
  const { entries, bytes } = cache.stats()
  writeFileSync(join(dir, 'notes.txt'), 'keep me\n')
  t.deepEqual(cliJson(t, 'clear', dir), { removed: true, removedEntries: entries, removedBytes: bytes, removedDir: false })
  t.deepEqual(keysOnDisk(dir), [])
  t.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'keep me\n')

  // Only cache files in it: the directory goes too.
  const other = populated(t)
  const otherBytes = other.cache.stats().bytes
  const r = cli('clear', other.dir, '--remove-dir')
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, `removed 4 entries (${human(otherBytes)}) and ${other.dir}\n`)
  t.false(existsSync(other.dir))
})

test('clear --remove-dir with other files in the directory fails and keeps them', (t) => {
  const { dir } = populated(t)
  writeFileSync(join(dir, 'notes.txt'), 'keep me\n')
  const r = cli('clear', dir, '--remove-dir')
  t.is(r.status, 1)
  t.regex(r.stderr, /^error: .*not removed/)
  t.true(r.stderr.includes(dir))
  t.deepEqual(keysOnDisk(dir), [])
  t.is(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'keep me\n')
})

test('a missing directory, a file and a foreign directory are errors that change nothing', (t) => {
  const base = tempDir(t)
  const missing = join(base, 'nope')
  const file = join(base, 'file.npy')
  writeFileSync(file, 'not a cache')
  const foreign = join(base, 'foreign')
  mkdirSync(foreign)
  writeFileSync(join(foreign, 'notes.txt'), 'mine\n')
  mkdirSync(join(foreign, 'sub'))
  const before = snapshot(base)

  for (const command of [['ls'], ['stats'], ['prune', '--max-entries', '0'], ['clear', '--remove-dir']]) {
    const [name, ...rest] = command
    for (const [dir, message] of [
      [missing, `error: no such cache directory: ${missing}\n`],
      [file, `error: ${file} is not a directory\n`],
      [
        foreign,
        `error: ${foreign} is not a numpy-func-cache directory (no cache index or entries in it); left it unchanged\n`,
      ],
    ]) {
      for (const json of [[], ['--json']]) {
        const r = cli(name, dir, ...rest, ...json)
        t.is(r.status, 1, `${name} ${dir}`)
        t.is(r.stderr, message)
        t.is(r.stdout, '')
      }
    }
  }
  t.deepEqual(snapshot(base), before)
  t.deepEqual(readdirSync(foreign).sort(), ['notes.txt', 'sub'])
})

test('bad arguments are usage errors that name them, with exit code 2', (t) => {
  const { dir, cache } = populated(t)
  const cases: [string[], RegExp][] = [
    [['frob', dir], /unknown command 'frob'/],
    [['prune', dir, '--max-bytes', '10XB'], /'--max-bytes <size>' argument '10XB' is invalid/],
    [['prune', dir, '--max-bytes', '10iB'], /argument '10iB' is invalid/],
    [['prune', dir, '--max-age', 'soon'], /'--max-age <age>' argument 'soon' is invalid/],
    [['prune', dir, '--max-age', '-1d'], /argument '-1d' is invalid/],
    [['prune', dir, '--max-entries', '2.5'], /'--max-entries <n>' argument '2.5' is invalid/],
    [['prune', dir], /prune needs at least one limit: --max-bytes, --max-entries or --max-age/],
    [['prune', dir, '--json'], /prune needs at least one limit/],
    [['ls', dir, '--all'], /unknown option '--all'/],
    [['ls'], /missing required argument 'dir'/],
    [['stats', dir, dir], /too many arguments for 'stats'/],
    [[], /Usage: numpy-func-cache/],
  ]
  for (const [args, message] of cases) {
    const r = cli(...args)
    t.is(r.status, 2, args.join(' '))
    t.regex(r.stderr, message)
    t.is(r.stdout, '')
  }
  t.is(cache.stats().entries, 4, 'nothing was pruned')
})

test('--help and --version', (t) => {
  const help = cli('--help')
  t.is(help.status, 0)
  for (const command of ['ls', 'stats', 'prune', 'clear']) t.regex(help.stdout, new RegExp(`^  ${command} \\[options\\] <dir>`, 'm'))
  const pruneHelp = cli('prune', '--help')
  t.is(pruneHelp.status, 0)
  t.regex(pruneHelp.stdout, /--max-bytes <size>[\s\S]*--max-entries <n>[\s\S]*--max-age <age>[\s\S]*--json/)
  const version = cli('--version')
  t.is(version.status, 0)
  t.is(version.stdout, `${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}\n`)
})

test('verify finds a flipped bit in a large entry that a hit does not check, reports it, and removes it unless --dry-run', (t) => {
  const dir = join(tempDir(t), 'cache')
  const cache = new NumpyFuncCache(dir)
  const f = cache.createCachedFunc((n: number) => new Float64Array(n).fill(n), { name: 'fill' })
  f(3)
  f(100_000) // 800 kB: a hit checks its header and length, not its data
  const big = readdirSync(dir).find((n) => n.endsWith('.npy') && statSync(join(dir, n)).size > 700_000)!
  const bytes = readFileSync(join(dir, big))
  bytes[bytes.length - 100] ^= 0x08
  writeFileSync(join(dir, big), bytes)
  t.is(f(100_000).length, 100_000, 'a plain hit does not see it')

  const dry = cli('verify', dir, '--dry-run', '--json')
  t.is(dry.status, 1, 'damage found: a failing exit')
  const report = JSON.parse(dry.stdout)
  t.like(report, { checked: 2, removed: 0 })
  t.deepEqual(report.damaged.map((d: { key: string }) => `${d.key}.npy`), [big])
  t.regex(report.damaged[0].reason, /digest/)
  t.true(existsSync(join(dir, big)), '--dry-run removes nothing')

  const text = cli('verify', dir)
  t.is(text.status, 1)
  t.regex(text.stdout, /^checked 2 entries: 1 damaged, removed 1 entry\n {2}[0-9a-f]{12} {2}its data does not match/)
  t.false(existsSync(join(dir, big)))
  const again = cli('verify', dir)
  t.is(again.status, 0, again.stderr)
  t.is(again.stdout, 'checked 1 entry: 0 damaged, removed 0 entries\n')
})

test('rm removes entries by key, by a key prefix as ls shows it, and by function; unknown or ambiguous keys are errors that remove nothing', (t) => {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const sq = cache.createCachedFunc(function squares(n: number) {
    return new Float64Array(n).map((_, i) => i * i)
  })
  const anon = cache.createCachedFunc((n: number) => new Float32Array(n))
  for (const n of [1, 2, 3]) sq(n)
  anon(1)
  const all = cache.entries()
  const [first, second] = all.filter((e) => e.function === 'squares')
  const before = keysOnDisk(dir)

  for (const bad of ['zzzzzz', '12345', '000000000000']) {
    const r = cli('rm', dir, bad)
    t.is(r.status, 1, bad)
    t.regex(r.stderr, bad === '000000000000' ? /no entry has a key starting with 000000000000/ : /is not a key/)
  }
  t.is(cli('rm', dir).status, 1, 'nothing named')
  t.deepEqual(keysOnDisk(dir), before, 'failed commands removed nothing')
  t.is(before.length, 4)

  const byPrefix = cliJson(t, 'rm', dir, first!.key.slice(0, 12), second!.key)
  t.deepEqual(byPrefix.keys.sort(), [first!.key, second!.key].sort())
  t.is(byPrefix.removedEntries, 2)
  t.is(byPrefix.removedBytes, first!.bytes + second!.bytes)
  const byFunction = cliJson(t, 'rm', dir, '--function', 'squares')
  t.is(byFunction.removedEntries, 1)
  t.deepEqual(keysOnDisk(dir), [all.find((e) => e.function === '(anonymous)')!.key])
  t.regex(cli('rm', dir, '--function', '(anonymous)').stdout, /^removed 1 entry \(/)
  t.deepEqual(keysOnDisk(dir), [])
})
