/**
 * The agent: every `intervalMs` it writes a reading into `telemetry/<deviceId>` (map `latest`,
 * and the last `history` readings in array `history`), and it follows `config/<deviceId>` (map
 * `data`, the map `hearsay set` writes): `intervalMs`, `history` and `label` apply at once.
 * What it applied goes back into the same document, map `applied`, and each refused value into
 * map `refused` (`{ value, reason, at }`), so whoever set it sees the outcome with `hearsay get`.
 *
 * The history is also the Pi's buffer: readings past the last `history` leave it only once a peer
 * confirmed holding them in storage (`node.replicated(…, { durable: true, peers: 1 })`). While no
 * peer confirms (the gateway is away), readings pile up, up to `bufferMax`; past that the oldest
 * are dropped with a warning, never silently.
 */
import type { HearsayNode, Log, Logger } from '@hearsay/core'
import { silentLogger } from '@hearsay/core'
import type * as Y from 'yjs'
import { read } from './telemetry.js'
import type { Reading } from './telemetry.js'

/** Sampling interval when the config document sets none, in ms. */
export const INTERVAL_MS = 5_000
/** Smallest interval the agent accepts from a config document, in ms. */
export const MIN_INTERVAL_MS = 500
/** Readings kept in the history array. */
export const HISTORY = 60
/** Most readings a config document may ask to keep. */
export const MAX_HISTORY = 10_000
/** Longest label a config document may set, in characters. */
export const MAX_LABEL = 200
/** Most readings kept while no peer confirms storing them. */
export const BUFFER_MAX = 10_000
/** How long one confirmation may take before the readings wait for the next one, in ms. */
export const CONFIRM_TIMEOUT_MS = 30_000

export interface AgentOptions {
  node: HearsayNode
  deviceId: string
  /** Interval until the config document says otherwise. @default INTERVAL_MS */
  intervalMs?: number
  /** Thermal zone file, for tests. */
  thermalZone?: string
  logger?: Logger
  /** Most readings kept while no peer confirms storing them. @default BUFFER_MAX */
  bufferMax?: number
  /** @default CONFIRM_TIMEOUT_MS */
  confirmTimeoutMs?: number
  /** Called with the settings in force and the refused values, at start and whenever they change. */
  onApplied?: (settings: AgentSettings, refused: Record<string, Refusal>) => void
}

/** A value from the config document the agent did not apply. */
export interface Refusal { value: unknown, reason: string, at: number }

/** Settings the config document may set. */
export const CONFIG_KEYS = ['intervalMs', 'history', 'label'] as const

export interface AgentSettings { intervalMs: number, history: number, label: string }

export interface Agent {
  readonly settings: AgentSettings
  /** Readings published since start. */
  readonly published: number
  /** Readings past the history window kept until a peer confirms storing them. */
  readonly buffered: number
  /** Readings dropped unconfirmed because the buffer was full. */
  readonly dropped: number
  /** When a peer last confirmed storing the telemetry (ms since epoch), if ever. */
  readonly confirmedAt: number | undefined
  /** Take and publish a reading now. */
  sample(): Promise<Reading>
  stop(): void
}

export async function startAgent (options: AgentOptions): Promise<Agent> {
  const { node, deviceId } = options
  const log: Log = (options.logger ?? silentLogger()).forComponent('hearsay:pi')
  const telemetry = await node.open(`telemetry/${deviceId}`)
  const configDoc = await node.open(`config/${deviceId}`)
  const config = configDoc.getMap<unknown>('data')
  const latest = telemetry.getMap<unknown>('latest')
  const history = telemetry.getArray<Reading>('history')
  const settings: AgentSettings = { intervalMs: options.intervalMs ?? INTERVAL_MS, history: HISTORY, label: deviceId }
  let published = 0
  let dropped = 0
  let confirmedAt: number | undefined
  let confirming = false
  const bufferMax = options.bufferMax ?? BUFFER_MAX
  const telemetryId = `telemetry/${deviceId}`
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false

  const applied = configDoc.getMap<unknown>('applied')
  const refusedMap = configDoc.getMap<Refusal>('refused')
  let reported = ''

  /** Take every valid setting from `data`, and report what applies and what was refused. */
  const apply = (): void => {
    const refused: Record<string, Refusal> = {}
    const refuse = (key: string, value: unknown, reason: string): void => {
      // keep the time of an earlier refusal of the same value
      const before = refusedMap.get(key)
      refused[key] = { value, reason, at: before !== undefined && JSON.stringify(before.value) === JSON.stringify(value) ? before.at : Date.now() }
    }
    const iv = config.get('intervalMs')
    if (iv !== undefined) {
      if (typeof iv === 'number' && Number.isFinite(iv) && iv >= MIN_INTERVAL_MS) settings.intervalMs = iv
      else refuse('intervalMs', iv, `must be a number >= ${MIN_INTERVAL_MS}; keeping ${settings.intervalMs}`)
    }
    const h = config.get('history')
    if (h !== undefined) {
      if (typeof h === 'number' && Number.isInteger(h) && h >= 0 && h <= MAX_HISTORY) settings.history = h
      else refuse('history', h, `must be an integer from 0 to ${MAX_HISTORY}; keeping ${settings.history}`)
    }
    const label = config.get('label')
    if (label !== undefined) {
      if (typeof label === 'string' && label.length <= MAX_LABEL) settings.label = label
      else refuse('label', label, `must be a string of at most ${MAX_LABEL} characters; keeping ${JSON.stringify(settings.label)}`)
    }
    for (const key of config.keys()) {
      if (!(CONFIG_KEYS as readonly string[]).includes(key)) refuse(key, config.get(key), `unknown setting; known: ${CONFIG_KEYS.join(', ')}`)
    }
    const report = JSON.stringify([settings, refused])
    if (report === reported) return
    reported = report
    for (const [key, r] of Object.entries(refused)) {
      if (JSON.stringify(refusedMap.get(key)) !== JSON.stringify(r)) log.warn(`config/${deviceId}: refused ${key} = ${JSON.stringify(r.value)}: ${r.reason}`)
    }
    configDoc.transact(() => {
      for (const [k, v] of Object.entries(settings)) if (applied.get(k) !== v) applied.set(k, v)
      for (const key of [...refusedMap.keys()]) if (!(key in refused)) refusedMap.delete(key)
      for (const [key, r] of Object.entries(refused)) if (JSON.stringify(refusedMap.get(key)) !== JSON.stringify(r)) refusedMap.set(key, r)
    }, 'hearsay-pi')
    options.onApplied?.({ ...settings }, refused)
  }

  const sample = async (): Promise<Reading> => {
    const r = await read(options.thermalZone)
    telemetry.transact(() => {
      for (const [k, v] of Object.entries(r)) latest.set(k, v)
      latest.set('label', settings.label)
      latest.set('intervalMs', settings.intervalMs)
      history.push([r])
      // a full buffer: the oldest unconfirmed readings go, said out loud
      const over = history.length - Math.max(bufferMax, settings.history)
      if (over > 0) {
        history.delete(0, over)
        dropped += over
        log.warn(`${telemetryId}: no peer confirmed storing the last ${bufferMax} readings; dropped the oldest ${over}`)
      }
    }, 'hearsay-pi')
    published++
    void trim()
    return r
  }

  /**
   * Once a peer holds the readings in storage, those past the history window leave the buffer.
   * Runs until the buffer is empty: while no peer confirms, each attempt waits `confirmTimeoutMs`.
   */
  const trim = async (): Promise<void> => {
    if (confirming) return
    confirming = true
    try {
      while (!stopped && history.length > settings.history) {
        // the readings now in the document; newer ones wait for the next confirmation
        const upTo = history.length
        const droppedBefore = dropped
        try {
          await node.replicated(telemetryId, { durable: true, peers: 1, timeoutMs: options.confirmTimeoutMs ?? CONFIRM_TIMEOUT_MS })
        } catch (err) {
          if ((err as Error).name === 'ReplicationTimeoutError') continue
          if (!stopped) log.warn(`${telemetryId}: ${(err as Error).message}`)
          return
        }
        confirmedAt = Date.now()
        if (stopped) return
        // readings dropped meanwhile (a full buffer) were the oldest of those confirmed
        const extra = Math.min(upTo - (dropped - droppedBefore), history.length) - settings.history
        if (extra > 0) telemetry.transact(() => { history.delete(0, extra) }, 'hearsay-pi')
      }
    } finally {
      confirming = false
    }
  }

  const schedule = (): void => {
    if (stopped) return
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(() => {
      sample().catch((err: Error) => { log.error(`sampling failed: ${err.message}`) }).finally(schedule)
    }, settings.intervalMs)
  }

  const onConfig = (_e: Y.YMapEvent<unknown>): void => {
    const before = settings.intervalMs
    apply()
    if (settings.intervalMs !== before) {
      log(`config/${deviceId}: sampling every ${settings.intervalMs} ms`)
      schedule()
    }
  }
  apply()
  config.observe(onConfig)
  await sample()
  schedule()
  log(`publishing telemetry/${deviceId} every ${settings.intervalMs} ms`)

  return {
    settings,
    get published () { return published },
    get buffered () { return Math.max(0, history.length - settings.history) },
    get dropped () { return dropped },
    get confirmedAt () { return confirmedAt },
    sample,
    stop: () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      config.unobserve(onConfig)
      node.close(`telemetry/${deviceId}`)
      node.close(`config/${deviceId}`)
    }
  }
}
