// An entry opened for partial reads: its arrays' shapes and dtypes, known
// without reading their data, and reads of rows or bytes of each, which
// the core checks block by block against the digests stored with the
// entry (positioned reads of a file, ranged GETs of an object).
import type { EntryHandle as NativeHandle, MemberValue, ResultForm } from '../binding/index'
import { describe } from './describe'
import { type TypedArray, itemSize, viewOf } from './dtypes'
import { invalidArg, nativeCall, nativeCallAsync, outOfRange } from './errors'
import { shaped } from './results'
import type { LoadedNdArray } from './npy'
import type { EntryArray, EntryHandle as EntryHandleType } from './types'

/** One array of an opened entry. */
class OpenedArray implements EntryArray {
  readonly name: string
  readonly shape: readonly number[]
  readonly dtype: string
  readonly fortranOrder: boolean
  readonly className: string
  readonly bytes: number
  readonly rows: number
  readonly #form: ResultForm
  readonly #offset: number
  readonly #rowBytes: number

  constructor(
    private readonly handle: () => NativeHandle,
    m: MemberValue,
  ) {
    this.name = m.name
    this.shape = Object.freeze([...m.shape])
    this.dtype = m.dtype
    this.fortranOrder = m.fortranOrder
    this.className = m.class
    this.#form = m.result
    this.#offset = m.offset
    const size = itemSize(m.dtype)
    this.bytes = m.shape.reduce((a, b) => a * b, 1) * size
    this.rows = m.shape.length === 0 ? 1 : m.shape[0]
    this.#rowBytes = m.shape.slice(1).reduce((a, b) => a * b, 1) * size
  }

  readRows(start: number, end = start + 1): TypedArray | LoadedNdArray {
    const [from, to] = this.#rowRange('readRows', start, end)
    return this.#rowsOf(nativeCall(() => this.handle().read(from, to)), end - start)
  }

  async readRowsAsync(start: number, end = start + 1): Promise<TypedArray | LoadedNdArray> {
    const [from, to] = this.#rowRange('readRowsAsync', start, end)
    return this.#rowsOf(await nativeCallAsync(() => this.handle().readAsync(from, to)), end - start)
  }

  readBytes(start: number, end: number): Uint8Array {
    const [from, to] = this.#byteRange('readBytes', start, end)
    return new Uint8Array(nativeCall(() => this.handle().read(from, to)))
  }

  async readBytesAsync(start: number, end: number): Promise<Uint8Array> {
    const [from, to] = this.#byteRange('readBytesAsync', start, end)
    return new Uint8Array(await nativeCallAsync(() => this.handle().readAsync(from, to)))
  }

  /** Rows `start..end` as offsets in the entry's body, checked. */
  #rowRange(where: string, start: number, end: number): [number, number] {
    if (this.shape.length > 1 && this.fortranOrder) {
      throw invalidArg(`${where}: ${this.#what()} is in Fortran order, where rows are not contiguous; read it with readBytes`)
    }
    this.#checkRange(where, start, end, this.rows, 'rows')
    return [this.#offset + start * this.#rowBytes, this.#offset + end * this.#rowBytes]
  }

  #byteRange(where: string, start: number, end: number): [number, number] {
    this.#checkRange(where, start, end, this.bytes, 'bytes')
    return [this.#offset + start, this.#offset + end]
  }

  #checkRange(where: string, start: number, end: number, count: number, unit: string): void {
    for (const [arg, value] of [['start', start], ['end', end]] as const) {
      if (!Number.isSafeInteger(value)) throw invalidArg(`${where}: ${arg} must be a whole number, got ${describe(value)}`)
    }
    if (start < 0 || end < start || end > count) {
      throw outOfRange(`${where}: ${start}..${end} is not a range of the ${count} ${unit} of ${this.#what()}`)
    }
  }

  #what(): string {
    return this.name === '' ? 'the array' : `array ${describe(this.name)}`
  }

  #rowsOf(buffer: ArrayBuffer, rows: number): TypedArray | LoadedNdArray {
    const data = viewOf(buffer, this.className, this.dtype)
    if (this.#form === 'typedarray') return data
    const shape = this.shape.length === 0 ? [] : [rows, ...this.shape.slice(1)]
    return shaped(data, { shape, dtype: this.dtype, fortranOrder: false }) as LoadedNdArray
  }
}

/** An opened entry; see `EntryHandle` in types.ts. */
export class OpenedEntry implements EntryHandleType {
  readonly key: string
  readonly result: ResultForm
  readonly members: readonly EntryArray[]
  readonly bytes: number
  #native: NativeHandle | undefined

  constructor(key: string, native: NativeHandle) {
    this.key = key
    this.#native = native
    const layout = nativeCall(() => native.layout())
    this.result = layout.result
    const handle = () => {
      if (this.#native === undefined) throw invalidArg(`the entry ${key.slice(0, 12)}… was closed: open it again to read it`)
      return this.#native
    }
    this.members = Object.freeze(layout.arrays.map((m) => new OpenedArray(handle, m)))
    this.bytes = this.members.reduce((a, m) => a + m.bytes, 0)
  }

  member(name: string | number): EntryArray {
    const found = typeof name === 'number' ? this.members[name] : this.members.find((m) => m.name === name)
    if (found === undefined) {
      const names = this.members.map((m) => describe(m.name)).join(', ')
      throw outOfRange(`member: the entry holds no array ${describe(name)} (it holds ${this.members.length}: ${names})`)
    }
    return found
  }

  get shape(): readonly number[] {
    return this.#only('shape').shape
  }

  get dtype(): string {
    return this.#only('dtype').dtype
  }

  get fortranOrder(): boolean {
    return this.#only('fortranOrder').fortranOrder
  }

  get rows(): number {
    return this.#only('rows').rows
  }

  readRows(start: number, end?: number): TypedArray | LoadedNdArray {
    return this.#only('readRows').readRows(start, end)
  }

  readRowsAsync(start: number, end?: number): Promise<TypedArray | LoadedNdArray> {
    return this.#only('readRowsAsync').readRowsAsync(start, end)
  }

  readBytes(start: number, end: number): Uint8Array {
    return this.#only('readBytes').readBytes(start, end)
  }

  readBytesAsync(start: number, end: number): Promise<Uint8Array> {
    return this.#only('readBytesAsync').readBytesAsync(start, end)
  }

  /** Lets go of the entry's file (reads after this throw); also `using`. */
  close(): void {
    this.#native?.close()
    this.#native = undefined
  }

  [Symbol.dispose](): void {
    this.close()
  }

  #only(what: string): EntryArray {
    if (this.result === 'tuple' || this.result === 'record') {
      const n = this.members.length
      throw invalidArg(`${what}: the entry holds ${n} array${n === 1 ? '' : 's'} (a ${this.result}); choose one with member(name)`)
    }
    return this.members[0]
  }
}
