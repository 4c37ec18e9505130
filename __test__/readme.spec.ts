// The README's command-line examples are real: each `$ npx numpy-func-cache
// ... ./cache` block is run against the cache it describes (four entries of
// two functions, stored and used days ago, three hits and four misses) and
// must print what the README shows, keys aside (they depend on this test's
// function sources).
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { openSync, readFileSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { root, runPython, tempDir } from './helpers'
import { citations, mismatches, uncited } from './support/figures'

const CLI = join(root, 'dist', 'cli.js')
const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

interface Example {
  args: string[]
  output: string[]
}

/** Every `$ npx numpy-func-cache <command> ./cache ...` block of the README with the lines it shows. */
function examples(): Example[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  return [...readme.matchAll(/```\n\$ npx numpy-func-cache (.+)\n([\s\S]*?)```/g)].map((m) => ({
    args: m[1]!.split(' '),
    output: m[2]!.trimEnd().split('\n'),
  }))
}

/** Keys differ with the functions' sources: compare without them. */
const maskKeys = (lines: string[]) => lines.map((l) => l.replace(/\b[0-9a-f]{12}\b/g, '<key>'))

/**
 * The README's cache in `<work>/cache`: embed(1000) stored 2 days ago and
 * used 3 minutes ago, histogram(256) 2 days and 1 hour, embed(333333) 5 and
 * 2 days, spectrum(4096) 9 and 9 days; four misses, then three hits.
 */
function readmeCache(work: string): Record<string, string> {
  const dir = join(work, 'cache')
  const cache = new NumpyFuncCache(dir)
  const embed = cache.createCachedFunc(function embed(n: number) {
    return { data: new Float64Array(n * 3).map((_, i) => Math.sin(i)), shape: [n, 3] }
  })
  const histogram = cache.createCachedFunc(function histogram(bins: number) {
    return new Int32Array(bins).map((_, i) => i * 7)
  })
  const spectrum = cache.createCachedFunc(function spectrum(n: number) {
    return { data: new Float32Array(2 * n).map((_, i) => i / 3), shape: [n], dtype: '<c8' }
  })
  embed(333333)
  spectrum(4096)
  histogram(256)
  embed(1000)
  embed(1000)
  histogram(256)
  embed(1000)
  const byName: Record<string, string> = {}
  for (const e of cache.entries()) byName[`${e.function}${e.shape[0]}`] = e.key
  cache.close()
  // Ages as the README shows them, written into the index as microseconds.
  // (A minute of slack: the CLI rounds ages to the nearest unit.)
  const now = Date.now()
  const times: [string, number, number][] = [
    [byName.embed1000!, 2 * DAY, 3 * MINUTE + 10_000],
    [byName.histogram256!, 2 * DAY, HOUR + 10_000],
    [byName.embed333333!, 5 * DAY, 2 * DAY],
    [byName.spectrum4096!, 9 * DAY, 9 * DAY],
  ]
  const rows = times.map(([key, created, used]) => [key, (now - created) * 1000, (now - used) * 1000])
  runPython(
    `import sqlite3\nc = sqlite3.connect(sys.argv[1])\nfor key, created, used in json.loads(sys.argv[2]):\n    c.execute('UPDATE entries SET created = ?, last_used = ? WHERE key = ?', (created, used, key))\nc.commit()`,
    [join(dir, '.numpy-func-cache-index.sqlite'), JSON.stringify(rows)],
  )
  return byName
}

for (const example of examples()) {
  test(`README: $ npx numpy-func-cache ${example.args.join(' ')}`, (t) => {
    const work = tempDir(t)
    const keys = readmeCache(work)
    if (example.args[0] === 'verify') {
      // The README's verify finds embed(1000)'s data changed: flip its last byte.
      const fd = openSync(join(work, 'cache', `${keys.embed1000}.npy`), 'r+')
      writeSync(fd, Buffer.from([0xff]), 0, 1, 128 + 1000 * 3 * 8 - 1)
      closeSync(fd)
    }
    const r = spawnSync(process.execPath, [CLI, ...example.args], { cwd: work, encoding: 'utf8' })
    t.is(r.stderr, '')
    t.deepEqual(maskKeys(r.stdout.trimEnd().split('\n')), maskKeys(example.output), `the README shows other output than:\n${r.stdout}`)
  })
}

test('the README has the examples this file checks', (t) => {
  t.deepEqual(
    examples().map((e) => e.args[0]),
    ['ls', 'stats', 'prune', 'verify', 'rm', 'clear'],
  )
})

test("the README's table of error codes lists exactly ErrorCodes", (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const table = readme.slice(readme.indexOf('### Errors'), readme.indexOf('### `readNpy'))
  const listed = [...table.matchAll(/^\| `(ERR_NFC_[A-Z_]+)` \|/gm)].map((m) => m[1])
  t.deepEqual(listed.sort(), Object.values(ErrorCodes).sort())
})

// ---------------------------------------------------------------- figures quoted from BENCHMARKS.md

test('every figure the README quotes is in the BENCHMARKS.md row it cites', (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const benchmarks = readFileSync(join(root, 'BENCHMARKS.md'), 'utf8')
  t.true(citations(readme).length >= 15, 'the README cites its figures')
  t.deepEqual(
    mismatches(readme, benchmarks).map((m) => `README.md:${m.citation.line}: ${m.problem}`),
    [],
  )
})

test('every measured figure of the README (a decimal ratio, time or rate) cites its row', (t) => {
  t.deepEqual(uncited(readFileSync(join(root, 'README.md'), 'utf8')), [])
})

test('the figure check fails on a figure that differs from its row, a row that is not there, and an uncited figure', (t) => {
  const benchmarks = '## Time\n\n| Row | ours |\n| --- | --- |\n| Small hit, sync | 9.4 µs; worst 25.4 µs |\n'
  const cite = '(BENCHMARKS.md, "Time", "Small hit, sync")'
  t.deepEqual(mismatches(`A hit takes 9.4 µs ${cite}.`, benchmarks), [])
  t.regex(mismatches(`A hit takes 9.5 µs ${cite}.`, benchmarks)[0]!.problem, /9\.5 µs is not in its rows/)
  t.regex(mismatches('A hit takes 9.4 µs (BENCHMARKS.md, "Time", "Small miss").', benchmarks)[0]!.problem, /no lines of the section start with "Small miss"/)
  t.regex(mismatches('A hit takes 9.4 µs (BENCHMARKS.md, "Memory", "Small hit").', benchmarks)[0]!.problem, /no section "Memory"/)
  t.deepEqual(uncited(`A hit takes 9.4 µs ${cite}. A miss takes 0.8 ms.`), ['README.md:1: 0.8 ms'])
})
