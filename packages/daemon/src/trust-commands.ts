/**
 * The roster from the command line (TRUST.md): `devices`, `invite`, `join`, `grant`, `ungrant`,
 * `revoke`, `rename`, `manage`, and `init --admin`. Every command but `join` and `init --admin`
 * asks the running daemon (trust-api.ts); those two set up the data directory themselves.
 */
import { access, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join as joinPath } from 'node:path'
import { ConfigError, decodeStatement, silentLogger } from '@hearsay/core'
import { encodeSwarmKey, swarmKeySecret } from '@hearsay/libp2p'
import QRCode from 'qrcode'
import { request } from './client.js'
import { CLIENT, CLIENT_HELP, COMMON, CONFIG_FLAGS, daemonUrl, FlagError, flagsOf, type Command } from './cli-common.js'
import type { CliIO } from './commands.js'
import { defaultConfig, loadConfig } from './config.js'
import type { DaemonConfig, LoadedConfig } from './config.js'
import { CONFIG_FILE, JOIN_TIMEOUT_MS, SWARM_KEY_FILE } from './constants.js'
import { createDaemonNode, initIdentity } from './network.js'
import { serve } from './serve.js'
import { decodeToken, joinAddresses } from './token.js'
import type { TrustDevice, TrustReport } from './trust-api.js'

const post = async <T>(values: Record<string, string | boolean | undefined>, io: CliIO, path: string, body: unknown): Promise<T> =>
  await request<T>(await daemonUrl(values, io), path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

function ago (ms: number | undefined): string {
  if (ms === undefined) return 'never'
  const s = Math.round(ms / 1000)
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`
}

function deviceLine (d: TrustDevice): string {
  const seen = d.self ? 'this device' : d.connected ? 'connected' : `seen ${ago(d.lastSeenMsAgo)}`
  return `${(d.name ?? '(unnamed)').padEnd(18)} ${d.id}  ${d.access.padEnd(24)} ${seen}`
}

/** `30m`, `24h`, `7d` → ms. */
export function parseDuration (text: string): number {
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(text.trim())
  if (m === null) throw new FlagError(`--expires takes a duration such as 30m, 24h or 7d; got ${JSON.stringify(text)}`)
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
}

const printDevice = (io: CliIO, values: Record<string, string | boolean | undefined>, d: TrustDevice): number => {
  io.out(values.json === true ? JSON.stringify(d, null, 2) : deviceLine(d))
  return 0
}

export const TRUST_COMMANDS: Record<string, Command> = {
  devices: {
    summary: 'the devices of the swarm: names, ids, grants, last seen; open invites',
    usage: 'hearsay devices [--json] [--url URL]',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      const r = await request<TrustReport>(await daemonUrl(values, io), '/api/trust')
      if (values.json === true) {
        io.out(JSON.stringify(r, null, 2))
        return 0
      }
      if (!r.managed) {
        io.out('this swarm has no roster: every device with the swarm key may read and write everything.\nRun `hearsay manage` on the device that should be its admin.')
        return 0
      }
      io.out(`swarm ${r.swarm ?? ''}`)
      for (const d of r.devices) io.out(deviceLine(d))
      for (const i of r.invites.open) io.out(`${`invite "${i.name}"`.padEnd(18)} ${i.grants.join(', ')}  unused, ${i.expires === 0 ? 'never expires' : `expires ${new Date(i.expires).toISOString()}`}`)
      for (const c of r.invites.conflicts) io.out(`conflict           invite ${c} was used by two devices: neither is admitted (invite the right one again)`)
      return 0
    }
  },
  invite: {
    summary: 'an invite token (and QR code) that lets one new device join with the given grants',
    usage: 'hearsay invite --name NAME --grant PREFIX:read|write [--grant …] [--expires 24h] [--no-qr]',
    options: { ...CLIENT, name: { type: 'string' }, grant: { type: 'string', multiple: true }, expires: { type: 'string' }, 'no-qr': { type: 'boolean' } },
    details: `      --name NAME      the new device's name
      --grant G        what it may do: notes/:write (every id starting with notes/), config/pi:read
                       (exactly that id), *:read (everything); repeat for more
      --expires D      how long the token may be used: 30m, 24h, 7d (default 24h); it is single-use
      --no-qr          print only the token
${CLIENT_HELP}

On the new device, \`hearsay join <token>\` is the only step.`,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      if (typeof values.name !== 'string') throw new FlagError('--name is required: what the new device is called')
      const grants = (values.grant as unknown as string[] | undefined) ?? []
      if (grants.length === 0) throw new FlagError('give at least one --grant, such as --grant notes/:write')
      const expiresInMs = typeof values.expires === 'string' ? parseDuration(values.expires) : undefined
      const r = await post<{ token: string, name: string, expiresAt: number }>(values, io, '/api/trust/invite', { name: values.name, grants, ...(expiresInMs !== undefined ? { expiresInMs } : {}) })
      if (values.json === true) {
        io.out(JSON.stringify(r))
        return 0
      }
      io.out(`invite for "${r.name}", single use, until ${new Date(r.expiresAt).toISOString()}:\n\n${r.token}\n`)
      if (values['no-qr'] !== true) io.out(await QRCode.toString(r.token, { type: 'terminal', small: true, errorCorrectionLevel: 'L' }))
      io.out('on the new device: hearsay join <token>')
      return 0
    }
  },
  join: {
    summary: 'join a swarm with an invite token: set up this device, connect, get admitted, and run',
    usage: 'hearsay join <token> [--data-dir DIR] [--force] [--exit] [start options]',
    options: { ...COMMON, ...CONFIG_FLAGS, force: { type: 'boolean' }, exit: { type: 'boolean' } },
    details: `  -d, --data-dir DIR   where this device keeps its data (default: ~/.hearsay, or HEARSAY_DATA_DIR)
      --force          replace a swarm.key of another swarm already in the data directory
      --exit           stop once admitted (to provision a device whose service then runs \`start\`)
  and every option of \`hearsay start\` (--http-port, --mdns, …) for this run

Writes the swarm key and the inviting device's addresses into the data directory, starts the node
(as \`hearsay start\` does, until Ctrl-C), claims the invite and waits to be admitted. Later runs:
\`hearsay start\`.`,
    minArgs: 1,
    maxArgs: 1,
    run: async (args, values, io) => {
      const token = decodeToken(args[0] as string)
      const loaded = await prepareJoin(token, values, io)
      let admitted = false
      let done = (): void => {}
      const stopped = values.exit === true
        ? { ...io, stopSignal: Promise.race([io.stopSignal ?? new Promise<string>(() => {}), new Promise<string>(resolve => { done = () => { resolve('admitted') } })]) }
        : io
      return await serve(loaded, stopped, {
        trust: { genesisId: token.genesisId, adopt: true },
        afterStart: async daemon => {
          const node = daemon.node
          const held = node.trust.genesis()
          if (held !== undefined && decodeStatement(held).id !== token.genesisId) {
            throw new ConfigError(`${loaded.config.dataDir} already belongs to swarm ${node.trust.swarm ?? ''}, not the one this token invites to: use another --data-dir`)
          }
          let refused: string | undefined
          const off = node.on('peer:disconnect', ({ reason }) => { if (/invite (already used|expired)/.test(reason)) refused = reason })
          const deadline = Date.now() + JOIN_TIMEOUT_MS
          const self = (): TrustDevice | undefined => node.trust.devices().find(d => d.id === node.id) as TrustDevice | undefined
          let claimed = false
          while (refused === undefined && Date.now() < deadline) {
            // the roster (with the invite) comes from the first member reached
            if (!claimed && node.trust.managed) {
              claimed = await node.trust.claim(token.inviteId, token.secret).then(() => true, () => false)
            }
            const me = self()
            if (claimed && node.trust.agreeing().length > 0 && me !== undefined && (me.admin || me.grants.length > 0)) {
              admitted = true
              break
            }
            await new Promise(resolve => setTimeout(resolve, 100))
          }
          off()
          if (refused !== undefined) throw new Error(`the swarm refused this device: ${refused.replace(/^peer closed: /, '')}. Ask an admin for a new invite.`)
          const me = self()
          const grants = me?.grants.map(g => `${g.pattern}:${g.mode}`).join(', ') ?? ''
          if (admitted) {
            io.out(`joined swarm ${node.trust.swarm ?? ''} as "${me?.name ?? node.id}": ${grants}`)
            done()
          }
          else if (claimed && values.exit === true) throw new Error(`not admitted within ${JOIN_TIMEOUT_MS / 1000} s: no member confirmed the claim (it is kept; \`hearsay start\` gets this device admitted as soon as it meets a member)`)
          else if (claimed) io.err(`hearsay join: not admitted yet: no member confirmed within ${JOIN_TIMEOUT_MS / 1000} s. The claim is kept; this device is admitted as soon as it meets a member. Running on.`)
          else throw new Error(`no member of the swarm reached within ${JOIN_TIMEOUT_MS / 1000} s (tried ${token.addresses.join(', ')}), or the invite is unknown to it (withdrawn?). Check that the inviting device runs and is reachable, then run \`hearsay join\` again.`)
        }
      })
    }
  },
  grant: {
    summary: 'let a device read or write more documents (or make it an admin)',
    usage: 'hearsay grant <device> <PREFIX:read|write | admin>...',
    options: CLIENT,
    details: `  <device>  its id, its name, or a unique part of its id
  notes/:write, config/pi:read, *:read, or \`admin\`
${CLIENT_HELP}`,
    minArgs: 2,
    maxArgs: 32,
    run: async ([device, ...grants], values, io) => {
      if (grants.includes('admin')) {
        if (grants.length > 1) throw new FlagError('`admin` covers everything: give it alone')
        return printDevice(io, values, await post<TrustDevice>(values, io, '/api/trust/grant', { device, admin: true }))
      }
      return printDevice(io, values, await post<TrustDevice>(values, io, '/api/trust/grant', { device, grants }))
    }
  },
  ungrant: {
    summary: 'withdraw a device\'s grants on a prefix',
    usage: 'hearsay ungrant <device> <PREFIX>',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 2,
    maxArgs: 2,
    run: async ([device, pattern], values, io) => printDevice(io, values, await post<TrustDevice>(values, io, '/api/trust/ungrant', { device, pattern }))
  },
  revoke: {
    summary: 'shut a lost or stolen device out of the swarm, for good (every device refuses it)',
    usage: 'hearsay revoke <device>',
    options: CLIENT,
    details: `${CLIENT_HELP}

What it wrote before stays in the documents (it is their history).`,
    minArgs: 1,
    maxArgs: 1,
    run: async ([device], values, io) => printDevice(io, values, await post<TrustDevice>(values, io, '/api/trust/revoke', { device }))
  },
  rename: {
    summary: 'give a device its name in the roster',
    usage: 'hearsay rename <device> <name>',
    options: CLIENT,
    details: CLIENT_HELP,
    minArgs: 2,
    maxArgs: 2,
    run: async ([device, name], values, io) => printDevice(io, values, await post<TrustDevice>(values, io, '/api/trust/name', { device, name }))
  },
  manage: {
    summary: 'turn this swarm into a managed one, this device its admin (every device known now keeps full access)',
    usage: 'hearsay manage',
    options: CLIENT,
    details: `${CLIENT_HELP}

Run it on one device. The other devices take the roster from it as they meet it; then narrow their
grants with \`hearsay grant\`/\`ungrant\`, and invite new ones with \`hearsay invite\`.`,
    minArgs: 0,
    maxArgs: 0,
    run: async (_args, values, io) => {
      const r = await post<TrustReport>(values, io, '/api/trust/manage', {})
      if (values.json === true) io.out(JSON.stringify(r, null, 2))
      else io.out(`swarm ${r.swarm ?? ''} is now managed; this device is its admin.\n${r.devices.map(deviceLine).join('\n')}`)
      return 0
    }
  }
}

/** `hearsay init --admin`: a new roster with this device as the root admin, stored in its data directory; returns the line to print. */
export async function initAdmin (loaded: LoadedConfig, name: string | undefined): Promise<string> {
  const config: DaemonConfig = { ...loaded.config, listen: [], mdns: false, bootstrap: [], relays: [], relay: false }
  const { node } = await createDaemonNode(config, silentLogger())
  await node.start()
  try {
    if (node.trust.managed) throw new ConfigError(`${config.dataDir} already belongs to managed swarm ${node.trust.swarm ?? ''}`)
    await node.trust.createSwarm()
    if (name !== undefined) await node.trust.name(node.id, name)
    return `  roster      swarm ${node.trust.swarm ?? ''}, this device its admin${name !== undefined ? ` ("${name}")` : ''} (\`hearsay invite\` adds devices)\n`
  } finally {
    await node.stop()
  }
}

/** Set up the data directory from a token: identity, swarm key, the inviting device's addresses. */
async function prepareJoin (token: ReturnType<typeof decodeToken>, values: Record<string, string | boolean | undefined>, io: CliIO): Promise<LoadedConfig> {
  const { config: base } = loadConfig({ env: io.env, flags: flagsOf(values), readFile: false, ...(io.defaults !== undefined ? { defaults: io.defaults } : {}) })
  const dir = base.dataDir
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const keyFile = joinPath(dir, SWARM_KEY_FILE)
  if (token.swarmKey !== undefined) {
    const existing = await readFile(keyFile).catch(() => undefined)
    const same = existing !== undefined && Buffer.from(swarmKeySecret(existing)).equals(Buffer.from(token.swarmKey))
    if (existing !== undefined && !same && values.force !== true) {
      throw new ConfigError(`${keyFile} holds another swarm's key. Use another --data-dir, or --force to replace it (this device then leaves that swarm).`)
    }
    if (!same) await writeFile(keyFile, encodeSwarmKey(token.swarmKey), { mode: 0o600 })
  }
  const { id } = await initIdentity(dir, token.swarmKey === undefined ? 'none' : 'keep')
  const file = joinPath(dir, CONFIG_FILE)
  const existing = await access(file).then(async () => JSON.parse(await readFile(file, 'utf8')) as Partial<DaemonConfig>, () => undefined)
  const defaults = { ...defaultConfig(), ...io.defaults }
  const written: Partial<DaemonConfig> = existing ?? {
    httpHost: defaults.httpHost, httpPort: defaults.httpPort, mdns: defaults.mdns, durability: defaults.durability, storageBatchMs: defaults.storageBatchMs, logLevel: defaults.logLevel
  }
  const dial = joinAddresses(token.addresses)
  written.bootstrap = [...new Set([...(Array.isArray(written.bootstrap) ? written.bootstrap : []), ...dial.bootstrap])]
  if (dial.relays.length > 0) written.relays = [...new Set([...(Array.isArray(written.relays) ? written.relays : []), ...dial.relays])]
  if (token.swarmKey !== undefined) written.swarmKeyFile = SWARM_KEY_FILE
  await writeFile(file, JSON.stringify(written, null, 2) + '\n')
  io.err(`hearsay join: this device is ${id}; data in ${dir}; dialling ${token.addresses.join(', ')}`)
  return loadConfig({ env: io.env, flags: flagsOf(values), ...(io.defaults !== undefined ? { defaults: io.defaults } : {}) })
}
