/**
 * The `hearsay-pi` command line: `init` and `start` of the Hearsay daemon (same config, variables
 * and flags as `hearsay init` / `hearsay start`) with SD-card-friendly defaults, plus the
 * telemetry agent while it runs. `runPi(argv, io)` returns the exit code: 0 done, 1 failed,
 * 2 bad argument or configuration.
 */
import { hostname } from 'node:os'
import { main } from '@hearsay/daemon'
import type { CliIO, DaemonConfig } from '@hearsay/daemon'
import { writerLogger } from '@hearsay/core'
import type { LogLevel } from '@hearsay/core'
import { startAgent, INTERVAL_MS, MIN_INTERVAL_MS } from './agent.js'
import type { Agent } from './agent.js'

/** Batching and durability for SD cards: one write a second, no fsync. */
export const PI_DEFAULTS: Partial<DaemonConfig> = { storageBatchMs: 1000, durability: 'process' }

/** Commands `hearsay-pi` runs; the others (`status`, `get`, …) are `hearsay`'s. */
export const PI_COMMANDS = ['init', 'start', 'join'] as const

export function piUsage (): string {
  return `hearsay-pi: the Hearsay daemon plus a telemetry agent, for Raspberry Pis and small boards

Usage: hearsay-pi [start] [options]    run the node and the agent (SIGTERM or Ctrl-C flushes and exits)
       hearsay-pi init [options]       create the data directory: identity, swarm key, config file
       hearsay-pi join <token> [--exit] join a managed swarm with an invite (\`hearsay invite\`), then
                                       run as start (with --exit: stop once admitted)

Options are those of \`hearsay start\` / \`hearsay init\`: run \`hearsay-pi start --help\` or
\`hearsay-pi init --help\`. SD-card defaults: storageBatchMs 1000, durability 'process'.

Environment:
  HEARSAY_DEVICE_ID     this device's id in document names: telemetry/<id>, config/<id>
                        (default: the host name, ${hostname()})
  HEARSAY_INTERVAL_MS   sampling interval in ms (>= ${MIN_INTERVAL_MS}) until config/<id> sets one
                        (default ${INTERVAL_MS})
  HEARSAY_*             every daemon setting (HEARSAY_DATA_DIR, HEARSAY_HTTP_PORT, …)

To look at the node, use the \`hearsay\` command: hearsay status, hearsay get telemetry/<id>.`
}

/** What the environment says, with an empty variable meaning unset. */
function setting (env: Record<string, string | undefined>, name: string): string | undefined {
  const v = env[name]?.trim()
  return v === undefined || v === '' ? undefined : v
}

export async function runPi (argv: string[], io: CliIO): Promise<number> {
  const [first, ...more] = argv
  if (first === 'help' || first === '--help' || first === '-h') {
    io.out(piUsage())
    return 0
  }
  // no command: start, so `hearsay-pi --data-dir DIR` runs the agent
  const command = first === undefined || first.startsWith('-') ? 'start' : first
  const rest = first === undefined || first.startsWith('-') ? argv : more
  if (!(PI_COMMANDS as readonly string[]).includes(command)) {
    io.err(`hearsay-pi: unknown command "${command}". Commands: ${PI_COMMANDS.join(', ')}.` +
      ((['status', 'docs', 'get', 'set', 'watch'].includes(command)) ? ` For ${command}, use \`hearsay ${command}\`.` : '') +
      ' See `hearsay-pi --help`.')
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${piUsage()}\n`)
    return await main([command, '--help'], io)
  }
  if (command === 'init') return await main(['init', ...rest], { commandName: 'hearsay-pi', clientCommandName: 'hearsay', ...io, defaults: PI_DEFAULTS })

  const deviceId = setting(io.env, 'HEARSAY_DEVICE_ID') ?? hostname()
  const rawInterval = setting(io.env, 'HEARSAY_INTERVAL_MS')
  const interval = rawInterval === undefined ? INTERVAL_MS : Number(rawInterval)
  if (!Number.isFinite(interval) || interval < MIN_INTERVAL_MS) {
    io.err(`hearsay-pi: HEARSAY_INTERVAL_MS must be a number of milliseconds >= ${MIN_INTERVAL_MS}; got ${JSON.stringify(io.env.HEARSAY_INTERVAL_MS)}. Fix it, or unset it for ${INTERVAL_MS}.`)
    return 2
  }
  const level = (setting(io.env, 'HEARSAY_LOG_LEVEL') ?? 'info') as LogLevel
  let agent: Agent | undefined
  // join runs the agent once the device is admitted, as start does from the beginning
  return await main([command, ...rest], {
    ...io,
    defaults: PI_DEFAULTS,
    onStarted: async daemon => {
      agent = await startAgent({
        node: daemon.node,
        deviceId,
        intervalMs: interval,
        logger: writerLogger({ level, write: line => { io.err(line) } }),
        onApplied: (settings, refused) => {
          const bad = Object.entries(refused).map(([k, r]) => `${k} ${JSON.stringify(r.value)} (${r.reason})`)
          io.err(`hearsay-pi: config/${deviceId} applied: intervalMs ${settings.intervalMs}, history ${settings.history}, label ${JSON.stringify(settings.label)}` +
            (bad.length > 0 ? `; refused: ${bad.join('; ')}` : ''))
        }
      })
      io.err(`hearsay-pi: device ${deviceId} publishing telemetry/${deviceId} every ${agent.settings.intervalMs} ms; config in config/${deviceId}`)
    },
    onStopping: () => { agent?.stop() }
  })
}
