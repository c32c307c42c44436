/**
 * The `hearsay` command line. `main(argv)` returns the exit code: 0 done, 1 failed,
 * 2 bad argument or configuration (the message names the field and how to fix it).
 */
import { mkdir, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { formatDocSync, type DocSyncReport } from './doc-sync.js'
import { ConfigError } from '@hearsay/core'
import { connect, request, resolveTarget, verifyTarget } from './client.js'
import { CLIENT, CLIENT_HELP, COMMON, CONFIG_FLAGS, FlagError, daemonUrl, flagsOf, targetOptions, type Command } from './cli-common.js'
import { CONFIG_FIELDS, SWITCH_FIELDS, defaultConfig, kebab, loadConfig, nearest } from './config.js'
import type { DaemonConfig } from './config.js'
import { CONFIG_FILE } from './constants.js'
import type { Daemon } from './daemon.js'
import { initIdentity } from './network.js'
import { serve } from './serve.js'
import { parseValue } from './content.js'
import { formatStatus } from './status.js'
import type { DaemonStatus } from './status.js'
import { TRUST_COMMANDS, initAdmin } from './trust-commands.js'

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
  /** How the user runs this command, for the hints it prints. @default 'hearsay' */
  commandName?: string
  /** How the user runs `status` and the other client commands. @default commandName */
  clientCommandName?: string
  /** Defaults of an app built on the daemon (below the config file). */
  defaults?: Partial<DaemonConfig>
}

const SWARM_KEY_NOTE: Record<'kept' | 'created' | 'replaced' | 'none', string> = {
  kept: 'kept the existing key',
  created: 'new: copy it to every device of this swarm',
  replaced: 'NEW key written over the old one: copy it to every device of this swarm',
  none: ''
}

const COMMANDS: Record<string, Command> = {
  init: {
    summary: 'create the data directory: identity, swarm key and config file',
    usage: 'hearsay init [--data-dir DIR] [--force] [--new-swarm-key | --no-swarm-key] [--admin [--name NAME]]',
    options: { ...COMMON, force: { type: 'boolean' }, 'no-swarm-key': { type: 'boolean' }, 'new-swarm-key': { type: 'boolean' }, admin: { type: 'boolean' }, name: { type: 'string' } },
    details: `  -d, --data-dir DIR   where to create it (default: ~/.hearsay, or HEARSAY_DATA_DIR)
      --admin          a managed swarm: this device is its admin; add devices with \`hearsay invite\`
                       (see TRUST.md)
      --name NAME      this device's name in the roster (with --admin)
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
      if (values.name !== undefined && values.admin !== true) throw new FlagError('--name names this device in a new roster: give it with --admin')
      const roster = values.admin === true ? await initAdmin(loadConfig({ env: io.env, flags: flagsOf(values), ...(io.defaults !== undefined ? { defaults: io.defaults } : {}) }), values.name as string | undefined) : ''
      io.out(`initialised ${dir}\n  node id     ${id}\n  config      ${file}\n` + roster +
        (swarmKeyFile !== undefined ? `  swarm key   ${join(dir, swarmKeyFile)} (${SWARM_KEY_NOTE[swarmKey]})\n` : '  swarm       open (no swarm key): any Hearsay node on the LAN may connect\n') +
        `\nnext: ${nextCommand(io, values)}`)
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
  .map(f => `      --${kebab(f)}${SWITCH_FIELDS.includes(f) ? '' : ' V'}`.padEnd(27) + `${CONFIG_FIELDS[f].help} (${CONFIG_FIELDS[f].env})`).join('\n')}

Flags override environment variables, which override the config file.`,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      const loaded = loadConfig({ env: io.env, flags: flagsOf(values), configFile: values.config as string | undefined, ...(io.defaults !== undefined ? { defaults: io.defaults } : {}) })
      return await serve(loaded, io)
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
      const s = await verifyTarget<DaemonStatus>(await resolveTarget(targetOptions(values, io)))
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
      const { docs } = await request<{ docs: string[] }>(await daemonUrl(values, io), '/api/docs')
      io.out(values.json === true ? JSON.stringify(docs) : docs.join('\n'))
      return 0
    }
  },
  get: {
    summary: "print a document's content as JSON (exit 1 when this node has no such document), or with --sync which peers hold it",
    usage: 'hearsay get <doc> [--sync [--json]] [--url URL]',
    options: { ...CLIENT, sync: { type: 'boolean' } },
    details: `${CLIENT_HELP}

--sync prints, for each peer that may read the document, whether it holds everything this node
holds (synced, behind, unknown) and whether its storage does ("saved on …"), as the peers report
it within a second.`,
    minArgs: 1,
    maxArgs: 1,
    run: async (args, values, io) => {
      if (values.sync === true) {
        const s = await request<DocSyncReport>(await daemonUrl(values, io), `/api/docs/${encodeURIComponent(args[0]!)}/sync`)
        io.out(values.json === true ? JSON.stringify(s) : formatDocSync(s))
        return 0
      }
      const r = await request<{ content: unknown }>(await daemonUrl(values, io), `/api/docs/${encodeURIComponent(args[0]!)}`)
      io.out(JSON.stringify(r.content, null, 2))
      return 0
    }
  },
  set: {
    summary: 'set <key> in the document\'s "data" map (JSON values are parsed: 42, true, {"a":1})',
    usage: 'hearsay set <doc> <key> <value...> [--url URL]',
    options: CLIENT,
    details: `${CLIENT_HELP}

The value is the rest of the line, words joined by one space: \`hearsay set notes/1 title hello world\`
sets "hello world". Quote it to keep several spaces or characters the shell would interpret
(\`hearsay set notes/1 title 'a  b; c'\`). A value that parses as JSON is stored as such: 42, true,
{"a":1}, "42" (quoted for the shell too: '"42"') for the string 42.`,
    minArgs: 3,
    maxArgs: Infinity,
    run: async (args, values, io) => {
      const [doc, key, ...words] = args as [string, string, ...string[]]
      const value = words.join(' ')
      const r = await request<{ id: string, key: string, value: unknown }>(await daemonUrl(values, io), `/api/docs/${encodeURIComponent(doc)}/${encodeURIComponent(key)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(parseValue(value)) })
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
      const base = await daemonUrl(values, io)
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
  },
  ...TRUST_COMMANDS
}

/** The command that starts what `init` just created, as this user would type it. */
function nextCommand (io: CliIO, values: Record<string, string | boolean | undefined>): string {
  const dir = typeof values['data-dir'] === 'string' ? ` --data-dir ${values['data-dir']}` : ''
  return `${io.commandName ?? 'hearsay'} start${dir}   (then, in another terminal: ${io.clientCommandName ?? io.commandName ?? 'hearsay'} status${dir})`
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
    const message = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '')
    const unknown = /^Unknown option '--([^']+)'/.exec(message)?.[1]
    const near = unknown !== undefined ? nearest(unknown, Object.keys(command.options)) : undefined
    io.err(`hearsay ${name}: ${message}${near !== undefined ? ` (did you mean --${near}?)` : ''}. See \`hearsay ${name} --help\`.`)
    return 2
  }
  const values = parsed.values as Record<string, string | boolean | undefined>
  if (values.help === true) {
    io.out(commandHelp(name, command))
    return 0
  }
  const args = parsed.positionals
  if (args.length < command.minArgs || args.length > command.maxArgs) {
    io.err(`hearsay ${name}: expected ${command.minArgs === command.maxArgs ? command.minArgs : command.maxArgs === Infinity ? `at least ${command.minArgs}` : `${command.minArgs} to ${command.maxArgs}`} argument(s), got ${args.length}. Usage: ${command.usage}`)
    return 2
  }
  try {
    return await command.run(args, values, io)
  } catch (err) {
    const e = err as Error
    // exit 2: the configuration (or what is on disk: a broken peer-key) needs a person to fix it;
    // a service manager should not restart (apps/pi's unit: RestartPreventExitStatus=2)
    if (e instanceof ConfigError || ['ConfigError', 'FlagError', 'SwarmKeyError', 'InvalidPeerIdError', 'InvalidDocIdError', 'IdentityError', 'InviteTokenError'].includes(e.name)) {
      io.err(`hearsay ${name}: ${e.message}`)
      return 2
    }
    io.err(`hearsay ${name}: ${e.message}`)
    return 1
  }
}
