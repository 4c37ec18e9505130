// The canonical, type-tagged encoding of a call, hashed with BLAKE3 by the
// Rust core. Small values are written into one byte buffer; the bytes of
// TypedArrays, DataViews and ArrayBuffers stay where they are and are
// spliced in by Rust at recorded offsets, so large arguments are never copied.
import { types } from 'node:util'
import { native } from './native'
import { typedArrayClassName } from './dtypes'
import { describe, propertyPath } from './describe'
import { ErrorCodes, codedError, nativeCall, nativeCallAsync } from './errors'

/** An argument that cannot be part of a key: a TypeError naming where it is. */
const unkeyable = (message: string) => codedError(TypeError, ErrorCodes.UNKEYABLE_ARG, message)

const enum Tag {
  Undefined = 1,
  Null,
  False,
  True,
  Number,
  BigInt,
  String,
  /** A string with lone surrogates: UTF-8 cannot hold it, so its UTF-16 code units. */
  StringUtf16,
  TypedArray,
  Buffer,
  DataView,
  ArrayBuffer,
  SharedArrayBuffer,
  Array,
  Object,
  Date,
  Map,
  Set,
  Function,
  /** The `this` of a call, when it has one. */
  This,
}

// One code per class, so equal bytes in different classes never collide.
const CLASS_CODES: Record<string, number> = {
  Int8Array: 1,
  Uint8Array: 2,
  Uint8ClampedArray: 3,
  Int16Array: 4,
  Uint16Array: 5,
  Int32Array: 6,
  Uint32Array: 7,
  Float32Array: 8,
  Float64Array: 9,
  BigInt64Array: 10,
  BigUint64Array: 11,
  Float16Array: 12,
}

/**
 * A TypedArray over `length` bytes of `buffer`. Past 4 GiB a Uint8Array
 * exceeds the runtime's element-count limit, so a wider element is used.
 */
function byteView(buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView {
  const b = buffer as ArrayBuffer
  if (length > 0xffffffff && length % 8 === 0 && byteOffset % 8 === 0) return new BigUint64Array(b, byteOffset, length / 8)
  return new Uint8Array(b, byteOffset, length)
}

const utf8 = new TextEncoder()

class Encoder {
  bytes = new Uint8Array(256)
  view = new DataView(this.bytes.buffer)
  length = 0
  readonly buffers: ArrayBufferView[] = []
  readonly offsets: number[] = []
  private readonly ancestors = new Set<object>()

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n))
    grown.set(this.bytes.subarray(0, this.length))
    this.bytes = grown
    this.view = new DataView(grown.buffer)
  }

  /** Empty again, holding no reference to the arguments it encoded. */
  reset(): void {
    if (this.bytes.length > 64 * 1024) {
      this.bytes = new Uint8Array(256)
      this.view = new DataView(this.bytes.buffer)
    }
    this.length = 0
    this.buffers.length = 0
    this.offsets.length = 0
    this.ancestors.clear()
  }

  tag(t: number): void {
    this.reserve(1)
    this.bytes[this.length++] = t
  }

  u32(n: number): void {
    this.reserve(4)
    this.view.setUint32(this.length, n, true)
    this.length += 4
  }

  f64(n: number): void {
    this.reserve(8)
    // One NaN: all NaNs are the same argument.
    this.view.setFloat64(this.length, Number.isNaN(n) ? NaN : n, true)
    this.length += 8
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length)
    this.bytes.set(bytes, this.length)
    this.length += bytes.length
  }

  string(s: string): void {
    if (s.isWellFormed()) {
      this.tag(Tag.String)
      // UTF-8 is at most 3 bytes per UTF-16 code unit.
      this.reserve(4 + s.length * 3)
      const at = this.length
      this.length += 4
      const { written } = utf8.encodeInto(s, this.bytes.subarray(this.length))
      this.view.setUint32(at, written, true)
      this.length += written
    } else {
      this.tag(Tag.StringUtf16)
      this.u32(s.length)
      this.reserve(s.length * 2)
      for (let i = 0; i < s.length; i++) {
        this.view.setUint16(this.length, s.charCodeAt(i), true)
        this.length += 2
      }
    }
  }

  /** Records `buffer` to be hashed, in place, at the current position. */
  splice(buffer: ArrayBufferView, byteLength: number): void {
    this.f64(byteLength)
    this.buffers.push(buffer)
    this.offsets.push(this.length)
  }

  value(v: unknown, path: string): void {
    switch (typeof v) {
      case 'undefined':
        return this.tag(Tag.Undefined)
      case 'boolean':
        return this.tag(v ? Tag.True : Tag.False)
      case 'number':
        this.tag(Tag.Number)
        return this.f64(v)
      case 'bigint':
        this.tag(Tag.BigInt)
        return this.string(v.toString(16))
      case 'string':
        return this.string(v)
      case 'symbol':
        throw unkeyable(`${path} is a symbol, which cannot be part of a cache key`)
      case 'function':
        throw unkeyable(
          `${path} is a function, which cannot be part of a cache key (its behaviour is not its value)`,
        )
    }
    if (v === null) return this.tag(Tag.Null)
    this.object(v as object, path)
  }

  private object(v: object, path: string): void {
    const className = typedArrayClassName(v)
    if (className) {
      const view = v as ArrayBufferView
      this.tag(Buffer.isBuffer(v) ? Tag.Buffer : Tag.TypedArray)
      this.tag(CLASS_CODES[className])
      return this.splice(view, view.byteLength)
    }
    if (types.isDataView(v)) {
      this.tag(Tag.DataView)
      return this.splice(byteView(v.buffer, v.byteOffset, v.byteLength), v.byteLength)
    }
    if (types.isArrayBuffer(v)) {
      this.tag(Tag.ArrayBuffer)
      return this.splice(byteView(v, 0, v.byteLength), v.byteLength)
    }
    if (types.isSharedArrayBuffer(v)) {
      this.tag(Tag.SharedArrayBuffer)
      return this.splice(byteView(v, 0, v.byteLength), v.byteLength)
    }
    if (types.isDate(v)) {
      this.tag(Tag.Date)
      return this.f64(v.getTime())
    }
    if (this.ancestors.has(v)) throw unkeyable(`${path} refers back to one of its own ancestors (a cycle)`)
    this.ancestors.add(v)
    try {
      if (Array.isArray(v) && Object.getPrototypeOf(v) === Array.prototype) {
        this.tag(Tag.Array)
        this.u32(v.length)
        // A hole encodes as undefined.
        for (let i = 0; i < v.length; i++) this.value(v[i], `${path}[${i}]`)
      } else if (types.isMap(v) && Object.getPrototypeOf(v) === Map.prototype) {
        this.tag(Tag.Map)
        const entries = [...v]
        this.unordered(entries.length, (sub, i) => {
          sub.value(entries[i][0], `${path}[Map key #${i}]`)
          sub.value(entries[i][1], `${path}[Map value #${i}]`)
        })
      } else if (types.isSet(v) && Object.getPrototypeOf(v) === Set.prototype) {
        this.tag(Tag.Set)
        const items = [...v]
        this.unordered(items.length, (sub, i) => sub.value(items[i], `${path}[Set element #${i}]`))
      } else if (isPlainObject(v)) {
        const symbol = Object.getOwnPropertySymbols(v).find((s) => Object.prototype.propertyIsEnumerable.call(v, s))
        if (symbol) throw unkeyable(`${path} has a symbol key (${String(symbol)}), which cannot be part of a cache key`)
        // Key order does not matter: sort by UTF-16 code units.
        const keys = Object.keys(v).sort()
        this.tag(Tag.Object)
        this.u32(keys.length)
        for (const k of keys) {
          this.string(k)
          this.value((v as Record<string, unknown>)[k], propertyPath(path, k))
        }
      } else {
        throw unkeyable(
          `${path} is ${describe(v)}, which cannot be part of a cache key; ` +
            `use numbers, strings, booleans, null, undefined, bigints, TypedArrays, DataViews, ` +
            `ArrayBuffers, Buffers, Arrays, plain objects, Dates, Maps and Sets`,
        )
      }
    } finally {
      this.ancestors.delete(v)
    }
  }

  /**
   * Maps and Sets are equal whatever their insertion order: each member is
   * hashed on its own and the digests are written sorted.
   */
  private unordered(count: number, encodeMember: (sub: Encoder, i: number) => void): void {
    const digests: string[] = []
    for (let i = 0; i < count; i++) {
      const sub = new Encoder()
      for (const a of this.ancestors) sub.ancestors.add(a)
      encodeMember(sub, i)
      digests.push(sub.digest())
    }
    digests.sort()
    this.u32(count)
    for (const d of digests) this.raw(Buffer.from(d, 'hex'))
  }

  digest(): string {
    return nativeCall(() => native.hashKey(this.bytes.subarray(0, this.length), this.buffers as never, this.offsets))
  }
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

/** The identity of a cached function, fixed when the wrapper is made. */
export interface FunctionIdentity {
  name: string
  version: string | undefined
  /** `fn.toString()` when source tracking is on. */
  source: string | undefined
}

/**
 * Encodes the parts of a key that do not change between calls: the function's
 * name, version and a digest of its source.
 */
export function identityPrefix(id: FunctionIdentity): Uint8Array {
  const e = new Encoder()
  e.tag(Tag.Function)
  e.string(id.name)
  e.value(id.version, 'options.version')
  if (id.source === undefined) {
    e.tag(Tag.Undefined)
  } else {
    const source = new Encoder()
    source.string(id.source)
    e.raw(Buffer.from(source.digest(), 'hex'))
  }
  return e.bytes.slice(0, e.length)
}

/** A call: its arguments, and its `this` (undefined when it has none or it is not keyed). */
export interface Call {
  self: unknown
  args: readonly unknown[]
}

/**
 * `this` as the key sees it: none for a plain call (undefined, or the global
 * object of a sloppy-mode caller); a plain object by its data, its
 * function-valued properties (methods, code like the function's own) left
 * out; anything else by the rules of arguments.
 */
function encodeThis(e: Encoder, self: unknown): void {
  if (self === undefined || self === globalThis) return
  e.tag(Tag.This)
  if (typeof self === 'object' && self !== null && isPlainObject(self)) {
    const data = Object.fromEntries(Object.entries(self).filter(([, v]) => typeof v !== 'function'))
    e.value(data, 'this')
  } else {
    e.value(self, 'this')
  }
}

function encodeCall(prefix: Uint8Array, call: Call, e = new Encoder()): Encoder {
  e.raw(prefix)
  e.tag(Tag.Array)
  e.u32(call.args.length)
  for (let i = 0; i < call.args.length; i++) e.value(call.args[i], `args[${i}]`)
  encodeThis(e, call.self)
  return e
}

/**
 * The bytes a call's key hashes: its encoding with the large buffers spliced
 * in where they go. For the golden vectors (test-vectors/call-keys.json).
 */
export function callBytes(prefix: Uint8Array, call: Call): Uint8Array {
  const e = encodeCall(prefix, call)
  const parts: Uint8Array[] = []
  let at = 0
  e.buffers.forEach((b, i) => {
    parts.push(e.bytes.subarray(at, e.offsets[i]), new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
    at = e.offsets[i]
  })
  parts.push(e.bytes.subarray(at, e.length))
  return Buffer.concat(parts)
}

/** The 64-hex-digit key of a call of the function identified by `prefix`. */
export function callKey(prefix: Uint8Array, call: Call): string {
  // The shared encoder saves allocating one per call; a getter in the
  // arguments may itself make a cached call, which then gets a fresh one.
  if (sharedBusy) return encodeCall(prefix, call).digest()
  sharedBusy = true
  try {
    return encodeCall(prefix, call, shared).digest()
  } finally {
    shared.reset()
    sharedBusy = false
  }
}

const shared = new Encoder()
let sharedBusy = false

/**
 * `callKey`, hashing large arguments on the libuv thread pool (the binding
 * hashes small ones at once). The caller keeps the arguments referenced
 * and unchanged until the promise settles.
 */
export async function callKeyAsync(prefix: Uint8Array, call: Call): Promise<string> {
  const e = encodeCall(prefix, call)
  return nativeCallAsync(() => native.hashKeyAsync(e.bytes.subarray(0, e.length), e.buffers as never, e.offsets))
}
