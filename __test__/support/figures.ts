// The README's figures against the BENCHMARKS.md rows they cite. A citation
// is `(BENCHMARKS.md, "<section>", "<row>"[, "<row>"…])`: the section is a
// heading's start, a row the start of one line of that section (a table
// row's first cell, or a list item's start), "<table> / <row>" where tables
// share row names. Every figure of the sentence before a citation (since the
// previous citation) must be one of its rows' figures.

/** A measured figure as both files write it: `0.27x`, `78.1 ms`, `0.29 GiB/s`, `3127 MiB`. */
const FIGURE = /(?<![\w.])\d[\d,]*(?:\.\d+)?(?:x|\s?(?:µs|ms|s|GiB\/s|MiB|GiB|KiB|%))(?![\w/])/g
/** Sizes in the README's text are what was measured, not measurements (`a 256 MiB entry`). */
const SIZE = /(?:MiB|GiB|KiB)$/
const CITATION = /\(BENCHMARKS\.md, ((?:"[^"]+"(?:, )?)+)\)/g

export interface Citation {
  /** The README's line of the citation. */
  line: number
  /** Where in the README its figures are: from its sentence's start to its own end. */
  from: number
  to: number
  section: string
  rows: string[]
  /** The README's figures the citation covers. */
  figures: string[]
}

export interface Mismatch {
  citation: Citation
  problem: string
}

const figuresOf = (text: string) => [...text.replace(/\s+/g, ' ').matchAll(FIGURE)].map((m) => m[0])
/** Numbers a table gives bare, its unit in the header (`908` under "time (ms)"). */
const bareNumbers = (text: string) => [...text.matchAll(/(?<![\w.])\d[\d,]*(?:\.\d+)?(?=\s*\|)/g)].map((m) => m[0])
/** A figure's number: `908 ms` → `908`. */
const numberOf = (figure: string) => /^[\d,.]+/.exec(figure)![0]

/** Every citation of BENCHMARKS.md in `readme`, with the figures before it. */
export function citations(readme: string): Citation[] {
  const found: Citation[] = []
  let spanStart = 0
  for (const m of readme.matchAll(CITATION)) {
    const at = m.index
    // A span starts after the previous citation, or a paragraph's or list item's start.
    const before = readme.slice(0, at)
    const sentences = [...before.matchAll(/[.!?]\s+(?=[A-Z`*])/g)]
    const sentence = sentences.length > 0 ? sentences.at(-1)!.index + 1 : 0
    const starts = [spanStart, sentence, before.lastIndexOf('\n\n') + 2, ([...before.matchAll(/\n\s*(?:[-*]|\d+\.) /g)].at(-1)?.index ?? -1) + 1]
    const span = readme.slice(Math.max(...starts), at)
    const [section, ...rows] = [...m[1]!.matchAll(/"([^"]+)"/g)].map((q) => q[1]!)
    const figures = figuresOf(span).filter((f) => !SIZE.test(f))
    spanStart = at + m[0].length
    found.push({ line: before.split('\n').length, from: Math.max(...starts), to: spanStart, section: section!, rows, figures })
  }
  return found
}

/** The lines of the section of `benchmarks` whose heading starts with `section`. */
function sectionLines(benchmarks: string, section: string): string[] | undefined {
  const lines = benchmarks.split('\n')
  const start = lines.findIndex((l) => /^#{2,3} /.test(l) && l.replace(/^#+ /, '').startsWith(section))
  if (start < 0) return undefined
  const end = lines.findIndex((l, i) => i > start && /^#{2,3} /.test(l))
  return lines.slice(start + 1, end < 0 ? undefined : end)
}

/** The one line of `lines` that `row` names (see the module's docs), else why not. */
function rowLine(lines: string[], row: string): string {
  const [table, name] = row.includes(' / ') ? row.split(' / ', 2) : [undefined, row]
  let header: string | undefined
  const matches: string[] = []
  for (const line of lines) {
    const cell = line.replace(/^\|\s*/, '').replace(/^- /, '')
    if (!line.startsWith('|') && !line.startsWith('- ')) {
      header = undefined
      continue
    }
    if (line.startsWith('|') && !line.startsWith('| ---')) {
      // A table's first row is its header.
      if (header === undefined) {
        header = cell
        continue
      }
    }
    if ((table === undefined || header?.startsWith(table)) && cell.startsWith(name!)) matches.push(line)
  }
  if (matches.length !== 1) throw new Error(`${matches.length === 0 ? 'no' : matches.length} lines of the section start with "${row}"`)
  return matches[0]!
}

/** What the README's citations get wrong against `benchmarks`. */
export function mismatches(readme: string, benchmarks: string): Mismatch[] {
  const wrong: Mismatch[] = []
  for (const citation of citations(readme)) {
    const lines = sectionLines(benchmarks, citation.section)
    if (!lines) {
      wrong.push({ citation, problem: `BENCHMARKS.md has no section "${citation.section}"` })
      continue
    }
    if (citation.rows.length === 0) {
      wrong.push({ citation, problem: 'it names no row' })
      continue
    }
    const measured = new Set<string>()
    const bare = new Set<string>()
    for (const row of citation.rows) {
      try {
        const line = rowLine(lines, row)
        for (const f of figuresOf(line)) measured.add(f)
        for (const n of bareNumbers(line)) bare.add(n)
      } catch (e) {
        wrong.push({ citation, problem: `section "${citation.section}": ${(e as Error).message}` })
      }
    }
    for (const figure of citation.figures) {
      if (!measured.has(figure) && !bare.has(numberOf(figure))) {
        wrong.push({ citation, problem: `${figure} is not in its rows (${[...measured, ...bare].join(', ')})` })
      }
    }
  }
  return wrong
}


/** Figures that look measured (a decimal ratio, time or rate) and that no citation covers, as `README.md:<line>: <figure>`. */
export function uncited(readme: string): string[] {
  const spans = citations(readme)
  const decimal = /(?<![\w.])\d+\.\d+(?:x|\s?(?:µs|ms|s|GiB\/s))(?![\w/])/g
  return [...readme.matchAll(decimal)]
    .filter((m) => !spans.some((c) => c.from <= m.index && m.index < c.to))
    .map((m) => `README.md:${readme.slice(0, m.index).split('\n').length}: ${m[0]}`)
}
