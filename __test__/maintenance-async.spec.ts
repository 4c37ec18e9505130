// The maintenance calls' async forms (statsAsync, entriesAsync, pruneAsync,
// verifyAsync, clearCacheAsync) and AbortSignals on every maintenance call.
// Waits are real: another process (Python's sqlite3) holds the index's
// write lock, so a job on the cache's threads waits on it while this test's
// event loop goes on, and an abort meanwhile stops the job at its next step.
import test from 'ava'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { getEventListeners, once } from 'node:events'
import { join } from 'node:path'
import { ErrorCodes, NumpyFuncCache } from '../dist'
import { python, root, tempDir, withoutIndex } from './helpers'

/** A cache in a fresh directory with `n` entries of 100 doubles, stored in order `0..n-1`. */
function filled(t: Parameters<typeof tempDir>[0], n: number) {
  const dir = tempDir(t)
  const cache = new NumpyFuncCache(dir)
  const fill = cache.createCachedFunc((i: number) => new Float64Array(100).fill(i), { name: 'fill' })
  for (let i = 0; i < n; i++) fill(i)
  return { dir, cache, fill }
}

const npyFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.npy'))

/** Another process holding the index's write lock (BEGIN IMMEDIATE) until `release()`. */
async function holdIndex(dir: string): Promise<{ release(): Promise<void> }> {
  const source = [
    'import sqlite3, sys',
    'con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)',
    "con.execute('BEGIN IMMEDIATE')",
    "print('locked', flush=True)",
    'sys.stdin.readline()',
    "con.execute('COMMIT')",
  ].join('\n')
  const child: ChildProcess = spawn(python, ['-c', source, join(dir, '.numpy-func-cache-index.sqlite')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  if (line.toString().trim() !== 'locked') throw new Error(`the lock holder said ${line}`)
  return {
    async release() {
      const exited = once(child, 'exit')
      child.stdin!.end('\n')
      await exited
    },
  }
}

/** Turns of the event loop: timers and I/O callbacks that run prove it is not blocked. */
async function loopTurns(n: number): Promise<number> {
  let turns = 0
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setTimeout(() => resolve(void turns++), 1))
  return turns
}

test('the async forms give what the sync forms give', async (t) => {
  const { cache, fill } = filled(t, 4)
  fill(1)
  t.deepEqual(await cache.statsAsync(), cache.stats())
  const listed = await cache.entriesAsync()
  t.deepEqual(listed, cache.entries())
  t.is(listed[0]!.key.length, 64)
  t.is(listed[0]!.function, 'fill')
  t.true(listed[0]!.lastUsed instanceof Date)

  const report = await cache.pruneAsync({ maxEntries: 2 })
  t.like(report, { removedEntries: 2, entries: 2 })
  // Least recently used go first: 0 and 2; 1 was hit after 3 was stored.
  t.true(fill.has(1) && fill.has(3))
  t.false(fill.has(0) || fill.has(2))
  t.like(cache.stats(), { entries: 2 })
})

test('verifyAsync finds a damaged entry, keeps it with dryRun and removes it without', async (t) => {
  const { dir, cache, fill } = filled(t, 3)
  const damaged = join(dir, npyFiles(dir)[0]!)
  truncateSync(damaged, statSync(damaged).size - 8)
  const dry = await cache.verifyAsync({ dryRun: true })
  t.like(dry, { checked: 3, removed: 0 })
  t.is(dry.damaged.length, 1)
  t.is(`${dry.damaged[0]!.key}.npy`, damaged.slice(dir.length + 1))
  t.true(existsSync(damaged))
  const report = await cache.verifyAsync()
  t.like(report, { checked: 3, removed: 1 })
  t.false(existsSync(damaged))
  t.is([0, 1, 2].filter((i) => fill.has(i)).length, 2)
})

test('clearCacheAsync removes the entries, then with removeDir the directory, never foreign files', async (t) => {
  const { dir, cache } = filled(t, 3)
  await cache.clearCacheAsync()
  t.deepEqual(withoutIndex(readdirSync(dir)), [])
  t.like(cache.stats(), { entries: 0 })

  const other = filled(t, 2)
  writeFileSync(join(other.dir, 'notes.txt'), 'mine')
  const error = await t.throwsAsync(other.cache.clearCacheAsync({ removeDir: true }))
  t.is((error as { code?: string }).code, ErrorCodes.NOT_EMPTY)
  t.deepEqual(withoutIndex(readdirSync(other.dir)), ['notes.txt'])

  await cache.clearCacheAsync({ removeDir: true })
  t.false(existsSync(dir))
})

test('progress of an async job arrives in order, every call before the promise settles', async (t) => {
  const a = filled(t, 3)
  const b = filled(t, 3)
  const sync: [number, number][] = []
  a.cache.prune({ maxEntries: 0 }, { onProgress: (done, total) => void sync.push([done, total]) })
  const calls: [number, number][] = []
  const pending = b.cache.pruneAsync({ maxEntries: 0 }, { onProgress: (done, total) => void calls.push([done, total]) })
  await pending
  t.deepEqual(calls, sync)
  t.deepEqual(calls.at(-1), [3, 3])

  // Reports in quick succession are skipped (each is a round trip through
  // the event loop), never reordered, and the last one always comes.
  const checked: [number, number][] = []
  const c = filled(t, 300)
  await c.cache.verifyAsync({ onProgress: (done, total) => void checked.push([done, total]) })
  t.deepEqual(checked[0], [0, 300])
  t.deepEqual(checked.at(-1), [300, 300])
  t.true(
    checked.every(([done, total], i) => total === 300 && (i === 0 || done > checked[i - 1]![0])),
    'in order',
  )
})

test('an onProgress that throws: its calls stop, the job finishes, and the call rejects (or throws) with its error', async (t) => {
  const boom = new Error('progress bar broke')
  const a = filled(t, 3)
  let calls = 0
  const rejected = await t.throwsAsync(
    a.cache.verifyAsync({
      onProgress: () => {
        calls++
        throw boom
      },
    }),
  )
  t.is(rejected, boom)
  t.is(calls, 1)
  const c = filled(t, 3)
  const pruned = await t.throwsAsync(
    c.cache.pruneAsync(
      { maxEntries: 0 },
      {
        onProgress: () => {
          throw boom
        },
      },
    ),
  )
  t.is(pruned, boom)
  t.like(c.cache.stats(), { entries: 0 }, 'the async prune itself went on')
  const b = filled(t, 3)
  t.is(
    t.throws(() =>
      b.cache.prune(
        { maxEntries: 0 },
        {
          onProgress: () => {
            throw boom
          },
        },
      ),
    ),
    boom,
  )
  t.like(b.cache.stats(), { entries: 0 }, 'the prune itself went on')
})

test('pruneAsync leaves the event loop free while it waits for another process holding the index', async (t) => {
  const { dir, cache } = filled(t, 3)
  const holder = await holdIndex(dir)
  let settled = false
  const pending = cache.pruneAsync({ maxEntries: 1 }).finally(() => (settled = true))
  t.is(await loopTurns(20), 20)
  t.false(settled, 'the prune cannot finish while the index is held')
  await holder.release()
  t.like(await pending, { removedEntries: 2, entries: 1 })
})

test('an abort while pruneAsync waits stops it at its first step: it rejects with the reason and removes nothing', async (t) => {
  const { dir, cache } = filled(t, 3)
  const holder = await holdIndex(dir)
  const controller = new AbortController()
  const reason = new Error('user pressed Ctrl-C')
  const pending = cache.pruneAsync({ maxEntries: 0 }, { signal: controller.signal })
  await loopTurns(5)
  controller.abort(reason)
  await holder.release()
  t.is(await t.throwsAsync(pending), reason)
  t.like(cache.stats(), { entries: 3 })
  t.is(npyFiles(dir).length, 3)
})

test('an abort from onProgress stops sync and async prunes and verifies at that step', async (t) => {
  for (const form of ['sync', 'async'] as const) {
    const { dir, cache } = filled(t, 3)
    const controller = new AbortController()
    const seen: number[] = []
    const options = {
      signal: controller.signal,
      onProgress: (done: number) => {
        seen.push(done)
        controller.abort()
      },
    }
    // The default reason, a DOMException, which ava matches only with `any`.
    const aborted = { any: true, instanceOf: DOMException } as const
    const error =
      form === 'sync'
        ? t.throws(() => cache.prune({ maxEntries: 0 }, options), aborted)
        : await t.throwsAsync(cache.pruneAsync({ maxEntries: 0 }, options), aborted)
    t.is((error as DOMException).name, 'AbortError', form)
    t.deepEqual(seen, [0], `${form}: stopped at the first step`)
    t.is(npyFiles(dir).length, 3, `${form}: nothing removed`)

    // A verify stopped at its first step checks nothing: the damaged entry it would remove stays.
    const damaged = join(dir, npyFiles(dir)[0]!)
    truncateSync(damaged, statSync(damaged).size - 8)
    const verifying = new AbortController()
    const calls: number[] = []
    const verifyOptions = {
      signal: verifying.signal,
      onProgress: (done: number) => {
        calls.push(done)
        verifying.abort()
      },
    }
    if (form === 'sync') t.throws(() => cache.verify(verifyOptions), aborted)
    else await t.throwsAsync(cache.verifyAsync(verifyOptions), aborted)
    t.deepEqual(calls, [0], form)
    t.true(existsSync(damaged), `${form}: no entry checked after the abort`)
  }
})

test('an abort at the last step comes too late to stop anything: the call returns what it did', async (t) => {
  for (const form of ['sync', 'async'] as const) {
    const { cache } = filled(t, 3)
    const controller = new AbortController()
    const options = {
      signal: controller.signal,
      onProgress: (done: number, total: number) => {
        if (done === total) controller.abort()
      },
    }
    const report = form === 'sync' ? cache.prune({ maxEntries: 0 }, options) : await cache.pruneAsync({ maxEntries: 0 }, options)
    t.like(report, { removedEntries: 3, entries: 0 }, form)
    t.true(controller.signal.aborted)
  }
})

test('a job aborted while it waits for another process\'s hold on the index does nothing when its turn comes', async (t) => {
  const { dir } = filled(t, 3)
  const holder = await holdIndex(dir)
  // A prune and a clear both wait for the index; the clear is aborted meanwhile.
  const script = `
    const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
    const cache = new NumpyFuncCache(${JSON.stringify(dir)})
    const first = cache.pruneAsync()
    const controller = new AbortController()
    const second = cache.clearCacheAsync({ signal: controller.signal })
    controller.abort(new Error('aborted in the queue'))
    console.log('queued')
    Promise.allSettled([first, second]).then(([a, b]) =>
      console.log(JSON.stringify({ first: a.status, second: b.status, reason: b.reason && b.reason.message })))
  `
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  // Waited on from the start: the child may finish while the holder is still exiting.
  const closed = once(child, 'close')
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  while (!out.includes('queued')) await once(child.stdout, 'data')
  await holder.release()
  await closed
  const result = JSON.parse(out.trim().split('\n').at(-1)!)
  t.deepEqual(result, { first: 'fulfilled', second: 'rejected', reason: 'aborted in the queue' })
  t.is(npyFiles(dir).length, 3, 'the clear removed nothing')
})

test('process.exit() from onProgress of a job on the cache\'s threads exits at once, without waiting for the job', (t) => {
  const { dir } = filled(t, 300)
  for (const call of ['verifyAsync({ onProgress })', 'pruneAsync({ maxEntries: 0 }, { onProgress })']) {
    const script = `
      const { NumpyFuncCache } = require(${JSON.stringify(join(root, 'dist'))})
      const cache = new NumpyFuncCache(${JSON.stringify(dir)})
      const onProgress = () => process.exit(7)
      cache.${call}
    `
    // The timeout only ends a hung child; the exit is expected long before.
    const r = spawnSync(process.execPath, ['-e', script], { timeout: 120_000, encoding: 'utf8' })
    t.is(r.signal, null, `${call}: the child hung and was killed`)
    t.is(r.status, 7, `${call}: ${r.stderr}`)
  }
})

test('a job removes its abort listener when it ends, however it ends', async (t) => {
  const { cache } = filled(t, 3)
  const controller = new AbortController()
  const { signal } = controller
  cache.stats({ signal })
  await cache.statsAsync({ signal })
  await cache.pruneAsync({ maxEntries: 1 }, { signal })
  await t.throwsAsync(cache.verifyAsync({ signal, onProgress: () => controller.abort() }), { any: true })
  t.is(getEventListeners(signal, 'abort').length, 0)
})

test('an aborted signal throws or rejects with its reason before any work, for every maintenance call', async (t) => {
  const { dir, cache } = filled(t, 2)
  const reason = new Error('not now')
  const signal = AbortSignal.abort(reason)
  t.is(t.throws(() => cache.prune({ maxEntries: 0 }, { signal })), reason)
  t.is(t.throws(() => cache.clearCache({ signal })), reason)
  t.is(t.throws(() => cache.stats({ signal })), reason)
  t.is(t.throws(() => cache.entries({ signal })), reason)
  t.is(t.throws(() => cache.verify({ signal })), reason)
  for (const call of [
    () => cache.pruneAsync({ maxEntries: 0 }, { signal }),
    () => cache.clearCacheAsync({ signal }),
    () => cache.statsAsync({ signal }),
    () => cache.entriesAsync({ signal }),
    () => cache.verifyAsync({ signal }),
  ]) {
    t.is(await t.throwsAsync(call()), reason)
  }
  t.is(npyFiles(dir).length, 2)
})

test('bad options reject the async forms with a TypeError naming the call and the option', async (t) => {
  const { cache } = filled(t, 1)
  const signal = await t.throwsAsync(cache.pruneAsync(undefined, { signal: 'soon' as never }))
  t.true(signal instanceof TypeError)
  t.regex(signal!.message, /pruneAsync: options\.signal must be an AbortSignal, got/)
  t.is((signal as { code?: string }).code, ErrorCodes.INVALID_ARG)
  await t.throwsAsync(cache.statsAsync({ onProgres: () => {} } as never), { instanceOf: TypeError, message: /statsAsync: unknown option 'onProgres'/ })
  await t.throwsAsync(cache.pruneAsync({ maxBytes: -1 }), { instanceOf: RangeError, message: /pruneAsync: maxBytes/ })
  // A limit given alone, where the limits object goes, is named as such.
  await t.throwsAsync(cache.pruneAsync('10GB' as never), { instanceOf: TypeError, message: /pruneAsync: limits must be an object such as \{ maxBytes/ })
  t.throws(() => cache.prune(10e9 as never), { instanceOf: TypeError, message: /prune: limits must be an object/ })
  await t.throwsAsync(cache.clearCacheAsync({ removeDir: 'yes' } as never), { instanceOf: TypeError, message: /clearCacheAsync: options\.removeDir/ })
})
