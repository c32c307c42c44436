#!/usr/bin/env node
/**
 * `hearsay-pi`: the Hearsay daemon (same config, variables and flags as `hearsay start`) plus the
 * telemetry agent. SD-card-friendly defaults: writes batched for a second and handed to the OS
 * without fsync (`durability: 'process'`); set `"durability": "power"` for fsync on every batch.
 *
 *   HEARSAY_DEVICE_ID   this device's id in document names (default: the host name)
 *   HEARSAY_INTERVAL_MS sampling interval until config/<deviceId> sets one (default 5000)
 */
import { hostname } from 'node:os'
import { main } from '@hearsay/daemon'
import type { DaemonConfig } from '@hearsay/daemon'
import { writerLogger } from '@hearsay/core'
import { startAgent, INTERVAL_MS } from './agent.js'
import type { Agent } from './agent.js'

/** Batching and durability for SD cards: one write a second, no fsync. */
const PI_DEFAULTS: Partial<DaemonConfig> = { storageBatchMs: 1000, durability: 'process' }

const args = process.argv.slice(2)
const command = args[0] === 'init' ? 'init' : 'start'
const rest = args[0] === 'init' || args[0] === 'start' ? args.slice(1) : args
const deviceId = process.env.HEARSAY_DEVICE_ID ?? hostname()
const interval = Number(process.env.HEARSAY_INTERVAL_MS ?? INTERVAL_MS)
if (!Number.isFinite(interval) || interval < 500) {
  process.stderr.write(`hearsay-pi: HEARSAY_INTERVAL_MS must be a number of milliseconds >= 500, got ${JSON.stringify(process.env.HEARSAY_INTERVAL_MS)}\n`)
  process.exit(2)
}
const stopSignal = new Promise<string>(resolve => {
  process.once('SIGTERM', () => { resolve('SIGTERM') })
  process.once('SIGINT', () => { resolve('SIGINT') })
})
let agent: Agent | undefined
process.exitCode = await main([command, ...rest], {
  out: text => { process.stdout.write(text + '\n') },
  err: text => { process.stderr.write(text + '\n') },
  env: process.env,
  stopSignal,
  defaults: PI_DEFAULTS,
  onStarted: async daemon => {
    agent = await startAgent({ node: daemon.node, deviceId, intervalMs: interval, logger: writerLogger({ level: (process.env.HEARSAY_LOG_LEVEL as 'info' | undefined) ?? 'info' }) })
    process.stderr.write(`hearsay-pi: device ${deviceId} publishing telemetry/${deviceId} every ${agent.settings.intervalMs} ms; config in config/${deviceId}\n`)
  },
  onStopping: () => { agent?.stop() }
})
setImmediate(() => process.exit(process.exitCode)).unref()
