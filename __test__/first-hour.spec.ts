// The first hour with the package (issue 14): every code example of the
// README, read from it at test time, run as a user would run it from the
// packed tarball, in strict TypeScript, ES modules and CommonJS, and every
// `npx numpy-func-cache` command of its ```sh blocks run against what those
// examples left, in README order.
//
// Where each part of the first hour is covered:
// - a fresh clone's `npm run demo`: demo.spec.ts checks that it is the setup
//   step and examples/demo.mjs, and runs the demo (the setup is npm test's too);
// - a fresh clone's `npm test`: CI runs it (.ci/run), and this spec is part of
//   it (test:js), so no test runs it again;
// - `npm install numpy-func-cache`: the tarballs installed here and in
//   pack.spec.ts (support/package.ts; their contents: pack.spec.ts), and from
//   a registry: scripts/registry-test.mjs;
// - the `$ npx numpy-func-cache ...` output examples of "Command line":
//   readme.spec.ts;
// - every ```ts and ```js block, and every `npx numpy-func-cache` line of a
//   ```sh block: here.
import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { root } from './helpers'
import { childEnv, nodeTypes, packAndInstall, removePacked, tsc } from './support/package'
import { type S3Server, startServer } from './support/s3'

// ---------------------------------------------------------------------------
// The README, as its reader sees it.

interface Block {
  /** README line of the block's first line of code. */
  line: number
  lines: string[]
}
interface Command {
  line: number
  /** The command as the README gives it, without its `# comment`. */
  text: string
}
type Step = { block: Block } | { command: Command }

/** Every ```ts / ```js block and every `npx numpy-func-cache` line of a ```sh block, in README order. */
function readmeSteps(): Step[] {
  const lines = readFileSync(join(root, 'README.md'), 'utf8').split(/\r?\n/)
  const steps: Step[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!)
    if (!open) continue
    const start = i + 1
    while (i + 1 < lines.length && !/^```\s*$/.test(lines[i + 1]!)) i++
    const body = lines.slice(start, i + 1)
    i++ // the closing fence
    const lang = open[1]
    if (lang === 'ts' || lang === 'js') steps.push({ block: { line: start + 1, lines: body } })
    if (lang === 'sh') {
      body.forEach((text, k) => {
        if (text.startsWith('npx numpy-func-cache')) steps.push({ command: { line: start + 1 + k, text: text.replace(/\s+#.*$/, '').trim() } })
      })
    }
  }
  return steps
}

// ---------------------------------------------------------------------------
// What the examples use without defining it. Explicit on purpose: a block
// that uses another name fails to type-check, naming its README line.

/**
 * The README's example locations. Directories are made fresh under each
 * run's own temporary directory; the object store is the loopback S3
 * server, with the README's bucket made on it, configured through the
 * AWS_* variables as the README says users do.
 */
const LOCATIONS = ['/path/to/cache', '/scratch/cache', '/scratch/nfc', 's3://team-bucket/embeddings']
const BUCKET = 'team-bucket'
/**
 * Placeholders of the command synopsis ("Command line"): the directory is the top block's shared cache;
 * <name> names no function the examples stored, so rm removes nothing and the commands after it still find entries.
 */
const PLACEHOLDERS: Record<string, string> = { '<dir>': '/scratch/cache', N: '100', '<name>': 'no-such-function' }

/**
 * The fixtures a reader would expect: real functions that count their calls
 * (in `__calls`), data, and what later blocks continue from the top one
 * (its import and its `cache`). Left out where a block imports the name.
 */
const FIXTURES: Record<string, string> = {
  NumpyFuncCache: 'const NumpyFuncCache = __nfc.NumpyFuncCache',
  // The top block's expensive function: powers of a ramp, 1000 float64s.
  expensive: `function expensive(n: number, opts: { order?: number } = {}): Float64Array {
    __calls.expensive++
    return Float64Array.from({ length: 1000 }, (_, i) => (n + i / 1000) ** (opts.order ?? 1))
  }`,
  // The object-store block's: one row of `dim` float32s per text.
  computeEmbeddings: `async function computeEmbeddings(texts: string[], p: { dim: number }): Promise<{ data: Float32Array; shape: number[] }> {
    __calls.computeEmbeddings++
    const data = new Float32Array(texts.length * p.dim)
    texts.forEach((text, row) => {
      for (let j = 0; j < p.dim; j++) data[row * p.dim + j] = text.charCodeAt(j % text.length) / 128
    })
    return { data, shape: [texts.length, p.dim] }
  }`,
  shard: "const shard = ['the first hour', 'with numpy-func-cache', 'from a packed tarball']",
  params: "const params = { model: 'char-codes', dim: 8 }",
  cache: 'const cache = new __nfc.NumpyFuncCache(__fixtureCache)',
}

/**
 * The checks a program makes of what the block's own comments and calls
 * claim, each recorded in `__claims`:
 * - `// miss: ...` / `// hit: ...`: the statement called the fixtures once / not at all;
 * - `// true ...` / `// false ...` after an expression: its value;
 * - `// { a, b } ...` after an expression: an object with exactly those keys;
 * - `x.clearCache()`: x's directory holds no entry files after it;
 *   `x.clearCache({ removeDir: true })`: the directory is gone.
 */
const HELPERS = `
const __calls: Record<string, number> = { expensive: 0, computeEmbeddings: 0 }
const __claims: { line: number; claim: string; ok: boolean; got: unknown; path?: string }[] = []
const __totalCalls = (): number => Object.values(__calls).reduce((a, b) => a + b, 0)
let __mark = 0
function __before(): void {
  __mark = __totalCalls()
}
function __computed(line: number, claim: 'miss' | 'hit'): void {
  const got = __totalCalls() - __mark
  __claims.push({ line, claim, ok: got === (claim === 'miss' ? 1 : 0), got: got + ' call(s) of the function' })
}
function __is(line: number, claim: boolean, got: unknown): void {
  __claims.push({ line, claim: String(claim), ok: got === claim, got })
}
function __keys(line: number, keys: string[], got: unknown): void {
  const have = got !== null && typeof got === 'object' ? Object.keys(got).sort() : []
  __claims.push({ line, claim: '{ ' + keys.join(', ') + ' }', ok: have.join() === [...keys].sort().join(), got })
}
function __cleared(line: number, cache: { path: string }, removeDir: boolean): void {
  const names = __existsSync(cache.path) ? __readdirSync(cache.path) : null
  const ok = removeDir ? names === null : names !== null && !names.some((n) => /^[0-9a-f]{64}\\.(npy|npz|json)$/.test(n))
  __claims.push({ line, claim: removeDir ? 'directory removed' : 'entries removed', ok, got: names, path: cache.path })
}
`

// ---------------------------------------------------------------------------
// One program per block and module system.

type Variant = 'esm' | 'cjs'
const EXT = { esm: { source: '.mts', out: '.mjs' }, cjs: { source: '.cts', out: '.cjs' } } as const
/** The report line a program prints last. */
const REPORT = '__first_hour__ '

interface Claim {
  line: number
  claim: string
}
interface Program {
  block: Block
  variant: Variant
  source: string
  out: string
  /** README line of each line of `source` that comes from the block. */
  lineMap: (number | undefined)[]
  claims: Claim[]
  /** The example locations the block names (README spelling). */
  locations: string[]
  /** Problems found while generating it (unknown paths). */
  problems: string[]
}

/** `line` split at a `//` comment outside string literals. */
function splitComment(line: string): { code: string; comment?: string } {
  let quote: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === '\\') i++
      else if (c === quote) quote = undefined
    } else if (c === "'" || c === '"' || c === '`') quote = c
    else if (c === '/' && line[i + 1] === '/') return { code: line.slice(0, i).trimEnd(), comment: line.slice(i + 2).trim() }
  }
  return { code: line }
}

/** Whether `code` is a whole statement on its own line (brackets balanced, not continued). */
function wholeStatement(code: string): boolean {
  let depth = 0
  for (const c of code.replace(/'[^']*'|"[^"]*"/g, "''")) {
    if ('([{'.includes(c)) depth++
    if (')]}'.includes(c)) depth--
  }
  return code.trim() !== '' && depth === 0 && !/[,([{=+\-*/.]$/.test(code)
}

const isExpression = (code: string) => !/^\s*(const|let|var|import|export|return|if|for|while|function|class|async function)\b/.test(code)

/** Where a README location goes in the run rooted at `runRoot`. */
function mapLocation(location: string, runRoot: string): string {
  return location.startsWith('/') ? join(runRoot, ...location.split('/').filter(Boolean)) : location
}

/** The local names an `import ... from '...'` line binds. */
function importedNames(statement: string): string[] {
  const m = /^\s*import\s+(?:type\s+)?(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\}|\*\s*as\s+(\w+))?\s*from\b/.exec(statement)
  if (!m) return []
  const named = (m[2] ?? '').split(',').map((s) => s.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop()!)
  return [m[1], ...named, m[3]].filter((n): n is string => !!n)
}

function generate(block: Block, variant: Variant, runRoot: string, dir: string): Program {
  const name = `readme-L${block.line}`
  const source = join(dir, name + EXT[variant].source)
  const out = join(dir, name + EXT[variant].out)
  const problems: string[] = []
  const locations = new Set<string>()
  const claims: Claim[] = []
  const imports: { text: string; line: number }[] = []
  const body: { text: string; line: number }[] = []

  block.lines.forEach((text, k) => {
    const line = block.line + k
    const { code: rawCode, comment } = splitComment(text)
    // Example paths become this run's own; any other absolute path is a problem to report.
    const code = rawCode.replace(/(['"])((?:\/|[a-z][a-z0-9+.-]*:\/\/)[^'"]*)\1/gi, (literal, _q, path: string) => {
      if (!LOCATIONS.includes(path)) {
        problems.push(`README.md line ${line}: the location ${literal} is not one the first-hour harness knows (${LOCATIONS.join(', ')}); use one of them or add it to LOCATIONS in __test__/first-hour.spec.ts`)
        return literal
      }
      locations.add(path)
      return JSON.stringify(mapLocation(path, runRoot))
    })
    if (/^\s*import\s/.test(code)) {
      imports.push({ text: code, line })
      body.push({ text: '', line })
      return
    }
    let instrumented = [code, comment !== undefined ? `// ${comment}` : ''].filter(Boolean).join(' ')
    if (wholeStatement(code)) {
      const c = comment ?? ''
      const clear = /^\s*(\w+)\.clearCache\((.*)\)\s*$/.exec(code)
      const keys = /^\{\s*([\w\s,]+?)\s*\}/.exec(c)
      if (/^(miss|hit)\b/.test(c)) {
        const claim = c.startsWith('miss') ? 'miss' : 'hit'
        instrumented = `__before(); ${code}; __computed(${line}, '${claim}')`
        claims.push({ line, claim })
      } else if (/^(true|false)\b/.test(c) && isExpression(code)) {
        const claim = c.startsWith('true') ? 'true' : 'false'
        instrumented = `__is(${line}, ${claim}, ${code.trim()})`
        claims.push({ line, claim })
      } else if (keys && isExpression(code)) {
        const names = keys[1]!.split(',').map((s) => s.trim())
        instrumented = `__keys(${line}, ${JSON.stringify(names)}, ${code.trim()})`
        claims.push({ line, claim: `{ ${names.join(', ')} }` })
      } else if (clear) {
        const removeDir = /removeDir:\s*true/.test(clear[2]!)
        instrumented = `${code}; __cleared(${line}, ${clear[1]}, ${removeDir})`
        claims.push({ line, claim: removeDir ? 'directory removed' : 'entries removed' })
      }
    }
    body.push({ text: instrumented, line })
  })

  // The fixtures the block does not import itself.
  const imported = new Set(imports.flatMap(({ text }) => importedNames(text)))
  const fixtures = Object.entries(FIXTURES)
    .filter(([fixture]) => !imported.has(fixture))
    .map(([, decl]) => decl)
  const entry = variant === 'esm' ? "import.meta.resolve('numpy-func-cache')" : "require.resolve('numpy-func-cache')"
  const report = `console.log(${JSON.stringify(REPORT)} + JSON.stringify({ entry: ${entry}, calls: __calls, claims: __claims }))`

  const lines: { text: string; line?: number }[] = [
    { text: `// Generated from README.md line ${block.line} by __test__/first-hour.spec.ts.` },
    { text: "import * as __nfc from 'numpy-func-cache'" },
    { text: "import { existsSync as __existsSync, readdirSync as __readdirSync } from 'node:fs'" },
    ...imports,
    ...HELPERS.split('\n').map((text) => ({ text })),
    { text: `const __fixtureCache = ${JSON.stringify(join(runRoot, 'fixture-cache'))}` },
    // CommonJS has no top-level await: the block runs in an async function there.
    { text: variant === 'esm' ? '{' : 'void (async () => {' },
    ...fixtures.join('\n').split('\n').map((text) => ({ text })),
    { text: '{' },
    ...body,
    { text: '}' },
    { text: variant === 'esm' ? '}' : '})().then(() => {' },
    { text: report },
    ...(variant === 'cjs' ? [{ text: '})' }] : []),
  ]
  writeFileSync(source, lines.map((l) => l.text).join('\n') + '\n')
  return { block, variant, source, out, lineMap: lines.map((l) => l.line), claims, locations: [...locations], problems }
}

/**
 * tsc's diagnostics (`file(line,col): error TSxxxx: text`), each told by the
 * README line it comes from, grouped by program source.
 */
function diagnosticsByFile(output: string, programs: Program[], cwd: string): Map<string, string[]> {
  const byFile = new Map<string, string[]>()
  for (const raw of output.split(/\r?\n/).filter(Boolean)) {
    const m = /^(.+?)\((\d+),\d+\): (.*)$/.exec(raw)
    const program = m && programs.find((p) => join(cwd, m[1]!) === p.source)
    if (!m || !program) {
      byFile.set('', [...(byFile.get('') ?? []), raw])
      continue
    }
    const readmeLine = program.lineMap[Number(m[2]) - 1]
    const where = readmeLine ? `README.md line ${readmeLine}` : `README.md block at line ${program.block.line} (harness code)`
    let text = `${where} (${program.variant}): ${m[3]}`
    if (/TS2304|TS2552/.test(m[3]!)) text += ` (the first-hour harness defines only: ${Object.keys(FIXTURES).join(', ')}; define it in the block or add a fixture to FIXTURES in __test__/first-hour.spec.ts)`
    byFile.set(program.source, [...(byFile.get(program.source) ?? []), text])
  }
  return byFile
}

// ---------------------------------------------------------------------------
// The run: one pack and install, one S3 server, one tsc over every program.

interface Prepared {
  steps: Step[]
  consumer: string
  /** Each module system's own temporary directory, for the README's directories. */
  roots: Record<Variant, string>
  programs: Program[]
  /** A block that uses a name no fixture defines, to show the harness says where. */
  canary: Program
  diagnostics: Map<string, string[]>
  server: S3Server
  env: NodeJS.ProcessEnv
  version: string
}

let work: string | undefined
let server: S3Server | undefined
test.after.always(async () => {
  await server?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
  removePacked()
})

let preparing: Promise<Prepared> | undefined
const prepared = () => (preparing ??= prepare())

async function prepare(): Promise<Prepared> {
  const { consumer } = packAndInstall()
  server = await startServer(BUCKET)
  work = mkdtempSync(join(tmpdir(), 'nfc-first-hour-'))
  const roots = { esm: join(work, 'esm'), cjs: join(work, 'cjs') }
  // The programs sit in the fresh project, so 'numpy-func-cache' resolves to the installed copy.
  const dir = join(consumer, 'first-hour')
  mkdirSync(dir)
  const steps = readmeSteps()
  const programs: Program[] = []
  for (const variant of ['esm', 'cjs'] as const) {
    mkdirSync(roots[variant])
    for (const step of steps) if ('block' in step) programs.push(generate(step.block, variant, roots[variant], dir))
  }
  const canary = generate({ line: 1, lines: ['const x = cache.createCachedFunc(notAFixture)', 'x(1)'] }, 'esm', roots.esm, dir)
  // One tsc for all: strict, Node's own module rules, against the installed package's types.
  const r = spawnSync(
    process.execPath,
    [tsc, '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--pretty', 'false', ...nodeTypes,
      ...[...programs, canary].map((p) => relative(consumer, p.source))],
    { cwd: consumer, env: childEnv(), encoding: 'utf8' },
  )
  const diagnostics = diagnosticsByFile(r.stdout + r.stderr, [...programs, canary], consumer)
  // Only the README's way of configuring the object store: the standard AWS_* variables.
  const env = childEnv()
  for (const k of Object.keys(env)) if (k.startsWith('AWS_')) delete env[k]
  Object.assign(env, server.env)
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string
  return { steps, consumer, roots, programs, canary, diagnostics, server, env, version }
}

/** The keys of the entries at a README location in this run; null if it is a directory that does not exist. */
function storedKeys(location: string, runRoot: string, s3: S3Server): string[] | null {
  const keysIn = (dir: string, recursive: boolean): string[] =>
    readdirSync(dir, { recursive, encoding: 'utf8' })
      .map((f) => /(?:^|[\\/])([0-9a-f]{64})\.npy$/.exec(f)?.[1])
      .filter((k): k is string => k !== undefined)
      .sort()
  if (location.startsWith('/')) {
    const dir = mapLocation(location, runRoot)
    return existsSync(dir) ? keysIn(dir, false) : null
  }
  // The posix backend keeps one file per object: <data>/<bucket>/<prefix>/<ab>/<key>.npy.
  const { host, pathname } = new URL(location)
  const dir = join(s3.dataDir, host, ...pathname.split('/').filter(Boolean))
  return existsSync(dir) ? keysIn(dir, true) : []
}

// ---------------------------------------------------------------------------
// The tests.

test.serial('every README example type-checks in strict TypeScript (nodenext, ESM and CommonJS) against the installed package', async (t) => {
  t.timeout(600_000)
  const { programs, diagnostics } = await prepared()
  // Both module systems of the README's three blocks at least: the extraction works.
  t.true(programs.length >= 2 * 3, `README blocks found: ${programs.length / 2}`)
  // All at once, so a README author sees every problem in one run.
  const problems = [...(diagnostics.get('') ?? []), ...programs.flatMap((p) => [...p.problems, ...(diagnostics.get(p.source) ?? [])])]
  t.deepEqual([...new Set(problems)], [], problems.join('\n'))
})

test.serial('a README example that uses a name the harness does not define fails, naming its README line', async (t) => {
  t.timeout(600_000)
  const { canary, diagnostics } = await prepared()
  const messages = diagnostics.get(canary.source) ?? []
  t.is(messages.length, 1, messages.join('\n'))
  t.regex(messages[0] ?? '', /^README\.md line 1 \(esm\): error TS2304: Cannot find name 'notAFixture'\. \(the first-hour harness defines only: NumpyFuncCache, expensive, /)
})

for (const variant of ['esm', 'cjs'] as const) {
  const label = variant === 'esm' ? 'ES modules (.mts compiled to .mjs)' : 'CommonJS (.cts compiled to .cjs, loaded through require)'
  test.serial(`the first hour in ${label}: every README example, then its commands, in README order`, async (t) => {
    t.timeout(600_000)
    const ready = await prepared()
    for (const step of ready.steps) {
      if ('block' in step) runBlock(t, ready, ready.programs.find((p) => p.block === step.block && p.variant === variant)!)
      else runCommand(t, ready, variant, step.command)
    }
  })
}

/** Blocks on the object store whose functions a run has computed: a later run (another machine) must hit. */
const computedOnStore = new Set<number>()

function runBlock(t: ExecutionContext, ready: Prepared, p: Program): void {
  const where = `README block at line ${p.block.line} (${p.variant})`
  const runRoot = ready.roots[p.variant]
  // Never run a block with a location the harness does not rewrite: it would write there.
  if (p.problems.length > 0) {
    t.fail(`${where}:\n${p.problems.join('\n')}`)
    return
  }
  const r = spawnSync(process.execPath, [p.out], { cwd: runRoot, env: ready.env, encoding: 'utf8' })
  if (r.status !== 0) {
    t.fail(`${where}: node ${relative(ready.consumer, p.out)} exited with ${r.status}:\n${r.stderr}`)
    return
  }
  t.is(r.stderr, '', `${where}: stderr`)
  const line = r.stdout.split('\n').find((l) => l.startsWith(REPORT))
  if (!line) {
    t.fail(`${where}: no report in its output:\n${r.stdout}`)
    return
  }
  const report = JSON.parse(line.slice(REPORT.length)) as { entry: string; calls: Record<string, number>; claims: (Claim & { ok: boolean; got: unknown; path?: string })[] }

  // The package came from the installed tarball, through its exports map.
  const entry = report.entry.replace(/^file:\/\//, '').replaceAll('\\', '/')
  t.true(entry.endsWith(`/node_modules/numpy-func-cache/dist/index.${p.variant === 'esm' ? 'mjs' : 'js'}`), `${where}: loaded ${entry}`)

  // Every claim was reached, and holds.
  t.deepEqual(
    report.claims.map(({ line, claim }) => ({ line, claim })),
    p.claims,
    `${where}: the claims checked are not the block's`,
  )
  for (const c of report.claims.filter((c) => !c.ok)) t.fail(`README.md line ${c.line} (${p.variant}) claims "${c.claim}", got ${JSON.stringify(c.got)}`)

  // A directory the block names holds what it stored there, unless the block removed it (a claim above).
  const removed = report.claims.filter((c) => c.claim === 'directory removed').map((c) => c.path)
  for (const location of p.locations.filter((l) => l.startsWith('/'))) {
    const dir = mapLocation(location, runRoot)
    if (!removed.includes(dir)) t.true((storedKeys(location, runRoot, ready.server) ?? []).length > 0, `${where}: ${location} holds no entry: the block stores nothing there`)
  }

  // On the object store, one machine computes; the next run is another machine, and hits.
  if (p.locations.some((l) => !l.startsWith('/'))) {
    const calls = Object.values(report.calls).reduce((a, b) => a + b, 0)
    if (computedOnStore.has(p.block.line)) t.is(calls, 0, `${where}: computed again what another run stored on the object store`)
    else t.true(calls > 0, `${where}: computed nothing on an empty object store`)
    computedOnStore.add(p.block.line)
    for (const location of p.locations.filter((l) => !l.startsWith('/'))) t.true(storedKeys(location, runRoot, ready.server)!.length > 0, `${where}: nothing stored in ${location}`)
  }
}

function runCommand(t: ExecutionContext, ready: Prepared, variant: Variant, command: Command): void {
  const runRoot = ready.roots[variant]
  const where = `README.md line ${command.line} (${variant}): ${command.text}`
  // The synopsis's [optional] parts are given (an optional list, [keys...], as empty), its placeholders filled in.
  const words = command.text.replace(/\[\w+\.\.\.\]/g, '').replace(/[[\]]/g, '').split(/\s+/).slice(2).map((w) => PLACEHOLDERS[w] ?? w)
  const unknown = words.filter((w) => (w.startsWith('/') || w.startsWith('<') || /^[a-z]+:\/\//.test(w)) && !LOCATIONS.includes(w))
  if (unknown.length > 0) {
    t.fail(`${where}: ${unknown.join(', ')} is not a location or placeholder the first-hour harness knows (LOCATIONS, PLACEHOLDERS)`)
    return
  }
  const location = words.find((w) => LOCATIONS.includes(w))
  const before = location ? storedKeys(location, runRoot, ready.server) : null
  // The installed package's bin, through npx as the README runs it. Offline:
  // were the bin missing, npx would fetch the name from the registry instead.
  t.true(existsSync(join(ready.consumer, 'node_modules', '.bin', 'numpy-func-cache')), 'the installed package has no bin')
  const args = words.map((w) => (LOCATIONS.includes(w) ? mapLocation(w, runRoot) : w))
  const r = spawnSync('npx', ['numpy-func-cache', ...args], {
    cwd: ready.consumer,
    env: { ...ready.env, npm_config_offline: 'true' },
    encoding: 'utf8',
    shell: process.platform === 'win32',
  })
  t.is(r.status, 0, `${where} exited with ${r.status}:\n${r.stderr}`)
  t.is(r.stderr, '', `${where}: stderr`)
  const out = r.stdout
  const after = location ? storedKeys(location, runRoot, ready.server) : null
  const count = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN)
  const had = before?.length ?? 0
  const has = after?.length ?? 0
  // A command on an empty cache would prove little: each runs after the examples that fill its cache.
  if (location) t.true(had > 0, `${where}: ${location} holds no entry when the README runs this`)

  switch (words[0]) {
    case 'ls': {
      // The entries the examples stored, one row each.
      const listed = out.split('\n').slice(1).flatMap((l) => /\b([0-9a-f]{12})$/.exec(l.trim())?.[1] ?? [])
      t.deepEqual(listed.sort(), (before ?? []).map((k) => k.slice(0, 12)).sort(), `${where}:\n${out}`)
      t.is(count(/^(\d+) entr(?:y|ies), /m), had, `${where}:\n${out}`)
      break
    }
    case 'stats':
      t.is(count(/^entries\s+(\d+)$/m), had, `${where}:\n${out}`)
      break
    case 'prune':
      // What it removed and what it kept add up to what was there; what it kept is what is left.
      t.is(count(/^kept (\d+) entr/m), has, `${where}:\n${out}`)
      t.is(count(/^removed (\d+) entr/m) + has, had, `${where}:\n${out}`)
      break
    case 'verify':
      t.regex(out, new RegExp(`^checked ${had} entr(y|ies): 0 damaged`), where)
      t.deepEqual(after, before, `${where}: verify changed the cache`)
      break
    case 'rm':
      // What it says it removed is what went.
      t.is(count(/^removed (\d+) entr/m) + has, had, `${where}:\n${out}`)
      break
    case 'clear':
      t.is(count(/^removed (\d+) entr/m), had, `${where}:\n${out}`)
      if (words.includes('--remove-dir')) t.is(after, null, `${where}: the directory is still there`)
      else t.deepEqual(after, [], `${where}: entries remain`)
      break
    case '--help':
      t.regex(out, /^Usage: numpy-func-cache /, where)
      break
    case '--version':
      t.is(out.trim(), ready.version, where)
      break
    default:
      t.fail(`${where}: no check for "${words[0]}" in __test__/first-hour.spec.ts: add one`)
  }
}
