// Crashes of the whole machine. Entries are not synced: after an OS crash
// or a power cut a file can keep its length and lose its data (zeroed or
// stale blocks). A hit of an entry written in an earlier boot checks all
// its data once, read or mapped, so such an entry is a damaged one: the
// call recomputes and never returns the lost data. A later boot is
// simulated by the testing hook NFC_TEST_BOOT in a child process.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { openSync, closeSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { NumpyFuncCache } from '../dist'
import { root, tempDir } from './helpers'
import { onlyEntry } from './entries'

/** 2 MiB of float64: past the 64 KiB up to which every hit checks its data. */
const LENGTH = 1 << 18

// Runs in the test and in the child: the same name and arguments give the same key.
const RAMP = `(n) => { const a = new Float64Array(n); for (let i = 0; i < n; i++) a[i] = i + 1; return a }`

const CHILD = `
const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
const cache = new NumpyFuncCache(process.argv[1], { mmap: process.argv[2] === 'mmap' })
const damaged = []
cache.on('damagedEntry', (e) => damaged.push(e.code))
let computed = 0
const f = cache.createCachedFunc((n) => { computed++; return (${RAMP})(n) }, { name: 'ramp', trackSource: false })
const a = f(${LENGTH})
process.stdout.write(JSON.stringify({ damaged, computed, whole: a.every((v, i) => v === i + 1) }))
`

function inLaterBoot(dir: string, how: 'read' | 'mmap', boot: string): { damaged: string[]; computed: number; whole: boolean } {
  const out = execFileSync(process.execPath, ['-e', CHILD, dir, how], {
    encoding: 'utf8',
    env: { ...process.env, NFC_TEST_BOOT: boot },
  })
  return JSON.parse(out)
}

/** What a crash can leave: the length kept, blocks in the middle zeros. */
function loseBlocks(npy: string): void {
  const size = statSync(npy).size
  const fd = openSync(npy, 'r+')
  writeSync(fd, Buffer.alloc(1 << 20), 0, 1 << 20, Math.floor(size / 2))
  closeSync(fd)
  if (statSync(npy).size !== size) throw new Error('the damage must keep the length')
}

for (const how of ['read', 'mmap'] as const) {
  test(`${how}: an entry of an earlier boot that lost blocks is recomputed on its first hit, never returned`, (t) => {
    const dir = tempDir(t)
    const cache = new NumpyFuncCache(dir)
    const ramp = cache.createCachedFunc(eval(RAMP), { name: 'ramp', trackSource: false })
    ramp(LENGTH)
    const { npy } = onlyEntry(t, dir)
    loseBlocks(npy)
    const later = inLaterBoot(dir, how, `test-${how}-1`)
    t.deepEqual(later, { damaged: ['ERR_NFC_DAMAGED_ENTRY'], computed: 1, whole: true })
    // Replaced in that boot; another process of it hits without recomputing.
    t.deepEqual(inLaterBoot(dir, how, `test-${how}-1`), { damaged: [], computed: 0, whole: true })
  })
}
