/**
 * Injected, namespaced logging. Library code never writes to the console: it asks the
 * logger it was given for a component (`logger.forComponent('hearsay:session')`).
 */

import { LOG_REPEAT_MS } from './constants.js'

export interface Log {
  (message: string, ...args: unknown[]): void
  error(message: string, ...args: unknown[]): void
  warn(message: string, ...args: unknown[]): void
  trace(message: string, ...args: unknown[]): void
}

export interface Logger {
  forComponent(name: string): Log
}

/**
 * Whether a repeating warning may be logged now: at most once every `intervalMs` per key (a peer,
 * a kind of refusal); `force` logs it anyway. The caller counts what it does not log.
 */
export class LogThrottle {
  private readonly last = new Map<string, number>()

  constructor (private readonly now: () => number, private readonly intervalMs = LOG_REPEAT_MS) {}

  allows (key = '', force = false): boolean {
    const t = this.now()
    if (!force && t - (this.last.get(key) ?? -Infinity) < this.intervalMs) return false
    this.last.set(key, t)
    return true
  }

  forget (key: string): void {
    this.last.delete(key)
  }
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'

const noop = (): void => {}

/** A logger that drops everything: the default. */
export function silentLogger (): Logger {
  const log = Object.assign(noop.bind(null), { error: noop, warn: noop, trace: noop }) as Log
  return { forComponent: () => log }
}

const LEVELS: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 }

export interface WriterLoggerOptions {
  /** Lowest level written. @default 'info' */
  level?: LogLevel
  /** Where lines go. @default process.stderr */
  write?: (line: string) => void
  /** Only components whose name starts with one of these prefixes. @default all */
  components?: string[]
}

/**
 * A logger that writes one line per entry, `time level component message`.
 * The plain call `log(...)` is the debug level.
 */
export function writerLogger (options: WriterLoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? 'info']
  const write = options.write ?? ((line: string) => { process.stderr.write(line + '\n') })
  const prefixes = options.components
  const format = (args: unknown[]): string => args.map(a =>
    a instanceof Error ? `${a.name}: ${a.message}` : typeof a === 'string' ? a : safeJson(a)).join(' ')
  return {
    forComponent (name) {
      const enabled = prefixes === undefined || prefixes.some(p => name.startsWith(p))
      const at = (level: LogLevel) => (message: string, ...args: unknown[]): void => {
        if (!enabled || LEVELS[level] < min) return
        const rest = args.slice()
        const text = message.replace(/%[sdoj%]/g, m => m === '%%' ? '%' : rest.length > 0 ? format([rest.shift()]) : m)
        write(`${new Date().toISOString()} ${level.padEnd(5)} ${name} ${text}${rest.length > 0 ? ' ' + format(rest) : ''}`)
      }
      return Object.assign(at('debug'), { error: at('error'), warn: at('warn'), trace: at('trace') })
    }
  }
}

function safeJson (value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v)
  } catch {
    return String(value)
  }
}
