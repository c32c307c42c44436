#!/usr/bin/env node
/**
 * `hearsay-pi`: the Hearsay daemon (same config, variables and flags as `hearsay start`) plus the
 * telemetry agent. SD-card-friendly defaults: writes batched for a second and handed to the OS
 * without fsync (`durability: 'process'`); set `"durability": "power"` for fsync on every batch.
 *
 *   HEARSAY_DEVICE_ID   this device's id in document names (default: the host name)
 *   HEARSAY_INTERVAL_MS sampling interval until config/<deviceId> sets one (default 5000)
 */
import { runPi } from './cli.js'

const argv = process.argv.slice(2)
const command = argv[0] === undefined || argv[0].startsWith('-') ? 'start' : argv[0]
// only a running node waits for a signal; anything else keeps Ctrl-C's default (exit at once)
const stopSignal = (command === 'start' || command === 'join') && !argv.includes('--help') && !argv.includes('-h')
  ? new Promise<string>(resolve => {
    process.once('SIGTERM', () => { resolve('SIGTERM') })
    process.once('SIGINT', () => { resolve('SIGINT') })
  })
  : undefined
process.exitCode = await runPi(argv, {
  out: text => { process.stdout.write(text + '\n') },
  err: text => { process.stderr.write(text + '\n') },
  env: process.env,
  ...(stopSignal !== undefined ? { stopSignal } : {})
})
setImmediate(() => process.exit(process.exitCode)).unref()
