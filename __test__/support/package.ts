// The package as a user gets it: the main tarball and this host's platform
// package (npm/<platform>/ with the binary built into binding/), packed from
// this checkout and installed into a fresh project, as a registry install
// would. Real `npm`, `tar` and `node` processes; the network only serves
// runtime dependencies missing from the npm cache. Used by pack.spec.ts and
// first-hour.spec.ts (each ava worker packs once).
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { root } from '../helpers'

const isWindows = process.platform === 'win32'

/** The repository's TypeScript compiler, and the options that give it @types/node outside the repository. */
export const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
export const nodeTypes = ['--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node']

/**
 * The environment for child processes: npm's own per-run variables (set when
 * this runs under `npm test` or `npx ava`) are dropped so the child npm works
 * on the temp project, not on this repository, and no override of the native
 * binary leaks in.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    const lower = k.toLowerCase()
    if (lower.startsWith('npm_package_') || lower.startsWith('npm_lifecycle_')) continue
    if (lower === 'npm_config_local_prefix' || lower === 'npm_config_prefix') continue
    if (k === 'NAPI_RS_NATIVE_LIBRARY_PATH' || k === 'NODE_PATH' || k === 'NODE_OPTIONS') continue
    env[k] = v
  }
  return { ...env, ...extra }
}

export function npm(args: string[], cwd: string): string {
  return execFileSync('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier'], {
    cwd,
    env: childEnv(),
    encoding: 'utf8',
    shell: isWindows,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** The host's binary, as `npm run build` leaves it in binding/, and its platform (`linux-x64-gnu`). */
export function hostBinary(): { file: string; platform: string } {
  const found = readdirSync(join(root, 'binding')).filter((f) => /^numpy-func-cache\.[a-z0-9-]+\.node$/.test(f))
  if (found.length !== 1) throw new Error(`expected one binary in binding/ (run npm run build), found: ${found.join(', ') || 'none'}`)
  return { file: found[0]!, platform: found[0]!.split('.')[1]! }
}

export function tarEntries(tarball: string): string[] {
  return execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' })
    .split(/\r?\n/)
    .filter(Boolean)
}

export interface Packed {
  tarball: string
  entries: string[]
  /** The binary's file name and the platform package's tarball entries. */
  binary: string
  platformEntries: string[]
  /** A fresh project with both tarballs installed. */
  consumer: string
  /** The installed package inside `consumer`. */
  installed: string
}

let packedOnce: Packed | undefined
const scratch: string[] = []

/** Packs and installs once per process; later calls return the same project. Remove it with `removePacked` (test.after.always). */
export function packAndInstall(): Packed {
  if (packedOnce) return packedOnce
  const packDir = mkdtempSync(join(tmpdir(), 'nfc-pack-'))
  const consumer = mkdtempSync(join(tmpdir(), 'nfc-consumer-'))
  scratch.push(packDir, consumer)

  // --ignore-scripts: pack what is built now (dist/, the binary); building is not the tests' job.
  const [info] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], root))
  const tarball = join(packDir, info.filename as string)
  const entries = tarEntries(tarball)

  // The platform package as the release fills it: a copy of npm/<platform>/
  // with the binary in it (the repo's own directory is left as it is).
  const { file: binary, platform: target } = hostBinary()
  const platformDir = join(packDir, target)
  mkdirSync(platformDir)
  for (const f of readdirSync(join(root, 'npm', target))) copyFileSync(join(root, 'npm', target, f), join(platformDir, f))
  copyFileSync(join(root, 'binding', binary), join(platformDir, binary))
  const [platformInfo] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], platformDir))
  const platformTarball = join(packDir, platformInfo.filename as string)
  const platformEntries = tarEntries(platformTarball)

  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'nfc-consumer', version: '1.0.0', private: true }, null, 2),
  )
  // --prefer-offline: the command line's dependencies come from the npm cache `npm ci` filled where it can.
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball, platformTarball], consumer)
  const installed = join(consumer, 'node_modules', 'numpy-func-cache')
  packedOnce = { tarball, entries, binary, platformEntries, consumer, installed }
  return packedOnce
}

/** Removes the tarballs and the project `packAndInstall` made. */
export function removePacked(): void {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true })
  packedOnce = undefined
}
