/**
 * How the client commands (`status`, `docs`, `get`, `set`, `watch`) reach a daemon: which URL,
 * and a check that the daemon answering there is the one of the data directory they were given.
 */
import { ConfigError } from '@hearsay/core'
import { readPeerId } from '@hearsay/libp2p'
import { endpointUrl, loadConfig } from './config.js'
import type { DaemonConfig } from './config.js'
import { CLIENT_TIMEOUT_MS } from './constants.js'
import { readRuntime } from './runtime.js'

/** Where a client command sends its requests, and which node it expects to find there. */
export interface Target {
  /** `http://host:port` */
  url: string
  /** Data directory whose daemon is wanted; undefined when a URL was given without one. */
  dataDir?: string
  /**
   * Node id of that data directory (from its identity); undefined when nothing is to be checked
   * (a URL given without a data directory), or when the directory has no identity yet.
   */
  expectId?: string
  /** Where `url` came from, for messages. */
  from: string
}

/** The daemon that answered is not the one of the data directory the command was given. */
export class WrongDaemonError extends Error {
  static readonly code = 'WrongDaemonError'
  override readonly name = 'WrongDaemonError'
}

/** The daemon did not answer within CLIENT_TIMEOUT_MS. */
export class DaemonTimeoutError extends Error {
  static readonly code = 'TimeoutError'
  override readonly name = 'TimeoutError'
}

/** The daemon answered with an error status. */
export class HttpStatusError extends Error {
  static readonly code = 'HttpStatusError'
  override readonly name = 'HttpStatusError'
  constructor (readonly status: number, message: string) { super(message) }
}

export interface TargetOptions {
  /** `--url` */
  url?: string
  /** `--config` */
  configFile?: string
  /** Config flags (`--data-dir`, `--http-port`, …), as strings. */
  flags: Partial<Record<keyof DaemonConfig, string>>
  env: Record<string, string | undefined>
}

/**
 * The daemon to talk to. `--url` or `HEARSAY_URL` when given (checked against the data directory
 * only when one is named too, by `--data-dir` or `HEARSAY_DATA_DIR`); otherwise the endpoint the
 * data directory's running daemon recorded in `daemon.json`, or else the config's.
 */
export async function resolveTarget (options: TargetOptions): Promise<Target> {
  const { env, flags } = options
  const named = flags.dataDir !== undefined || (env.HEARSAY_DATA_DIR !== undefined && env.HEARSAY_DATA_DIR !== '')
  const explicit = options.url !== undefined
    ? { url: checkUrl(options.url, '--url'), from: '--url' }
    : env.HEARSAY_URL !== undefined && env.HEARSAY_URL !== ''
      ? { url: checkUrl(env.HEARSAY_URL, 'HEARSAY_URL'), from: 'HEARSAY_URL' }
      : undefined
  if (explicit !== undefined && !named) return explicit
  const { config, file } = loadConfig({ env, flags, ...(options.configFile !== undefined ? { configFile: options.configFile } : {}) })
  const dataDir = config.dataDir
  const expectId = await readPeerId(dataDir).catch(() => undefined)
  const withId = (t: Omit<Target, 'dataDir' | 'expectId'>): Target => ({ ...t, dataDir, ...(expectId !== undefined ? { expectId } : {}) })
  if (explicit !== undefined) return withId(explicit)
  const running = await readRuntime(dataDir)
  if (running !== undefined && !running.stale) return withId({ url: running.url, from: `${dataDir}/daemon.json` })
  return withId({ url: endpointUrl(config), from: file !== undefined ? `the config ${file}` : 'the default httpPort' })
}

/**
 * Check that the daemon at `target.url` is the node of `target.dataDir`: refuse clearly when it
 * is another one (a second daemon on this machine, listening where the config points).
 * Returns what `/status` said, for `status` to print.
 */
export async function verifyTarget<S extends { id: string }> (target: Target): Promise<S> {
  const status = await request<S>(target.url, '/status')
  if (target.dataDir === undefined) return status
  if (target.expectId === undefined) {
    throw new WrongDaemonError(`the daemon at ${target.url} (from ${target.from}) is node ${status.id}, but no daemon has run with the data directory ${target.dataDir} (it has no identity). Start one with \`hearsay start --data-dir ${target.dataDir}\`, or leave out --data-dir to talk to the daemon at ${target.url}.`)
  }
  if (status.id !== target.expectId) {
    throw new WrongDaemonError(`the daemon at ${target.url} (from ${target.from}) is node ${status.id}, not node ${target.expectId} of the data directory ${target.dataDir}. Is that directory's daemon running? Start it with \`hearsay start --data-dir ${target.dataDir}\`, or pass its endpoint with --url.`)
  }
  return status
}

export function checkUrl (url: string, from: string): string {
  try {
    const u = new URL(url)
    if (u.protocol !== 'http:') throw new Error('not http')
    return url.replace(/\/+$/, '')
  } catch {
    throw new ConfigError(`${from} must be the daemon's endpoint, such as http://127.0.0.1:4410; got ${JSON.stringify(url)}`)
  }
}

/**
 * Send a request to the daemon. `timeoutMs` bounds the wait for the response headers, and with
 * `wholeBody` the body too; a stuck daemon gives a clear error instead of a hang.
 */
export async function connect (base: string, path: string, init: RequestInit = {}, wholeBody = true): Promise<{ res: Response, done: () => void, timedOut: () => Error | undefined }> {
  const ctl = new AbortController()
  const timer = setTimeout(() => { ctl.abort(new DaemonTimeoutError(`the daemon at ${base + path} did not answer within ${CLIENT_TIMEOUT_MS / 1000} s. Is \`hearsay start\` stuck, or is something else listening there? Check --url or HEARSAY_URL.`)) }, CLIENT_TIMEOUT_MS)
  const done = (): void => { clearTimeout(timer) }
  const signal = init.signal != null ? AbortSignal.any([init.signal, ctl.signal]) : ctl.signal
  const timedOut = (): Error | undefined => ctl.signal.aborted ? ctl.signal.reason as Error : undefined
  let res: Response
  try {
    res = await fetch(base + path, { ...init, signal })
  } catch (err) {
    done()
    const t = timedOut()
    if (t !== undefined) throw t
    throw new Error(`cannot reach the daemon at ${base} (${(err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message}). Is \`hearsay start\` running? Point to it with --url or HEARSAY_URL.`)
  }
  if (!wholeBody) done()
  if (!res.ok) {
    let body: string
    try {
      body = await res.text()
    } catch (err) {
      throw timedOut() ?? err
    } finally {
      done()
    }
    let message = body
    try { message = (JSON.parse(body) as { error: string }).error } catch {}
    throw new HttpStatusError(res.status, `daemon at ${base} answered ${res.status}: ${message}`)
  }
  return { res, done, timedOut }
}

export async function request<T> (base: string, path: string, init?: RequestInit): Promise<T> {
  const { res, done, timedOut } = await connect(base, path, init)
  try {
    return await res.json() as T
  } catch (err) {
    throw timedOut() ?? new Error(`the daemon at ${base + path} sent something that is not JSON: ${(err as Error).message}`)
  } finally {
    done()
  }
}

