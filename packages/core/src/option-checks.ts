/**
 * The one set of option checkers, used by the engine (options.ts), the libp2p transport and the
 * LevelDB store: each throws `ConfigError` naming the option, the rule and the value it got, and
 * accepts `undefined` (an omitted option keeps its default).
 */
import { ConfigError } from './errors.js'

export interface NumberRule {
  /** Smallest value allowed. @default 0 */
  min?: number
  /** Largest value allowed. @default none */
  max?: number
  /** Must be above `min` rather than at least it (a positive number: `{ min: 0, exclusive: true }`). */
  exclusive?: boolean
  /** Must be a safe integer. */
  integer?: boolean
}

/** A finite number within `rule` (a bare number is the minimum). */
export function checkNumber (name: string, v: unknown, rule: number | NumberRule = {}): void {
  if (v === undefined) return
  const r: NumberRule = typeof rule === 'number' ? { min: rule } : rule
  const min = r.min ?? 0
  const kind = r.integer === true ? 'an integer' : r.exclusive === true && min === 0 ? 'a positive number' : 'a number'
  const bound = r.exclusive === true && min === 0 ? '' : ` ${r.exclusive === true ? '>' : '>='} ${min}`
  const ok = typeof v === 'number' && Number.isFinite(v) && (r.exclusive === true ? v > min : v >= min) &&
    (r.integer !== true || Number.isSafeInteger(v))
  if (!ok) throw new ConfigError(`${name} must be ${kind}${bound}, got ${String(v)}`)
  if (r.max !== undefined && v > r.max) throw new ConfigError(`${name} must be at most ${r.max}, got ${v}`)
}

export function checkBoolean (name: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`)
}

export function checkOneOf (name: string, v: unknown, allowed: readonly string[]): void {
  if (v !== undefined && !allowed.includes(v as string)) {
    throw new ConfigError(`${name} must be one of ${allowed.map(a => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`)
  }
}

/** A fraction in [0, 1), such as a jitter. */
export function checkFraction (name: string, v: unknown): void {
  if (v !== undefined && !(typeof v === 'number' && v >= 0 && v < 1)) throw new ConfigError(`${name} must be in [0, 1), got ${String(v)}`)
}

/** An options object (or `undefined`). */
export function checkObject (name: string, v: unknown): void {
  if (v !== undefined && (v === null || typeof v !== 'object')) throw new ConfigError(`${name} must be an object`)
}

/** `o` without its `undefined` fields, to spread over defaults. */
export function stripUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
