// The wrapper createCachedFunc returns: each call's key, then a hit, or
// the function computed (once, under computeOnce) and its result stored.
import { types } from 'node:util'
import { type Call, callKey, callKeyAsync, identityPrefix } from './call-key'
import type { CallInfo, Calls } from './calls'
import { runAsync, runSync, waitOrCompute } from './compute-once'
import { ErrorCodes, codedError, invalidArg, nativeCall } from './errors'
import { type ComputeOnce, functionSettings } from './options'
import { debug, shortKey } from './debug'
import { computed } from './results'
import { type DeclaredOutput, type Lent, checkFilled, declaredOutput, entryOfOutput, lend, outputValue } from './output'
import type { CacheableFunction, CachedFunction, CachedFunctionMethods, CachedFunctionOptions } from './types'

/** A shared async computation's result, and whether it is of the key's arguments. */
interface Outcome {
  value: unknown
  ofKey: boolean
}

/** A miss computed for `open`, whose result was not stored: nothing to open. */
function notStored(label: string): never {
  throw codedError(
    Error,
    ErrorCodes.STORE_FAILED,
    `open: ${label} was computed but its result was not stored (over the cache's limits, or the store failed: ` +
      `see the entryTooLarge and storeError events), so there is no entry to open`,
  )
}

/** Errors of calls whose own arguments changed before computing: others that joined them compute from theirs. */
const argsChangedBeforeComputing = new WeakSet<object>()

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
  const { output } = settings
  // A declared output's shape is part of what the function computes: its source is in the key too.
  const source = output === undefined ? fn.toString() : `${fn.toString()}\n// output: ${Function.prototype.toString.call(output)}`
  const prefix = identityPrefix({ name, version: settings.version, source: settings.trackSource ? source : undefined })
  const info = (key: string): CallInfo => ({ key, functionName: name, label })
  // What a call's key is made of: its arguments, and its `this` unless told to ignore it.
  // A declared output's shape and dtype are in the key too: they may depend on more than the
  // arguments. The declaration a call's key was last made with is the one its fill uses, so
  // `output` runs once per key, and a fill never differs from what its key says.
  const declarations = new WeakMap<unknown[], DeclaredOutput>()
  const call = (self: unknown, args: unknown[]): Call => {
    if (output === undefined) return { self: settings.keysThis ? self : undefined, args }
    const declared = declaredOutput(output, self, args, label)
    declarations.set(args, declared)
    return { self: settings.keysThis ? self : undefined, args: [...args, declared.layout] }
  }
  // The methods act on a plain call (`cached.has(...)`, whose `this` is the
  // wrapper itself) or, through call(), on a method's (`cached.has.call(obj, ...)`).
  const methodsOf = (wrapper: unknown): CachedFunctionMethods<F> => {
    const methodCall = (self: unknown, args: unknown[]) => call(self === wrapper ? undefined : self, args)
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
      open(this: unknown, ...args) {
        const call = info(callKey(prefix, methodCall(this, args)))
        const found = calls.open(call)
        if (found !== undefined) return found
        if (isAsync) throw invalidArg(`open: ${label} is async and its entry is not there: a miss computes it, so use openAsync`)
        ;(wrapper as (...a: unknown[]) => unknown).apply(this === wrapper ? undefined : this, args)
        return calls.open(call) ?? notStored(label)
      },
      async openAsync(this: unknown, ...args) {
        const call = info(await callKeyAsync(prefix, methodCall(this, args)))
        const found = await calls.openAsync(call)
        if (found !== undefined) return found
        await (wrapper as (...a: unknown[]) => unknown).apply(this === wrapper ? undefined : this, args)
        return (await calls.openAsync(call)) ?? notStored(label)
      },
    }
  }

  /** A miss of a function with a declared output: `fn` fills the entry's file, lent to it as its last argument. */
  const filling = (self: unknown, args: unknown[], key: string) => {
    // Every computation follows the key made of its own `args` (see `call`).
    const declared = declarations.get(args)!
    const draft = calls.draft(key, declared.layout)
    const discard = (buffer?: ArrayBuffer) => {
      try {
        nativeCall(() => draft.discard(buffer))
      } catch (e) {
        debug('the output of %s was not discarded cleanly: %s', label, (e as Error).message)
      }
    }
    let lent: Lent
    try {
      lent = lend(draft, declared)
    } catch (e) {
      discard()
      throw e
    }
    return {
      run: (): unknown => fn.apply(self, [...args, lent.data]),
      check: (value: unknown) => checkFilled(value, lent, label),
      discard: () => discard(lent.buffer),
      publish: () => outputValue(calls.publish(draft, lent.buffer, entryOfOutput(declared, name), info(key)), declared),
      publishAsync: async () => outputValue(await calls.publishAsync(draft, lent.buffer, entryOfOutput(declared, name), info(key)), declared),
      withhold: () => outputValue(nativeCall(() => draft.withhold(lent.buffer)), declared),
    }
  }
  const returnedPromise = () =>
    codedError(TypeError, ErrorCodes.BAD_RESULT, `${label} returned a Promise; pass { async: true } to createCachedFunc (or make it an async function)`)

  if (!isAsync) {
    const compute = (self: unknown, args: unknown[], key: string) => {
      if (output !== undefined) {
        const fill = filling(self, args, key)
        try {
          const value = fill.run()
          if (types.isPromise(value)) throw returnedPromise()
          fill.check(value)
        } catch (e) {
          fill.discard()
          throw e
        }
        return fill.publish()
      }
      const value = fn.apply(self, args)
      if (types.isPromise(value)) throw returnedPromise()
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

  // An async call's arguments stay the caller's while it is pending, so
  // they are checked against its key before the computation (a change
  // there rejects: nothing ran) and after it (a change there means the
  // computation may have seen other arguments: its result is returned to
  // this caller, as without a cache, but not stored, and callers that
  // joined compute from their own).
  const argsNow = (self: unknown, args: unknown[]) => callKeyAsync(prefix, call(self, args))
  let warnedArgsChanged = false
  const compute = async (self: unknown, args: unknown[], key: string): Promise<Outcome> => {
    if ((await argsNow(self, args)) !== key) {
      const error = codedError(
        TypeError,
        ErrorCodes.ARGS_CHANGED,
        `the arguments of ${label} changed between the call and its computation, so it did not compute; ` +
          `pass copies (e.g. array.slice()) or await the call before changing them`,
      )
      argsChangedBeforeComputing.add(error)
      throw error
    }
    // Stored, or (its arguments changed under it: not `ofKey`) returned without storing.
    const settle = async (ofKey: boolean, store: () => Promise<unknown>, withhold: () => unknown): Promise<Outcome> => {
      if (ofKey) return { value: await store(), ofKey }
      debug('the arguments of %s changed during its computation: its result is not stored under %s', label, shortKey(key))
      if (!warnedArgsChanged) {
        warnedArgsChanged = true
        process.emitWarning(
          `the arguments of ${label} changed during its computation, so its result was returned but not stored; ` +
            `neither the caller nor the function may change an async call's arguments until it settles`,
          { code: 'NUMPY_FUNC_CACHE_ARGS_CHANGED' },
        )
      }
      return { value: withhold(), ofKey }
    }
    if (output === undefined) {
      const result = computed(await fn.apply(self, args), label)
      const ofKey = (await argsNow(self, args)) === key
      return settle(ofKey, () => calls.storeAsync(key, name, result, label), () => result.result)
    }
    const fill = filling(self, args, key)
    let ofKey: boolean
    try {
      fill.check(await fill.run())
      ofKey = (await argsNow(self, args)) === key
    } catch (e) {
      // Neither published nor withheld: the draft goes.
      fill.discard()
      throw e
    }
    return settle(ofKey, fill.publishAsync, fill.withhold)
  }
  // The computation of each key pending in this process, which equal calls share.
  const running = new Map<string, Promise<Outcome>>()
  const lead = async (self: unknown, args: unknown[], key: string): Promise<Outcome> => {
    const hit = await calls.loadAsync(key, name, true)
    if (hit !== undefined) return { value: hit, ofKey: true }
    if (once === undefined) return compute(self, args, key)
    return (await runAsync(waitOrCompute(once), {
      claim: () => calls.claimAsync(key, once),
      held: () => calls.leaseHeldAsync(key, once),
      // A stored entry is always of its key.
      load: async () => {
        const value = await calls.loadAsync(key, name, false)
        return value === undefined ? undefined : { value, ofKey: true }
      },
      compute: () => compute(self, args, key),
    })) as Outcome
  }
  const wrapper = async function (this: unknown, ...args: unknown[]) {
    const key = await callKeyAsync(prefix, call(this, args))
    for (;;) {
      const pending = running.get(key)
      if (pending === undefined) {
        const work: Promise<Outcome> = lead(this, args, key).finally(() => {
          if (running.get(key) === work) running.delete(key)
        })
        running.set(key, work)
        return (await work).value
      }
      // Another call with equal arguments is computing: its result is this
      // one's too, unless that caller changed its arguments under it.
      try {
        const outcome = await pending
        if (outcome.ofKey) return outcome.value
      } catch (e) {
        if (!argsChangedBeforeComputing.has(e as object)) throw e
      }
    }
  }
  return Object.assign(wrapper, methodsOf(wrapper)) as unknown as CachedFunction<F>
}
