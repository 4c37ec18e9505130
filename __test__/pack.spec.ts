// Packaging: what `npm pack` puts in the main tarball and in this host's
// platform package (npm/<platform>/ with the binary built into binding/), and
// whether a fresh project that installs both tarballs can use the package from
// ES modules, CommonJS and TypeScript, as a registry install would. Runs real
// `npm`, `tar`, `node` and `tsc` processes; the network only serves runtime
// dependencies missing from the npm cache. scripts/registry-test.mjs covers
// the install from a registry.
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { root, tempDir } from './helpers'
import { childEnv, hostBinary, nodeTypes, packAndInstall, removePacked, tsc } from './support/package'

/** Runs `node file` in `cwd`; returns its JSON output. Fails the test with stderr on a non-zero exit. */
function runNode(file: string, args: string[], cwd: string, env: Record<string, string> = {}): any {
  const r = spawnSync(process.execPath, [file, ...args], { cwd, env: childEnv(env), encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`node ${file} exited with ${r.status}:\n${r.stderr}`)
  return JSON.parse(r.stdout)
}

// One pack and one install (support/package.ts), shared by the tests below (they run serially).
test.after.always(removePacked)

// Each script: cache a function that counts its calls, call it twice with the
// same arguments, round-trip its result through writeNpy/readNpy, print JSON.
const body = `
const cache = new NumpyFuncCache(process.argv[2])
let calls = 0
const ramp = cache.createCachedFunc(
  (n, step) => {
    calls++
    return Float64Array.from({ length: n }, (_, i) => i * step)
  },
  { name: 'ramp' },
)
const first = ramp(4, 0.5)
const second = ramp(4, 0.5)
const npyPath = join(process.argv[2], 'copy.npy')
writeNpy(npyPath, second)
const back = readNpy(npyPath)
console.log(JSON.stringify({
  calls,
  values: [Array.from(first), Array.from(second)],
  classes: [first.constructor.name, second.constructor.name],
  roundTrip: { data: Array.from(back.data), shape: back.shape, dtype: back.dtype },
  entry: ENTRY,
  addon: Object.keys(require.cache).find((f) => f.endsWith('.node')),
}))
`
const esmScript = `import { NumpyFuncCache, readNpy, writeNpy } from 'numpy-func-cache'
import { createRequire } from 'node:module'
import { join } from 'node:path'
const require = createRequire(import.meta.url)
${body.replace('ENTRY', "import.meta.resolve('numpy-func-cache')")}`
const cjsScript = `const { NumpyFuncCache, readNpy, writeNpy } = require('numpy-func-cache')
const { join } = require('node:path')
${body.replace('ENTRY', "require.resolve('numpy-func-cache')")}`

// Uses the package's types; compiled by the repo's tsc against the installed copy.
const typesCheck = `import { NumpyFuncCache, readNpy, writeNpy, SUPPORTED_DTYPES } from 'numpy-func-cache'
import type { CachedFunction, NpyArray, TypedArray } from 'numpy-func-cache'

const cache = new NumpyFuncCache('cache-dir')
const ramp = cache.createCachedFunc((n: number, step: number) => new Float64Array(n).fill(step), { name: 'ramp' })
const out: Float64Array = ramp(3, 0.5)
// @ts-expect-error the wrapper keeps the function's parameter types
ramp('three', 0.5)
const later: CachedFunction<(n: number) => Promise<Int32Array>> = cache.createCachedFunc(async (n: number) => new Int32Array(n))
const pending: Promise<Int32Array> = later(2)
writeNpy('a.npy', { data: out, shape: [3, 1] })
const back: NpyArray = readNpy('a.npy')
const data: TypedArray = back.data
const shape: number[] = back.shape
const dtypes: readonly string[] = SUPPORTED_DTYPES
cache.on('storeError', (error: Error, info) => {
  const key: string = info.key
  void [error, key]
})
cache.clearCache({ removeDir: true })
void [pending, data, shape, dtypes]
`

test.serial('the packed tarball installs in a fresh project and works from ESM, CommonJS and TypeScript', (t) => {
  t.timeout(120_000)
  const { entries, binary, platformEntries, consumer, installed } = packAndInstall()

  // Contents: the built JS/ESM/types, the binding's loader and types; nothing
  // else, and no binary (those come in the platform packages).
  for (const file of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'binding/index.js', 'binding/index.d.ts', 'package.json']) {
    t.true(entries.includes(`package/${file}`), `tarball lacks ${file}`)
  }
  t.deepEqual(
    entries.filter((e) => e.endsWith('.node')),
    [],
    'the main tarball holds a binary',
  )
  const allowed = [
    /^package\/(package\.json|README(\.md)?|LICENSE(\.md)?)$/i,
    /^package\/binding\/(index\.js|index\.d\.ts)$/,
    /^package\/dist\/[\w-]+(\.js|\.mjs|\.d\.ts)$/,
  ]
  const unexpected = entries.filter((e) => !allowed.some((re) => re.test(e)))
  t.deepEqual(unexpected, [], 'tarball holds files that should not be published')
  t.false(
    entries.some((e) => /__test__|\/src\/|\/crates\/|\/scripts\/|\/npm\/|\.rs$|\.spec\.|(?<!\.d)\.ts$/.test(e)),
    'tarball holds test or source files',
  )
  // The platform package: its binary, README and manifest, nothing else.
  t.deepEqual([...platformEntries].sort(), [`package/${binary}`, 'package/README.md', 'package/package.json'].sort())

  // ES module and CommonJS consumers, each in its own child node process.
  writeFileSync(join(consumer, 'esm.mjs'), esmScript)
  writeFileSync(join(consumer, 'cjs.cjs'), cjsScript)
  const expected = [0, 0.5, 1, 1.5]
  for (const [script, entry] of [
    ['esm.mjs', 'dist/index.mjs'],
    ['cjs.cjs', 'dist/index.js'],
  ] as const) {
    const out = runNode(script, [tempDir(t)], consumer)
    t.is(out.calls, 1, `${script}: the second call should be a hit`)
    t.deepEqual(out.values, [expected, expected], script)
    t.deepEqual(out.classes, ['Float64Array', 'Float64Array'], script)
    t.deepEqual(out.roundTrip, { data: expected, shape: [4], dtype: '<f8' }, script)
    // Each entry point comes from the installed copy, through the exports map,
    // and the addon from the installed platform package.
    t.true(String(out.entry).replaceAll('\\', '/').endsWith(`node_modules/numpy-func-cache/${entry}`), String(out.entry))
    t.true(String(out.addon).replaceAll('\\', '/').endsWith(`node_modules/numpy-func-cache-${binary.split('.')[1]}/${binary}`), String(out.addon))
  }
  t.true(existsSync(join(installed, 'dist', 'index.mjs')))

  // The command line is installed as a bin, runs from the installed copy with its dependencies, and reads a cache.
  const bin = join(consumer, 'node_modules', '.bin', 'numpy-func-cache')
  const version = execFileSync(bin, ['--version'], { cwd: consumer, env: childEnv(), encoding: 'utf8' }).trim()
  t.is(version, JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version)
  const cacheDir = tempDir(t)
  runNode('cjs.cjs', [cacheDir], consumer)
  const listed = JSON.parse(execFileSync(bin, ['ls', cacheDir, '--json'], { cwd: consumer, env: childEnv(), encoding: 'utf8' }))
  t.deepEqual(
    listed.map((e: { function: string; shape: number[] }) => [e.function, e.shape]),
    [['ramp', [4]]],
  )

  // Types: the installed package type-checks under node16 (as ESM and as
  // CommonJS) and bundler resolution, with the package's own .d.ts checked too.
  writeFileSync(join(consumer, 'types-check.mts'), typesCheck)
  writeFileSync(join(consumer, 'types-check.cts'), typesCheck)
  writeFileSync(join(consumer, 'types-check.ts'), typesCheck)
  const common = ['--noEmit', '--strict', '--target', 'es2022', '--skipLibCheck', 'false']
  for (const [files, mode] of [
    [['types-check.mts', 'types-check.cts'], ['--module', 'node16', '--moduleResolution', 'node16']],
    [['types-check.ts'], ['--module', 'esnext', '--moduleResolution', 'bundler']],
  ] as const) {
    const r = spawnSync(process.execPath, [tsc, ...common, ...mode, ...nodeTypes, ...files], {
      cwd: consumer,
      env: childEnv(),
      encoding: 'utf8',
    })
    t.is(r.status, 0, `tsc ${mode.join(' ')}:\n${r.stdout}${r.stderr}`)
  }
})

test.serial('without a binary for this platform, loading the package names the platform', (t) => {
  t.timeout(120_000)
  const { consumer, installed } = packAndInstall()

  // A copy of the installed package without its platform package, as on a
  // platform nothing was built for (the main package holds no binary).
  const bare = tempDir(t)
  const copy = join(bare, 'node_modules', 'numpy-func-cache')
  cpSync(installed, copy, { recursive: true })
  t.deepEqual(readdirSync(join(copy, 'binding')).filter((f) => f.endsWith('.node')), [])
  writeFileSync(join(bare, 'package.json'), JSON.stringify({ name: 'nfc-bare', private: true }))

  const probe = (loader: string) => `
    ${loader}
      .then(() => console.log(JSON.stringify({ loaded: true })))
      .catch((e) => console.log(JSON.stringify({ loaded: false, message: e.message })))`
  writeFileSync(join(bare, 'cjs.cjs'), probe(`Promise.resolve().then(() => require('numpy-func-cache'))`))
  writeFileSync(join(bare, 'esm.mjs'), probe(`import('numpy-func-cache')`))

  for (const script of ['cjs.cjs', 'esm.mjs']) {
    const out = runNode(script, [], bare)
    t.false(out.loaded, `${script} loaded without a binary`)
    // napi's name of the platform, and the package that brings its binary.
    t.true(out.message.includes(`(${hostBinary().platform})`), `${script}: ${out.message}`)
    t.true(out.message.includes(`npm install numpy-func-cache-${hostBinary().platform}`), `${script}: ${out.message}`)
  }

  // The loader's override variable pointing at a missing file fails the same way.
  writeFileSync(join(consumer, 'probe.cjs'), probe(`Promise.resolve().then(() => require('numpy-func-cache'))`))
  const out = runNode('probe.cjs', [], consumer, {
    NAPI_RS_NATIVE_LIBRARY_PATH: join(bare, 'missing', 'numpy-func-cache.node'),
  })
  t.false(out.loaded)
  t.true(out.message.includes(`(${hostBinary().platform})`), out.message)
  // The platform package is installed there: the message says it did not load, not that it is missing.
  t.true(out.message.includes(`numpy-func-cache-${hostBinary().platform} is installed but its binary did not load`), out.message)
})
