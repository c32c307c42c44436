/**
 * The daemon's trust endpoints (`hearsay devices`, `invite`, `grant`, `ungrant`, `revoke`, `name`,
 * `manage` talk to them):
 * - `GET /api/trust`: the roster as this device sees it, with each device's connection state;
 * - `POST /api/trust/manage`: make this swarm managed, this device its root admin, every device
 *   known now granted everything (so nothing stops syncing); the others adopt the roster;
 * - `POST /api/trust/invite` `{ name, grants: ["notes/:write"], expiresInMs? }` → `{ token }`;
 * - `POST /api/trust/grant` `{ device, grants }` (or `{ device, admin: true }`), `/ungrant`
 *   `{ device, pattern }`, `/revoke` `{ device }`, `/name` `{ device, name }`.
 * A device is named by its peer id, its roster name, the name it announces, or a unique part of its id.
 */
import { decodeStatement, parseGrant, type DeviceInfo, type Grant } from '@hearsay/core'
import { INVITE_EXPIRES_MS } from './constants.js'
import { checkDeviceName } from './device-name.js'
import { HttpError } from './http-error.js'
import type { DaemonNode } from './status.js'
import { encodeToken } from './token.js'

export interface TrustDevice extends DeviceInfo {
  self: boolean
  connected: boolean
  /** Ms since this device last heard of it; absent when never. */
  lastSeenMsAgo?: number
  /** Its grants as `pattern:mode`. */
  access: string
}

export interface TrustReport {
  managed: boolean
  swarm: string | undefined
  self: string
  devices: TrustDevice[]
  invites: { open: Array<{ id: string, name: string, grants: string[], expires: number }>, conflicts: string[] }
}

export interface TrustApiDeps {
  node: DaemonNode
  /** The swarm key secret (32 bytes), for invite tokens; undefined for an open swarm. */
  swarmKey: Uint8Array | undefined
  /** The name this device announces (named in the roster by `manage`). */
  deviceName: () => string
  log: (line: string) => void
}

/** How a device's rights read: `admin`, `revoked`, `notes/:write, config/pi:read`, or `no grant`. */
export function accessOf (d: Pick<DeviceInfo, 'admin' | 'revoked' | 'grants'>): string {
  if (d.revoked) return 'revoked'
  if (d.admin) return 'admin'
  return d.grants.length === 0 ? 'no grant' : d.grants.map(g => `${g.pattern}:${g.mode}`).join(', ')
}

export function trustReport (node: DaemonNode): TrustReport {
  const now = Date.now()
  const peers = new Map(node.peers().map(p => [p.id, p]))
  const devices = node.trust.devices().map(d => {
    const p = peers.get(d.id)
    return {
      ...d,
      self: d.id === node.id,
      connected: p?.connected ?? false,
      ...(p !== undefined ? { lastSeenMsAgo: Math.max(0, now - p.lastSeen) } : {}),
      access: accessOf(d)
    }
  })
  const { open, conflicts } = node.trust.invites()
  return {
    managed: node.trust.managed,
    swarm: node.trust.swarm,
    self: node.id,
    devices,
    invites: { open: open.map(i => ({ id: i.id, name: i.name, grants: i.grants.map(g => `${g.pattern}:${g.mode}`), expires: i.expires })), conflicts }
  }
}

/** The peer id a user means by `text`. */
export function resolveDevice (node: DaemonNode, text: unknown): string {
  if (typeof text !== 'string' || text.trim() === '') throw new HttpError(400, 'name the device: its id, its name, or a unique part of its id')
  const t = text.trim()
  const known = new Map<string, string | undefined>()
  for (const d of node.trust.devices()) known.set(d.id, d.name)
  for (const p of node.peers()) if (!known.has(p.id) || known.get(p.id) === undefined) known.set(p.id, p.name ?? p.meta.name)
  if (known.has(t) || /^12D3Koo[1-9A-HJ-NP-Za-km-z]{40,}$/.test(t)) return t
  const byName = [...known].filter(([, name]) => name === t).map(([id]) => id)
  const matches = byName.length > 0 ? byName : t.length >= 6 ? [...known.keys()].filter(id => id.includes(t)) : []
  if (matches.length === 1) return matches[0] as string
  if (matches.length === 0) throw new HttpError(404, `no device called or matching "${t}" (\`hearsay devices\` lists them)`)
  throw new HttpError(409, `"${t}" could be any of ${matches.join(', ')}: give the id`)
}

function grantsOf (value: unknown): Grant[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 32) throw new HttpError(400, 'grants is a list of 1 to 32 entries such as "notes/:write" or "config/pi:read"')
  return value.map(v => {
    try {
      return parseGrant(v as string)
    } catch (err) {
      throw new HttpError(400, (err as Error).message)
    }
  })
}

/** Turn the engine's refusals (no roster, not an admin) into answers that say what to do. */
async function asAdmin<T> (node: DaemonNode, fn: () => Promise<T>): Promise<T> {
  if (!node.trust.managed) throw new HttpError(409, 'this swarm has no roster yet: run `hearsay manage` on the device that should be its admin (or `hearsay init --admin` for a new swarm)')
  if (!node.trust.devices().some(d => d.id === node.id && d.admin)) throw new HttpError(403, 'this device is not an admin of the swarm: run the command on an admin device')
  try {
    return await fn()
  } catch (err) {
    if ((err as Error).name === 'TrustError') throw new HttpError(400, (err as Error).message)
    throw err
  }
}

/** Answer a trust request, or undefined when `path` is not one. */
export async function handleTrust (d: TrustApiDeps, method: string, path: string, body: () => Promise<Record<string, unknown>>): Promise<unknown> {
  const { node } = d
  if (!path.startsWith('/api/trust')) return undefined
  if (method === 'GET' && path === '/api/trust') return trustReport(node)
  if (method !== 'POST') return undefined
  switch (path) {
    case '/api/trust/manage': {
      if (node.trust.managed) throw new HttpError(409, `this swarm is already managed (swarm ${node.trust.swarm})`)
      await node.trust.createSwarm()
      await node.trust.name(node.id, d.deviceName())
      // every device known now keeps what it had: everything
      for (const p of node.peers()) {
        await node.trust.grant(p.id, [parseGrant('*:write')])
        const name = p.meta.name
        if (name !== undefined) await node.trust.name(p.id, checkDeviceName(name))
      }
      d.log(`this swarm is now managed: swarm ${node.trust.swarm}, ${node.peers().length} device(s) granted everything`)
      return trustReport(node)
    }
    case '/api/trust/invite': {
      const b = await body()
      const name = checkName(b.name)
      const grants = grantsOf(b.grants)
      const ms = b.expiresInMs ?? INVITE_EXPIRES_MS
      if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms <= 0 || ms > 365 * 24 * 3600_000) throw new HttpError(400, 'expiresInMs must be a positive number of ms, at most a year')
      const expiresAt = Date.now() + ms
      const { invite, secret } = await asAdmin(node, async () => await node.trust.invite({ name, grants, expiresAt }))
      const all = node.multiaddrs?.() ?? []
      // relayed addresses first: a device at another site reaches this one only through them
      const remote = all.filter(a => !a.startsWith('/ip4/127.') && !a.startsWith('/ip6/::1/'))
        .sort((a, b) => Number(!a.includes('/p2p-circuit')) - Number(!b.includes('/p2p-circuit')))
      const token = encodeToken({ swarmKey: d.swarmKey, addresses: remote.length > 0 ? remote : all, genesisId: idOf(node.trust.genesis() as Uint8Array), inviteId: idOf(invite), secret })
      d.log(`invite for "${name}" (${grants.map(g => `${g.pattern}:${g.mode}`).join(', ')}) until ${new Date(expiresAt).toISOString()}`)
      return { token, name, expiresAt }
    }
    case '/api/trust/grant': {
      const b = await body()
      const device = resolveDevice(node, b.device)
      if (b.admin === true) await asAdmin(node, async () => { await node.trust.addAdmin(device) })
      else {
        const grants = grantsOf(b.grants)
        await asAdmin(node, async () => { await node.trust.grant(device, grants) })
      }
      return trustReport(node).devices.find(x => x.id === device)
    }
    case '/api/trust/ungrant': {
      const b = await body()
      const device = resolveDevice(node, b.device)
      if (typeof b.pattern !== 'string') throw new HttpError(400, 'pattern is the grant\'s pattern, such as "notes/"')
      const pattern = b.pattern
      const n = await asAdmin(node, async () => await node.trust.withdraw({ peerId: device, pattern }))
      if (n === 0) throw new HttpError(404, `${device} has no grant on "${pattern}" (\`hearsay devices\` lists grants)`)
      return trustReport(node).devices.find(x => x.id === device)
    }
    case '/api/trust/revoke': {
      const device = resolveDevice(node, (await body()).device)
      if (device === node.id) throw new HttpError(400, 'a device cannot revoke itself; revoke it from another admin device')
      await asAdmin(node, async () => { await node.trust.revoke(device) })
      d.log(`revoked ${device}`)
      return trustReport(node).devices.find(x => x.id === device)
    }
    case '/api/trust/name': {
      const b = await body()
      const device = resolveDevice(node, b.device)
      const name = checkName(b.name)
      await asAdmin(node, async () => { await node.trust.name(device, name) })
      return trustReport(node).devices.find(x => x.id === device)
    }
    default:
      return undefined
  }
}

const idOf = (statement: Uint8Array): string => decodeStatement(statement).id

function checkName (value: unknown): string {
  try {
    return checkDeviceName(value)
  } catch (err) {
    throw new HttpError(400, (err as Error).message)
  }
}
