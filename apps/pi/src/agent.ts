/**
 * The agent: every `intervalMs` it writes a reading into `telemetry/<deviceId>` (map `latest`,
 * and the last `history` readings in array `history`), and it follows `config/<deviceId>` (map
 * `data`, the map `hearsay set` writes): `intervalMs`, `history` and `label` apply at once.
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

export interface AgentOptions {
  node: HearsayNode
  deviceId: string
  /** Interval until the config document says otherwise. @default INTERVAL_MS */
  intervalMs?: number
  /** Thermal zone file, for tests. */
  thermalZone?: string
  logger?: Logger
}

export interface AgentSettings { intervalMs: number, history: number, label: string }

export interface Agent {
  readonly settings: AgentSettings
  /** Readings published since start. */
  readonly published: number
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
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false

  const apply = (): void => {
    const iv = config.get('intervalMs')
    if (iv !== undefined) {
      if (typeof iv === 'number' && Number.isFinite(iv) && iv >= MIN_INTERVAL_MS) settings.intervalMs = iv
      else log.warn(`config/${deviceId}: intervalMs must be a number >= ${MIN_INTERVAL_MS}, got ${JSON.stringify(iv)}; keeping ${settings.intervalMs}`)
    }
    const h = config.get('history')
    if (h !== undefined) {
      if (typeof h === 'number' && Number.isInteger(h) && h >= 0) settings.history = h
      else log.warn(`config/${deviceId}: history must be an integer >= 0, got ${JSON.stringify(h)}`)
    }
    const label = config.get('label')
    if (typeof label === 'string') settings.label = label
  }

  const sample = async (): Promise<Reading> => {
    const r = await read(options.thermalZone)
    telemetry.transact(() => {
      for (const [k, v] of Object.entries(r)) latest.set(k, v)
      latest.set('label', settings.label)
      latest.set('intervalMs', settings.intervalMs)
      history.push([r])
      const extra = history.length - settings.history
      if (extra > 0) history.delete(0, extra)
    }, 'hearsay-pi')
    published++
    return r
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
