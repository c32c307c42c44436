/**
 * The Hearsay libp2p service: mounts the `/hearsay/sync/1.0.0` protocol on a libp2p node and
 * exposes it as a core `Transport` (`service.transport`). Follows the `@libp2p/ping` pattern:
 * `registrar.handle` in `start()`, `unhandle` in `stop()`.
 *
 * It wires two parts to libp2p's events: the dialler (dialler.ts: which peers to dial, backoff,
 * sightings, bootstrap addresses) and the channel table (channels.ts: the one channel per peer
 * pair, who opens it, replacing and closing it). Connections opening and closing, discovery and
 * peer-store updates, and inbound streams are translated here into calls on those two.
 *
 * Every sighting passed to `peerDiscovered()` (createHearsayNode forwards each discovery 'peer'
 * event) reaches the dialler. Dead links (cut without a TCP reset) are found by liveness
 * (liveness.ts), which pings a channel's connection only when the channel has been silent for
 * longer than usual and closes it when the ping is not answered; the dialler then redials.
 */
import {
  ConfigError,
  MAX_FRAME_BYTES,
  NotStartedError,
  PROTOCOL_ID,
  PeerUnavailableError,
  realTimers,
  silentLogger
} from '@hearsay/core'
import type { Log, Timers, Transport, TransportHandler } from '@hearsay/core'
import { serviceCapabilities } from '@libp2p/interface'
import type { Connection, Libp2pEvents, PeerId, PeerInfo, PeerStore, PeerUpdate, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { ChannelTable } from './channels.js'
import type { ChannelStatus } from './channels.js'
import {
  BACKOFF_INITIAL_MS,
  BACKOFF_JITTER,
  BACKOFF_MAX_MS,
  CLOSE_COOLDOWN_MS,
  CONNECT_TIMEOUT_MS,
  DIAL_TIMEOUT_MS,
  DISCOVERY_DIAL_DELAY_MS,
  MAX_INBOUND_STREAMS,
  MAX_OUTBOUND_STREAMS,
  MAX_REDIAL_ATTEMPTS,
  PING_INTERVAL_MS,
  RELAY_PACE_BURST_BYTES,
  RELAY_PACE_BYTES_PER_SEC,
  SIGHTING_DIAL_INTERVAL_MS,
  STREAM_OPEN_TIMEOUT_MS
} from './constants.js'
import { Backoff, Dialler } from './dialler.js'
import { Liveness } from './liveness.js'
import type { FailureKind, PeerSource } from './dialler.js'
import { InvalidPeerIdError } from './errors.js'
import { checkSyncInit, parseBootstrap } from './options.js'
import { Pacer } from './pacing.js'
import { isRelayed, localSubnets, pathOf } from './paths.js'
import type { PathKind } from './paths.js'
import type { HearsaySyncInit } from './options.js'
import { anySignal, timeoutSignal } from './signals.js'

export { failureKind } from './dialler.js'
export type { FailureKind } from './dialler.js'
export type { ChannelStatus } from './channels.js'
export type { BackoffOptions, HearsaySyncInit } from './options.js'

export interface HearsaySyncComponents {
  peerId: PeerId
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
}

/** What the service knows about one peer (for status pages and diagnosis). */
export interface PeerStatus {
  id: string
  /** Why this node dials it: found by discovery, a bootstrap address, `connect()`, or it connected to us. */
  source: PeerSource
  connected: boolean
  channel: boolean
  /** The path of the connection the channel runs on (`lan`, `direct`, `relayed`), while it is open. */
  path?: PathKind
  /** Consecutive failed dials, counting links that dropped before a channel opened. Reset once a channel opens or a link stays up `STABLE_LINK_MS`. */
  dialFailures: number
  /**
   * How the last failure went, while `dialFailures` > 0: `unreachable` (the dial failed or timed
   * out: a discovery sighting redials it at once) or `refused` (the link dropped before a channel
   * opened, or the peer refused the handshake: sightings leave its backoff alone).
   */
  lastFailure?: FailureKind
  /** When the next dial is due (ms since epoch), if one is scheduled. */
  nextDialAt?: number
  /** Until when this node refuses the peer's channel after closing it (ms since epoch). */
  refusedUntil?: number
  /** The peer does not speak the Hearsay protocol. */
  unsupported: boolean
}

export interface HearsaySync extends Startable {
  /** The core `Transport` to hand to `createNode({ transport })`. */
  readonly transport: Transport
  readonly protocol: string
  /**
   * Tell the service a discovery mechanism saw a peer (every mDNS announcement, or a mechanism
   * libp2p does not report at all). A new peer, or a disconnected one whose last failure was
   * "unreachable", is dialled at once (at most once per `sightingDialIntervalMs`, using the
   * addresses in `info` when it has some); a peer whose last failure was a refusal keeps its
   * backoff and failure count. The service follows `peer:discovery` and `peer:update` itself, but
   * libp2p reports a known peer again only when its addresses change: forward your discovery's
   * `'peer'` events here (see `forwardSightings()`) so a peer in backoff is redialled as soon as it
   * is seen again.
   */
  peerDiscovered(info: PeerInfo): void
  peers(): PeerStatus[]
  channels(): ChannelStatus[]
  /** Bytes this node sent and received over relayed channels since start. */
  relayedBytes(): { sent: number, received: number }
}

class HearsaySyncService implements HearsaySync, Startable {
  readonly protocol: string
  readonly transport: Transport
  readonly [Symbol.toStringTag] = '@hearsay/libp2p'
  readonly [serviceCapabilities]: string[] = ['@hearsay/sync']

  private readonly components: HearsaySyncComponents
  private readonly log: Log
  private readonly timers: Timers
  private readonly dialOnDiscovery: boolean
  private readonly allow: Set<string> | undefined
  private readonly dialTimeoutMs: number
  private readonly connectTimeoutMs: number
  private readonly localId: string
  private readonly dialler: Dialler
  private readonly table: ChannelTable
  private readonly liveness: Liveness | undefined
  private serviceStarted = false

  constructor (components: HearsaySyncComponents, init: HearsaySyncInit = {}) {
    checkSyncInit(init)
    this.components = components
    this.protocol = init.protocol ?? PROTOCOL_ID
    this.log = (init.logger ?? silentLogger()).forComponent(`hearsay:libp2p:${components.peerId.toString().slice(-8)}`)
    this.timers = init.timers ?? realTimers
    this.dialOnDiscovery = init.dialOnDiscovery ?? true
    this.allow = init.allowPeers === undefined ? undefined : new Set(init.allowPeers.map(p => parsePeerId(p, 'allowPeers').toString()))
    this.dialTimeoutMs = init.dialTimeoutMs ?? DIAL_TIMEOUT_MS
    this.connectTimeoutMs = init.connectTimeoutMs ?? CONNECT_TIMEOUT_MS
    this.localId = components.peerId.toString()
    const backoff = new Backoff(
      init.backoff?.initialMs ?? BACKOFF_INITIAL_MS,
      init.backoff?.maxMs ?? BACKOFF_MAX_MS,
      init.backoff?.jitter ?? BACKOFF_JITTER,
      init.random ?? Math.random
    )
    this.table = new ChannelTable({
      localId: this.localId,
      protocol: this.protocol,
      maxFrameBytes: init.maxFrameBytes ?? MAX_FRAME_BYTES,
      streamOpenTimeoutMs: init.streamOpenTimeoutMs ?? STREAM_OPEN_TIMEOUT_MS,
      closeTimeoutMs: this.dialTimeoutMs,
      closeCooldownMs: init.closeCooldownMs ?? CLOSE_COOLDOWN_MS,
      backoff,
      timers: this.timers,
      log: this.log,
      connections: (peer) => this.openConnections(peer),
      relayPacer: new Pacer(init.relayPaceBytesPerSec ?? RELAY_PACE_BYTES_PER_SEC, RELAY_PACE_BURST_BYTES, () => this.timers.now()),
      onOpened: (id) => { this.dialler.reached(id) }
    })
    this.dialler = new Dialler({
      network: {
        dial: async (target, signal) => await this.components.connectionManager.openConnection(target, { signal }),
        connected: (peer) => this.openConnections(peer).length > 0,
        forget: async (peer) => { await this.components.peerStore.delete(peer) }
      },
      timers: this.timers,
      log: this.log,
      backoff,
      initiates: (id) => this.table.initiates(id),
      bootstrap: (init.bootstrap ?? []).map(parseBootstrap),
      dialTimeoutMs: this.dialTimeoutMs,
      maxRedialAttempts: init.maxRedialAttempts ?? MAX_REDIAL_ATTEMPTS,
      discoveryDialDelayMs: init.discoveryDialDelayMs ?? DISCOVERY_DIAL_DELAY_MS,
      sightingDialIntervalMs: init.sightingDialIntervalMs ?? SIGHTING_DIAL_INTERVAL_MS,
      ...(init.onDialFailure !== undefined ? { onDialFailure: init.onDialFailure } : {})
    })
    this.liveness = init.livenessMinSilenceMs === false
      ? undefined
      : new Liveness({ channels: () => this.table.openChannels(), timers: this.timers, log: this.log, minSilenceMs: init.livenessMinSilenceMs ?? PING_INTERVAL_MS })
    this.onInbound = this.onInbound.bind(this)
    this.onConnectionOpen = this.onConnectionOpen.bind(this)
    this.onConnectionClose = this.onConnectionClose.bind(this)
    this.onDiscoveryEvent = this.onDiscoveryEvent.bind(this)
    this.onPeerUpdate = this.onPeerUpdate.bind(this)
    this.transport = {
      localId: this.localId,
      start: async (handler) => { await this.startTransport(handler) },
      stop: async () => { await this.stopTransport() },
      connect: async (peerId, options) => { await this.connect(peerId, options) }
    }
  }

  // ---- libp2p lifecycle ----

  async start (): Promise<void> {
    if (this.serviceStarted) return
    await this.components.registrar.handle(this.protocol, this.onInbound, {
      maxInboundStreams: MAX_INBOUND_STREAMS,
      maxOutboundStreams: MAX_OUTBOUND_STREAMS,
      runOnLimitedConnection: false
    })
    const ev = this.components.events
    ev.addEventListener('connection:open', this.onConnectionOpen)
    ev.addEventListener('connection:close', this.onConnectionClose)
    ev.addEventListener('peer:discovery', this.onDiscoveryEvent)
    ev.addEventListener('peer:update', this.onPeerUpdate)
    this.serviceStarted = true
  }

  async stop (): Promise<void> {
    if (!this.serviceStarted) return
    this.serviceStarted = false
    await this.stopTransport()
    const ev = this.components.events
    ev.removeEventListener('connection:open', this.onConnectionOpen)
    ev.removeEventListener('connection:close', this.onConnectionClose)
    ev.removeEventListener('peer:discovery', this.onDiscoveryEvent)
    ev.removeEventListener('peer:update', this.onPeerUpdate)
    await this.components.registrar.unhandle(this.protocol)
  }

  isStarted (): boolean {
    return this.serviceStarted
  }

  // ---- Transport ----

  private get running (): boolean {
    return this.table.running
  }

  private async startTransport (handler: TransportHandler): Promise<void> {
    if (this.running) return
    if (!this.serviceStarted) throw new NotStartedError('the libp2p node is not started: start it before the Hearsay node')
    this.table.start(handler)
    this.liveness?.start()
    this.log(`transport started as ${this.localId}`)
    // peers connected before the engine started
    for (const conn of this.components.connectionManager.getConnections()) this.onConnection(conn)
    this.dialler.start()
  }

  private async stopTransport (): Promise<void> {
    if (!this.running) return
    this.dialler.stop()
    this.liveness?.stop()
    this.table.stop()
    this.log('transport stopped')
  }

  private async connect (peer: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.running) throw new NotStartedError('transport is not started')
    const peerId = parsePeerId(peer, 'connect()')
    const id = peerId.toString()
    if (id === this.localId) throw new ConfigError('cannot connect to this node itself')
    if (!this.allowed(id)) throw new PeerUnavailableError(`peer ${id} is not in allowPeers`)
    const target = this.dialler.persist(peerId, 'connect')
    this.table.track(peerId)
    if (this.table.isOpen(id)) return
    this.table.liftCooldown(id)
    const signal = anySignal(options.signal, timeoutSignal(this.timers, this.connectTimeoutMs))
    if (this.openConnections(peerId).length === 0) {
      try {
        await this.components.connectionManager.openConnection(target, { signal: anySignal(signal, timeoutSignal(this.timers, this.dialTimeoutMs)) })
      } catch (err) {
        throw new PeerUnavailableError(`cannot reach ${id}: ${(err as Error).message}`, { cause: err })
      }
    }
    if (this.table.initiates(id)) await this.table.open(peerId)
    await this.table.waitFor(peerId, signal)
  }

  // ---- status ----

  peers (): PeerStatus[] {
    const now = this.timers.now()
    const subnets = localSubnets()
    return this.dialler.list().map(st => {
      const slot = this.table.get(st.id)
      const refusedUntil = slot?.refusedUntil ?? 0
      const channel = slot?.channel?.isOpen === true ? slot.channel : undefined
      return {
        id: st.id,
        source: st.source,
        connected: this.openConnections(st.peerId).length > 0,
        channel: channel !== undefined,
        ...(channel !== undefined ? { path: pathOf(channel.connection.remoteAddr, subnets) } : {}),
        dialFailures: st.failures,
        ...(st.lastFailure !== undefined ? { lastFailure: st.lastFailure } : {}),
        ...(st.nextDialAt !== undefined ? { nextDialAt: st.nextDialAt } : {}),
        ...(refusedUntil > now ? { refusedUntil } : {}),
        unsupported: slot?.unsupported ?? false
      }
    })
  }

  channels (): ChannelStatus[] {
    return this.table.list()
  }

  relayedBytes (): { sent: number, received: number } {
    return this.table.relayedBytes()
  }

  // ---- libp2p events ----

  /** Both parts learn of a peer at once, so `peers()` lists it with its channel fields. */
  private track (peerId: PeerId, source: PeerSource): void {
    this.dialler.track(peerId, source)
    this.table.track(peerId)
  }

  private onConnectionOpen (evt: CustomEvent<Connection>): void {
    this.onConnection(evt.detail)
  }

  private onConnection (conn: Connection): void {
    if (!this.running || conn.status !== 'open' || conn.limits != null) return
    const id = conn.remotePeer.toString()
    if (!this.allowed(id)) return
    this.track(conn.remotePeer, conn.direction === 'inbound' ? 'inbound' : 'discovery')
    this.dialler.linkUp(id)
    this.table.linkUp(conn.remotePeer)
  }

  private onConnectionClose (evt: CustomEvent<Connection>): void {
    if (!this.running) return
    const conn = evt.detail
    const id = conn.remotePeer.toString()
    if (this.dialler.get(id) === undefined) return
    if (this.openConnections(conn.remotePeer).length > 0) {
      this.table.relink(conn.remotePeer)
      return
    }
    this.dialler.linkDown(id, conn.timeline.open, this.table.get(id)?.openedAt)
  }

  private onDiscoveryEvent (evt: CustomEvent<PeerInfo>): void {
    // an entry made by a metadata write (e.g. a dial failure record) carries no address: not a sighting
    if (evt.detail.multiaddrs.length === 0) return
    this.peerDiscovered(evt.detail)
  }

  /** New addresses for a known, disconnected peer are fresh evidence it is reachable: treat them as a sighting. */
  private onPeerUpdate (evt: CustomEvent<PeerUpdate>): void {
    const { peer, previous } = evt.detail
    if (previous === undefined || !this.running) return
    const st = this.dialler.get(peer.id.toString())
    if (st === undefined || st.source !== 'discovery' || this.openConnections(peer.id).length > 0) return
    const known = new Set(previous.addresses.map(a => a.multiaddr.toString()))
    const fresh = peer.addresses.filter(a => !known.has(a.multiaddr.toString())).map(a => a.multiaddr)
    if (fresh.length === 0) return
    this.log.trace(`new addresses for ${st.id}: ${fresh.map(a => a.toString()).join(', ')}`)
    this.peerDiscovered({ id: peer.id, multiaddrs: peer.addresses.map(a => a.multiaddr) })
  }

  peerDiscovered (info: PeerInfo): void {
    if (!this.running || !this.dialOnDiscovery) return
    const id = info.id.toString()
    if (id === this.localId) return
    if (!this.allowed(id)) {
      this.log.trace(`not dialling ${id}: not in allowPeers`)
      return
    }
    this.table.track(info.id)
    this.dialler.sighted(info)
  }

  private onInbound (stream: Stream, conn: Connection): void {
    const id = conn.remotePeer.toString()
    if (!this.running) {
      stream.abort(new Error('Hearsay is not running on this node'))
      return
    }
    if (!this.allowed(id)) {
      this.log.warn(`refused a sync stream from ${id}: not in allowPeers`)
      stream.abort(new Error('not allowed'))
      return
    }
    if (this.table.initiates(id)) {
      // the rule says this node opens; a peer that opens anyway is out of turn (or a different version)
      this.log.warn(`refused a sync stream from ${id}: the peer with the lower id opens the stream`)
      stream.abort(new Error('out of turn: the lower peer id opens the stream'))
      return
    }
    this.track(conn.remotePeer, 'inbound')
    this.table.accept(stream, conn)
  }

  private allowed (id: string): boolean {
    return this.allow === undefined || this.allow.has(id)
  }

  /**
   * Open connections that may carry a channel, those not through a relay first, each group oldest
   * first. A limited connection (a relay that caps data or time, as libp2p's defaults do) may not:
   * a sync would be cut off in the middle. A Hearsay relay gives members unlimited ones.
   */
  private openConnections (peerId: PeerId): Connection[] {
    return this.components.connectionManager.getConnections(peerId)
      .filter(c => c.status === 'open' && c.limits == null)
      .sort((a, b) => Number(isRelayed(a.remoteAddr)) - Number(isRelayed(b.remoteAddr)) || a.timeline.open - b.timeline.open)
  }
}

/** Parse a peer id string, with a typed error naming where it came from. */
export function parsePeerId (id: string, where: string): PeerId {
  try {
    return peerIdFromString(id)
  } catch (err) {
    throw new InvalidPeerIdError(`${where}: "${id}" is not a valid peer id`, { cause: err })
  }
}

/**
 * The libp2p service factory: `services: { hearsay: hearsaySync({ logger }) }`, then
 * `createNode({ id: libp2p.peerId.toString(), transport: libp2p.services.hearsay.transport })`.
 */
export function hearsaySync (init: HearsaySyncInit = {}): (components: HearsaySyncComponents) => HearsaySync {
  return (components) => new HearsaySyncService(components, init)
}
