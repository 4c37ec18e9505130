// Whether a program is on PATH: the scripts that need a tool from Debian
// (qemu, wine, mingw) say what is missing instead of failing on it.
import { spawnSync } from 'node:child_process'

export const hasCommand = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
