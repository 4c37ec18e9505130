// The quick start's demo (npm run demo), run as a user runs it: each run
// works in a new temporary directory (a miss, then hits); a named
// directory keeps the cache between runs.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { root, tempDir } from './helpers'

/**
 * What `npm run demo` runs after its setup step, from package.json. The
 * setup (`npm ci` if needed, then `npm run build`) is not run here: the
 * build rewrites dist/ in place while the specs running beside this one
 * load it. `npm test` runs the same setup before the suite.
 */
function demoCommand(): { setup: string; demo: string[] } {
  const [setup, ...rest] = String(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts.demo).split(' && ')
  return { setup: setup!, demo: rest.join(' && ').split(' ') }
}

function demo(...args: string[]): { dir: string; lines: string[] } {
  const [node, ...script] = demoCommand().demo
  if (node !== 'node') throw new Error(`npm run demo runs ${node}, not node`)
  const out = execFileSync(process.execPath, [...script, ...args], { cwd: root, encoding: 'utf8' })
  const lines = out.split('\n')
  const dir = lines.find((l) => l.startsWith('cache directory: '))!.slice('cache directory: '.length)
  return { dir, lines }
}

test('the Quick start runs `npm run demo`: the setup, then the demo run here', (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const quickStart = readme.slice(readme.indexOf('\n## Quick start'), readme.indexOf('\n## API'))
  t.regex(quickStart, /^```sh\nnpm run demo +#/m)
  t.deepEqual(demoCommand(), { setup: 'node scripts/setup.mjs', demo: ['node', 'examples/demo.mjs'] })
})

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
