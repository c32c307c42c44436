/**
 * Circuit relay v2 for a swarm: a node can serve as the relay of its swarm's members (`relay:
 * true`), and every node can hold reservations on relays so that members at other sites reach it
 * through them.
 *
 * What a Hearsay relay allows (RELAY.md): members get relayed connections with no data or time
 * limit (libp2p's defaults, 128 KiB and 2 minutes, would cut a sync off), up to
 * `RELAY_MAX_RESERVATIONS` reservations and `RELAY_MAX_HOP_STREAMS` relayed connections per
 * member connection. Everyone else is refused before any of that: a relay needs a swarm key or an
 * allow-list, so a device without the key (or not listed, or revoked by the roster) gets no
 * connection to it, hence no reservation and no relayed connection.
 *
 * The client side: one `/p2p-circuit` listen slot per relay this node wants a reservation on.
 * libp2p's relay transport fills a slot on any connected peer that speaks the relay protocol, and
 * fills it again when that relay comes back after a restart. Configured relays get their slots
 * when the node is created (and are dialled like bootstrap peers, for as long as the node runs);
 * relays learned from members' cluster state get one when they are first heard of.
 */
import { ConfigError } from '@hearsay/core'
import type { Log } from '@hearsay/core'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Startable } from '@libp2p/interface'
import type { TransportManager } from '@libp2p/interface-internal'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { RELAY_MAX_CLIENT_RESERVATIONS, RELAY_MAX_HOP_STREAMS, RELAY_MAX_RESERVATIONS, RELAY_RESERVATION_TTL_MS } from './constants.js'
import { isRelayed } from './paths.js'

export interface RelayServerOptions {
  /** Most reservations held at once. @default RELAY_MAX_RESERVATIONS (256) */
  maxReservations?: number
  /** Reservation lifetime, in ms (members renew it before it ends). @default RELAY_RESERVATION_TTL_MS (2 h) */
  reservationTtlMs?: number
  /** Relayed connections at once per member connection. @default RELAY_MAX_HOP_STREAMS (64) */
  maxHopStreams?: number
}

/** The relay server with Hearsay's limits (no data or time cap for members). */
export function relayServer (options: RelayServerOptions = {}): (components: any) => CircuitRelayService {
  return circuitRelayServer({
    reservations: {
      maxReservations: options.maxReservations ?? RELAY_MAX_RESERVATIONS,
      reservationTtl: options.reservationTtlMs ?? RELAY_RESERVATION_TTL_MS,
      applyDefaultLimit: false
    },
    maxInboundHopStreams: options.maxHopStreams ?? RELAY_MAX_HOP_STREAMS,
    maxOutboundHopStreams: options.maxHopStreams ?? RELAY_MAX_HOP_STREAMS
  })
}

/** A relay address: a TCP address of the relay with its `/p2p/<id>`; a bad one is a `ConfigError` quoting it. */
export function parseRelayAddress (a: string): { addr: Multiaddr, id: string } {
  let addr: Multiaddr
  try {
    addr = multiaddr(a)
  } catch (err) {
    throw new ConfigError(`relay address "${a}" is not a valid multiaddr`, { cause: err })
  }
  const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id === undefined || isRelayed(addr)) {
    throw new ConfigError(`relay address "${a}" must be the relay's own address ending in /p2p/<relay peer id>, such as /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…`)
  }
  return { addr, id }
}

/**
 * Reservation slots: a libp2p service (`services.relaySlots`) that opens a `/p2p-circuit` listen
 * slot per relay wanted, up to `RELAY_MAX_CLIENT_RESERVATIONS`.
 */
export class RelaySlots implements Startable {
  private readonly wanted = new Set<string>()
  private started = false
  private pending: Promise<void> = Promise.resolve()

  constructor (
    private readonly components: { transportManager: TransportManager },
    private readonly init: { configured: string[], log: Log }
  ) {
    for (const id of init.configured) this.wanted.add(id)
  }

  start (): void { this.started = true }
  stop (): void { this.started = false }
  isStarted (): boolean { return this.started }

  /** Relays this node wants a reservation on (by peer id). */
  relays (): string[] {
    return [...this.wanted]
  }

  /** A relay heard of at run time: open a slot for it, if there is room. */
  learned (id: string): void {
    if (!this.started || this.wanted.has(id) || this.wanted.size >= RELAY_MAX_CLIENT_RESERVATIONS) return
    this.wanted.add(id)
    this.init.log(`relay ${id} learned from the swarm: reserving a slot on it`)
    this.pending = this.pending.then(async () => {
      await this.components.transportManager.listen([multiaddr('/p2p-circuit')])
    }).catch((err: unknown) => {
      this.init.log.warn(`could not open a relay slot for ${id}: ${(err as Error).message}`)
    })
  }
}

/** The libp2p service factory for the slots. */
export function relaySlots (init: { configured: string[], log: Log }): (components: { transportManager: TransportManager }) => RelaySlots {
  return (components) => new RelaySlots(components, init)
}
