// Writes dist/index.mjs: the ES module entry re-exports the CommonJS build,
// so `import` and `require` share one instance of the addon and the classes.
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const names = Object.keys(require('../dist/index.js')).filter((n) => n !== 'default' && n !== '__esModule')
const body = [
  "import { createRequire } from 'node:module'",
  "const cjs = createRequire(import.meta.url)('./index.js')",
  ...names.map((n) => `export const ${n} = cjs.${n}`),
  'export default cjs',
  '',
].join('\n')
writeFileSync(new URL('../dist/index.mjs', import.meta.url), body)
