/**
 * Daemon configuration: defaults, then the config file, then `HEARSAY_*` environment variables,
 * then command-line flags. Every bad value throws a `ConfigError` naming the field, where it came
 * from and how to fix it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ConfigError } from '@hearsay/core'
import { checkDeviceName } from './device-name.js'
import { RELAY_PACE_BYTES_PER_SEC, parsePeerId } from '@hearsay/libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import {
  CONFIG_FILE,
  DEFAULT_DATA_DIR,
  HTTP_HOST,
  HTTP_PORT,
  STORAGE_BATCH_MS,
  SWARM_KEY_FILE,
  WS_MAX_BUFFERED_BYTES,
  WS_MAX_MESSAGE_BYTES
} from './constants.js'

export type Durability = 'power' | 'process'
export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error'

export interface DaemonConfig {
  /** Where the identity, swarm key, config file and documents live. @default `~/.hearsay` */
  dataDir: string
  /** Interface of the local HTTP/WebSocket endpoint. @default HTTP_HOST ('127.0.0.1') */
  httpHost: string
  /** Port of the local endpoint; 0 picks a free one. @default HTTP_PORT (4410) */
  httpPort: number
  /**
   * Origins of web apps served elsewhere (`http://host:port`) that may open WebSockets to the
   * endpoint and write documents; the endpoint's own pages are always allowed. @default []
   */
  allowOrigins: string[]
  /** libp2p listen multiaddrs. @default ['/ip4/0.0.0.0/tcp/0'] */
  listen: string[]
  /** Find peers on the LAN by mDNS. @default true */
  mdns: boolean
  /** Peers to dial at start and keep connected (multiaddrs with `/p2p/<id>`). @default [] */
  bootstrap: string[]
  /**
   * Relays to hold a reservation on, so that members at other sites reach this device through
   * them (`hearsay status` on the relay prints its address). @default []
   */
  relays: string[]
  /**
   * Serve as a circuit relay for this swarm's members (RELAY.md): a device with a public address.
   * Needs a swarm key (or `allowPeers`). @default false
   */
  relay: boolean
  /**
   * Bytes a second this device sends through relays, all relayed connections together (so that
   * one device's bulk sync leaves the relay to the others); 0 turns pacing off.
   * @default RELAY_PACE_BYTES_PER_SEC (1 MiB/s)
   */
  relayPace: number
  /** Only these peer ids may connect; empty means everyone in the swarm. @default [] */
  allowPeers: string[]
  /**
   * While this device has no roster, take the first one a member offers (TRUST.md: what makes
   * `hearsay manage` one command). `false`: only `init --admin` or `join` give it one. @default true
   */
  adoptRoster: boolean
  /**
   * Swarm key file (relative to dataDir); `hearsay init` writes `swarm.key`. Without this setting,
   * `<dataDir>/swarm.key` is used when it exists, and the swarm is open when it does not.
   * @default SWARM_KEY_FILE ('swarm.key') when that file exists
   */
  swarmKeyFile: string | undefined
  /** What a stored write survives: `power` (fsync) or `process` (kill -9 only). @default 'power' */
  durability: Durability
  /** Storage write batching, in ms: larger values mean fewer writes (SD cards). @default STORAGE_BATCH_MS (10) */
  storageBatchMs: number
  /** Log level on stderr. @default 'info' */
  logLevel: LogLevelName
  /** What peers call this device (1 to 64 printable characters); `PUT /api/name` changes it until a restart. @default the host name */
  name: string | undefined
  /** Directory of static files served at `/` (a web app). @default none */
  staticDir: string | undefined
  /** A y-websocket client whose unsent backlog would pass this many bytes is cut off. @default WS_MAX_BUFFERED_BYTES (8 MiB) */
  wsMaxBufferedBytes: number
  /** Largest y-websocket message a client may send, in bytes. @default WS_MAX_MESSAGE_BYTES (16 MiB) */
  wsMaxMessageBytes: number
}

/** Where each field's value came from, for error messages and `hearsay status`. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag'

interface FieldSpec {
  env: string
  kind: 'string' | 'port' | 'number' | 'bytes' | 'boolean' | 'list' | 'durability' | 'logLevel'
  help: string
}

/** Every field, its environment variable and what it takes. */
export const CONFIG_FIELDS: Record<keyof DaemonConfig, FieldSpec> = {
  dataDir: { env: 'HEARSAY_DATA_DIR', kind: 'string', help: 'a directory path' },
  httpHost: { env: 'HEARSAY_HTTP_HOST', kind: 'string', help: 'an interface address such as 127.0.0.1' },
  httpPort: { env: 'HEARSAY_HTTP_PORT', kind: 'port', help: 'an integer from 0 to 65535 (0 picks a free port)' },
  allowOrigins: { env: 'HEARSAY_ALLOW_ORIGINS', kind: 'list', help: 'web origins such as http://localhost:5173 (comma-separated in the environment)' },
  listen: { env: 'HEARSAY_LISTEN', kind: 'list', help: 'multiaddrs such as /ip4/0.0.0.0/tcp/4001 (comma-separated in the environment)' },
  mdns: { env: 'HEARSAY_MDNS', kind: 'boolean', help: 'true or false' },
  bootstrap: { env: 'HEARSAY_BOOTSTRAP', kind: 'list', help: 'multiaddrs such as /ip4/192.168.1.20/tcp/4001/p2p/12D3KooW…, or through a relay …/p2p/<relay>/p2p-circuit/p2p/12D3KooW… (comma-separated in the environment; `hearsay status` prints a node\'s)' },
  relays: { env: 'HEARSAY_RELAYS', kind: 'list', help: 'relay multiaddrs such as /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW… (comma-separated in the environment; `hearsay status` on the relay prints its address)' },
  relay: { env: 'HEARSAY_RELAY', kind: 'boolean', help: 'true or false (the flag --relay alone means true)' },
  relayPace: { env: 'HEARSAY_RELAY_PACE', kind: 'number', help: 'bytes a second sent through relays, such as 1048576 (0 turns pacing off)' },
  allowPeers: { env: 'HEARSAY_ALLOW_PEERS', kind: 'list', help: 'peer ids such as 12D3KooW… (comma-separated in the environment)' },
  adoptRoster: { env: 'HEARSAY_ADOPT_ROSTER', kind: 'boolean', help: 'true or false' },
  swarmKeyFile: { env: 'HEARSAY_SWARM_KEY_FILE', kind: 'string', help: 'a path to a swarm key file written by `hearsay init`' },
  durability: { env: 'HEARSAY_DURABILITY', kind: 'durability', help: "'power' (fsync every batch) or 'process' (survives kill -9, not power loss)" },
  storageBatchMs: { env: 'HEARSAY_STORAGE_BATCH_MS', kind: 'number', help: 'a number of milliseconds >= 0' },
  logLevel: { env: 'HEARSAY_LOG_LEVEL', kind: 'logLevel', help: 'trace, debug, info, warn or error' },
  name: { env: 'HEARSAY_NAME', kind: 'string', help: 'a device name of 1 to 64 printable characters, such as "kitchen Pi"' },
  staticDir: { env: 'HEARSAY_STATIC_DIR', kind: 'string', help: 'a directory of static files' },
  wsMaxBufferedBytes: { env: 'HEARSAY_WS_MAX_BUFFERED_BYTES', kind: 'bytes', help: 'a whole number of bytes >= 1024' },
  wsMaxMessageBytes: { env: 'HEARSAY_WS_MAX_MESSAGE_BYTES', kind: 'bytes', help: 'a whole number of bytes >= 1024' }
}

type ListField = 'listen' | 'bootstrap' | 'relays' | 'allowPeers' | 'allowOrigins'

/** Settings that are switches on the command line: `--relay` alone turns it on. */
export const SWITCH_FIELDS: ReadonlyArray<keyof DaemonConfig> = ['relay']

/** A web origin: `http(s)://host[:port]` and nothing more. */
function isOrigin (s: string): boolean {
  try {
    const u = new URL(s)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === s.replace(/\/$/, '')
  } catch {
    return false
  }
}

/** A peer id, checked by decoding it as libp2p will (a typo in the base58 text fails here). */
function peerIdProblem (id: string): string | undefined {
  try {
    parsePeerId(id, 'peer id')
    return undefined
  } catch {
    return `"${id}" is not a valid peer id (a typo, or cut short?)`
  }
}

function multiaddrOf (s: string): { ma?: Multiaddr, problem?: string } {
  try {
    return { ma: multiaddr(s) }
  } catch (err) {
    return { problem: `${JSON.stringify(s)} is not a multiaddr (${(err as Error).message})` }
  }
}

/**
 * What is wrong with a peer's TCP address with its `/p2p/<id>` (bootstrap peers, relays), or, with
 * `relayed`, also a peer's address through a relay (`…/p2p/<relay>/p2p-circuit/p2p/<id>`).
 */
function peerAddressProblem (s: string, relayed = false): string | undefined {
  const shape = relayed
    ? /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+\/p2p\/[^/]+(\/p2p-circuit\/p2p\/[^/]+)?$/
    : /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+\/p2p\/[^/]+$/
  if (!shape.test(s)) return JSON.stringify(s)
  const { ma, problem } = multiaddrOf(s)
  if (ma === undefined) return problem
  for (const c of ma.getComponents()) {
    if (c.name !== 'p2p') continue
    const bad = peerIdProblem(c.value ?? '')
    if (bad !== undefined) return `${JSON.stringify(s)}: ${bad}`
  }
  return undefined
}

/** What is wrong with one entry of a list field, or undefined when it is well formed. */
const LIST_ITEM: Record<ListField, (s: string) => string | undefined> = {
  listen: s => {
    if (!/^\/(ip4|ip6|dns4|dns6)\/[^/]+\/tcp\/\d+(\/.*)?$/.test(s)) return JSON.stringify(s)
    return multiaddrOf(s).problem
  },
  bootstrap: s => peerAddressProblem(s, true),
  relays: s => peerAddressProblem(s),
  allowPeers: s => peerIdProblem(s),
  allowOrigins: s => isOrigin(s) ? undefined : JSON.stringify(s)
}

export function defaultConfig (): DaemonConfig {
  return {
    dataDir: join(homedir(), DEFAULT_DATA_DIR),
    httpHost: HTTP_HOST,
    httpPort: HTTP_PORT,
    allowOrigins: [],
    listen: ['/ip4/0.0.0.0/tcp/0'],
    mdns: true,
    bootstrap: [],
    relays: [],
    relay: false,
    relayPace: RELAY_PACE_BYTES_PER_SEC,
    allowPeers: [],
    adoptRoster: true,
    swarmKeyFile: undefined,
    durability: 'power',
    storageBatchMs: STORAGE_BATCH_MS,
    logLevel: 'info',
    name: undefined,
    staticDir: undefined,
    wsMaxBufferedBytes: WS_MAX_BUFFERED_BYTES,
    wsMaxMessageBytes: WS_MAX_MESSAGE_BYTES
  }
}

/** How to fix a bad value, by where it came from. */
const FIX: Record<ConfigSource, string> = {
  file: 'Fix it in the file, or remove it to use the default.',
  env: 'Fix the variable, or unset it to use the default.',
  flag: 'Fix the flag, or leave it out to use the default.',
  default: 'Set it in the config file, HEARSAY_* variable or flag.'
}

function where (source: ConfigSource, field: keyof DaemonConfig, file?: string): string {
  switch (source) {
    case 'file': return `"${field}" in ${file ?? 'the config file'}`
    case 'env': return `${CONFIG_FIELDS[field].env}`
    case 'flag': return `--${kebab(field)}`
    default: return `"${field}"`
  }
}

export function kebab (field: string): string {
  return field.replace(/[A-Z]/g, c => '-' + c.toLowerCase())
}

/**
 * Check one value. Strings from the environment or flags are parsed (`'4410'` → 4410,
 * `'a,b'` → ['a', 'b']); values from the JSON file must already have the right type.
 */
export function parseField<K extends keyof DaemonConfig> (field: K, raw: unknown, source: ConfigSource, file?: string): DaemonConfig[K] {
  const spec = CONFIG_FIELDS[field]
  const fromText = source === 'env' || source === 'flag'
  const fail = (got: string): never => {
    throw new ConfigError(`${where(source, field, file)} must be ${spec.help}; got ${got}. ${FIX[source]}`)
  }
  const shown = (): string => JSON.stringify(raw) ?? String(raw)
  switch (spec.kind) {
    case 'string': {
      if (typeof raw !== 'string' || raw.trim() === '') fail(shown())
      if (field === 'name') {
        try {
          return checkDeviceName(raw) as DaemonConfig[K]
        } catch {
          fail(shown())
        }
      }
      return raw as DaemonConfig[K]
    }
    case 'port':
    case 'number':
    case 'bytes': {
      const n = fromText && typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) fail(shown())
      if (spec.kind === 'port' && (!Number.isInteger(n) || (n as number) > 65535)) fail(shown())
      if (spec.kind === 'bytes' && (!Number.isSafeInteger(n) || (n as number) < 1024)) fail(shown())
      return n as DaemonConfig[K]
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw as DaemonConfig[K]
      if (fromText && typeof raw === 'string') {
        const v = raw.trim().toLowerCase()
        if (['1', 'true', 'yes', 'on'].includes(v)) return true as DaemonConfig[K]
        if (['0', 'false', 'no', 'off'].includes(v)) return false as DaemonConfig[K]
      }
      return fail(shown())
    }
    case 'list': {
      const list = fromText && typeof raw === 'string' ? raw.split(',').map(s => s.trim()).filter(s => s.length > 0) : raw
      if (!Array.isArray(list) || list.some(s => typeof s !== 'string' || s.trim() === '')) fail(shown())
      const items = list as string[]
      for (const item of items) {
        const problem = LIST_ITEM[field as ListField](item)
        if (problem !== undefined) fail(items.length > 1 ? `${problem} in ${shown()}` : problem)
      }
      return items as DaemonConfig[K]
    }
    case 'durability': {
      if (raw !== 'power' && raw !== 'process') fail(shown())
      return raw as DaemonConfig[K]
    }
    case 'logLevel': {
      if (typeof raw !== 'string' || !['trace', 'debug', 'info', 'warn', 'error'].includes(raw)) fail(shown())
      return raw as DaemonConfig[K]
    }
  }
}

export interface LoadConfigOptions {
  /** Config file; `<dataDir>/config.json` when absent (a missing default file is fine). */
  configFile?: string
  /** Environment, usually `process.env`. */
  env?: Record<string, string | undefined>
  /** Values from command-line flags, as strings. */
  flags?: Partial<Record<keyof DaemonConfig, string>>
  /** Defaults of an app built on the daemon, applied before the file (e.g. SD-card-friendly batching). */
  defaults?: Partial<DaemonConfig>
  /** Read no config file at all (`hearsay init`, which may be replacing a broken one). @default true */
  readFile?: boolean
}

export interface LoadedConfig {
  config: DaemonConfig
  /** The file read, if any. */
  file: string | undefined
  sources: Record<keyof DaemonConfig, ConfigSource>
}

/** The settings in a config file; undefined when a default (not explicit) file does not exist. */
function readConfigFile (file: string, explicit: boolean): Record<string, unknown> | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    if (explicit) throw new ConfigError(`config file ${file} does not exist. Check --config / HEARSAY_CONFIG, or run \`hearsay init\`.`)
    return undefined
  }
  let values: unknown
  try {
    values = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON (${(err as Error).message}). Fix the file, or run \`hearsay init --force\` to write a fresh one.`)
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new ConfigError(`${file} must hold a JSON object of settings such as {"httpPort": 4410}.`)
  }
  return values as Record<string, unknown>
}

/** Build the configuration: defaults < file < environment < flags. */
export function loadConfig (options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? {}
  const flags = options.flags ?? {}
  const config = { ...defaultConfig(), ...options.defaults }
  const sources = Object.fromEntries(Object.keys(config).map(k => [k, 'default'])) as Record<keyof DaemonConfig, ConfigSource>
  const fields = Object.keys(CONFIG_FIELDS) as Array<keyof DaemonConfig>

  // the data dir decides where the default config file is, so settle it first
  let dataDir = config.dataDir
  if (env.HEARSAY_DATA_DIR !== undefined) dataDir = parseField('dataDir', env.HEARSAY_DATA_DIR, 'env')
  if (flags.dataDir !== undefined) dataDir = parseField('dataDir', flags.dataDir, 'flag')

  const explicit = options.configFile ?? env.HEARSAY_CONFIG
  const file = explicit !== undefined ? resolve(explicit) : join(dataDir, CONFIG_FILE)
  const fromFile = options.readFile === false ? undefined : readConfigFile(file, explicit !== undefined)
  const fileValues = fromFile ?? {}
  const read = fromFile !== undefined ? file : undefined
  for (const key of Object.keys(fileValues)) {
    if (!(key in CONFIG_FIELDS)) {
      const near = nearest(key, fields)
      throw new ConfigError(`unknown setting "${key}" in ${file}${near !== undefined ? `. Did you mean "${near}"?` : ''}. Known settings: ${fields.join(', ')}.`)
    }
  }
  const set = <K extends keyof DaemonConfig>(field: K, value: DaemonConfig[K], source: ConfigSource): void => {
    config[field] = value
    sources[field] = source
  }
  for (const field of fields) {
    if (fileValues[field] !== undefined) set(field, parseField(field, fileValues[field], 'file', file), 'file')
    const e = env[CONFIG_FIELDS[field].env]
    if (e !== undefined && e !== '') set(field, parseField(field, e, 'env'), 'env')
    const f = flags[field]
    if (f !== undefined) set(field, parseField(field, f, 'flag'), 'flag')
  }
  config.dataDir = resolve(config.dataDir)
  // a swarm key copied into the data directory is used even without a config file
  if (config.swarmKeyFile === undefined && existsSync(join(config.dataDir, SWARM_KEY_FILE))) config.swarmKeyFile = SWARM_KEY_FILE
  if (config.staticDir !== undefined) config.staticDir = resolve(config.dataDir, config.staticDir)
  return { config, file: read, sources }
}

/**
 * The known name closest to `name` by edit distance (case-insensitive; `http_port` and
 * `HttpPort` count as `httpPort`), when close enough to be a typo: at most a third of its length.
 */
export function nearest (name: string, known: readonly string[]): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '')
  const a = norm(name).slice(0, 64)
  let best: { name: string, d: number } | undefined
  for (const k of known) {
    const d = editDistance(a, norm(k))
    if (best === undefined || d < best.d) best = { name: k, d }
  }
  return best !== undefined && best.d <= Math.max(1, Math.floor(best.name.length / 3)) ? best.name : undefined
}

/** Levenshtein distance, with adjacent transpositions counting as one edit. */
function editDistance (a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      rows[i]![j] = d
    }
  }
  return rows[a.length]![b.length]!
}

/** The URL of a daemon's endpoint as seen from this machine. */
export function endpointUrl (config: Pick<DaemonConfig, 'httpHost' | 'httpPort'>): string {
  const host = config.httpHost === '0.0.0.0' ? '127.0.0.1' : config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost
  return `http://${host}:${config.httpPort}`
}
