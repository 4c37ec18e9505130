// Type tests of the public API, compiled (never run) by `npm run check`
// against the built declarations in dist/: each `expect<Equal<...>>` must
// hold, and each line after `@ts-expect-error` must fail to compile.
import {
  type CachedFunction,
  type CachedResult,
  type EntryArray,
  type EntryHandle,
  type ErrorCode,
  ErrorCodes,
  type LoadedNdArray,
  type NdArray,
  NumpyFuncCache,
  type OutputCachedFunction,
  type OutputFill,
  readNpy,
  readNpz,
  writeNpz,
  type TooLargeInfo,
} from '../../dist'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
declare function expect<T extends true>(): void

const cache = new NumpyFuncCache('/tmp/nfc-types')

// A synchronous function: the wrapper has its parameters and returns its class.
const ramp = cache.createCachedFunc((n: number, scale?: number) => new Float64Array(n).fill(scale ?? 1))
// (TypeScript 5.7+ types a new array as over an ArrayBuffer.)
expect<Equal<ReturnType<typeof ramp>, Float64Array<ArrayBuffer>>>()
expect<Equal<Parameters<typeof ramp>, [n: number, scale?: number]>>()
// @ts-expect-error the argument types are the function's
ramp('3')
ramp.has(3, 0.5)
ramp.invalidate(3)
// @ts-expect-error has() takes the same arguments
ramp.has('3')

// open() takes the call's arguments and gives a handle; cache.open() may find nothing.
const handle = ramp.open(3, 0.5)
expect<Equal<typeof handle, EntryHandle>>()
expect<Equal<ReturnType<typeof ramp.openAsync>, Promise<EntryHandle>>>()
expect<Equal<ReturnType<typeof cache.open>, EntryHandle | undefined>>()
expect<Equal<ReturnType<EntryArray['readBytes']>, Uint8Array>>()
expect<Equal<typeof handle.shape, readonly number[]>>()
handle.member('mean').readRows(0, 2)
// @ts-expect-error open() takes the same arguments
ramp.open('3')
// @ts-expect-error readBytes needs an end
handle.readBytes(0)

// An async function: a Promise of the same class.
const counts = cache.createCachedFunc(async (n: number) => new Int32Array(n))
expect<Equal<ReturnType<typeof counts>, Promise<Int32Array<ArrayBuffer>>>>()
expect<Equal<typeof counts, CachedFunction<(n: number) => Promise<Int32Array<ArrayBuffer>>>>>()

// An n-d result comes back as { data, shape, dtype } of its data's class.
const grid = cache.createCachedFunc((n: number) => ({ data: new Float32Array(n * 2), shape: [n, 2] }))
expect<Equal<ReturnType<typeof grid>, LoadedNdArray<Float32Array<ArrayBuffer>> & { fortranOrder?: true }>>()
expect<Equal<CachedResult<NdArray<BigInt64Array>>, LoadedNdArray<BigInt64Array> & { fortranOrder?: true }>>()
expect<Equal<CachedResult<Uint8Array>, Uint8Array>>()

// A tuple of arrays comes back as a tuple of the same forms and classes.
const pair = cache.createCachedFunc((n: number) => [new Float64Array(n), { data: new Int32Array(n), shape: [n, 1] }] as const)
expect<Equal<ReturnType<typeof pair>, [Float64Array<ArrayBuffer>, LoadedNdArray<Int32Array<ArrayBuffer>> & { fortranOrder?: true }]>>()
// A record of arrays, as a record of the same names.
const moments = cache.createCachedFunc(async (n: number) => ({ mean: new Float64Array(n), cov: { data: new Float64Array(n * n), shape: [n, n] } }))
expect<
  Equal<ReturnType<typeof moments>, Promise<{ mean: Float64Array<ArrayBuffer>; cov: LoadedNdArray<Float64Array<ArrayBuffer>> & { fortranOrder?: true } }>>
>()
// @ts-expect-error a tuple holding a number
cache.createCachedFunc(() => [new Float64Array(1), 2] as const)
// @ts-expect-error a record holding a plain array
cache.createCachedFunc(() => ({ mean: new Float64Array(1), labels: [1, 2] }))

// A union of results stays a union.
const either = cache.createCachedFunc((wide: boolean) => (wide ? new Float64Array(1) : new Float32Array(1)))
expect<Equal<ReturnType<typeof either>, Float64Array<ArrayBuffer> | Float32Array<ArrayBuffer>>>()

// `this` is passed through, and typed.
function scaled(this: { scale: number }, n: number) {
  return new Float64Array(n).fill(this.scale)
}
const method = cache.createCachedFunc(scaled)
method.call({ scale: 2 }, 3)
// @ts-expect-error `this` of the wrong shape
method.call({ other: 2 }, 3)

// A function whose result cannot be cached does not compile.
// @ts-expect-error a number
cache.createCachedFunc((n: number) => n * 2)
// @ts-expect-error a plain array
cache.createCachedFunc(() => [1, 2, 3])
// @ts-expect-error nothing
cache.createCachedFunc(() => {})
// @ts-expect-error a Promise of a string
cache.createCachedFunc(async () => 'text')
// @ts-expect-error an object without data
cache.createCachedFunc(() => ({ shape: [1] }))

// Options are checked.
// @ts-expect-error an unknown option
cache.createCachedFunc(() => new Uint8Array(1), { nmae: 'x' })
// @ts-expect-error computeOnce takes a boolean or { timeout, staleAfter }
new NumpyFuncCache('/tmp/nfc-types', { computeOnce: 'yes' })
new NumpyFuncCache('/tmp/nfc-types', { maxBytes: 1e9, maxEntries: 10, maxAge: 3600e3, computeOnce: { timeout: 5000 } })

new NumpyFuncCache('/tmp/nfc-types', { verify: true, mmap: true })
cache.createCachedFunc(scaled, { ignoreThis: true })
// @ts-expect-error ignoreThis is a boolean
cache.createCachedFunc(scaled, { ignoreThis: 'yes' })

// What the maintenance calls return.
expect<Equal<ReturnType<typeof cache.verify>, { checked: number; damaged: { key: string; reason: string }[]; removed: number }>>()
// @ts-expect-error verify takes { dryRun, onProgress }
cache.verify({ dry: true })
expect<Equal<ReturnType<typeof cache.stats>, { entries: number; bytes: number; hits: number; misses: number; foreign: number }>>()
expect<Equal<ReturnType<typeof cache.entries>[number]['lastUsed'], Date>>()
expect<Equal<ReturnType<typeof cache.prune>['removedEntries'], number>>()
// The async forms resolve to what the sync forms return, and take a signal.
expect<Equal<ReturnType<typeof cache.statsAsync>, Promise<ReturnType<typeof cache.stats>>>>()
expect<Equal<ReturnType<typeof cache.entriesAsync>, Promise<ReturnType<typeof cache.entries>>>>()
expect<Equal<ReturnType<typeof cache.pruneAsync>, Promise<ReturnType<typeof cache.prune>>>>()
expect<Equal<ReturnType<typeof cache.verifyAsync>, Promise<ReturnType<typeof cache.verify>>>>()
expect<Equal<ReturnType<typeof cache.clearCacheAsync>, Promise<void>>>()
void cache.pruneAsync({ maxBytes: '10GB' }, { signal: AbortSignal.timeout(1000), onProgress: (done: number, total: number) => void [done, total] })
// @ts-expect-error signal is an AbortSignal
void cache.statsAsync({ signal: true })
cache.clearCache({ removeDir: true, signal: new AbortController().signal })

// Events carry typed payloads.
cache.on('storeError', (error, info) => {
  expect<Equal<typeof error, Error>>()
  expect<Equal<typeof info.key, string>>()
})
cache.on('entryTooLarge', (info) => {
  expect<Equal<typeof info, TooLargeInfo>>()
  expect<Equal<[typeof info.bytes, typeof info.limit, typeof info.location], [number, number, string]>>()
})
new NumpyFuncCache('/tmp/nfc-types', { maxBytes: '1GB', maxEntryBytes: '100MB' })
new NumpyFuncCache('/tmp/nfc-types', { maxEntryBytes: 1e8 })
// @ts-expect-error maxEntryBytes is a size
new NumpyFuncCache('/tmp/nfc-types', { maxEntryBytes: true })
// @ts-expect-error a prune does not take it: it is a rule of stores
cache.prune({ maxEntryBytes: 1e8 })

// readNpy: a union without a class, the class given (checked at run time) with one.
expect<Equal<ReturnType<typeof readNpy>['shape'], number[]>>()
expect<Equal<ReturnType<typeof readNpy<Float64Array>>['data'], Float64Array>>()
const f8: Float64Array = readNpy('/tmp/a.npy', Float64Array).data
const u16: Uint16Array = readNpy(new URL('file:///tmp/a.npy'), Uint16Array).data
// @ts-expect-error without a class the data is any TypedArray, not a Float64Array
const unchecked: Float64Array = readNpy('/tmp/a.npy').data
// @ts-expect-error Array is not a TypedArray class
readNpy('/tmp/a.npy', Array)
void [f8, u16, unchecked]
// readNpz: members by name; writeNpz: a tuple or a record of arrays, not one array.
expect<Equal<ReturnType<typeof readNpz>, Record<string, ReturnType<typeof readNpy>>>>()
writeNpz('/tmp/a.npz', [new Float64Array(1), { data: new Int32Array(4), shape: [2, 2] }])
writeNpz(new URL('file:///tmp/a.npz'), { mean: new Float64Array(2) })
// @ts-expect-error one array is not a tuple or a record of arrays
writeNpz('/tmp/a.npz', new Float64Array(1))
// @ts-expect-error a member must be an array
writeNpz('/tmp/a.npz', { n: 3 })
new NumpyFuncCache(new URL('file:///tmp/nfc-types'), { maxBytes: '10GB', maxAge: '7d' })
new NumpyFuncCache()
new NumpyFuncCache('/tmp/nfc-types', { computeOnce: { timeout: 1000, signal: AbortSignal.timeout(1000) } })
// @ts-expect-error a signal is an AbortSignal
new NumpyFuncCache('/tmp/nfc-types', { computeOnce: { signal: true } })
expect<Equal<ReturnType<NumpyFuncCache['close']>, void>>()
expect<Equal<ReturnType<NumpyFuncCache[typeof Symbol.dispose]>, void>>()
expect<Equal<ReturnType<NumpyFuncCache['clearFunction']>, number>>()
expect<Equal<Parameters<NumpyFuncCache['remove']>, [key: string]>>()
new NumpyFuncCache(undefined, { maxEntries: 10 })
// @ts-expect-error maxEntries is a count, not a string
new NumpyFuncCache('/tmp/nfc-types', { maxEntries: '10' })

// The error codes.
expect<Equal<(typeof ErrorCodes)['IO'], 'ERR_NFC_IO'>>()
const code: ErrorCode = 'ERR_NFC_DAMAGED_ENTRY'
// @ts-expect-error not a code of this package
const other: ErrorCode = 'ENOENT'
void [code, other]

// A declared output: the function gets the array to fill as its last
// argument; the wrapper takes the other arguments and returns that array.
const filled = cache.createCachedFunc(
  (n: number, out) => {
    expect<Equal<typeof out, OutputFill<'<f8'>>>()
    out.data.fill(n)
    out.fill(n)
    expect<Equal<typeof out.shape, readonly number[]>>()
  },
  { output: (n: number) => ({ shape: [n, 3], dtype: '<f8' }) },
)
expect<Equal<ReturnType<typeof filled>, LoadedNdArray<Float64Array>>>()
expect<Equal<Parameters<typeof filled>, [n: number]>>()
filled.open(2)
// @ts-expect-error the wrapper takes the arguments output() takes
filled('2')
// One dimension: a TypedArray of the dtype's class; async: a Promise of it.
const line = cache.createCachedFunc(
  async (n: number, out) => {
    expect<Equal<typeof out, OutputFill<'<i4'>>>()
    out.fill(n)
  },
  { output: (n: number) => ({ shape: [n], dtype: '<i4' }) },
)
expect<Equal<ReturnType<typeof line>, Promise<Int32Array>>>()
expect<Equal<typeof line, OutputCachedFunction<[n: number], readonly [number], '<i4', Promise<void>>>>()
// @ts-expect-error output must declare a shape
cache.createCachedFunc((n: number, out: Float64Array) => void out.fill(n), { output: (n: number) => ({ dtype: '<f8' }) })
// @ts-expect-error the function fills its output and returns nothing (or that array), never another value
cache.createCachedFunc((n: number, out: Int32Array) => n * 2, { output: (n: number) => ({ shape: [n], dtype: '<i4' }) })
