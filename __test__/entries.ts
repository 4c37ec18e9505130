// Helpers for tests that look at a cache directory's entries and at what
// real NumPy sees in them.
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { runPython, tempDir } from './helpers'

export type Ctx = Parameters<typeof tempDir>[0]
export type Any = any

const ENTRY = /^[0-9a-f]{64}\.npy$/

export function entries(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((n) => ENTRY.test(n)).sort()
}

export function onlyEntry(t: Ctx, dir: string): { key: string; npy: string; json: string } {
  const names = entries(dir)
  t.is(names.length, 1, `expected one entry in ${dir}, found ${names.join(', ')}`)
  const key = names[0].slice(0, 64)
  return { key, npy: join(dir, `${key}.npy`), json: join(dir, `${key}.json`) }
}

export function hexOf(a: ArrayBufferView): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex')
}

interface NumpyView {
  dtype: string
  shape: number[]
  hex: string
  fortran: boolean
}

/** What real NumPy sees in each file: dtype.str, shape and the C-order bytes. */
export function numpyLoad(paths: string[]): NumpyView[] {
  const out = runPython(
    `out = []
for p in sys.argv[1:]:
    a = np.load(p, allow_pickle=False)
    out.append({'dtype': a.dtype.str, 'shape': list(a.shape), 'hex': np.ascontiguousarray(a).tobytes().hex(),
                'fortran': bool(a.flags.f_contiguous and not a.flags.c_contiguous)})
print(json.dumps(out))`,
    paths,
  )
  return JSON.parse(out)
}

export const tick = () => new Promise<void>((r) => setImmediate(r))
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
