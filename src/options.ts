// Every option of the public API is checked here, once, with the messages
// users see; the results are what the cache and the binding act on. The
// defaults and bounds the core sets (staleAfter) come from the core.
import { types } from 'node:util'
import { native } from './native'
import type { CacheOptions } from '../binding/index'
import { describe } from './describe'
import { invalidArg, outOfRange } from './errors'
import { defaultCacheDir, pathOf } from './paths'
import { AGE_FORMS, SIZE_FORMS, parseAge, parseSize } from './units'
import type {
  CachedFunctionOptions,
  ClearCacheOptions,
  ComputeOnceOptions,
  NumpyFuncCacheOptions,
  ListOptions,
  OutputFunctionOptions,
  PruneOptions,
  RemoteOptions,
  ResolvedLimits,
  VerifyOptions,
} from './types'

const DEFAULTS = native.defaults()

/** `computeOnce` as the cache acts on it: milliseconds, `Infinity` for no timeout. */
export interface ComputeOnce {
  timeout: number
  staleAfter: number
  signal?: AbortSignal
}

/** `options` as a record whose keys are all in `allowed`; `{}` when omitted. */
function checkOptions(options: unknown, allowed: readonly string[], where: string): Record<string, unknown> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidArg(`${where}: options must be an object, got ${describe(options)}`)
  }
  for (const k of Object.keys(options)) {
    if (!allowed.includes(k)) throw invalidArg(`${where}: unknown option '${k}' (known: ${allowed.join(', ')})`)
  }
  return options as Record<string, unknown>
}

function optionOf<T>(options: Record<string, unknown>, key: string, type: string, where: string): T | undefined {
  const v = options[key]
  if (v !== undefined && typeof v !== type) throw invalidArg(`${where}: options.${key} must be a ${type}, got ${describe(v)}`)
  return v as T | undefined
}

/** `options.signal`, checked to be an AbortSignal. */
function signalOf(options: Record<string, unknown>, where: string): AbortSignal | undefined {
  const { signal } = options
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArg(`${where}.signal must be an AbortSignal, got ${describe(signal)}`)
  return signal
}

type Progress = (done: number, total: number) => void

/** Limits a prune takes; a cache takes these and `maxEntryBytes` (a store's rule). */
const LIMITS = ['maxBytes', 'maxEntries', 'maxAge'] as const
const CACHE_LIMITS = [...LIMITS, 'maxEntryBytes'] as const
const SIZES: readonly string[] = ['maxBytes', 'maxEntryBytes'] satisfies (typeof CACHE_LIMITS)[number][]

/**
 * Non-negative limits, `Infinity` for none. `maxEntries` must be whole;
 * sizes are rounded down (sizes are whole bytes). Sizes and `maxAge` may
 * be strings as the command line takes them ('10GB', '7d').
 */
function limitsOf(options: Record<string, unknown>, names: readonly (typeof CACHE_LIMITS)[number][], where: string): ResolvedLimits {
  const limits: ResolvedLimits = {}
  for (const name of names) {
    const given = options[name]
    if (given === undefined) continue
    const size = SIZES.includes(name)
    let v: number
    if (typeof given === 'string' && name !== 'maxEntries') {
      const parsed = size ? parseSize(given) : parseAge(given)
      if (parsed === undefined) {
        throw invalidArg(`${where}: ${name} must be a number or a string ${size ? SIZE_FORMS : AGE_FORMS}, got ${describe(given)}`)
      }
      v = parsed
    } else {
      v = optionOf<number>(options, name, 'number', where)!
    }
    const whole = name === 'maxEntries'
    if (!(v >= 0) || (whole && Number.isFinite(v) && !Number.isInteger(v))) {
      throw outOfRange(`${where}: ${name} must be a non-negative ${whole ? 'integer' : 'number'}, got ${v}`)
    }
    limits[name] = size ? Math.floor(v) : v
  }
  return limits
}

function computeOnceOf(value: unknown, where: string): ComputeOnce | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return { timeout: Infinity, staleAfter: DEFAULTS.staleAfterMs }
  if (typeof value !== 'object' || value === null) {
    throw invalidArg(`${where}: computeOnce must be a boolean or an object, got ${describe(value)}`)
  }
  const inner = `${where}: computeOnce`
  const opts = checkOptions(value, ['timeout', 'staleAfter', 'signal'] satisfies (keyof ComputeOnceOptions)[], inner)
  const signal = signalOf(opts, inner)
  const timeout = optionOf<number>(opts, 'timeout', 'number', inner) ?? Infinity
  const staleAfter = optionOf<number>(opts, 'staleAfter', 'number', inner) ?? DEFAULTS.staleAfterMs
  if (!(timeout >= 0)) throw outOfRange(`${inner}.timeout must be a non-negative number, got ${timeout}`)
  if (!(staleAfter >= DEFAULTS.minStaleAfterMs && staleAfter <= DEFAULTS.maxStaleAfterMs)) {
    throw outOfRange(
      `${inner}.staleAfter must be a number of milliseconds from ${DEFAULTS.minStaleAfterMs} to ${DEFAULTS.maxStaleAfterMs} (a day), got ${staleAfter}`,
    )
  }
  return { timeout, staleAfter, signal }
}

export interface CacheSettings {
  /** The location as given (a directory, or an object-store URL); the binding resolves it. */
  location: string
  /** What the binding opens it with. */
  options: CacheOptions
  computeOnce: ComputeOnce | undefined
}

/** The type of each remote setting; every one of `RemoteOptions`' keys must be here. */
const REMOTE_OPTION_TYPES: { [K in keyof Required<RemoteOptions>]: 'string' | 'boolean' | 'number' | 'count' } = {
  endpoint: 'string',
  region: 'string',
  accessKeyId: 'string',
  secretAccessKey: 'string',
  sessionToken: 'string',
  allowHttp: 'boolean',
  requestTimeout: 'number',
  maxRetries: 'count',
  retryTimeout: 'number',
  multipartFrom: 'number',
  partSize: 'number',
}

function remoteOptionsOf(value: unknown, where: string): RemoteOptions {
  const inner = `${where}: remote`
  const opts = checkOptions(value, Object.keys(REMOTE_OPTION_TYPES), inner)
  for (const [key, kind] of Object.entries(REMOTE_OPTION_TYPES)) {
    const v = optionOf<unknown>(opts, key, kind === 'count' ? 'number' : kind, inner)
    if (typeof v !== 'number') continue
    if (!(v >= 0)) throw outOfRange(`${inner}.${key} must be a non-negative number, got ${v}`)
    if (kind === 'count' && !Number.isInteger(v)) throw outOfRange(`${inner}.${key} must be a whole number, got ${v}`)
  }
  return opts
}

export function cacheSettings(given: unknown, options: NumpyFuncCacheOptions | undefined): CacheSettings {
  const where = 'NumpyFuncCache'
  const location = given === undefined ? defaultCacheDir() : pathOf(given, where, 'path', true)
  const known = ['mmap', 'verify', 'computeOnce', 'localDir', 'remote', ...CACHE_LIMITS] satisfies (keyof NumpyFuncCacheOptions)[]
  const opts = checkOptions(options, known, where)
  if (opts.localDir === '') throw invalidArg(`${where}: options.localDir must not be empty`)
  return {
    location,
    options: {
      mmap: optionOf<boolean>(opts, 'mmap', 'boolean', where),
      verify: optionOf<boolean>(opts, 'verify', 'boolean', where),
      limits: limitsOf(opts, CACHE_LIMITS, where),
      localDir: opts.localDir === undefined ? undefined : pathOf(opts.localDir, where, 'options.localDir'),
      remote: opts.remote === undefined ? undefined : remoteOptionsOf(opts.remote, where),
    },
    computeOnce: computeOnceOf(opts.computeOnce, where),
  }
}

export interface FunctionSettings {
  name: string
  version: string | undefined
  trackSource: boolean
  /** Whether a call's `this` is part of its key: the function reads `this`, and was not told to ignore it. */
  keysThis: boolean
  isAsync: boolean
  /** Undefined: the cache's own. */
  computeOnce: ComputeOnce | undefined | 'inherit'
  /** Declares the result's shape and dtype from the call's arguments: the function fills it in place. */
  output?: (...args: unknown[]) => unknown
}

export function functionSettings(fn: unknown, options: CachedFunctionOptions | undefined): FunctionSettings {
  const where = 'createCachedFunc'
  if (typeof fn !== 'function') throw invalidArg(`${where}: fn must be a function, got ${describe(fn)}`)
  const allowed = ['name', 'version', 'trackSource', 'ignoreThis', 'async', 'computeOnce', 'output'] satisfies (keyof OutputFunctionOptions)[]
  const opts = checkOptions(options, allowed, where)
  const givenName = optionOf<string>(opts, 'name', 'string', where)
  const trackSource = optionOf<boolean>(opts, 'trackSource', 'boolean', where) ?? true
  if (givenName === '') throw invalidArg(`${where}: options.name must not be empty`)
  const name = givenName ?? fn.name
  if (name === '' && !trackSource) {
    throw invalidArg(
      `${where}: an anonymous function needs options.name when trackSource is false, ` +
        `or its entries would be shared with every other anonymous function`,
    )
  }
  const source = Function.prototype.toString.call(fn)
  // A bound or built-in function's source is "[native code]": editing the
  // function it stands for would change no key.
  if (trackSource && /\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw invalidArg(
      `${where}: fn (${describe(fn)}) is a bound or built-in function, whose source cannot be read, so changing ` +
        `its code would not change its keys; pass the function itself (and what bind() gave it as arguments), ` +
        `or pass { trackSource: false, version } and change version whenever its code changes`,
    )
  }
  const output = opts.output
  if (output !== undefined && typeof output !== 'function') {
    throw invalidArg(`${where}: options.output must be a function of the call's arguments that returns { shape, dtype }, got ${describe(output)}`)
  }
  return {
    name,
    output: output as FunctionSettings['output'],
    version: optionOf<string>(opts, 'version', 'string', where),
    trackSource,
    keysThis:
      !(optionOf<boolean>(opts, 'ignoreThis', 'boolean', where) ?? false) &&
      (readsThis(source) || (typeof output === 'function' && readsThis(Function.prototype.toString.call(output)))),
    isAsync: optionOf<boolean>(opts, 'async', 'boolean', where) ?? types.isAsyncFunction(fn),
    computeOnce: opts.computeOnce === undefined ? 'inherit' : computeOnceOf(opts.computeOnce, where),
  }
}

/**
 * Whether a function's result can depend on the `this` it is called with:
 * its source mentions `this` and it is not an arrow function (whose `this`
 * is its definition's, not the call's).
 */
function readsThis(source: string): boolean {
  return /\bthis\b/.test(source) && !isArrow(source)
}

/** An arrow function's source is its parameters, then `=>`; no other function's is. */
function isArrow(source: string): boolean {
  let i = source.startsWith('async') && /^async[\s(]/.test(source) ? 5 : 0
  const skipSpace = () => {
    while (i < source.length && /\s/.test(source[i])) i++
  }
  skipSpace()
  if (source[i] === '(') {
    for (let depth = 0; i < source.length; i++) {
      if (source[i] === '(') depth++
      else if (source[i] === ')' && --depth === 0) break
    }
    i++
  } else {
    while (i < source.length && /[\w$]/.test(source[i])) i++
  }
  skipSpace()
  return source.startsWith('=>', i)
}

/** Limits given to `prune`; undefined for the cache's own. */
export function pruneSettings(limits: unknown, options: PruneOptions | undefined, where: string) {
  if (limits !== undefined && (typeof limits !== 'object' || limits === null || Array.isArray(limits))) {
    throw invalidArg(`${where}: limits must be an object such as { maxBytes: '10GB', maxAge: '7d' }, got ${describe(limits)}`)
  }
  const given = limits === undefined ? undefined : limitsOf(checkOptions(limits, LIMITS, where), LIMITS, where)
  const opts = checkOptions(options, ['onProgress', 'signal'] satisfies (keyof PruneOptions)[], where)
  return { limits: given, ...jobOptionsOf(opts, where) }
}

/** A long job's `onProgress` and `signal`. */
function jobOptionsOf(opts: Record<string, unknown>, where: string) {
  return { onProgress: optionOf<Progress>(opts, 'onProgress', 'function', where), signal: signalOf(opts, `${where}: options`) }
}

/** Options of `stats` and `entries`. */
export function listSettings(options: ListOptions | undefined, where: string) {
  return jobOptionsOf(checkOptions(options, ['onProgress', 'signal'] satisfies (keyof ListOptions)[], where), where)
}

export function verifySettings(options: VerifyOptions | undefined, where: string) {
  const opts = checkOptions(options, ['dryRun', 'onProgress', 'signal'] satisfies (keyof VerifyOptions)[], where)
  return { dryRun: optionOf<boolean>(opts, 'dryRun', 'boolean', where) ?? false, ...jobOptionsOf(opts, where) }
}

export function clearSettings(options: ClearCacheOptions | undefined, where: string) {
  const opts = checkOptions(options, ['removeDir', 'onProgress', 'signal'] satisfies (keyof ClearCacheOptions)[], where)
  return { removeDir: optionOf<boolean>(opts, 'removeDir', 'boolean', where) ?? false, ...jobOptionsOf(opts, where) }
}

/** How often uses recorded in memory are written to the index once calls pause. */
export const FLUSH_EVERY_MS = DEFAULTS.flushEveryMs
