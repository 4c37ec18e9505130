// Errors a program can branch on: every error the package throws or emits
// has a stable `code` (listed in the README). Failures of the native core
// arrive with their kind, `path` or `url` and the OS's `errno`; here they
// get their code from the kind, and the OS's own code name too
// (`osCode: 'ENOSPC'`).
import { getSystemErrorName } from 'node:util'
import type { ErrorKind, Failure } from '../binding/index'

export const ErrorCodes = {
  /** An argument or option of the wrong type or out of range (a TypeError or RangeError). */
  INVALID_ARG: 'ERR_NFC_INVALID_ARG',
  /** An argument of a cached call that cannot be part of a key (a TypeError). */
  UNKEYABLE_ARG: 'ERR_NFC_UNKEYABLE_ARG',
  /** An async call's arguments changed between the call and its computation, which did not run (a TypeError). */
  ARGS_CHANGED: 'ERR_NFC_ARGS_CHANGED',
  /** A cached function returned something that cannot be cached (a TypeError or RangeError). */
  BAD_RESULT: 'ERR_NFC_BAD_RESULT',
  /** The cache path exists and is not a directory. */
  NOT_A_DIRECTORY: 'ERR_NFC_NOT_A_DIRECTORY',
  /** A file operation failed; `osCode` and `path` say which and where. */
  IO: 'ERR_NFC_IO',
  /** A file that is not a valid .npy file. */
  BAD_NPY: 'ERR_NFC_BAD_NPY',
  /** A .npy file of a dtype this package does not handle. */
  UNSUPPORTED_DTYPE: 'ERR_NFC_UNSUPPORTED_DTYPE',
  /** An entry failed validation (the error of a 'damagedEntry' event). */
  DAMAGED_ENTRY: 'ERR_NFC_DAMAGED_ENTRY',
  /** Storing a result failed (the error of a 'storeError' event; its `cause` says why). */
  STORE_FAILED: 'ERR_NFC_STORE_FAILED',
  /** `clearCache({ removeDir: true })` kept the directory: files the cache did not write are in it. */
  NOT_EMPTY: 'ERR_NFC_NOT_EMPTY',
  /** The cache's index could not be read or written. */
  INDEX: 'ERR_NFC_INDEX',
  /** The object store could not be reached or kept failing after retries (the error of a 'storeError' event; the call computed its result). */
  REMOTE_UNAVAILABLE: 'ERR_NFC_REMOTE_UNAVAILABLE',
  /** The object store refused the credentials or the permission: thrown by a cached call, never retried. */
  REMOTE_DENIED: 'ERR_NFC_REMOTE_DENIED',
  /** A maintenance job stopped by its `signal`: the call throws the signal's reason instead, so this is seen only without one. */
  ABORTED: 'ERR_NFC_ABORTED',
  /** No native binary for this platform. */
  NO_BINARY: 'ERR_NFC_NO_BINARY',
  /** A bug: a panic in the native core. */
  PANIC: 'ERR_NFC_PANIC',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** An error with a stable code, and for a failed system call the OS's code and the path. */
export interface NumpyFuncCacheError extends Error {
  code: ErrorCode
  /** The OS's code (`'ENOSPC'`, `'EACCES'`, ...) when a system call failed. */
  osCode?: string
  /** The file concerned, when there is one. */
  path?: string
  /** The object-store URL concerned (an object's, or the location's), when there is one. */
  url?: string
}

/** The code of each kind of failure of the native core. */
const CODE_OF_KIND: Record<ErrorKind, ErrorCode> = {
  invalidArgument: ErrorCodes.INVALID_ARG,
  notADirectory: ErrorCodes.NOT_A_DIRECTORY,
  io: ErrorCodes.IO,
  badNpy: ErrorCodes.BAD_NPY,
  unsupportedDtype: ErrorCodes.UNSUPPORTED_DTYPE,
  damaged: ErrorCodes.DAMAGED_ENTRY,
  notEmpty: ErrorCodes.NOT_EMPTY,
  index: ErrorCodes.INDEX,
  unavailable: ErrorCodes.REMOTE_UNAVAILABLE,
  denied: ErrorCodes.REMOTE_DENIED,
  stopped: ErrorCodes.ABORTED,
  panic: ErrorCodes.PANIC,
}

type ErrorClass = ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor

/** A new error of `Class` with `code`. */
export function codedError(Class: ErrorClass, code: ErrorCode, message: string, options?: ErrorOptions): NumpyFuncCacheError {
  return Object.assign(new Class(message, options), { code })
}

export const invalidArg = (message: string) => codedError(TypeError, ErrorCodes.INVALID_ARG, message)
export const outOfRange = (message: string) => codedError(RangeError, ErrorCodes.INVALID_ARG, message)

/**
 * An error thrown by the native core with its public code (from its kind)
 * and the OS's code name; any other value passes unchanged.
 */
export function fromNative(e: unknown): unknown {
  const err = e as { kind?: ErrorKind; code?: string; errno?: unknown; osCode?: string } | null
  if (typeof err !== 'object' || err === null || err.kind === undefined || !(err.kind in CODE_OF_KIND)) return e
  err.code = CODE_OF_KIND[err.kind]
  delete err.kind
  if (typeof err.errno === 'number' && err.osCode === undefined) {
    try {
      err.osCode = getSystemErrorName(err.errno)
    } catch {
      // An errno Node has no name for: the message still says what happened.
    }
  }
  return e
}

/** The error of a failure the native core reported as data (in a note). */
export function errorOf(failure: Failure): NumpyFuncCacheError {
  const Class = failure.kind === 'invalidArgument' ? TypeError : Error
  const { message, ...rest } = failure
  const given = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined))
  return fromNative(Object.assign(new Class(message), given)) as NumpyFuncCacheError
}

/** Runs a call into the native core, giving its errors their OS code names. */
export function nativeCall<T>(call: () => T): T {
  try {
    return call()
  } catch (e) {
    throw fromNative(e)
  }
}

/**
 * `nativeCall` for a call that settles now (work done on this thread) or
 * later (a promise of the cache's runtime or libuv's pool).
 */
export async function nativeCallAsync<T>(call: () => T | Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (e) {
    throw fromNative(e)
  }
}
