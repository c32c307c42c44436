/**
 * The Hearsay libp2p service: mounts the `/hearsay/sync/1.0.0` protocol on a libp2p node and
 * exposes it as a core `Transport` (`service.transport`). Follows the `@libp2p/ping` pattern:
 * `registrar.handle` in `start()`, `unhandle` in `stop()`.
 *
 * One channel per peer pair: only the peer with the lower peer id opens the stream, on the
 * oldest open connection; the other side accepts it. A second inbound stream from the same peer
 * replaces the first (the opener decided the old one is dead). Duplicate connections (both sides
 * dialled at once) therefore never produce two channels, and the opener closes the duplicates.
 *
 * Dialling: peers found by discovery (mDNS) and bootstrap addresses are dialled automatically,
 * each dial bounded by an AbortSignal timeout, failures retried with exponential backoff and
 * jitter, and lost links redialled. A link that drops before a channel opened on it counts as a
 * failed dial. A discovered peer given up on is removed from the peer store, so libp2p reports
 * its next sighting as a new discovery. Every sighting passed to `peerDiscovered()` (createHearsayNode
 * forwards each discovery 'peer' event) redials a disconnected peer at once when its last failure
 * was "unreachable", at most once per `sightingDialIntervalMs`; a peer whose last failure was a
 * refusal keeps its backoff and failure count. Dead links (cut without a TCP reset) are found by libp2p's
 * connection monitor, which pings every connection (every 10 s by default) and closes those that
 * do not answer; the service then redials.
 */
import {
  ConfigError,
  MAX_FRAME_BYTES,
  MIN_FRAME_BYTES,
  NotStartedError,
  PROTOCOL_ID,
  PeerUnavailableError,
  silentLogger
} from '@hearsay/core'
import type { Log, Logger, Transport, TransportHandler } from '@hearsay/core'
import { serviceCapabilities } from '@libp2p/interface'
import type { Connection, Libp2pEvents, PeerId, PeerInfo, PeerStore, PeerUpdate, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { StreamChannel } from './channel.js'
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
  STABLE_CHANNEL_MS,
  SIGHTING_DIAL_INTERVAL_MS,
  STABLE_LINK_MS,
  STREAM_OPEN_TIMEOUT_MS
} from './constants.js'
import { InvalidPeerIdError } from './errors.js'

export interface BackoffOptions {
  /** First retry delay, in ms. @default BACKOFF_INITIAL_MS (500) */
  initialMs?: number
  /** Longest retry delay, in ms. @default BACKOFF_MAX_MS (30 000) */
  maxMs?: number
  /** Relative jitter in [0, 1). @default BACKOFF_JITTER (0.3) */
  jitter?: number
}

export interface HearsaySyncInit {
  /** Told of every failed dial (to diagnose it, e.g. a swarm key mismatch); the peer id, or the bootstrap address. */
  onDialFailure?: (peer: string, err: unknown) => void
  /** Protocol id. @default PROTOCOL_ID ('/hearsay/sync/1.0.0') */
  protocol?: string
  /**
   * Largest frame accepted from a peer (checked on the length prefix, before the body is read);
   * a larger one closes that peer's channel. Match the engine's `maxFrameBytes`.
   * @default MAX_FRAME_BYTES (1 MiB)
   */
  maxFrameBytes?: number
  /** Where log lines go; components `hearsay:libp2p*`. @default silentLogger() */
  logger?: Logger
  /** Dial peers reported by peer discovery (mDNS). @default true */
  dialOnDiscovery?: boolean
  /** Multiaddrs dialled on start and redialled whenever their link drops (with `/p2p/<id>` or without). @default [] */
  bootstrap?: Array<string | Multiaddr>
  /**
   * Only these peer ids get a channel; streams from others are refused. Pair it with the
   * connection gater of `allowListGater()` to refuse their connections too. @default everyone
   */
  allowPeers?: string[]
  /** Longest a dial may take, in ms. @default DIAL_TIMEOUT_MS (5 000) */
  dialTimeoutMs?: number
  /** Longest opening the stream may take, in ms. @default STREAM_OPEN_TIMEOUT_MS (5 000) */
  streamOpenTimeoutMs?: number
  /** How long `transport.connect()` waits for the channel, in ms. @default CONNECT_TIMEOUT_MS (10 000) */
  connectTimeoutMs?: number
  /** Retry delays for dials and stream re-opens. */
  backoff?: BackoffOptions
  /**
   * Failed dials (or links that dropped before a channel opened) to a discovered peer before it is
   * forgotten: it is removed from the peer store, so the next discovery sighting reports it as new
   * and it is dialled again at once. @default MAX_REDIAL_ATTEMPTS (10)
   */
  maxRedialAttempts?: number
  /** Delay before the higher peer id dials a newly discovered peer, in ms. @default DISCOVERY_DIAL_DELAY_MS (1 000) */
  discoveryDialDelayMs?: number
  /**
   * Shortest time between two dials to one peer caused by discovery sightings (`peerDiscovered()`),
   * in ms. Only peers whose last failure was "unreachable" are redialled by a sighting.
   * @default SIGHTING_DIAL_INTERVAL_MS (500)
   */
  sightingDialIntervalMs?: number
  /** Refusal period after this node closed a peer's channel, in ms (doubles per repeat). @default CLOSE_COOLDOWN_MS (1 000) */
  closeCooldownMs?: number
  /** Source of randomness for jitter (seed it in tests). @default Math.random */
  random?: () => number
}

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
  source: 'discovery' | 'bootstrap' | 'connect' | 'inbound'
  connected: boolean
  channel: boolean
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

export interface ChannelStatus {
  peer: string
  /** 'outbound' when this node opened the stream. */
  direction: 'inbound' | 'outbound'
  remoteAddr: string
  openedAt: number
  bytesSent: number
  bytesReceived: number
  framesSent: number
  framesReceived: number
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
}

/** Why the last dial to a peer failed: it could not be reached, or it refused us. */
export type FailureKind = 'unreachable' | 'refused'

interface PeerState {
  id: string
  peerId: PeerId
  source: PeerStatus['source']
  /** Redial for as long as the node runs (bootstrap, connect()). */
  persistent: boolean
  /** Addresses to dial instead of the peer store's (bootstrap). */
  addrs?: Multiaddr[]
  channel?: StreamChannel
  opening?: Promise<void>
  /** The connection a channel is being opened on. */
  openingOn?: Connection
  dialing?: Promise<void>
  dialTimer?: ReturnType<typeof setTimeout>
  nextDialAt?: number
  /** Addresses the pending dial uses (from the sighting that scheduled it) instead of the peer store's. */
  nextDialAddrs?: Multiaddr[]
  /** When the last dial started (ms since epoch). */
  lastDialAt?: number
  dialFailures: number
  lastFailure?: FailureKind
  /** Given up on (removed from the peer store) and not reached since. */
  givenUp: boolean
  openTimer?: ReturnType<typeof setTimeout>
  /** When a channel last opened (ms since epoch). */
  channelOpenedAt?: number
  /** Channels in a row that closed before becoming stable. */
  churn: number
  closeStrikes: number
  refusedUntil: number
  unsupported: boolean
  waiters: Set<() => void>
}

interface BootstrapTarget { addr: Multiaddr, peerId?: string, failures: number, timer?: ReturnType<typeof setTimeout>, dialing: boolean }

const STOPPED = 'transport stopped'

class HearsaySyncService implements HearsaySync, Startable {
  readonly protocol: string
  readonly transport: Transport
  readonly [Symbol.toStringTag] = '@hearsay/libp2p'
  readonly [serviceCapabilities]: string[] = ['@hearsay/sync']

  private readonly components: HearsaySyncComponents
  private readonly log: Log
  private readonly maxFrameBytes: number
  private readonly dialOnDiscovery: boolean
  private readonly allow: Set<string> | undefined
  private readonly dialTimeoutMs: number
  private readonly streamOpenTimeoutMs: number
  private readonly connectTimeoutMs: number
  private readonly backoffInitial: number
  private readonly backoffMax: number
  private readonly jitter: number
  private readonly maxRedial: number
  private readonly discoveryDelay: number
  private readonly sightingInterval: number
  private readonly closeCooldown: number
  private readonly random: () => number
  private readonly onDialFailure: ((peer: string, err: unknown) => void) | undefined
  private readonly bootstrap: BootstrapTarget[]
  private readonly localId: string
  private readonly states = new Map<string, PeerState>()
  private handler: TransportHandler | undefined
  private serviceStarted = false

  constructor (components: HearsaySyncComponents, init: HearsaySyncInit = {}) {
    this.components = components
    this.protocol = init.protocol ?? PROTOCOL_ID
    this.log = (init.logger ?? silentLogger()).forComponent(`hearsay:libp2p:${components.peerId.toString().slice(-8)}`)
    this.maxFrameBytes = positive('maxFrameBytes', init.maxFrameBytes ?? MAX_FRAME_BYTES)
    if (this.maxFrameBytes < MIN_FRAME_BYTES) throw new ConfigError(`maxFrameBytes must be at least ${MIN_FRAME_BYTES}, got ${this.maxFrameBytes}`)
    this.dialOnDiscovery = init.dialOnDiscovery ?? true
    this.allow = init.allowPeers === undefined ? undefined : new Set(init.allowPeers.map(p => parsePeerId(p, 'allowPeers').toString()))
    this.dialTimeoutMs = positive('dialTimeoutMs', init.dialTimeoutMs ?? DIAL_TIMEOUT_MS)
    this.streamOpenTimeoutMs = positive('streamOpenTimeoutMs', init.streamOpenTimeoutMs ?? STREAM_OPEN_TIMEOUT_MS)
    this.connectTimeoutMs = positive('connectTimeoutMs', init.connectTimeoutMs ?? CONNECT_TIMEOUT_MS)
    this.backoffInitial = positive('backoff.initialMs', init.backoff?.initialMs ?? BACKOFF_INITIAL_MS)
    this.backoffMax = positive('backoff.maxMs', init.backoff?.maxMs ?? BACKOFF_MAX_MS)
    this.jitter = init.backoff?.jitter ?? BACKOFF_JITTER
    if (!(this.jitter >= 0 && this.jitter < 1)) throw new ConfigError(`backoff.jitter must be in [0, 1), got ${this.jitter}`)
    this.maxRedial = positive('maxRedialAttempts', init.maxRedialAttempts ?? MAX_REDIAL_ATTEMPTS)
    this.discoveryDelay = nonNegative('discoveryDialDelayMs', init.discoveryDialDelayMs ?? DISCOVERY_DIAL_DELAY_MS)
    this.sightingInterval = nonNegative('sightingDialIntervalMs', init.sightingDialIntervalMs ?? SIGHTING_DIAL_INTERVAL_MS)
    this.closeCooldown = nonNegative('closeCooldownMs', init.closeCooldownMs ?? CLOSE_COOLDOWN_MS)
    this.random = init.random ?? Math.random
    this.onDialFailure = init.onDialFailure
    this.bootstrap = (init.bootstrap ?? []).map(a => {
      let addr: Multiaddr
      try {
        addr = typeof a === 'string' ? multiaddr(a) : a
      } catch (err) {
        throw new ConfigError(`bootstrap address "${String(a)}" is not a valid multiaddr`, { cause: err })
      }
      const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
      return { addr, peerId: id, failures: 0, dialing: false }
    })
    this.localId = components.peerId.toString()
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

  private async startTransport (handler: TransportHandler): Promise<void> {
    if (this.handler !== undefined) return
    if (!this.serviceStarted) throw new NotStartedError('the libp2p node is not started: start it before the Hearsay node')
    this.handler = handler
    this.log(`transport started as ${this.localId}`)
    // peers connected before the engine started
    for (const conn of this.components.connectionManager.getConnections()) this.onConnection(conn)
    for (const target of this.bootstrap) void this.dialBootstrap(target)
  }

  private async stopTransport (): Promise<void> {
    if (this.handler === undefined) return
    this.handler = undefined
    for (const target of this.bootstrap) {
      if (target.timer !== undefined) clearTimeout(target.timer)
      target.timer = undefined
      target.failures = 0
    }
    for (const st of this.states.values()) {
      this.clearTimers(st)
      st.channel?.close(STOPPED)
      for (const w of st.waiters) w()
    }
    this.states.clear()
    this.log('transport stopped')
  }

  private async connect (peer: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.handler === undefined) throw new NotStartedError('transport is not started')
    const peerId = parsePeerId(peer, 'connect()')
    const id = peerId.toString()
    if (id === this.localId) throw new ConfigError('cannot connect to this node itself')
    if (!this.allowed(id)) throw new PeerUnavailableError(`peer ${id} is not in allowPeers`)
    const st = this.state(peerId, 'connect')
    st.persistent = true
    if (st.channel?.isOpen === true) return
    st.refusedUntil = 0 // an explicit request lifts this node's own cool-down
    const signal = anySignal(options.signal, AbortSignal.timeout(this.connectTimeoutMs))
    if (this.openConnections(peerId).length === 0) {
      try {
        await this.components.connectionManager.openConnection(st.addrs ?? peerId, { signal: anySignal(signal, AbortSignal.timeout(this.dialTimeoutMs)) })
      } catch (err) {
        throw new PeerUnavailableError(`cannot reach ${id}: ${(err as Error).message}`, { cause: err })
      }
    }
    if (this.initiates(id)) await this.openChannel(st)
    await this.waitForChannel(st, signal)
  }

  private async waitForChannel (st: PeerState, signal: AbortSignal): Promise<void> {
    if (st.channel?.isOpen === true) return
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        st.waiters.delete(done)
        signal.removeEventListener('abort', onAbort)
        if (st.channel?.isOpen === true) resolve()
        else reject(new PeerUnavailableError(`no channel to ${st.id}: ${this.handler === undefined ? STOPPED : 'closed'}`))
      }
      const onAbort = (): void => {
        st.waiters.delete(done)
        reject(new PeerUnavailableError(`no channel to ${st.id} within the time allowed`, { cause: signal.reason }))
      }
      if (signal.aborted) { onAbort(); return }
      st.waiters.add(done)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  // ---- status ----

  peers (): PeerStatus[] {
    const now = Date.now()
    return [...this.states.values()].map(st => ({
      id: st.id,
      source: st.source,
      connected: this.openConnections(st.peerId).length > 0,
      channel: st.channel?.isOpen === true,
      dialFailures: st.dialFailures,
      ...(st.lastFailure !== undefined ? { lastFailure: st.lastFailure } : {}),
      ...(st.nextDialAt !== undefined ? { nextDialAt: st.nextDialAt } : {}),
      ...(st.refusedUntil > now ? { refusedUntil: st.refusedUntil } : {}),
      unsupported: st.unsupported
    }))
  }

  channels (): ChannelStatus[] {
    const out: ChannelStatus[] = []
    for (const st of this.states.values()) {
      const ch = st.channel
      if (ch?.isOpen !== true) continue
      out.push({
        peer: st.id,
        direction: ch.stream.direction,
        remoteAddr: ch.connection.remoteAddr.toString(),
        openedAt: ch.openedAt,
        bytesSent: ch.bytesSent,
        bytesReceived: ch.bytesReceived,
        framesSent: ch.framesSent,
        framesReceived: ch.framesReceived
      })
    }
    return out
  }

  // ---- events ----

  private onConnectionOpen (evt: CustomEvent<Connection>): void {
    this.onConnection(evt.detail)
  }

  private onConnection (conn: Connection): void {
    if (this.handler === undefined || conn.status !== 'open' || conn.limits != null) return
    const id = conn.remotePeer.toString()
    if (!this.allowed(id)) return
    const st = this.state(conn.remotePeer, conn.direction === 'inbound' ? 'inbound' : 'discovery')
    // connected: no dial is due, but the failure count stays until a channel opens (or the link
    // proves stable), so a peer that drops us right after the handshake still backs off
    st.nextDialAt = undefined
    if (st.dialTimer !== undefined) clearTimeout(st.dialTimer)
    st.dialTimer = undefined
    if (this.initiates(id) && st.channel === undefined) this.scheduleOpen(st, 0)
    this.pruneDuplicates(st)
  }

  /**
   * Both sides dialled at once: keep one connection per peer. Only the peer that opens the channel
   * (the lower id) closes connections, so the two sides never close different ones: it keeps the
   * connection carrying the channel (or the one a channel is being opened on, else the oldest) and
   * closes the others.
   */
  private pruneDuplicates (st: PeerState): void {
    if (this.handler === undefined || !this.initiates(st.id)) return
    const conns = this.openConnections(st.peerId)
    if (conns.length < 2) return
    const keep = st.channel?.isOpen === true ? st.channel.connection : (st.openingOn ?? conns[0])
    for (const c of conns) {
      if (c.id === keep?.id) continue
      this.log(`closing a duplicate connection to ${st.id} (${c.direction}, ${c.remoteAddr.toString()})`)
      c.close({ signal: AbortSignal.timeout(this.dialTimeoutMs) }).catch((err: Error) => { c.abort(err) })
    }
  }

  private onConnectionClose (evt: CustomEvent<Connection>): void {
    if (this.handler === undefined) return
    const conn = evt.detail
    const st = this.states.get(conn.remotePeer.toString())
    if (st !== undefined && this.openConnections(st.peerId).length === 0) this.countLink(st, conn)
    if (st === undefined || this.openConnections(st.peerId).length > 0) {
      // another connection survives: the channel (if it was on this one) is re-opened there
      if (st !== undefined && st.channel === undefined && this.initiates(st.id)) this.scheduleOpen(st, 0)
      return
    }
    this.log(`link to ${st.id} closed`)
    for (const target of this.bootstrap) {
      if (target.peerId === st.id) this.scheduleBootstrap(target)
    }
    if (st.addrs === undefined) this.scheduleDial(st)
  }

  /**
   * A closed link counts as a success when it stayed up `STABLE_LINK_MS`, and as a failed dial when
   * it dropped before a channel opened on it (e.g. the peer's gater refused us after the handshake).
   */
  private countLink (st: PeerState, conn: Connection): void {
    const opened = conn.timeline.open
    const lived = Date.now() - opened
    if (lived >= STABLE_LINK_MS) {
      this.resetFailures(st)
      return
    }
    if (st.channelOpenedAt !== undefined && st.channelOpenedAt >= opened) return
    st.dialFailures++
    st.lastFailure = 'refused'
    for (const target of this.bootstrap) {
      if (target.peerId === st.id) target.failures++
    }
    this.log(`link to ${st.id} dropped after ${lived} ms before a channel opened (failure ${st.dialFailures})`)
  }

  private resetFailures (st: PeerState): void {
    st.dialFailures = 0
    st.lastFailure = undefined
    st.givenUp = false
    for (const target of this.bootstrap) {
      if (target.peerId === st.id) target.failures = 0
    }
  }

  private onDiscoveryEvent (evt: CustomEvent<PeerInfo>): void {
    // an entry made by a metadata write (e.g. a dial failure record) carries no address: not a sighting
    if (evt.detail.multiaddrs.length === 0) return
    this.peerDiscovered(evt.detail)
  }

  /** New addresses for a known, disconnected peer are fresh evidence it is reachable: treat them as a sighting. */
  private onPeerUpdate (evt: CustomEvent<PeerUpdate>): void {
    const { peer, previous } = evt.detail
    if (previous === undefined || this.handler === undefined) return
    const st = this.states.get(peer.id.toString())
    if (st === undefined || st.source !== 'discovery' || this.openConnections(peer.id).length > 0) return
    const known = new Set(previous.addresses.map(a => a.multiaddr.toString()))
    const fresh = peer.addresses.filter(a => !known.has(a.multiaddr.toString())).map(a => a.multiaddr)
    if (fresh.length === 0) return
    this.log.trace(`new addresses for ${st.id}: ${fresh.map(a => a.toString()).join(', ')}`)
    this.peerDiscovered({ id: peer.id, multiaddrs: peer.addresses.map(a => a.multiaddr) })
  }

  peerDiscovered (info: PeerInfo): void {
    if (this.handler === undefined || !this.dialOnDiscovery) return
    const id = info.id.toString()
    if (id === this.localId) return
    if (!this.allowed(id)) {
      this.log.trace(`not dialling ${id}: not in allowPeers`)
      return
    }
    const st = this.state(info.id, 'discovery')
    if (st.source === 'inbound') st.source = 'discovery'
    if (this.openConnections(info.id).length > 0 || st.dialing !== undefined) return
    const addrs = info.multiaddrs.length > 0 ? info.multiaddrs.map(a => withPeerId(a, id)) : undefined
    const now = Date.now()
    if (st.lastFailure === 'refused') {
      // a refusal is not cured by being seen again: keep the backoff and the failure count; only a
      // peer given up on (no retry pending) gets its next retry, after its current delay
      if (st.dialTimer === undefined) {
        this.log.trace(`${id} seen again; it refused us last time, retrying after the backoff`)
        this.setDialTimer(st, this.backoff(st.dialFailures + 1), addrs)
      }
      return
    }
    // new, or unreachable last time: seeing it is fresh evidence it is back, so dial it now,
    // but not more often than sightingDialIntervalMs
    const pairDelay = this.initiates(id) ? 0 : this.discoveryDelay * (1 + this.jitter * this.random())
    const spacing = st.lastDialAt === undefined ? 0 : st.lastDialAt + this.sightingInterval - now
    const delay = Math.max(pairDelay, spacing, 0)
    if (st.dialTimer !== undefined && st.nextDialAt !== undefined && st.nextDialAt <= now + delay) return
    if (st.dialFailures > 0) this.log.trace(`${id} seen again after ${st.dialFailures} unreachable dials: redialling in ${Math.round(delay)} ms`)
    this.setDialTimer(st, delay, addrs)
  }

  // ---- dialling ----

  private state (peerId: PeerId, source: PeerStatus['source']): PeerState {
    const id = peerId.toString()
    let st = this.states.get(id)
    if (st === undefined) {
      st = { id, peerId, source, persistent: false, dialFailures: 0, givenUp: false, churn: 0, closeStrikes: 0, refusedUntil: 0, unsupported: false, waiters: new Set() }
      this.states.set(id, st)
    }
    return st
  }

  private backoff (attempt: number): number {
    const base = Math.min(this.backoffMax, this.backoffInitial * 2 ** Math.max(0, attempt - 1))
    return Math.round(base * (1 + this.jitter * (2 * this.random() - 1)))
  }

  private scheduleDial (st: PeerState): void {
    if (this.handler === undefined) return
    if (!st.persistent && st.source === 'inbound') return // it found us; it will come back
    if (!st.persistent && st.dialFailures >= this.maxRedial) {
      const line = `giving up on ${st.id} after ${st.dialFailures} failed dials (until it is discovered again)`
      if (st.givenUp) this.log.trace(line)
      else this.log(line)
      st.givenUp = true
      st.nextDialAt = undefined
      st.nextDialAddrs = undefined
      // libp2p reports a peer as discovered only when it enters the peer store: forget it there, so
      // the next sighting (an mDNS announcement) is reported again and dialled at once
      this.components.peerStore.delete(st.peerId).catch((err: unknown) => {
        this.log(`could not forget ${st.id} in the peer store: ${describe(err)}`)
      })
      return
    }
    this.setDialTimer(st, this.backoff(st.dialFailures + 1))
  }

  private setDialTimer (st: PeerState, delay: number, addrs?: Multiaddr[]): void {
    if (st.dialTimer !== undefined) clearTimeout(st.dialTimer)
    st.nextDialAt = Date.now() + delay
    st.nextDialAddrs = addrs
    st.dialTimer = setTimeout(() => {
      const target = st.nextDialAddrs
      st.dialTimer = undefined
      st.nextDialAt = undefined
      st.nextDialAddrs = undefined
      void this.dial(st, target)
    }, delay)
    st.dialTimer.unref?.()
  }

  /** Dial a peer: its bootstrap address, else the addresses of the sighting that scheduled it, else the peer store's. */
  private async dial (st: PeerState, seen?: Multiaddr[]): Promise<void> {
    if (this.handler === undefined || st.dialing !== undefined) return
    if (this.openConnections(st.peerId).length > 0) return
    st.lastDialAt = Date.now()
    const attempt = (async () => {
      try {
        this.log.trace(`dialling ${st.id}`)
        await this.components.connectionManager.openConnection(st.addrs ?? seen ?? st.peerId, { signal: AbortSignal.timeout(this.dialTimeoutMs) })
      } catch (err) {
        st.dialFailures++
        st.lastFailure = failureKind(err)
        this.onDialFailure?.(st.id, err)
        const msg = `dial to ${st.id} failed (attempt ${st.dialFailures}, ${st.lastFailure}): ${describe(err)}`
        if (st.dialFailures === 1) this.log.warn(msg)
        else this.log(msg)
        this.scheduleDial(st)
      } finally {
        st.dialing = undefined
      }
    })()
    st.dialing = attempt
    await attempt
  }

  private async dialBootstrap (target: BootstrapTarget): Promise<void> {
    if (this.handler === undefined || target.dialing) return
    if (target.peerId !== undefined && this.openConnections(peerIdFromString(target.peerId)).length > 0) return
    target.dialing = true
    try {
      const conn = await this.components.connectionManager.openConnection(target.addr, { signal: AbortSignal.timeout(this.dialTimeoutMs) })
      // failures are reset once a channel opens on the link (or it stays up), not on the dial alone
      target.peerId = conn.remotePeer.toString()
      const st = this.state(conn.remotePeer, 'bootstrap')
      st.source = 'bootstrap'
      st.persistent = true
      st.addrs = [target.addr]
    } catch (err) {
      target.failures++
      this.onDialFailure?.(target.peerId ?? target.addr.toString(), err)
      const msg = `dial to bootstrap ${target.addr.toString()} failed (attempt ${target.failures}): ${describe(err)}`
      if (target.failures === 1) this.log.warn(msg)
      else this.log(msg)
      this.scheduleBootstrap(target)
    } finally {
      target.dialing = false
    }
  }

  private scheduleBootstrap (target: BootstrapTarget): void {
    if (this.handler === undefined) return
    if (target.timer !== undefined) clearTimeout(target.timer)
    target.timer = setTimeout(() => {
      target.timer = undefined
      void this.dialBootstrap(target)
    }, this.backoff(target.failures + 1))
    target.timer.unref?.()
  }

  // ---- channels ----

  /** Only the lower peer id opens the stream: both sides agree, so there is never a duplicate. */
  private initiates (remoteId: string): boolean {
    return this.localId < remoteId
  }

  private allowed (id: string): boolean {
    return this.allow === undefined || this.allow.has(id)
  }

  private openConnections (peerId: PeerId): Connection[] {
    return this.components.connectionManager.getConnections(peerId)
      .filter(c => c.status === 'open' && c.limits == null)
      .sort((a, b) => a.timeline.open - b.timeline.open)
  }

  private scheduleOpen (st: PeerState, delay: number): void {
    if (this.handler === undefined || st.unsupported) return
    if (st.openTimer !== undefined) clearTimeout(st.openTimer)
    const wait = Math.max(delay, st.refusedUntil - Date.now())
    st.openTimer = setTimeout(() => {
      st.openTimer = undefined
      void this.openChannel(st)
    }, wait)
    st.openTimer.unref?.()
  }

  private async openChannel (st: PeerState): Promise<void> {
    if (this.handler === undefined || st.channel?.isOpen === true || st.unsupported) return
    if (st.opening !== undefined) { await st.opening; return }
    if (st.refusedUntil > Date.now()) { this.scheduleOpen(st, 0); return }
    const [conn] = this.openConnections(st.peerId)
    if (conn === undefined) return
    st.openingOn = conn
    const attempt = (async () => {
      let stream: Stream
      try {
        stream = await conn.newStream(this.protocol, { signal: AbortSignal.timeout(this.streamOpenTimeoutMs), runOnLimitedConnection: false })
      } catch (err) {
        if ((err as Error).name === 'UnsupportedProtocolError') {
          st.unsupported = true
          this.log.warn(`peer ${st.id} does not speak ${this.protocol}; not syncing with it`)
          return
        }
        st.churn++
        this.log(`opening a stream to ${st.id} failed: ${describe(err)}`)
        if (this.openConnections(st.peerId).length > 0) this.scheduleOpen(st, this.backoff(st.churn))
        return
      }
      if (this.handler === undefined || st.channel?.isOpen === true) {
        stream.abort(new Error(STOPPED))
        return
      }
      this.install(st, stream, conn)
    })()
    st.opening = attempt
    try {
      await attempt
    } finally {
      st.opening = undefined
      st.openingOn = undefined
    }
  }

  private onInbound (stream: Stream, conn: Connection): void {
    const id = conn.remotePeer.toString()
    if (this.handler === undefined) {
      stream.abort(new Error('Hearsay is not running on this node'))
      return
    }
    if (!this.allowed(id)) {
      this.log.warn(`refused a sync stream from ${id}: not in allowPeers`)
      stream.abort(new Error('not allowed'))
      return
    }
    if (this.initiates(id)) {
      // the rule says this node opens; a peer that opens anyway is out of turn (or a different version)
      this.log.warn(`refused a sync stream from ${id}: the peer with the lower id opens the stream`)
      stream.abort(new Error('out of turn: the lower peer id opens the stream'))
      return
    }
    const st = this.state(conn.remotePeer, 'inbound')
    if (st.refusedUntil > Date.now()) {
      this.log(`refused a sync stream from ${id}: cooling down for ${st.refusedUntil - Date.now()} ms after closing its channel`)
      stream.abort(new Error('cooling down'))
      return
    }
    if (st.channel?.isOpen === true) st.channel.close('replaced by a new stream from the peer')
    this.install(st, stream, conn)
  }

  private install (st: PeerState, stream: Stream, conn: Connection): void {
    const handler = this.handler
    if (handler === undefined) return
    const ch = new StreamChannel({
      remoteId: st.id,
      stream,
      connection: conn,
      maxFrameBytes: this.maxFrameBytes,
      log: this.log,
      onClosed: (c, reason, local, error) => { this.onChannelClosed(st, c, reason, local, error) }
    })
    st.channel = ch
    st.channelOpenedAt = Date.now()
    this.resetFailures(st)
    this.log(`channel to ${st.id} open (${stream.direction}, ${conn.remoteAddr.toString()})`)
    ch.attach(handler.onChannel(ch))
    for (const w of [...st.waiters]) w()
    this.pruneDuplicates(st)
  }

  private onChannelClosed (st: PeerState, ch: StreamChannel, reason: string | undefined, local: boolean, error: boolean): void {
    if (st.channel === ch) st.channel = undefined
    if (reason === STOPPED) return
    const stable = Date.now() - ch.openedAt >= STABLE_CHANNEL_MS
    if (stable) {
      st.churn = 0
      st.closeStrikes = 0
    } else {
      st.churn++
    }
    if (local) {
      st.closeStrikes++
      const cooldown = Math.min(this.backoffMax, this.closeCooldown * 2 ** (st.closeStrikes - 1))
      st.refusedUntil = Date.now() + cooldown
      const line = `closed the channel to ${st.id}: ${reason ?? 'no reason given'} (refusing it for ${cooldown} ms)`
      if (error) this.log.warn(line)
      else this.log(line)
    } else {
      this.log(`channel to ${st.id} closed: ${reason ?? 'no reason given'}`)
    }
    if (this.handler !== undefined && this.initiates(st.id) && this.openConnections(st.peerId).length > 0) {
      this.scheduleOpen(st, this.backoff(st.churn))
    }
  }

  private clearTimers (st: PeerState): void {
    if (st.dialTimer !== undefined) clearTimeout(st.dialTimer)
    if (st.openTimer !== undefined) clearTimeout(st.openTimer)
    st.dialTimer = undefined
    st.openTimer = undefined
    st.nextDialAt = undefined
  }
}

function positive (name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ConfigError(`${name} must be a positive number, got ${String(v)}`)
  return v
}

function nonNegative (name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`${name} must be a number >= 0, got ${String(v)}`)
  return v
}

/** Parse a peer id string, with a typed error naming where it came from. */
export function parsePeerId (id: string, where: string): PeerId {
  try {
    return peerIdFromString(id)
  } catch (err) {
    throw new InvalidPeerIdError(`${where}: "${id}" is not a valid peer id`, { cause: err })
  }
}

/** Add `/p2p/<id>` to an address that lacks it, so the dial checks it reaches that peer. */
function withPeerId (addr: Multiaddr, id: string): Multiaddr {
  return addr.getComponents().some(c => c.name === 'p2p') ? addr : addr.encapsulate(`/p2p/${id}`)
}

/**
 * Errors that mean the peer was reached and refused us (or we refused it): the handshake was denied
 * or failed, a different peer answered, or the connection was reset. Anything else (refused or
 * unreachable TCP port, timeout, no address) means the peer could not be reached.
 */
const REFUSAL_ERRORS = new Set([
  'DialDeniedError', 'ConnectionDeniedError', 'ConnectionInterceptedError', 'EncryptionFailedError',
  'MuxerUnavailableError', 'InvalidCryptoExchangeError', 'UnexpectedPeerError'
])
const REFUSAL_CODES = new Set(['ECONNRESET', 'EPIPE'])

/** Classify a dial error, looking through `cause` and aggregated errors. */
export function failureKind (err: unknown, depth = 0): FailureKind {
  if (err === null || typeof err !== 'object' || depth > 4) return 'unreachable'
  const e = err as { name?: string, code?: string, cause?: unknown, errors?: unknown[] }
  if ((e.name !== undefined && REFUSAL_ERRORS.has(e.name)) || (e.code !== undefined && REFUSAL_CODES.has(e.code))) return 'refused'
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    if (inner !== undefined && failureKind(inner, depth + 1) === 'refused') return 'refused'
  }
  return 'unreachable'
}

function anySignal (a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a === undefined ? b : AbortSignal.any([a, b])
}

function describe (err: unknown): string {
  const e = err as { name?: string, message?: string, code?: string }
  const text = `${e.name ?? 'Error'}: ${e.message ?? String(err)}`
  return e.code !== undefined && !text.includes(e.code) ? `${text} (${e.code})` : text
}

/**
 * The libp2p service factory: `services: { hearsay: hearsaySync({ logger }) }`, then
 * `createNode({ id: libp2p.peerId.toString(), transport: libp2p.services.hearsay.transport })`.
 */
export function hearsaySync (init: HearsaySyncInit = {}): (components: HearsaySyncComponents) => HearsaySync {
  return (components) => new HearsaySyncService(components, init)
}
