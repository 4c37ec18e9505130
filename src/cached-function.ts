// The wrapper createCachedFunc returns: each call's key, then a hit, or
// the function computed (once, under computeOnce) and its result stored.
import { types } from 'node:util'
import { type Call, callKey, callKeyAsync, identityPrefix } from './call-key'
import type { Calls } from './calls'
import { runAsync, runSync, waitOrCompute } from './compute-once'
import { ErrorCodes, codedError } from './errors'
import { type ComputeOnce, functionSettings } from './options'
import { computed } from './results'
import type { CacheableFunction, CachedFunction, CachedFunctionMethods, CachedFunctionOptions } from './types'

/**
 * Wraps `fn` so each distinct call is computed once and then loaded.
 * `cacheOnce` is the cache's own computeOnce, which `options` may override.
 */
export function cachedFunction<F extends CacheableFunction>(
  calls: Calls,
  fn: F,
  options: CachedFunctionOptions | undefined,
  cacheOnce: ComputeOnce | undefined,
): CachedFunction<F> {
  const settings = functionSettings(fn, options)
  const { name, isAsync } = settings
  const once = settings.computeOnce === 'inherit' ? cacheOnce : settings.computeOnce
  const label = `${name || 'anonymous function'}()`
  const prefix = identityPrefix({ name, version: settings.version, source: settings.trackSource ? fn.toString() : undefined })
  // What a call's key is made of: its arguments, and its `this` unless told to ignore it.
  const call = (self: unknown, args: unknown[]): Call => ({ self: settings.keysThis ? self : undefined, args })
  // The methods act on a plain call (`cached.has(...)`, whose `this` is the
  // wrapper itself) or, through call(), on a method's (`cached.has.call(obj, ...)`).
  const methodsOf = (wrapper: unknown): CachedFunctionMethods<F> => {
    const methodCall = (self: unknown, args: unknown[]) => call(self === wrapper ? undefined : self, args)
    const info = (key: string) => ({ key, functionName: name, label })
    return {
      has(this: unknown, ...args) {
        return calls.has(info(callKey(prefix, methodCall(this, args))))
      },
      async hasAsync(this: unknown, ...args) {
        return calls.hasAsync(info(await callKeyAsync(prefix, methodCall(this, args))))
      },
      invalidate(this: unknown, ...args) {
        return calls.remove(info(callKey(prefix, methodCall(this, args))))
      },
      async invalidateAsync(this: unknown, ...args) {
        return calls.removeAsync(info(await callKeyAsync(prefix, methodCall(this, args))))
      },
    }
  }

  if (!isAsync) {
    const compute = (self: unknown, args: unknown[], key: string) => {
      const value = fn.apply(self, args)
      if (types.isPromise(value)) {
        throw codedError(
          TypeError,
          ErrorCodes.BAD_RESULT,
          `${label} returned a Promise; pass { async: true } to createCachedFunc (or make it an async function)`,
        )
      }
      return calls.store(key, name, computed(value, label), label)
    }
    const wrapper = function (this: unknown, ...args: unknown[]) {
      const key = callKey(prefix, call(this, args))
      const hit = calls.load(key, name, true)
      if (hit !== undefined) return hit
      if (once === undefined) return compute(this, args, key)
      // Waiting polls the entry: a damaged one was reported already.
      return runSync(waitOrCompute(once), {
        claim: () => calls.claim(key, once, true),
        held: () => calls.leaseHeld(key, once),
        load: () => calls.load(key, name, false),
        compute: () => compute(this, args, key),
      })
    }
    return Object.assign(wrapper, methodsOf(wrapper)) as unknown as CachedFunction<F>
  }

  const compute = async (self: unknown, args: unknown[], key: string) => {
    // The caller regained control at the call: it may have changed the
    // arguments since. Compute only from what the key was made of.
    if ((await callKeyAsync(prefix, call(self, args))) !== key) {
      throw codedError(
        TypeError,
        ErrorCodes.ARGS_CHANGED,
        `the arguments of ${label} changed between the call and its computation, so it did not compute; ` +
          `pass copies (e.g. array.slice()) or await the call before changing them`,
      )
    }
    return calls.storeAsync(key, name, computed(await fn.apply(self, args), label), label)
  }
  // One computation per key at a time within this process.
  const running = new Map<string, Promise<unknown>>()
  const wrapper = async function (this: unknown, ...args: unknown[]) {
    const key = await callKeyAsync(prefix, call(this, args))
    const pending = running.get(key)
    if (pending) return pending
    const work = (async () => {
      const hit = await calls.loadAsync(key, name, true)
      if (hit !== undefined) return hit
      if (once === undefined) return compute(this, args, key)
      return runAsync(waitOrCompute(once), {
        claim: () => calls.claimAsync(key, once),
        held: () => calls.leaseHeldAsync(key, once),
        load: () => calls.loadAsync(key, name, false),
        compute: () => compute(this, args, key),
      })
    })()
    running.set(key, work)
    const done = () => running.delete(key)
    work.then(done, done)
    return work
  }
  return Object.assign(wrapper, methodsOf(wrapper)) as unknown as CachedFunction<F>
}
