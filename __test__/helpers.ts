// Shared test helpers: real temporary directories and a real Python with NumPy.
import { execFileSync } from 'node:child_process'
import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'

export const root = join(__dirname, '..')

/** The Python with NumPy that `npm test` sets up (override with NFC_PYTHON). */
export const python = process.env.NFC_PYTHON ?? join(root, '.venv', 'bin', 'python')

/** A fresh directory removed when the test ends. */
export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nfc-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Runs Python source with NumPy imported as np; argv after the script is `args`. Returns stdout. */
export function runPython(source: string, args: string[] = []): string {
  return execFileSync(python, ['-c', `import sys, json\nimport numpy as np\n${source}`, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  })
}

export const isRoot = process.getuid?.() === 0

/** File names other than the index's (which a clear empties and keeps). */
export function withoutIndex(names: string[]): string[] {
  return names.filter((n) => !n.startsWith('.numpy-func-cache-index.sqlite'))
}

/**
 * A copy of the built package in a fresh directory anyone can read (the
 * checkout may sit under a directory another user cannot enter); returns
 * the copy's `dist` directory and the directory it is in.
 */
export function readablePackageCopy(t: ExecutionContext): { dist: string; work: string } {
  const work = tempDir(t)
  chmodSync(work, 0o755)
  const pkg = join(work, 'pkg')
  const binding = readdirSync(join(root, 'binding')).filter((f) => f === 'index.js' || f.endsWith('.node'))
  // The runtime dependencies too: the copy must load without this checkout's node_modules.
  const dependencies = Object.keys(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies ?? {})
  for (const name of ['dist', 'package.json', ...binding.map((f) => join('binding', f)), ...dependencies.map((d) => join('node_modules', d))]) {
    cpSync(join(root, name), join(pkg, name), { recursive: true })
  }
  return { dist: join(pkg, 'dist'), work }
}

/**
 * Runs `source` in a child node process as the unprivileged user `nobody`
 * (as root; as anyone else, as that user), so file permissions really
 * apply. The child gets its own copy of the package, since the checkout may
 * sit under a directory `nobody` cannot enter, as `process.argv[2]`; `args`
 * follow. Returns the child's stdout parsed as JSON.
 */
export function runUnprivileged(t: ExecutionContext, source: string, args: string[]): any {
  const { dist, work } = readablePackageCopy(t)
  const script = join(work, 'child.js')
  writeFileSync(script, source)
  chmodSync(script, 0o644)
  const out = execFileSync(process.execPath, [script, dist, ...args], {
    encoding: 'utf8',
    ...(isRoot ? { uid: 65534, gid: 65534 } : {}),
  })
  return JSON.parse(out)
}
