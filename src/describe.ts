// Short descriptions of values for error messages.
import { types } from 'node:util'

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  switch (typeof value) {
    case 'number':
    case 'bigint':
    case 'boolean':
      return `a ${typeof value} (${String(value)}${typeof value === 'bigint' ? 'n' : ''})`
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)})`
    case 'symbol':
      return `a symbol (${String(value)})`
    case 'function':
      return `a function${value.name ? ` (${value.name})` : ''}`
  }
  if (Array.isArray(value)) return `an Array of length ${value.length}`
  if (types.isPromise(value)) return 'a Promise'
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null
  if (proto === null || proto === Object.prototype) return 'a plain object'
  const name = proto.constructor?.name
  return typeof name === 'string' && name ? `an instance of ${name}` : 'an object'
}

/** `base.key` for identifier keys, `base["key"]` otherwise. */
export function propertyPath(base: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`
}
