// Loads the compiled addon (binding/, built by napi). The napi-generated
// loader picks the binary for this platform; when none exists we say which
// platform that is.
import { constants } from 'node:buffer'
import type * as Native from '../binding/index'
import { ErrorCodes, codedError } from './errors'

function load(): typeof Native {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../binding/index.js') as typeof Native
  } catch (cause) {
    const platform = `${process.platform}-${process.arch}`
    throw codedError(
      Error,
      ErrorCodes.NO_BINARY,
      `numpy-func-cache has no native binary for this platform (${platform}). ` +
        `Prebuilt binaries exist for linux x64/arm64 (gnu, musl), darwin x64/arm64 and win32 x64; ` +
        `elsewhere build from source with Rust: npm run build. (${(cause as Error).message})`,
      { cause },
    )
  }
}

export const native = load()
native.setMaxExternalLength(constants.MAX_LENGTH)

export type NativeCacheDir = InstanceType<typeof native.CacheDir>
export type NativeRemote = InstanceType<typeof native.RemoteCache>
/** What a lookup of an entry finds. */
export type Lookup = ReturnType<NativeCacheDir['load']>
/** An array as the core hands it over: its bytes and what its header says. */
export type RawArray = ReturnType<typeof native.readNpyFile>

const CLASS_NAMES = native.classTable().map((c) => c.name)
const DTYPE_DESCRS = native.dtypeTable().map((d) => d.descr)
/** Where `loadLean` describes a hit: six numbers, then the dimensions. */
const META = new Float64Array(6 + native.defaults().maxDims)
const MISS: Lookup = { status: 'miss' }

/**
 * `dir.load(key)` through the binding's lean protocol, which builds no
 * objects on the native side: the cheapest hit (the sync wrapper's path).
 */
export function loadLean(dir: NativeCacheDir, key: string): Lookup {
  const found = dir.loadLean(key, META)
  if (found === undefined) return MISS
  if (!(found instanceof ArrayBuffer)) return { status: 'damaged', error: found }
  const ndim = META[5]
  const shape = new Array<number>(ndim)
  for (let i = 0; i < ndim; i++) shape[i] = META[6 + i]!
  return {
    status: 'hit',
    class: CLASS_NAMES[META[0]],
    result: META[2] === 1 ? 'ndarray' : 'typedarray',
    array: { buffer: found, shape, dtype: DTYPE_DESCRS[META[1]], fortranOrder: META[3] === 1, mapped: META[4] === 1 },
  }
}
