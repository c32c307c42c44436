/**
 * What every `hearsay` command shares: the command shape, the common flags, and how a client
 * command finds its daemon.
 */
import type { ParseArgsConfig } from 'node:util'
import { resolveTarget, verifyTarget } from './client.js'
import type { TargetOptions } from './client.js'
import { CONFIG_FIELDS, SWITCH_FIELDS, kebab } from './config.js'
import type { DaemonConfig } from './config.js'
import type { CliIO } from './commands.js'

/** A bad combination of command-line flags. */
export class FlagError extends Error {
  static readonly code = 'FlagError'
  override readonly name = 'FlagError'
}

export type Options = NonNullable<ParseArgsConfig['options']>

export const COMMON: Options = {
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string', short: 'c' },
  'data-dir': { type: 'string', short: 'd' }
}

export const CLIENT: Options = {
  ...COMMON,
  url: { type: 'string', short: 'u' },
  json: { type: 'boolean' }
}

export const CONFIG_FLAGS: Options = Object.fromEntries((Object.keys(CONFIG_FIELDS) as Array<keyof DaemonConfig>)
  .filter(f => f !== 'dataDir')
  .map(f => [kebab(f), { type: SWITCH_FIELDS.includes(f) ? 'boolean' as const : 'string' as const }]))

export interface Command {
  summary: string
  usage: string
  options: Options
  details: string
  minArgs: number
  maxArgs: number
  run: (args: string[], values: Record<string, string | boolean | undefined>, io: CliIO) => Promise<number>
}

export const CLIENT_HELP = `  -u, --url URL        daemon endpoint (default: from the config, or HEARSAY_URL)
      --json           print JSON
  -c, --config FILE    config file (default: <data dir>/config.json, or HEARSAY_CONFIG)
  -d, --data-dir DIR   data directory (default: ~/.hearsay, or HEARSAY_DATA_DIR)`

export function flagsOf (values: Record<string, string | boolean | undefined>): Partial<Record<keyof DaemonConfig, string>> {
  const flags: Partial<Record<keyof DaemonConfig, string>> = {}
  for (const f of Object.keys(CONFIG_FIELDS) as Array<keyof DaemonConfig>) {
    const v = values[kebab(f)]
    if (typeof v === 'string') flags[f] = v
    else if (v === true) flags[f] = 'true'
  }
  return flags
}

export function targetOptions (values: Record<string, string | boolean | undefined>, io: CliIO): TargetOptions {
  return {
    flags: flagsOf(values),
    env: io.env,
    ...(typeof values.url === 'string' ? { url: values.url } : {}),
    ...(typeof values.config === 'string' ? { configFile: values.config } : {})
  }
}

/** The endpoint of the daemon a client command is meant for, checked to be that daemon. */
export async function daemonUrl (values: Record<string, string | boolean | undefined>, io: CliIO): Promise<string> {
  const target = await resolveTarget(targetOptions(values, io))
  if (target.dataDir !== undefined) await verifyTarget(target)
  return target.url
}

