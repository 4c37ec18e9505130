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
/** What a lookup of an entry finds. */
export type Lookup = ReturnType<NativeCacheDir['load']>
/** An array as the core hands it over: its bytes and what its header says. */
export type RawArray = ReturnType<typeof native.readNpyFile>
