import test from 'ava'
import { NumpyFuncCache } from '../dist'
import { tempDir } from './helpers'

test('a miss computes, a hit loads without calling the function', (t) => {
  const cache = new NumpyFuncCache(tempDir(t))
  let calls = 0
  const f = cache.createCachedFunc((n: number) => {
    calls++
    return new Float64Array(n).fill(n)
  })
  t.deepEqual(f(3), new Float64Array([3, 3, 3]))
  t.deepEqual(f(3), new Float64Array([3, 3, 3]))
  t.is(calls, 1)
})
