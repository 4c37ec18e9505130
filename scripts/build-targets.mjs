// `npm run build:targets [-- <target>...]`: builds the addon for every
// target in package.json's napi.targets that this machine can build (or the
// ones named), puts each binary in its npm/<platform>/ package, and prints a
// table: built or why not, size, `file`'s verdict, and for Linux the oldest
// C library it needs.
//
// Toolchains all come from registries: napi-rs's gcc cross toolchains
// (glibc 2.17) from npm for Linux gnu, zig and cargo-zigbuild from PyPI for
// musl and macOS, Debian's mingw-w64 for the Windows GNU stand-in. MSVC
// needs Microsoft's CRT and SDK, which only Microsoft serves: the release
// workflow builds it on a Windows runner.
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTriple } from '@napi-rs/cli'
import { describeBinary } from './binary-check.mjs'
import { hasCommand } from './has-command.mjs'

/** napi's platform name of a target triple, as its npm/ directories use. */
const platformOf = (triple) => parseTriple(triple).platformArchABI

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const binaryName = pkg.napi.binaryName
const tools = join(root, '.tools', 'cross')
const ZIGLANG = '0.17.1'
const CARGO_ZIGBUILD = '0.24.1'

/** The Windows build this machine can make in place of MSVC (not published). */
const WINDOWS_GNU = 'x86_64-pc-windows-gnu'

/** How each kind of target is built here, or why it is not. */
function planFor(triple) {
  // On its own OS (the release workflow's macOS and Windows runners) a target builds natively.
  if ((process.platform === 'darwin' && triple.endsWith('-apple-darwin')) || (process.platform === 'win32' && triple.endsWith('-windows-msvc'))) {
    return { flags: [] }
  }
  // napi's gcc toolchain for an x86_64 target is published only at a
  // version its loader does not ask for; zig links against glibc 2.17 too.
  if (triple === 'x86_64-unknown-linux-gnu') return { target: `${triple}.2.17`, flags: ['--cross-compile'], zig: true }
  if (triple.endsWith('-linux-gnu')) return { flags: ['--use-napi-cross'] }
  if (triple.endsWith('-linux-musl')) return { flags: ['--cross-compile'], zig: true }
  if (triple.endsWith('-apple-darwin')) {
    const rustflags = `CARGO_TARGET_${triple.toUpperCase().replaceAll('-', '_')}_RUSTFLAGS`
    // Else zig assumes its newest macOS. 10.13 is release.yml's floor; arm64 Macs start at 11.0.
    const MACOSX_DEPLOYMENT_TARGET = triple.startsWith('x86_64') ? '10.13' : '11.0'
    return { flags: ['--cross-compile'], zig: true, env: { [rustflags]: `-C link-arg=-F${stubFrameworks()}`, MACOSX_DEPLOYMENT_TARGET } }
  }
  if (triple === WINDOWS_GNU) {
    if (!hasCommand('x86_64-w64-mingw32-gcc')) return { skip: 'needs mingw-w64 (apt-get install mingw-w64)' }
    return { flags: [], env: { LIBNODE_PATH: emptyNodeImportLib() } }
  }
  if (triple.endsWith('-windows-msvc')) {
    return {
      skip:
        "needs Microsoft's MSVC CRT and Windows SDK, which only Microsoft's servers serve (cargo-xwin downloads them); " +
        `release.yml builds it on windows-latest. ${WINDOWS_GNU} is built here instead`,
    }
  }
  return { skip: 'no toolchain for this target here' }
}

/**
 * napi-build links Windows GNU addons with `-lnode` and wants a libnode.dll
 * to exist; with napi's dyn-symbols the addon imports nothing from it, so
 * an empty import library (naming node.exe, where N-API lives) serves.
 */
function emptyNodeImportLib() {
  const dir = join(root, 'target', 'libnode')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'node.def'), 'LIBRARY node.exe\nEXPORTS\n')
  execFileSync('x86_64-w64-mingw32-dlltool', ['-d', 'node.def', '-l', 'libnode.dll.a'], { cwd: dir })
  writeFileSync(join(dir, 'libnode.dll'), '')
  return dir
}

/**
 * zig brings macOS's libSystem but not its frameworks, and the HTTP
 * client's TLS verifier links Security and CoreFoundation. Apple's SDK
 * cannot be fetched here, so the link names them through stubs that give
 * only their install names: the addon is linked with `-undefined
 * dynamic_lookup` (as every Node addon on macOS), so dyld loads the real
 * frameworks and finds each symbol in them at load time.
 */
function stubFrameworks() {
  const dir = join(root, 'target', 'macos-frameworks')
  for (const name of ['Security', 'CoreFoundation']) {
    const framework = join(dir, `${name}.framework`)
    mkdirSync(framework, { recursive: true })
    writeFileSync(
      join(framework, `${name}.tbd`),
      [
        '--- !tapi-tbd',
        'tbd-version: 4',
        'targets: [ x86_64-macos, arm64-macos ]',
        `install-name: '/System/Library/Frameworks/${name}.framework/Versions/A/${name}'`,
        '...',
        '',
      ].join('\n'),
    )
  }
  return dir
}

/** zig and cargo-zigbuild, from PyPI, in a virtualenv of their own. */
function ensureZig() {
  const python = join(tools, 'bin', 'python')
  if (spawnSync(python, ['-c', 'import ziglang'], { stdio: 'ignore' }).status === 0 && existsSync(join(tools, 'bin', 'cargo-zigbuild'))) return
  if (!existsSync(python)) execFileSync('python3', ['-m', 'venv', tools], { stdio: 'inherit' })
  execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', `ziglang==${ZIGLANG}`, `cargo-zigbuild==${CARGO_ZIGBUILD}`], { stdio: 'inherit' })
}

function ensureRustTarget(triple) {
  const installed = spawnSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' }).stdout ?? ''
  if (!installed.split('\n').includes(triple)) execFileSync('rustup', ['target', 'add', triple], { stdio: 'inherit' })
}

/** Builds one target; returns the built binary's path, or throws with the tail of the log. */
function build(triple, plan) {
  ensureRustTarget(triple)
  if (plan.zig) ensureZig()
  const out = join(root, 'target', 'napi-artifacts', triple)
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })
  const args = ['napi', 'build', '--platform', '--release', '--manifest-path', 'binding/Cargo.toml', '--target', plan.target ?? triple, '--output-dir', out, '--no-js', '--dts', 'index.d.ts', ...plan.flags]
  const env = { ...process.env, ...plan.env, PATH: `${join(tools, 'bin')}${delimiter}${process.env.PATH}` }
  console.log(`\n== ${triple}: npx ${args.join(' ')}`)
  const result = spawnSync('npx', args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'], maxBuffer: 1 << 28, shell: process.platform === 'win32' })
  process.stderr.write(result.stderr.split('\n').slice(-40).join('\n'))
  const binary = join(out, `${binaryName}.${platformOf(triple)}.node`)
  if (result.status !== 0 || !existsSync(binary)) {
    const reason = result.stderr
      .split('\n')
      .filter((l) => /error|not found|undefined/i.test(l) && !/could not compile|previous error/.test(l))
      .map((l) => l.replace(/^[\s=]*note:\s*/, '').replace(/\|/g, '/').trim())
      .slice(-2)
      .join('; ')
    throw new Error(reason || `napi build exited with ${result.status}`)
  }
  return binary
}

const wanted = process.argv.slice(2)
const targets = wanted.length > 0 ? wanted : [...pkg.napi.targets, WINDOWS_GNU]
const rows = []
for (const triple of targets) {
  const platform = platformOf(triple)
  const plan = planFor(triple)
  if (plan.skip) {
    rows.push({ triple, status: `not built: ${plan.skip}` })
    continue
  }
  try {
    const binary = build(triple, plan)
    // Published targets go into their npm/ package; the stand-in stays in target/.
    const published = pkg.napi.targets.includes(triple)
    const dest = published ? join(root, 'npm', platform, `${binaryName}.${platform}.node`) : binary
    if (published) copyFileSync(binary, dest)
    rows.push({ triple, status: published ? `built: npm/${platform}/` : `built: ${dest.slice(root.length)}`, ...describeBinary(dest), size: statSync(dest).size })
  } catch (e) {
    rows.push({ triple, status: `not built: ${e.message}` })
  }
}

console.log('\n| target | result | size | format (`file`) | needs |')
console.log('|---|---|---|---|---|')
for (const r of rows) {
  const size = r.size === undefined ? '' : `${(r.size / 2 ** 20).toFixed(1)} MiB`
  const cell = (text) => (text ?? '').replace(/\|/g, '/')
  console.log(`| ${r.triple} | ${cell(r.status)} | ${size} | ${cell(r.format?.replace(/, flags:.*$/, ''))} | ${cell(r.needs)} |`)
}
if (wanted.length > 0 && rows.some((r) => r.status.startsWith('not built'))) process.exitCode = 1
