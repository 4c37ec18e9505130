// Sizes and ages as people write them ('10GB', '7d'): one parser for the
// API's limits and the command line's flags.
import { parse as parseDuration } from '@lukeed/ms'

/** '10GB' (powers of 1000), '512MiB' or '1.5G' (powers of 1024), '4096' or '4096B' (bytes); else undefined. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?|\.\d+) ?(?:([kmgtp])(i?)(b?)|b?)$/i.exec(text.trim())
  if (!m) return undefined
  const [, number, prefix, binary, b] = m
  const power = prefix ? 'kmgtp'.indexOf(prefix.toLowerCase()) + 1 : 0
  return Math.round(Number(number) * (binary || !b ? 1024 : 1000) ** power)
}

/** '7d', '12h', '30m', '90s', '250ms' or a number of milliseconds; else undefined. */
export function parseAge(text: string): number | undefined {
  const ms = parseDuration(text.trim())
  return ms !== undefined && ms >= 0 && Number.isFinite(ms) ? ms : undefined
}

export const SIZE_FORMS = 'such as 10GB, 512MiB, 1.5G or a number of bytes'
export const AGE_FORMS = 'such as 7d, 12h, 30m, 90s or a number of milliseconds'
