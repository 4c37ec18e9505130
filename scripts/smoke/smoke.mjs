// The package's smoke test against an installed copy, run by any Node that
// can load its binary: native, an arm64 Node under qemu-aarch64, a Windows
// Node under wine. NumPy (on this host) writes a file the target reads and
// reads the entry the target wrote; then the installed CLI lists the cache.
//
//   node scripts/smoke/smoke.mjs <project dir> [--python P] [-- <node command...>]
import { execFileSync, spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const inTarget = fileURLToPath(new URL('in-target.mjs', import.meta.url))

/**
 * Runs `command args` with its output in files, not pipes: Windows Node
 * under wine cannot open a Unix pipe as its stdout.
 */
function run(command, args, { cwd, env, work }) {
  const [cmd, ...pre] = command
  const out = join(work, 'stdout.txt')
  const err = join(work, 'stderr.txt')
  const fds = [openSync(out, 'w'), openSync(err, 'w')]
  let r
  try {
    r = spawnSync(cmd, [...pre, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', ...fds] })
  } finally {
    fds.forEach(closeSync)
  }
  const stdout = readFileSync(out, 'utf8')
  if (r.status !== 0) throw new Error(`${[...command, ...args].join(' ')} exited with ${r.status ?? r.signal ?? r.error}:\n${stdout}\n${readFileSync(err, 'utf8')}`)
  return stdout
}

/**
 * Runs the smoke test in `project` (where numpy-func-cache is installed)
 * with `node` (a command: program and leading arguments) and `env` added
 * to this process's environment. Throws on any failure; returns what the
 * target reported.
 */
export function runSmoke({ project: projectDir, node = [process.execPath], python = 'python3', env = {} }) {
  const work = mkdtempSync(join(tmpdir(), 'nfc-smoke-'))
  const project = resolve(projectDir)
  const where = { cwd: project, env, work }
  try {
    execFileSync(python, ['-c', `import numpy as np; np.save(${JSON.stringify(join(work, 'from-numpy.npy'))}, np.arange(6, dtype='<i4').reshape(2, 3))`])
    const report = JSON.parse(run(node, [inTarget, work], where).trim().split('\n').at(-1))
    const expectSum = Array.from({ length: 1000 }, (_, i) => i * i).reduce((a, b) => a + b, 0)
    if (report.computed !== 1 || !report.same || report.hitSum !== expectSum) throw new Error(`cached call went wrong: ${JSON.stringify(report)}`)
    const f = report.fromNumpy
    if (f.dtype !== '<i4' || f.shape.join() !== '2,3' || f.values.join() !== '0,1,2,3,4,5') throw new Error(`NumPy's file read wrong: ${JSON.stringify(f)}`)

    // NumPy reads the entry the target wrote.
    const entries = readdirSync(join(work, 'cache'), { recursive: true }).filter((n) => String(n).endsWith('.npy'))
    if (entries.length !== 1) throw new Error(`expected one entry, found ${entries.join(', ')}`)
    const check = `import numpy as np, sys; a = np.load(sys.argv[1]); assert a.dtype == np.float64 and a.shape == (1000,), (a.dtype, a.shape); assert (a == np.arange(1000.0) ** 2).all(); print('ok')`
    execFileSync(python, ['-c', check, join(work, 'cache', String(entries[0]))])

    // The installed CLI lists it.
    const installed = dirname(createRequire(join(project, 'package.json')).resolve('numpy-func-cache/package.json'))
    const cli = join(installed, 'dist', 'cli.js')
    const listing = run(node, [cli, 'ls', join(work, 'cache')], where)
    if (!listing.includes('smokeSquares')) throw new Error(`numpy-func-cache ls does not list the entry:\n${listing}`)
    return report
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const dash = args.indexOf('--')
  const node = dash >= 0 ? args.slice(dash + 1) : undefined
  const own = dash >= 0 ? args.slice(0, dash) : args
  const p = own.indexOf('--python')
  const python = p >= 0 ? own.splice(p, 2)[1] : undefined
  const report = runSmoke({ project: own[0], node, python })
  console.log(`smoke test passed on ${report.platform}`)
}
