// Makes a fresh clone ready: npm packages, the native addon (with --dev, a
// debug build, for the quick inner loop), the TS build,
// and (with --python) what the tests and benchmark need besides: a
// virtualenv with NumPy, boto3 and moto's S3 server, and the S3 server versitygw; (with
// --cross) what the registry test needs: qemu-aarch64 with arm64's C and
// C++ libraries from Debian, and the linux-arm64-gnu binary.
// Each step is cheap when already done, so every npm script can run it.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

const root = fileURLToPath(new URL('..', import.meta.url))
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' })
const quiet = (cmd, args) => {
  try {
    execFileSync(cmd, args, { cwd: root, stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

if (!existsSync(join(root, 'node_modules', '.bin', 'napi'))) {
  run('npm', [existsSync(join(root, 'package-lock.json')) ? 'ci' : 'install', '--no-audit', '--no-fund'])
}
run('npm', ['run', '--silent', process.argv.includes('--dev') ? 'build:dev' : 'build'])

if (process.argv.includes('--python')) {
  const python = join(root, '.venv', 'bin', 'python')
  if (!quiet(python, ['-c', 'import numpy, boto3, moto.server'])) {
    if (!existsSync(python)) run('python3', ['-m', 'venv', join(root, '.venv')])
    // moto's server: a second S3 implementation for the conformance and listing tests.
    run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'numpy', 'boto3', 'moto[server]>=5.1,<6'])
  }
}

if (process.argv.includes('--python')) {
  // The real S3 server the remote-tier tests and benchmark start: versitygw,
  // built once with `go install` into .tools/ (about a minute, cold).
  const { ensureVersitygw } = await import('./s3-server.mjs')
  await ensureVersitygw()
}

if (process.argv.includes('--cross')) {
  // Debian's packages, installed once: as root, or through sudo (GitHub's runners).
  const needed = [
    ['qemu-aarch64', 'qemu-user'],
    ['/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1', 'libc6-arm64-cross'],
    // The arm64 Node the registry test runs under qemu links libstdc++ (and, through it, libgcc_s).
    ['/usr/aarch64-linux-gnu/lib/libstdc++.so.6', 'libstdc++6-arm64-cross'],
    ['readelf', 'binutils'],
    ['file', 'file'],
  ].filter(([probe]) => !(probe.startsWith('/') ? existsSync(probe) : quiet('sh', ['-c', `command -v ${probe}`])))
  if (needed.length > 0) {
    const packages = needed.map(([, pkg]) => pkg)
    const sudo = process.getuid?.() === 0 ? '' : 'sudo -n '
    const apt = (args) => run('sh', ['-c', `${sudo}env DEBIAN_FRONTEND=noninteractive apt-get ${args} >/dev/null`])
    try {
      apt('update -qq')
      apt(`install -y -qq --no-install-recommends ${packages.join(' ')}`)
    } catch (e) {
      throw new Error(`could not install ${packages.join(', ')} with ${sudo}apt-get (root or passwordless sudo is needed; or install them yourself): ${e.message}`)
    }
  }
  // Cargo makes this a no-op when the binary is up to date.
  run('node', ['scripts/build-targets.mjs', 'aarch64-unknown-linux-gnu'])
}
