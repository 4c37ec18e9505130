// Loads the compiled addon (binding/, built by napi). The napi-generated
// loader picks the binary for this platform; when none exists we say which
// platform that is.
import { constants } from 'node:buffer'
import type * as Native from '../binding/index'
import type { Loaded } from '../binding/index'
import { ErrorCodes, codedError } from './errors'

/** napi's name of this platform, as the platform packages are named: `linux-x64-gnu`. */
function platformName(): string {
  const { platform, arch } = process
  if (platform === 'linux') {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header
    return `linux-${arch}-${header?.glibcVersionRuntime ? 'gnu' : 'musl'}`
  }
  return platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`
}

/** The platforms with a prebuilt package, from the release's target list. */
function prebuiltPlatforms(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const targets = (require('../package.json') as { napi: { targets: string[] } }).napi.targets
  const CPUS: Record<string, string> = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' }
  return targets.map((triple) => {
    const [arch = '', , os, abi] = triple.split('-')
    const cpu = CPUS[arch] ?? arch
    if (os === 'darwin') return `darwin-${cpu}`
    return os === 'windows' ? `win32-${cpu}-${abi}` : `linux-${cpu}-${abi}`
  })
}

/** Whether the platform package is installed where this package can load it. */
function installed(pkg: string): boolean {
  try {
    require.resolve(`${pkg}/package.json`)
    return true
  } catch {
    return false
  }
}

function noBinaryMessage(cause: Error): string {
  const platform = platformName()
  const pkg = `numpy-func-cache-${platform}`
  const prebuilt = prebuiltPlatforms()
  const fromSource = 'build the binary from source with Rust: npm run build in a clone of the repository.'
  let fix: string
  if (!prebuilt.includes(platform)) {
    fix = `Prebuilt binaries exist for ${prebuilt.join(', ')}; elsewhere ${fromSource}`
  } else if (installed(pkg)) {
    // Installed, yet it did not load: the system lacks what it needs (an older C library, say).
    fix = `Its package ${pkg} is installed but its binary did not load on this system (the cause below says why); or ${fromSource}`
  } else {
    fix =
      `Its prebuilt binary comes in the package ${pkg}, an optional dependency that is not installed here ` +
      `(an install with --omit=optional or --no-optional, or a lockfile made on another platform, leaves it out). ` +
      `Install it (npm install ${pkg}) or reinstall with optional dependencies; or ${fromSource}`
  }
  return `numpy-func-cache has no native binary for this platform (${platform}). ${fix} (${cause.message})`
}

function load(): typeof Native {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../binding/index.js') as typeof Native
  } catch (cause) {
    throw codedError(Error, ErrorCodes.NO_BINARY, noBinaryMessage(cause as Error), { cause })
  }
}

export const native = load()
native.setMaxExternalLength(constants.MAX_LENGTH)

export type NativeCache = InstanceType<typeof native.Cache>
export type { Failure, Hit, Loaded, LoadedValue, Note } from '../binding/index'

const CLASS_NAMES = native.classTable().map((c) => c.name)
const DTYPE_DESCRS = native.dtypeTable().map((d) => d.descr)
/** Where `load` describes a hit: six numbers, then the dimensions. */
const META = new Float64Array(6 + native.defaults().maxDims)
const MISS: Loaded = { notes: [] }

/**
 * `cache.load(key)` on this thread, through the binding's lean protocol,
 * which builds no objects for a plain hit or miss: the cheapest hit (the
 * sync wrapper's path).
 */
export function loadNow(cache: NativeCache, key: string): Loaded {
  const found = cache.load(key, META)
  if (found === null) return MISS
  if (!(found instanceof ArrayBuffer)) return found
  const ndim = META[5]
  const shape = new Array<number>(ndim)
  for (let i = 0; i < ndim; i++) shape[i] = META[6 + i]!
  const array = { buffer: found, shape, dtype: DTYPE_DESCRS[META[1]], fortranOrder: META[3] === 1, mapped: META[4] === 1 }
  return { hit: { array, class: CLASS_NAMES[META[0]], result: META[2] === 1 ? 'ndarray' : 'typedarray' }, notes: [] }
}
