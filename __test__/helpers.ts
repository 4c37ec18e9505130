// Shared test helpers: real temporary directories and a real Python with NumPy.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
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
