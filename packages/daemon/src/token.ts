/**
 * Invite tokens: what a new device needs to join a managed swarm, in one short line of text
 * (`hst1…`, base64url, about 200 characters) that also fits a small QR code: the swarm key (if the
 * swarm has one), the inviting device's addresses, the id of the swarm's genesis statement (the
 * only roster the new device will take), the invite's id and the secret of its one-time key. The
 * invite statement itself is in the roster every member holds.
 *
 * token := "hst1" base64url( version:u8(1) swarmKey:field n:u8 { address:field } genesisId:16
 *                            inviteId:16 secret:32 ),  field := length:u8 bytes
 * (an address is a binary multiaddr). A token is read as hostile input: every length and every
 * address is checked.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { INVITE_TOKEN_MAX_ADDRESSES } from './constants.js'

export interface InviteToken {
  /** The 32-byte swarm key secret, or undefined for a swarm without one. */
  swarmKey: Uint8Array | undefined
  /** Multiaddrs of the inviting device, with `/p2p/<id>`. */
  addresses: string[]
  /** Hex id of the swarm's genesis statement. */
  genesisId: string
  /** Hex id of the invite statement. */
  inviteId: string
  /** The invite key's secret. */
  secret: Uint8Array
}

/** A token that cannot be read. */
export class InviteTokenError extends Error {
  static readonly code = 'InviteTokenError'
  override readonly name = 'InviteTokenError'
}

const PREFIX = 'hst1'
const VERSION = 1
/** Longest token read, in characters. */
const MAX_TOKEN_CHARS = 2048

export function encodeToken (t: InviteToken): string {
  const parts: Buffer[] = [Buffer.from([VERSION])]
  const field = (b: Uint8Array): void => { parts.push(Buffer.from([b.length]), Buffer.from(b)) }
  field(t.swarmKey ?? new Uint8Array(0))
  const addresses = t.addresses.map(a => multiaddr(a).bytes).filter(b => b.length <= 255).slice(0, INVITE_TOKEN_MAX_ADDRESSES)
  parts.push(Buffer.from([addresses.length]))
  for (const a of addresses) field(a)
  parts.push(Buffer.from(t.genesisId, 'hex'), Buffer.from(t.inviteId, 'hex'), Buffer.from(t.secret))
  return PREFIX + Buffer.concat(parts).toString('base64url')
}

export function decodeToken (text: string): InviteToken {
  const trimmed = String(text).trim()
  if (!trimmed.startsWith(PREFIX)) throw new InviteTokenError('not a Hearsay invite token (it starts with "hst1"); copy the whole line `hearsay invite` printed')
  if (trimmed.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]*$/.test(trimmed.slice(PREFIX.length))) throw new InviteTokenError('not a Hearsay invite token: copy the whole line `hearsay invite` printed')
  const bytes = Buffer.from(trimmed.slice(PREFIX.length), 'base64url')
  let pos = 0
  const take = (n: number): Uint8Array => {
    if (pos + n > bytes.length) throw new InviteTokenError('the token is cut short; copy the whole line')
    const out = new Uint8Array(bytes.subarray(pos, pos + n))
    pos += n
    return out
  }
  const u8 = (): number => take(1)[0] as number
  if (u8() !== VERSION) throw new InviteTokenError('this token was made by another version of Hearsay')
  const key = take(u8())
  if (key.length !== 0 && key.length !== 32) throw new InviteTokenError('the token\'s swarm key is malformed')
  const n = u8()
  if (n > INVITE_TOKEN_MAX_ADDRESSES) throw new InviteTokenError('the token lists too many addresses')
  const addresses: string[] = []
  for (let i = 0; i < n; i++) {
    try {
      addresses.push(multiaddr(take(u8())).toString())
    } catch (err) {
      if (err instanceof InviteTokenError) throw err
      throw new InviteTokenError('the token holds a malformed address')
    }
  }
  const genesisId = Buffer.from(take(16)).toString('hex')
  const inviteId = Buffer.from(take(16)).toString('hex')
  const secret = take(32)
  if (pos !== bytes.length) throw new InviteTokenError('the token has trailing bytes')
  return { swarmKey: key.length === 0 ? undefined : key, addresses, genesisId, inviteId, secret }
}

/**
 * Where a joining device dials, from a token's addresses: all of them as bootstrap addresses, and
 * the relay of each relayed one (`…/p2p/<relay>/p2p-circuit/p2p/<id>`) among its relays, so a
 * device at another site reaches the inviting one through the relay and keeps a reservation there.
 */
export function joinAddresses (addresses: string[]): { bootstrap: string[], relays: string[] } {
  const relays = addresses.flatMap(a => {
    const at = a.indexOf('/p2p-circuit')
    return at > 0 ? [a.slice(0, at)] : []
  })
  return { bootstrap: addresses, relays: [...new Set(relays)] }
}

