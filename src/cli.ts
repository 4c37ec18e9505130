#!/usr/bin/env node
// The numpy-func-cache command: list, summarize, prune and clear a cache directory.
import { opendirSync, readFileSync, rmdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { format as formatDuration } from '@lukeed/ms'
import { SingleBar } from 'cli-progress'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { filesize } from 'filesize'
import { NumpyFuncCache } from './cache'
import type { CacheStats, PruneReport, ResolvedLimits, VerifyReport } from './types'
import { native } from './native'
import { dtypeName } from './dtypes'
import { AGE_FORMS, SIZE_FORMS, parseAge, parseSize } from './units'


/**
 * The cache in `dir`, or null for an empty directory. Checked before opening,
 * because reading a cache writes its index into the directory.
 */
function openCache(dir: string): NumpyFuncCache | null {
  // An object store has no directory to look at: its listing shows only the cache's own objects.
  if (native.isStoreLocation(dir)) return new NumpyFuncCache(dir)
  let isDir: boolean
  try {
    isDir = statSync(dir).isDirectory()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`no such cache directory: ${dir}`)
    throw e
  }
  if (!isDir) throw new Error(`${dir} is not a directory`)
  let empty = true
  const listing = opendirSync(dir)
  try {
    for (let item = listing.readSync(); item !== null; item = listing.readSync()) {
      if (native.marksACache(item.name)) return new NumpyFuncCache(dir)
      empty = false
    }
  } finally {
    listing.closeSync()
  }
  if (empty) return null
  throw new Error(`${dir} is not a numpy-func-cache directory (no cache index or entries in it); left it unchanged`)
}

const NO_STATS: CacheStats = { entries: 0, bytes: 0, hits: 0, misses: 0, foreign: 0 }
const NO_REPORT: PruneReport = { removedEntries: 0, removedBytes: 0, adopted: 0, dropped: 0, removedLeftovers: 0, entries: 0, bytes: 0, foreign: 0 }

function sizeArg(text: string): number {
  const bytes = parseSize(text)
  if (bytes === undefined) throw new InvalidArgumentError(`Expected a size ${SIZE_FORMS}.`)
  return bytes
}

function ageArg(text: string): number {
  const ms = parseAge(text)
  if (ms === undefined) throw new InvalidArgumentError(`Expected an age ${AGE_FORMS}.`)
  return ms
}

function countArg(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('Expected a whole number.')
  return Number(text)
}

const size = (bytes: number) => filesize(bytes, { base: 2, standard: 'iec', round: 1 })
const count = (n: number, one: string, many: string) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`

function ago(date: Date, now: number): string {
  const ms = now - date.getTime()
  return ms < 1000 ? 'just now' : `${formatDuration(ms)} ago`
}

/**
 * Text from the directory (function names, dtypes) as a terminal may show
 * it: control characters, and the ones that reorder or hide text, as
 * \u escapes. Another user who can write the directory writes these.
 */
function printable(text: string): string {
  // C0 and C1 controls, DEL, line and paragraph separators, bidi embeddings, overrides and isolates.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu, (c) =>
    `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`,
  )
}

/** Every line of `text` made printable (see `printable`), the line breaks kept. */
function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n')
}

/**
 * Prints a line on stdout. Every line the command prints goes through
 * here, or `fail`, or commander's output (configured below): names, keys
 * and a store's error messages are another's text.
 */
function say(text: string): void {
  process.stdout.write(`${printableLines(text)}\n`)
}

/** Prints an error line on stderr, made printable like every other line. */
function fail(message: string): void {
  process.stderr.write(`error: ${printableLines(message)}\n`)
}

/** '<f8 float64': the NumPy descr and its name. */
function dtypeLabel(descr: string): string {
  const name = dtypeName(descr)
  return name === undefined ? descr : `${descr} ${name}`
}

/** Rows as columns two spaces apart, those in `right` right-aligned. (cli-table3 took minutes for 50,000 rows.) */
function columns(rows: string[][], right: number[]): string {
  const widths = rows[0].map((_, i) => rows.reduce((width, row) => Math.max(width, row[i].length), 0))
  const line = (row: string[]) => row.map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
  return rows.map((row) => line(row).join('  ').trimEnd()).join('\n')
}

/** JSON on stdout; characters JSON leaves raw (C1 controls, bidi) as \u escapes, which read back the same. */
function printJson(value: unknown): void {
  say(JSON.stringify(value, null, 2))
}

interface JsonOption {
  json?: boolean
}

function ls(dir: string, opts: JsonOption & { progress?: boolean }): void {
  const entries = withBar(opts, 'reading', (onProgress) => openCache(dir)?.entries({ onProgress })) ?? []
  if (opts.json) return printJson(entries)
  if (entries.length === 0) return say(`no entries in ${dir}`)
  const now = Date.now()
  let bytes = 0
  const rows = [['FUNCTION', 'SHAPE', 'DTYPE', 'SIZE', 'CREATED', 'LAST USED', 'KEY']]
  const shapeOf = (shape: number[]) => (shape.length ? shape.join('×') : '()')
  for (const e of entries) {
    bytes += e.bytes
    rows.push([
      e.function ? printable(e.function) : '(anonymous)',
      e.members ? count(e.members.length, 'array', 'arrays') : shapeOf(e.shape),
      e.members ? '' : printable(dtypeLabel(e.dtype)),
      size(e.bytes),
      ago(e.created, now),
      ago(e.lastUsed, now),
      printable(e.key.slice(0, 12)),
    ])
    // A result of several arrays: one line each, under its entry.
    for (const m of e.members ?? []) rows.push([`  ${printable(m.name)}`, shapeOf(m.shape), printable(dtypeLabel(m.dtype)), '', '', '', ''])
  }
  say(columns(rows, [1, 3]))
  say(`${count(entries.length, 'entry', 'entries')}, ${size(bytes)}`)
}

function stats(dir: string, opts: JsonOption & { progress?: boolean }): void {
  const s = withBar(opts, 'listing', (onProgress) => openCache(dir)?.stats({ onProgress })) ?? NO_STATS
  if (opts.json) return printJson(s)
  const lookups = s.hits + s.misses
  const rows = [
    ['entries', s.entries.toLocaleString('en-US')],
    ['size', `${size(s.bytes)} (${count(s.bytes, 'byte', 'bytes')})`],
    ['hits', s.hits.toLocaleString('en-US')],
    ['misses', s.misses.toLocaleString('en-US')],
    ['hit rate', lookups === 0 ? '-' : `${((100 * s.hits) / lookups).toFixed(1)}%`],
  ]
  if (s.foreign) rows.push(['foreign', `${count(s.foreign, 'object', 'objects')} not the cache's, skipped`])
  for (const [name, value] of rows) say(`${name.padEnd(10)}${value}`)
}

/**
 * A progress bar on stderr, drawn once there is something to count; a
 * count of objects listed while the total is unknown (an object store's listing).
 */
function progressBar(label: string): { onProgress: (done: number, total: number) => void; stop: () => void } {
  let bar: SingleBar | undefined
  let listed = false
  return {
    onProgress: (done, total) => {
      if (total === 0) {
        if (done > 0) process.stderr.write(`\rlisted ${done.toLocaleString('en-US')} objects`)
        listed = done > 0
        return
      }
      if (listed) {
        process.stderr.write('\n')
        listed = false
      }
      if (bar === undefined) {
        // noTTYOutput: a forced bar (--progress) also draws into a pipe or file.
        bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} entries`, noTTYOutput: true })
        bar.start(total, done)
      } else {
        bar.update(done)
      }
    },
    stop: () => {
      if (listed) process.stderr.write('\n')
      bar?.stop()
    },
  }
}

/** Runs `work` with a progress bar when asked for (or on a terminal without --json). */
function withBar<T>(opts: JsonOption & { progress?: boolean }, label: string, work: (onProgress?: (done: number, total: number) => void) => T): T {
  const bar = opts.progress || (!opts.json && process.stderr.isTTY) ? progressBar(label) : undefined
  try {
    return work(bar?.onProgress)
  } finally {
    bar?.stop()
  }
}

interface PruneOpts extends JsonOption {
  maxBytes?: number
  maxEntries?: number
  maxAge?: number
  progress?: boolean
}

function prune(dir: string, opts: PruneOpts, command: Command): void {
  const limits: ResolvedLimits = {}
  if (opts.maxBytes !== undefined) limits.maxBytes = opts.maxBytes
  if (opts.maxEntries !== undefined) limits.maxEntries = opts.maxEntries
  if (opts.maxAge !== undefined) limits.maxAge = opts.maxAge
  if (Object.keys(limits).length === 0) {
    command.error('error: prune needs at least one limit: --max-bytes, --max-entries or --max-age', { exitCode: 2 })
  }
  const cache = openCache(dir)
  const bar = opts.progress || (!opts.json && process.stderr.isTTY) ? progressBar('removing') : undefined
  let report: PruneReport
  try {
    report = cache?.prune(limits, { onProgress: bar?.onProgress }) ?? NO_REPORT
  } finally {
    bar?.stop()
  }
  if (opts.json) return printJson(report)
  say(`removed ${count(report.removedEntries, 'entry', 'entries')} (${size(report.removedBytes)})`)
  if (report.adopted) say(`adopted ${count(report.adopted, 'entry', 'entries')} missing from the index`)
  if (report.dropped) say(`dropped ${count(report.dropped, 'index row', 'index rows')} whose files were gone`)
  if (report.removedLeftovers) say(`removed ${count(report.removedLeftovers, 'leftover file', 'leftover files')}`)
  say(`kept ${count(report.entries, 'entry', 'entries')} (${size(report.bytes)})`)
  if (report.foreign) say(`left ${count(report.foreign, 'object', 'objects')} that are not the cache's`)
}

function verify(dir: string, opts: JsonOption & { dryRun?: boolean; progress?: boolean }): void {
  const cache = openCache(dir)
  const bar = opts.progress || (!opts.json && process.stderr.isTTY) ? progressBar('verifying') : undefined
  let report: VerifyReport
  try {
    report = cache?.verify({ dryRun: opts.dryRun ?? false, onProgress: bar?.onProgress }) ?? { checked: 0, damaged: [], removed: 0 }
  } finally {
    bar?.stop()
  }
  // Damage found is worth a failing exit, removed or not: something broke entries.
  if (report.damaged.length > 0) process.exitCode = 1
  if (opts.json) return printJson(report)
  const removed = opts.dryRun ? 'none removed (dry run)' : `removed ${count(report.removed, 'entry', 'entries')}`
  say(`checked ${count(report.checked, 'entry', 'entries')}: ${report.damaged.length} damaged, ${removed}`)
  for (const d of report.damaged) say(`  ${d.key.slice(0, 12)}  ${printable(d.reason)}`)
}

function clear(dir: string, opts: JsonOption & { removeDir?: boolean }): void {
  const cache = openCache(dir)
  // clearCache() reports nothing, so count what is there first.
  const before = cache?.stats() ?? NO_STATS
  const removeDir = opts.removeDir ?? false
  if (cache) cache.clearCache({ removeDir })
  else if (removeDir) rmdirSync(dir)
  const result = { removed: true, removedEntries: before.entries, removedBytes: before.bytes, removedDir: removeDir }
  if (opts.json) return printJson(result)
  say(`removed ${count(before.entries, 'entry', 'entries')} (${size(before.bytes)})${removeDir ? ` and ${dir}` : ''}`)
}

/**
 * Removes the entries named by key (whole, or a prefix of at least 6 hex
 * digits as ls shows them, naming one entry) and, with --function, every
 * entry of that function.
 */
function rm(dir: string, keys: string[], opts: JsonOption & { function?: string }): void {
  if (keys.length === 0 && opts.function === undefined) throw new Error('name entries to remove: keys (or key prefixes, as ls shows them) or --function <name>')
  const cache = openCache(dir)
  const entries = cache?.entries() ?? []
  const chosen = new Set<string>()
  for (const given of keys) {
    if (given.length < 6 || !native.isKeyPrefix(given)) throw new Error(`${given} is not a key: 6 to 64 lower-case hex digits, as ls shows them`)
    const matches = entries.filter((e) => e.key.startsWith(given))
    if (matches.length === 0) throw new Error(`no entry has a key starting with ${given} in ${dir}`)
    if (matches.length > 1) throw new Error(`${given} starts ${matches.length} keys in ${dir}: give more digits`)
    chosen.add(matches[0].key)
  }
  if (opts.function !== undefined) for (const e of entries) if (e.function === opts.function) chosen.add(e.key)
  const removed = entries.filter((e) => chosen.has(e.key) && cache!.remove(e.key))
  const bytes = removed.reduce((sum, e) => sum + e.bytes, 0)
  if (opts.json) return printJson({ removedEntries: removed.length, removedBytes: bytes, keys: removed.map((e) => e.key) })
  say(`removed ${count(removed.length, 'entry', 'entries')} (${size(bytes)})`)
}

const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }

const program = new Command('numpy-func-cache')
  .description('Inspect and maintain a numpy-func-cache directory or object-store location.')
  .version(version)
  .exitOverride()
  .showHelpAfterError('(run numpy-func-cache --help for usage)')
  // Its errors echo arguments as given. Set before the commands are made: they copy it.
  .configureOutput({
    writeOut: (text) => process.stdout.write(printableLines(text)),
    writeErr: (text) => process.stderr.write(printableLines(text)),
  })

function command(name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .argument('<dir>', 'the cache directory, or an object-store location (s3://bucket/prefix)')
    .option('--json', 'print JSON on stdout instead of text')
}

command('ls', 'list the entries, most recently used first')
  .option('--progress', 'show progress even when stderr is not a terminal or with --json')
  .action(ls)
command('stats', 'show entries, total size, hits, misses and hit rate')
  .option('--progress', 'show progress even when stderr is not a terminal or with --json')
  .action(stats)
command('prune', 'remove expired and least recently used entries until the limits hold')
  .option('--max-bytes <size>', 'keep at most this much: 10GB (powers of 1000), 512MiB or 1.5G (1024), bytes', sizeArg)
  .option('--max-entries <n>', 'keep at most this many entries', countArg)
  .option('--max-age <age>', 'remove entries unused for longer: 7d, 12h, 30m, 90s or milliseconds', ageArg)
  .option('--progress', 'show the progress bar even when stderr is not a terminal or with --json')
  .action(prune)
command('verify', 'check every entry completely (data against its digest); remove the damaged ones')
  .option('--dry-run', 'only report damaged entries, remove nothing')
  .option('--progress', 'show the progress bar even when stderr is not a terminal or with --json')
  .action(verify)
command('rm', 'remove entries by key (or a key prefix, as ls shows it) and/or by function')
  .argument('[keys...]', 'keys or key prefixes of at least 6 hex digits')
  .option('--function <name>', "every entry of this function ('(anonymous)' for one without a name)")
  .action(rm)
command('clear', "remove every entry (only the cache's own files)")
  .option('--remove-dir', 'also remove the directory (fails if other files are in it)')
  .action(clear)

try {
  program.parse()
} catch (e) {
  if (e instanceof CommanderError) {
    // Commander has printed the message or the help already.
    process.exitCode = e.exitCode === 0 ? 0 : 2
  } else {
    // Anything else (a bad directory, a failing cache) is one line on stderr.
    fail(e instanceof Error ? e.message : String(e))
    process.exitCode = 1
  }
}
