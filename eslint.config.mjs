// The TypeScript linter: typescript-eslint's recommended rules, type-aware
// for the package's source, plain for tests and scripts.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'binding/index.js', 'binding/index.d.ts', 'target/', 'fuzz/', 'node_modules/', 'bench/node_modules/', '.venv/', '.tools/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // `const cache = this` lets a wrapper function keep its caller's own `this`.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['cache'] }],
    },
  },
  {
    files: ['src/**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    files: ['**/*.mjs', '**/*.js', '**/*.cjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable', SharedArrayBuffer: 'readonly', Atomics: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', globalThis: 'readonly', fetch: 'readonly', AbortSignal: 'readonly', structuredClone: 'readonly' } },
  },
  {
    // Benchmark callbacks take arguments they do not all use.
    files: ['bench/**'],
    rules: { '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }] },
  },
  {
    files: ['__test__/**/*.ts'],
    rules: {
      // Tests poke at values of any shape on purpose.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // Type tests declare values only to look at their types.
    files: ['__test__/types/**'],
    rules: { '@typescript-eslint/no-unused-vars': 'off' },
  },
)
