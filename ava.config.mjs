// The test suite: every spec but the memory-heavy ones, two files at a time.
export const common = {
  extensions: { ts: 'commonjs' },
  nodeArguments: ['--import=tsx'],
  timeout: '5m',
  workerThreads: false,
}

export default {
  ...common,
  files: ['__test__/**/*.spec.ts', '!__test__/large.spec.ts', '!__test__/remote-large.spec.ts'],
  concurrency: 2,
}
