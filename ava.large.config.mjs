// The memory-heavy tests (1 GiB entries, local and remote; arrays over 4 GiB; outputs over a memory cgroup's limit), run alone after
// the rest so their peak memory never adds to another file's.
import { common } from './ava.config.mjs'

export default {
  ...common,
  files: ['__test__/large.spec.ts', '__test__/remote-large.spec.ts', '__test__/output-large.spec.ts'],
  concurrency: 1,
}
