// What a built addon is and what it needs from the system that loads it:
// `file`'s verdict, and for ELF the newest glibc symbol version it uses (the
// oldest glibc it loads on) or, for musl, the libraries it links.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 })

/** Compares dotted versions numerically (2.17 < 2.3 is false). */
function compareVersions(a, b) {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** The shared libraries an ELF file names as NEEDED. */
export function neededLibraries(path) {
  return [...run('readelf', ['-d', '-W', path]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1])
}

/** The newest `GLIBC_x.y` version among an ELF file's dynamic symbols, or undefined. */
export function newestGlibc(path) {
  const versions = [...run('readelf', ['--dyn-syms', '-W', path]).matchAll(/@GLIBC_([0-9.]+)/g)].map((m) => m[1])
  return versions.sort(compareVersions).at(-1)
}

/** The symbols an ELF file needs from elsewhere (undefined and not weak). */
export function undefinedSymbols(path) {
  const symbols = new Set()
  for (const line of run('readelf', ['--dyn-syms', '-W', path]).split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f[6] === 'UND' && f[4] === 'GLOBAL' && f[7]) symbols.add(f[7].replace(/@.*/, ''))
  }
  return symbols
}

/** musl's own libc, from Debian's musl package: what a musl Node process provides besides N-API. */
const MUSL_LIBC = '/usr/lib/x86_64-linux-musl/libc.so'

/**
 * For a musl build: the libraries it links that are not musl's libc, and
 * the symbols neither musl nor Node provide (napi_* and uv_* come from
 * Node). musl's symbol set is the same on every architecture, so the x86_64
 * libc.so serves arm64 builds too.
 */
export function muslShortfall(path) {
  // musl's loader answers for libc.so (and libc.musl-*) itself.
  const foreign = neededLibraries(path).filter((l) => !/^libc\.(so|musl-[a-z0-9_]+\.so\.1)$/.test(l))
  const provided = new Set()
  for (const line of run('readelf', ['--dyn-syms', '-W', MUSL_LIBC]).split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f[6] && f[6] !== 'UND' && f[7]) provided.add(f[7].replace(/@.*/, ''))
  }
  const missing = [...undefinedSymbols(path)].filter((s) => !provided.has(s) && !/^(napi|uv)_/.test(s))
  return { foreign, missing }
}

const LC_LOAD_DYLIB = 0xc
const LC_BUILD_VERSION = 0x32
const LC_VERSION_MIN_MACOSX = 0x24

/**
 * A 64-bit Mach-O file's dylibs (LC_LOAD_DYLIB) and the oldest macOS it
 * declares (LC_BUILD_VERSION's minos, or LC_VERSION_MIN_MACOSX): binutils
 * here reads no Mach-O, and the load commands are a short walk.
 */
export function machoInfo(path) {
  const b = readFileSync(path)
  if (b.readUInt32LE(0) !== 0xfeedfacf) throw new Error(`${path}: not a 64-bit little-endian Mach-O file`)
  const ncmds = b.readUInt32LE(16)
  const dylibs = []
  let minMacos
  const version = (v) => `${v >>> 16}.${(v >>> 8) & 0xff}`
  for (let i = 0, at = 32; i < ncmds; i++) {
    const cmd = b.readUInt32LE(at)
    const size = b.readUInt32LE(at + 4)
    if (cmd === LC_LOAD_DYLIB) {
      const name = b.subarray(at + b.readUInt32LE(at + 8), at + size)
      dylibs.push(name.subarray(0, name.indexOf(0)).toString())
    } else if (cmd === LC_BUILD_VERSION) {
      minMacos = version(b.readUInt32LE(at + 12))
    } else if (cmd === LC_VERSION_MIN_MACOSX) {
      minMacos = version(b.readUInt32LE(at + 8))
    }
    at += size
  }
  return { dylibs, minMacos }
}

/** The DLLs a PE file imports. */
export function importedDlls(path) {
  const names = [...run('objdump', ['-p', path]).matchAll(/DLL Name: (\S+)/g)].map((m) => m[1].toLowerCase())
  return [...new Set(names)]
}

/** `file`'s verdict and what the binary needs; a field whose tool this host lacks is left out. */
export function describeBinary(path) {
  const tryRun = (f) => {
    try {
      return f()
    } catch {
      return undefined
    }
  }
  const format = tryRun(() => run('file', ['-b', path]).trim())
  let needs
  if (format?.startsWith('ELF') && path.includes('musl')) {
    needs = tryRun(() => {
      const { foreign, missing } = muslShortfall(path)
      if (foreign.length + missing.length === 0) return `musl libc only (${neededLibraries(path).join(', ')})`
      return `NOT musl-clean: links ${foreign.join(', ') || 'nothing else'}; symbols musl lacks: ${missing.join(', ') || 'none'}`
    })
  } else if (format?.startsWith('ELF')) {
    const glibc = tryRun(() => newestGlibc(path))
    needs = glibc ? `glibc >= ${glibc}` : tryRun(() => `links ${neededLibraries(path).join(', ')}`)
  } else if (format?.startsWith('Mach-O')) {
    needs = tryRun(() => {
      const { dylibs, minMacos } = machoInfo(path)
      return `macOS >= ${minMacos}; links ${dylibs.map((d) => d.split('/').at(-1)).join(', ')}`
    })
  } else if (format?.startsWith('PE')) {
    needs = tryRun(() => `imports ${importedDlls(path).join(', ')}`)
  }
  return { format, needs }
}
