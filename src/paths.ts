// Paths as the API takes them: strings or `file:` URLs, as `fs` does, and
// for a cache location an object-store URL too; and where a cache lives
// when none is given.
import { homedir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { native } from './native'
import { describe } from './describe'
import { invalidArg } from './errors'

/** The schemes of object-store locations, as URLs spell them: `'s3:'`. */
const STORE_PROTOCOLS = native.storeSchemes().map((s) => `${s}:`)

/**
 * A path as `fs` takes it: a non-empty string or a `file:` URL; and for a
 * cache location (`storeAllowed`) also an object-store URL (`s3:`, ...).
 */
export function pathOf(value: unknown, where: string, name = 'path', storeAllowed = false): string {
  if (value instanceof URL) {
    if (value.protocol === 'file:') return fileURLToPath(value)
    if (storeAllowed && STORE_PROTOCOLS.includes(value.protocol)) return value.href
    const others = storeAllowed ? ` or an ${STORE_PROTOCOLS.join(', ')} one` : ''
    throw invalidArg(`${where}: ${name} must be a file: URL${others}, got ${value.href}`)
  }
  if (typeof value !== 'string' || value.length === 0) throw invalidArg(`${where}: ${name} must be a non-empty string or a file: URL, got ${describe(value)}`)
  return value
}

/**
 * Where a cache without a path lives: `$NUMPY_FUNC_CACHE_DIR`, else this
 * user's cache directory of the platform (as env-paths and find-cache-dir
 * choose it): `$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches`
 * on macOS, `%LOCALAPPDATA%` on Windows.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NUMPY_FUNC_CACHE_DIR) return env.NUMPY_FUNC_CACHE_DIR
  const home = homedir()
  if (process.platform === 'darwin') return join(home, 'Library', 'Caches', 'numpy-func-cache')
  if (process.platform === 'win32') return join(env.LOCALAPPDATA || join(home, 'AppData', 'Local'), 'numpy-func-cache', 'Cache')
  // XDG: a relative $XDG_CACHE_HOME is to be ignored.
  const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(home, '.cache')
  return join(xdg, 'numpy-func-cache')
}
