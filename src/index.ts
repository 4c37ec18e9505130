/**
 * numpy-func-cache: cache functions that return numeric arrays on disk as
 * NumPy .npy files.
 */
export { NumpyFuncCache } from './cache'
export type {
  CacheEntryInfo,
  CacheEntryMember,
  CacheableArray,
  CachedArray,
  CacheLimits,
  CacheStats,
  CacheableFunction,
  CachedFunctionMethods,
  ComputeOnceOptions,
  ListOptions,
  PruneOptions,
  PruneReport,
  VerifyOptions,
  VerifyReport,
  CacheableResult,
  CachedFunction,
  CachedFunctionOptions,
  CachedResult,
  ClearCacheOptions,
  EntryArray,
  EntryHandle,
  EntryInfo,
  TooLargeInfo,
  NumpyFuncCacheEvents,
  NumpyFuncCacheOptions,
  OutputArray,
  OutputArrayTypes,
  OutputCachedFunction,
  OutputData,
  OutputFill,
  OutputFunctionOptions,
  OutputSpec,
  RemoteOptions,
} from './types'
export { readNpy, writeNpy } from './npy'
export { readNpz, writeNpz } from './npz'
export type { NdArray, NpyArray, LoadedNdArray, TypedArrayClass } from './npy'
export type { TypedArray } from './dtypes'
export { SUPPORTED_DTYPES } from './dtypes'
export { ErrorCodes } from './errors'
export type { ErrorCode, NumpyFuncCacheError } from './errors'
