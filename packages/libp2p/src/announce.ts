/**
 * Addresses through the swarm's cluster state, the way members at different sites find each
 * other. Each node announces where it can be dialled (`libp2p/addrs`: its relayed addresses
 * first, then its own) and a relay announces itself (`libp2p/relay`). Every few seconds a node
 * reads what its members announced and reports each member it has no connection to as a
 * sighting, with the addresses worth dialling from here (paths.ts); the dialler decides when to
 * dial (its rate limits and backoff apply). Relays heard of get a reservation slot.
 *
 * Announcements come from members, so they are checked like any peer input: at most
 * `MAX_ANNOUNCED_ADDRS` addresses a member, each a valid multiaddr that ends with the member's
 * own `/p2p/<id>` (a member cannot point us at somebody else), the rest ignored.
 *
 * A scan runs every `ADDRESS_SCAN_INTERVAL_MS`, and on the next turn after gossip brings members'
 * entries (`peer:meta`), so a member that just announced a relayed address is dialled at once.
 */
import { CLUSTER_MAX_VALUE_BYTES } from '@hearsay/core'
import type { HearsayNode, Log, Timers } from '@hearsay/core'
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { ADDRESS_SCAN_INTERVAL_MS, ADDRS_META_KEY, MAX_ANNOUNCED_ADDRS, RELAY_META_KEY } from './constants.js'
import { isRelayed, localSubnets, worthDialling } from './paths.js'
import type { HearsaySync } from './service.js'

export interface AnnounceDeps {
  libp2p: Libp2p
  engine: Pick<HearsayNode, 'setMeta' | 'peers' | 'on'>
  sync: Pick<HearsaySync, 'peerDiscovered'>
  /** This node serves as a relay: announce it. */
  relay: boolean
  /** A relay was heard of (by peer id). */
  onRelay: (id: string) => void
  timers: Timers
  log: Log
  intervalMs?: number
}

/** Addresses joined with spaces, as many as fit in one cluster value, in the order given. */
export function fitAddresses (addrs: string[]): string {
  let out = ''
  for (const a of addrs) {
    const next = out === '' ? a : `${out} ${a}`
    if (next.length > CLUSTER_MAX_VALUE_BYTES) break
    out = next
  }
  return out
}

/** A member's announced addresses that are well formed and its own; anything else is dropped. */
export function parseAnnounced (value: string | undefined, memberId: string): Multiaddr[] {
  if (value === undefined) return []
  const out: Multiaddr[] = []
  for (const s of value.slice(0, CLUSTER_MAX_VALUE_BYTES).split(' ').slice(0, MAX_ANNOUNCED_ADDRS)) {
    try {
      const ma = multiaddr(s)
      if (ma.getComponents().findLast(c => c.name === 'p2p')?.value === memberId) out.push(ma)
    } catch {}
  }
  return out
}

export class Announcer {
  private timer: unknown
  private soon: unknown
  private running = false
  private offMeta: (() => void) | undefined
  private last = { addrs: '', relay: '' }

  constructor (private readonly deps: AnnounceDeps) {
    this.publish = this.publish.bind(this)
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.deps.libp2p.addEventListener('self:peer:update', this.publish)
    this.offMeta = this.deps.engine.on('peer:meta', () => {
      if (this.soon !== undefined || !this.running) return
      this.soon = this.deps.timers.setTimeout(() => { this.soon = undefined; this.safeScan() }, 0)
    })
    this.publish()
    this.schedule()
  }

  stop (): void {
    this.running = false
    this.deps.libp2p.removeEventListener('self:peer:update', this.publish)
    this.offMeta?.()
    this.deps.timers.clearTimeout(this.timer)
    this.deps.timers.clearTimeout(this.soon)
    this.timer = undefined
    this.soon = undefined
  }

  /** Announce this node's addresses (relayed first) and, on a relay, the relay. */
  publish (): void {
    if (!this.running) return
    const own = this.deps.libp2p.getMultiaddrs()
    const relayed = own.filter(a => isRelayed(a)).map(a => a.toString())
    const direct = own.filter(a => !isRelayed(a)).map(a => a.toString())
    const addrs = fitAddresses([...relayed, ...direct])
    if (addrs !== this.last.addrs) {
      this.last.addrs = addrs
      this.deps.engine.setMeta(ADDRS_META_KEY, addrs)
      this.deps.log(`announced addresses: ${addrs}`)
    }
    if (this.deps.relay) {
      const relay = fitAddresses(direct)
      if (relay !== this.last.relay) {
        this.last.relay = relay
        this.deps.engine.setMeta(RELAY_META_KEY, relay)
      }
    }
  }

  /** Report every member this node has no connection to, with the addresses worth dialling. */
  scan (): void {
    const subnets = localSubnets()
    const self = this.deps.libp2p.peerId.toString()
    for (const p of this.deps.engine.peers()) {
      if (p.id === self || p.state === 'dead') continue
      const relay = parseAnnounced(p.meta[RELAY_META_KEY], p.id)
      if (relay.length > 0) this.deps.onRelay(p.id)
      if (p.connected) continue
      let id
      try { id = peerIdFromString(p.id) } catch { continue }
      if (this.deps.libp2p.getConnections(id).length > 0) continue
      const addrs = [...relay, ...parseAnnounced(p.meta[ADDRS_META_KEY], p.id)].filter(a => worthDialling(a, subnets))
      if (addrs.length === 0) continue
      this.deps.sync.peerDiscovered({ id, multiaddrs: addrs })
    }
  }

  private schedule (): void {
    if (!this.running) return
    this.timer = this.deps.timers.setTimeout(() => {
      this.safeScan()
      this.schedule()
    }, this.deps.intervalMs ?? ADDRESS_SCAN_INTERVAL_MS)
  }

  private safeScan (): void {
    try {
      // our own addresses too: libp2p reports a new reservation late (or not at all after a relay restart)
      this.publish()
      this.scan()
    } catch (err) {
      this.deps.log.warn(`reading members' addresses failed: ${(err as Error).message}`)
    }
  }
}
