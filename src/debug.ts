// NODE_DEBUG=numpy-func-cache: what the cache does, on stderr, through
// util.debuglog (free when off: the checks below are one property read).
import { debuglog } from 'node:util'

export const debug = debuglog('numpy-func-cache')

/** A key as logs show it: its first 12 hex digits, as the CLI's ls does. */
export const shortKey = (key: string) => key.slice(0, 12)
