// `npm run test:targets [-- <target>...]`: runs the pure-Rust crates' tests
// (`cargo test`, the binding aside) compiled for other targets, on this
// machine: Linux arm64 under qemu-aarch64, musl natively, Windows under wine.
// The platform-specific code (links, leases, mapping, filesystem probes) is
// exercised where it runs, not only compiled.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { hasCommand } from './has-command.mjs'
import { winePrefix } from './wine-prefix.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))

/** How each target is compiled and run here. */
const RUNNERS = {
  'aarch64-unknown-linux-gnu': {
    needs: ['aarch64-linux-gnu-gcc', 'qemu-aarch64'],
    env: {
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER: 'aarch64-linux-gnu-gcc',
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER: 'qemu-aarch64 -L /usr/aarch64-linux-gnu',
      CC_aarch64_unknown_linux_gnu: 'aarch64-linux-gnu-gcc',
    },
  },
  'x86_64-unknown-linux-musl': { needs: ['musl-gcc'], env: { CC_x86_64_unknown_linux_musl: 'musl-gcc' } },
  'x86_64-pc-windows-gnu': {
    needs: ['x86_64-w64-mingw32-gcc', 'wine'],
    env: { CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER: 'wine' },
    prepare: winePrefix,
    // Tests of NTFS behaviour that Windows 10 has and wine 8 does not emulate.
    skip: {
      // A removed name that is still open goes at once (POSIX delete
      // semantics); wine unlinks only once every handle to the file closes.
      clear_leaves_the_temporary_files_and_leases_of_running_processes: 'wine keeps a removed name until its file is closed',
      // Renaming over an open file (POSIX rename semantics); wine 8 lacks
      // FileRenameInfoEx, so std falls back to a rename an open target refuses.
      temporary_names_differ_between_stores: 'wine cannot rename over a file another thread has open',
    },
  },
}


const targets = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(RUNNERS)
const results = []
for (const target of targets) {
  const runner = RUNNERS[target]
  if (!runner) throw new Error(`no runner for ${target}; known: ${Object.keys(RUNNERS).join(', ')}`)
  const missing = runner.needs.filter((c) => !hasCommand(c))
  if (missing.length > 0) {
    results.push([target, `not run: needs ${missing.join(', ')}`])
    continue
  }
  spawnSync('rustup', ['target', 'add', target], { stdio: 'inherit' })
  const env = { ...runner.env, ...runner.prepare?.() }
  console.log(`\n== cargo test --target ${target}`)
  const skips = Object.entries(runner.skip ?? {})
  for (const [name, why] of skips) console.log(`skipping ${name}: ${why}`)
  const skipArgs = skips.length > 0 ? ['--', ...skips.flatMap(([name]) => ['--skip', name])] : []
  const r = spawnSync('cargo', ['test', '--no-fail-fast', '--workspace', '--exclude', 'numpy-func-cache-binding', '--target', target, ...skipArgs], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...env },
  })
  const skipped = skips.length > 0 ? ` (${skips.length} skipped: ${skips.map(([n]) => n).join(', ')})` : ''
  results.push([target, r.status === 0 ? `passed${skipped}` : `FAILED (exit ${r.status ?? r.signal})`])
}
console.log('')
for (const [target, result] of results) console.log(`${target}: ${result}`)
if (results.some(([, r]) => !r.startsWith('passed'))) process.exitCode = 1
