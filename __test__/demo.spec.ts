// The quick start's demo (npm run demo), run as a user runs it: each run
// works in a new temporary directory (a miss, then hits); a named
// directory keeps the cache between runs.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { root, tempDir } from './helpers'

function demo(...args: string[]): { dir: string; lines: string[] } {
  const out = execFileSync(process.execPath, [join(root, 'examples', 'demo.mjs'), ...args], { encoding: 'utf8' })
  const lines = out.split('\n')
  const dir = lines.find((l) => l.startsWith('cache directory: '))!.slice('cache directory: '.length)
  return { dir, lines }
}

const callsAfter = (lines: string[], label: string) => Number(/calls so far: (\d+)/.exec(lines.find((l) => l.startsWith(label))!)![1])

test('each run of the demo works in a new temporary directory: a miss, then hits', (t) => {
  t.timeout(120_000)
  const first = demo()
  const second = demo()
  t.teardown(() => [first.dir, second.dir].forEach((d) => rmSync(d, { recursive: true, force: true })))
  t.not(first.dir, second.dir)
  for (const { lines } of [first, second]) {
    t.is(callsAfter(lines, 'miss'), 1)
    t.is(callsAfter(lines, 'hit (loads'), 1)
    t.true(lines.some((l) => l.includes('identical to computed: true')))
  }
})

test('a directory named on the command line keeps the cache: the second run hits from the start', (t) => {
  t.timeout(120_000)
  const dir = join(tempDir(t), 'kept')
  t.is(callsAfter(demo(dir).lines, 'miss'), 1)
  t.is(callsAfter(demo(dir).lines, 'hit (kept from an earlier run)'), 0, 'the first call of the second run was a hit')
})
