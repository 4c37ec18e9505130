// The wine prefix that Windows builds run in here (.tools/wine): told to be
// Windows 10 (Node 20 refuses older), and given the two system DLLs that
// Windows 10 ships, that Rust's standard library imports, and that Debian's
// wine 8 lacks (scripts/wine-shims/, built with mingw-w64).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const shims = join(root, 'scripts', 'wine-shims')

/** The environment that runs programs in the prefix, which is made ready first. */
export function winePrefix() {
  const env = { WINEPREFIX: join(root, '.tools', 'wine'), WINEDEBUG: '-all' }
  const system32 = join(env.WINEPREFIX, 'drive_c', 'windows', 'system32')
  if (!existsSync(system32)) {
    mkdirSync(env.WINEPREFIX, { recursive: true })
    execFileSync('wine', ['winecfg', '/v', 'win10'], { env: { ...process.env, ...env }, stdio: 'ignore' })
  }
  const gcc = (out, ...args) => {
    if (!existsSync(join(system32, out))) execFileSync('x86_64-w64-mingw32-gcc', ['-shared', '-O2', '-o', join(system32, out), ...args])
  }
  gcc('api-ms-win-core-synch-l1-2-0.dll', join(shims, 'empty.c'), join(shims, 'api-ms-win-core-synch-l1-2-0.def'))
  gcc('bcryptprimitives.dll', join(shims, 'bcryptprimitives.c'), '-ladvapi32')
  return env
}
