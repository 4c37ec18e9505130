// Loads the compiled addon. The napi-generated loader picks the binary for
// this platform; when none exists we say which platform that is.
import type * as Native from '../index'

function load(): typeof Native {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../index.js') as typeof Native
  } catch (cause) {
    const platform = `${process.platform}-${process.arch}`
    throw new Error(
      `numpy-func-cache has no native binary for this platform (${platform}). ` +
        `Prebuilt binaries exist for linux x64/arm64 (gnu, musl), darwin x64/arm64 and win32 x64; ` +
        `elsewhere build from source with Rust: npm run build. (${(cause as Error).message})`,
      { cause },
    )
  }
}

export const native = load()
native.setMaxExternalLength(require('node:buffer').constants.MAX_LENGTH)
