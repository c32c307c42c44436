/**
 * The `hearsay` command line. `main(argv)` returns the exit code: 0 done, 1 failed,
 * 2 bad argument or configuration (the message names the field and how to fix it).
 */
import { mkdir, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { ConfigError, writerLogger } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import { CONFIG_FIELDS, defaultConfig, endpointUrl, kebab, loadConfig } from './config.js'
import type { DaemonConfig, LoadedConfig } from './config.js'
import { CLIENT_TIMEOUT_MS, CONFIG_FILE } from './constants.js'
import { startDaemon } from './daemon.js'
import type { Daemon } from './daemon.js'
import { createDaemonNode, initIdentity } from './network.js'
import { parseValue } from './content.js'
import { formatStatus } from './status.js'
import type { DaemonStatus } from './status.js'

export interface CliIO {
  out: (text: string) => void
  err: (text: string) => void
  env: Record<string, string | undefined>
  /** Resolves when the process is asked to stop (SIGTERM/SIGINT). */
  stopSignal?: Promise<string>
  /** Called once `start` is serving; `start` waits for it before it serves until stopped. */
  onStarted?: (daemon: Daemon) => void | Promise<void>
  /** Called after the stop signal, before the daemon closes. */
  onStopping?: () => void | Promise<void>
  /** Defaults of an app built on the daemon (below the config file). */
  defaults?: Partial<DaemonConfig>
}

const SWARM_KEY_NOTE: Record<'kept' | 'created' | 'replaced' | 'none', string> = {
  kept: 'kept the existing key',
  created: 'new: copy it to every device of this swarm',
  replaced: 'NEW key written over the old one: copy it to every device of this swarm',
  none: ''
}

/** A bad combination of command-line flags. */
class FlagError extends Error {
  static readonly code = 'FlagError'
  override readonly name = 'FlagError'
}

type Options = NonNullable<ParseArgsConfig['options']>

const COMMON: Options = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string', short: 'c' },
  'data-dir': { type: 'string', short: 'd' }
}

const CLIENT: Options = {
  ...COMMON,
  url: { type: 'string', short: 'u' },
  json: { type: 'boolean' }
}

const CONFIG_FLAGS: Options = Object.fromEntries((Object.keys(CONFIG_FIELDS) as Array<keyof DaemonConfig>)
  .filter(f => f !== 'dataDir')
  .map(f => [kebab(f), { type: 'string' as const }]))

interface Command {
  summary: string
  usage: string
  options: Options
  details: string
  minArgs: number
  maxArgs: number
  run: (args: string[], values: Record<string, string | boolean | undefined>, io: CliIO) => Promise<number>
}

const CLIENT_HELP = `  -u, --url URL        daemon endpoint (default: from the config, or HEARSAY_URL)
      --json           print JSON
  -c, --config FILE    config file (default: <data dir>/config.json, or HEARSAY_CONFIG)
  -d, --data-dir DIR   data directory (default: ~/.hearsay, or HEARSAY_DATA_DIR)`

const COMMANDS: Record<string, Command> = {
  init: {
    summary: 'create the data directory: identity, swarm key and config file',
    usage: 'hearsay init [--data-dir DIR] [--force] [--new-swarm-key | --no-swarm-key]',
    options: { ...COMMON, force: { type: 'boolean' }, 'no-swarm-key': { type: 'boolean' }, 'new-swarm-key': { type: 'boolean' } },
    details: `  -d, --data-dir DIR   where to create it (default: ~/.hearsay, or HEARSAY_DATA_DIR)
      --force          overwrite an existing config file (without reading it)
      --new-swarm-key  write a new swarm.key even if one is there (leaves the old swarm)
      --no-swarm-key   an open swarm: any Hearsay node on the LAN may connect

An existing swarm.key and identity are kept: to join a swarm, copy its swarm.key into the data
directory, then run init. Copy swarm.key to every device that should join this swarm
(same key = same swarm).`,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      if (values['no-swarm-key'] === true && values['new-swarm-key'] === true) {
        throw new FlagError('--new-swarm-key and --no-swarm-key contradict each other; pick one.')
      }
      // the config file may be the broken one `init --force` is here to replace: never read it
      const { config } = loadConfig({ env: io.env, flags: flagsOf(values), readFile: false, ...(io.defaults !== undefined ? { defaults: io.defaults } : {}) })
      const dir = config.dataDir
      await mkdir(dir, { recursive: true, mode: 0o700 })
      const file = join(dir, CONFIG_FILE)
      const exists = await access(file).then(() => true, () => false)
      if (exists && values.force !== true) {
        throw new ConfigError(`${file} already exists. Edit it, or run \`hearsay init --force\` to overwrite it.`)
      }
      const mode = values['no-swarm-key'] === true ? 'none' : values['new-swarm-key'] === true ? 'new' : 'keep'
      const { id, swarmKeyFile, swarmKey } = await initIdentity(dir, mode)
      const defaults = { ...defaultConfig(), ...io.defaults }
      const written: Partial<DaemonConfig> = {
        httpHost: defaults.httpHost,
        httpPort: defaults.httpPort,
        mdns: defaults.mdns,
        bootstrap: [],
        durability: defaults.durability,
        storageBatchMs: defaults.storageBatchMs,
        logLevel: defaults.logLevel
      }
      if (swarmKeyFile !== undefined) written.swarmKeyFile = swarmKeyFile
      await writeFile(file, JSON.stringify(written, null, 2) + '\n')
      io.out(`initialised ${dir}\n  node id     ${id}\n  config      ${file}\n` +
        (swarmKeyFile !== undefined ? `  swarm key   ${join(dir, swarmKeyFile)} (${SWARM_KEY_NOTE[swarmKey]})\n` : '  swarm       open (no swarm key)\n'))
      return 0
    }
  },
  start: {
    summary: 'run the node in the foreground (SIGTERM or Ctrl-C flushes and exits)',
    usage: 'hearsay start [options]',
    options: { ...COMMON, ...CONFIG_FLAGS },
    details: `  -c, --config FILE    config file (default: <data dir>/config.json, or HEARSAY_CONFIG)
  -d, --data-dir DIR   data directory (default: ~/.hearsay, or HEARSAY_DATA_DIR)
${(Object.keys(CONFIG_FIELDS) as Array<keyof DaemonConfig>).filter(f => f !== 'dataDir')
  .map(f => `      --${kebab(f)} V`.padEnd(27) + `${CONFIG_FIELDS[f].help} (${CONFIG_FIELDS[f].env})`).join('\n')}

Flags override environment variables, which override the config file.`,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      const loaded = loadConfig({ env: io.env, flags: flagsOf(values), configFile: values.config as string | undefined, ...(io.defaults !== undefined ? { defaults: io.defaults } : {}) })
      const { config } = loaded
      const logger = writerLogger({ level: config.logLevel, write: line => { io.err(line) } })
      const daemon = await startFromConfig(loaded, logger)
      io.err(`hearsay: node ${daemon.node.id} serving ${daemon.url} (ws://${daemon.url.slice('http://'.length)}/<docId>)`)
      try {
        await io.onStarted?.(daemon)
      } catch (err) {
        await daemon.close()
        throw err
      }
      const signal = await (io.stopSignal ?? new Promise<string>(() => {}))
      io.err(`hearsay: ${signal}: flushing and stopping`)
      await io.onStopping?.()
      await daemon.close()
      io.err('hearsay: stopped')
      return 0
    }
  },
  status: {
    summary: 'peers (alive/suspect/dead), sync per peer and progress, discovery diagnosis',
    usage: 'hearsay status [--json] [--url URL]',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      const s = await request<DaemonStatus>(clientUrl(values, io), '/status')
      io.out(values.json === true ? JSON.stringify(s, null, 2) : formatStatus(s))
      return 0
    }
  },
  docs: {
    summary: 'list the documents this node holds',
    usage: 'hearsay docs [--json] [--url URL]',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      const { docs } = await request<{ docs: string[] }>(clientUrl(values, io), '/api/docs')
      io.out(values.json === true ? JSON.stringify(docs) : docs.join('\n'))
      return 0
    }
  },
  get: {
    summary: "print a document's content as JSON (exit 1 when this node has no such document)",
    usage: 'hearsay get <doc> [--url URL]',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 1,
    maxArgs: 1,
    run: async (args, values, io) => {
      const r = await request<{ content: unknown }>(clientUrl(values, io), `/api/docs/${encodeURIComponent(args[0]!)}`)
      io.out(JSON.stringify(r.content, null, 2))
      return 0
    }
  },
  set: {
    summary: 'set <key> in the document\'s "data" map (JSON values are parsed: 42, true, {"a":1})',
    usage: 'hearsay set <doc> <key> <value> [--url URL]',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 3,
    maxArgs: 3,
    run: async (args, values, io) => {
      const [doc, key, value] = args as [string, string, string]
      const r = await request<{ id: string, key: string, value: unknown }>(clientUrl(values, io), `/api/docs/${encodeURIComponent(doc)}/${encodeURIComponent(key)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(parseValue(value)) })
      io.out(values.json === true ? JSON.stringify(r) : `${doc}: ${key} set to ${JSON.stringify(r.value)}`)
      return 0
    }
  },
  watch: {
    summary: "print the document's content at every change, and who made it: local, client or peer <id> (Ctrl-C stops)",
    usage: 'hearsay watch <doc> [--url URL]',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 1,
    maxArgs: 1,
    run: async (args, values, io) => {
      const base = clientUrl(values, io)
      const ctl = new AbortController()
      void io.stopSignal?.then(() => { ctl.abort() })
      const { res } = await connect(base, `/api/watch/${encodeURIComponent(args[0]!)}`, { signal: ctl.signal }, false)
      const decoder = new TextDecoder()
      let buffered = ''
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          if (ctl.signal.aborted) break
          buffered += decoder.decode(chunk, { stream: true })
          let nl: number
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl)
            buffered = buffered.slice(nl + 1)
            if (values.json === true) io.out(line)
            else {
              const e = JSON.parse(line) as { origin: string, peerId?: string, content: unknown }
              io.out(`[${new Date().toISOString()}] ${e.origin}${e.peerId !== undefined ? ` ${e.peerId}` : ''}: ${JSON.stringify(e.content)}`)
            }
          }
        }
      } catch (err) {
        if (!ctl.signal.aborted) throw new Error(`lost the daemon at ${base}: ${(err as Error).message}`)
      }
      if (ctl.signal.aborted) return 0
      io.err(`hearsay watch: the daemon at ${base} closed the connection (it stopped?); no more changes to show.`)
      return 1
    }
  }
}

function flagsOf (values: Record<string, string | boolean | undefined>): Partial<Record<keyof DaemonConfig, string>> {
  const flags: Partial<Record<keyof DaemonConfig, string>> = {}
  for (const f of Object.keys(CONFIG_FIELDS) as Array<keyof DaemonConfig>) {
    const v = values[kebab(f)]
    if (typeof v === 'string') flags[f] = v
  }
  return flags
}

function clientUrl (values: Record<string, string | boolean | undefined>, io: CliIO): string {
  if (typeof values.url === 'string') return checkUrl(values.url, '--url')
  if (io.env.HEARSAY_URL !== undefined && io.env.HEARSAY_URL !== '') return checkUrl(io.env.HEARSAY_URL, 'HEARSAY_URL')
  const { config } = loadConfig({ env: io.env, flags: flagsOf(values), configFile: values.config as string | undefined })
  return endpointUrl(config)
}

function checkUrl (url: string, from: string): string {
  try {
    const u = new URL(url)
    if (u.protocol !== 'http:') throw new Error('not http')
    return url.replace(/\/+$/, '')
  } catch {
    throw new ConfigError(`${from} must be the daemon's endpoint, such as http://127.0.0.1:4410; got ${JSON.stringify(url)}`)
  }
}

/** The daemon did not answer within CLIENT_TIMEOUT_MS. */
class DaemonTimeoutError extends Error {
  static readonly code = 'TimeoutError'
  override readonly name = 'TimeoutError'
}

/**
 * Send a request to the daemon. `timeoutMs` bounds the wait for the response headers, and with
 * `wholeBody` the body too; a stuck daemon gives a clear error instead of a hang.
 */
async function connect (base: string, path: string, init: RequestInit = {}, wholeBody = true): Promise<{ res: Response, done: () => void, timedOut: () => Error | undefined }> {
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

/** The daemon answered with an error status. */
class HttpStatusError extends Error {
  static readonly code = 'HttpStatusError'
  override readonly name = 'HttpStatusError'
  constructor (readonly status: number, message: string) { super(message) }
}

async function request<T> (base: string, path: string, init?: RequestInit): Promise<T> {
  const { res, done, timedOut } = await connect(base, path, init)
  try {
    return await res.json() as T
  } catch (err) {
    throw timedOut() ?? new Error(`the daemon at ${base + path} sent something that is not JSON: ${(err as Error).message}`)
  } finally {
    done()
  }
}

/** Start a daemon from a loaded configuration. */
export async function startFromConfig (loaded: LoadedConfig, logger: Logger): Promise<Daemon> {
  const { config } = loaded
  const { node, transport } = await createDaemonNode(config, logger)
  return await startDaemon({
    node,
    host: config.httpHost,
    port: config.httpPort,
    allowOrigins: config.allowOrigins,
    wsMaxBufferedBytes: config.wsMaxBufferedBytes,
    wsMaxMessageBytes: config.wsMaxMessageBytes,
    transport,
    logger,
    ...(config.staticDir !== undefined ? { staticDir: config.staticDir } : {})
  })
}

export function usage (): string {
  return `hearsay: keep Yjs documents in sync across the devices of a LAN, with no server

Usage: hearsay <command> [options]

Commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(8)} ${c.summary}`).join('\n')}

Run \`hearsay <command> --help\` for a command's options.
Configuration: <data dir>/config.json, then HEARSAY_* environment variables, then flags.`
}

function commandHelp (name: string, c: Command): string {
  return `hearsay ${name}: ${c.summary}\n\nUsage: ${c.usage}\n\nOptions:\n  -h, --help           this help\n${c.details}`
}

export async function main (argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage())
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    io.err(`hearsay: unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}. See \`hearsay --help\`.`)
    return 2
  }
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true })
  } catch (err) {
    io.err(`hearsay ${name}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/s, '')}. See \`hearsay ${name} --help\`.`)
    return 2
  }
  const values = parsed.values as Record<string, string | boolean | undefined>
  if (values.help === true) {
    io.out(commandHelp(name, command))
    return 0
  }
  const args = parsed.positionals
  if (args.length < command.minArgs || args.length > command.maxArgs) {
    io.err(`hearsay ${name}: expected ${command.minArgs === command.maxArgs ? command.minArgs : `${command.minArgs} to ${command.maxArgs}`} argument(s), got ${args.length}. Usage: ${command.usage}`)
    return 2
  }
  try {
    return await command.run(args, values, io)
  } catch (err) {
    const e = err as Error
    if (e.name === 'ConfigError' || e.name === 'FlagError' || e.name === 'SwarmKeyError' || e.name === 'InvalidDocIdError') {
      io.err(`hearsay ${name}: ${e.message}`)
      return 2
    }
    io.err(`hearsay ${name}: ${e.message}`)
    return 1
  }
}
