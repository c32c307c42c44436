/**
 * What an app sees of trust: the `trust` option of `createNode` and the `node.trust` API. The
 * subsystem behind it is trust.ts; the model is in TRUST.md.
 */
import type { DeviceEntry } from './roster.js'
import type { RosterSpread } from './roster-spread.js'
import type { Trust } from './trust.js'
import type { AccessMode, Grant, Signer, TrustCrypto } from './statements.js'

export interface TrustOptions {
  /** The signature scheme (`@hearsay/libp2p` exports one for libp2p peer ids). */
  crypto: TrustCrypto
  /** This device's key (id = the node's id): needed to issue statements as an admin. */
  signer?: Signer
  /**
   * The swarm's genesis statement. Omitted: the stored roster's, else the swarm is unmanaged
   * until it adopts one.
   */
  genesis?: Uint8Array
  /** Statements to add at start, e.g. an invite and this device's claim from `hearsay join`. */
  statements?: Uint8Array[]
  /** While unmanaged, take the roster the first peer offers. @default true */
  adopt?: boolean
  /** Adopt only the roster whose genesis has this id (hex; an invite token names it). */
  genesisId?: string
}

export interface DeviceInfo extends DeviceEntry {}

/** What `node.trust` offers. */
export interface NodeTrust {
  /** Whether a roster decides (false: every member may read and write everything). */
  readonly managed: boolean
  /** The swarm's id, once managed. */
  readonly swarm: string | undefined
  may(peerId: string, docId: string, mode: AccessMode): boolean
  /** Whether the roster revoked the device (refused everywhere). */
  isRevoked(peerId: string): boolean
  /** Every device the roster names, with its name, grants and whether it is an admin or revoked. */
  devices(): DeviceInfo[]
  /** The device's name from the roster, if any. */
  nameOf(peerId: string): string | undefined
  /** Connected peers whose roster equals ours as they last told us (a joining device is admitted once one does). */
  agreeing(): string[]
  /** Invites not claimed yet, and invites claimed by two devices (neither admitted). */
  invites(): { open: Array<{ id: string, name: string, grants: Grant[], expires: number }>, conflicts: string[] }
  /** The genesis statement, once managed. */
  genesis(): Uint8Array | undefined
  /** Every statement held, encoded. */
  statements(): Uint8Array[]
  /** Add statements (checked like any from a peer); returns how many were new. */
  add(statements: Uint8Array[]): Promise<number>
  /** Make the swarm managed with this device as its root admin. Needs `signer`. */
  createSwarm(): Promise<Uint8Array>
  addAdmin(peerId: string): Promise<void>
  name(peerId: string, name: string): Promise<void>
  grant(peerId: string, grants: Grant[]): Promise<void>
  /** Withdraw every grant statement giving `peerId` this pattern (any mode), or an invite by id. */
  withdraw(target: { peerId: string, pattern: string } | { inviteId: string }): Promise<number>
  revoke(peerId: string): Promise<void>
  /** A one-time invite: the statement, and the secret of its key (both go in a token). */
  invite(o: { name: string, grants: Grant[], expiresAt: number }): Promise<{ invite: Uint8Array, secret: Uint8Array }>
  /**
   * Claim an invite for this device with the invite key's secret: the invite statement, or its id
   * once the roster holds it (`TrustError` until then).
   */
  claim(invite: Uint8Array | string, secret: Uint8Array): Promise<void>
  on(event: 'change', fn: (e: TrustChange) => void): () => void
}

export interface TrustChange {
  /** Devices revoked by this change. */
  revoked: string[]
}


/** `node.trust`: what the app may do with the roster, over the trust subsystem and its spreading. */
export function trustFacade (trust: Trust, spread: RosterSpread): NodeTrust {
  return {
    get managed () { return trust.managed },
    get swarm () { return trust.swarm },
    may: (peerId, docId, mode) => trust.may(peerId, docId, mode),
    isRevoked: peerId => trust.revoked(peerId),
    devices: () => trust.devices(),
    nameOf: peerId => trust.nameOf(peerId),
    agreeing: () => spread.agreeing(),
    invites: () => trust.invites(),
    genesis: () => trust.current?.genesis.bytes.slice(),
    statements: () => trust.all().map(s => s.bytes.slice()),
    add: async statements => (await trust.add(statements, undefined)).added.length,
    createSwarm: async () => await trust.createSwarm(),
    addAdmin: async peerId => { await trust.addAdmin(peerId) },
    name: async (peerId, name) => { await trust.name(peerId, name) },
    grant: async (peerId, grants) => { await trust.grant(peerId, grants) },
    withdraw: async target => await trust.withdraw(target),
    revoke: async peerId => { await trust.revoke(peerId) },
    invite: async o => await trust.invite(o),
    claim: async (invite, secret) => { await trust.claim(invite, secret) },
    on: (event, fn) => trust.on(event, fn)
  }
}
