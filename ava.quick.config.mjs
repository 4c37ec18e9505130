// The quick inner loop's suite (npm run test:quick): the specs that need
// no server, registry or other process's scale, in a minute or so. `npm
// test` runs them again with everything else.
import { common } from './ava.config.mjs'

export default {
  ...common,
  files: [
    '__test__/wrapper.spec.ts',
    '__test__/keys.spec.ts',
    '__test__/results.spec.ts',
    '__test__/record.spec.ts',
    '__test__/errors.spec.ts',
    '__test__/vectors.spec.ts',
    '__test__/directory.spec.ts',
    '__test__/damaged-entries.spec.ts',
  ],
  concurrency: 2,
}
