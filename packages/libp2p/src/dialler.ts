/**
 * The dialler: which peers this node dials, when, and how it backs off. It owns the per-peer dial
 * state (why the peer is dialled, failures and their kind, the pending retry), the bootstrap
 * targets, the backoff with jitter, and the rules for discovery sightings. It knows nothing about
 * channels: the service tells it when a peer was reached (`reached()`), when a link came up
 * (`linkUp()`) and when the last link to a peer went down (`linkDown()`).
 *
 * Failed dials are retried with exponential backoff and jitter. A link that drops before a
 * channel opened on it counts as a failed dial ("refused"). A discovered peer given up on is
 * removed from the peer store, so libp2p reports its next sighting as a new discovery. A sighting
 * redials a disconnected peer at once when its last failure was "unreachable", at most once per
 * `sightingDialIntervalMs`; a peer whose last failure was a refusal keeps its backoff and failure
 * count. Bootstrap addresses are redialled for as long as the node runs.
 *
 * Time comes from the injected `Timers`, so every rule here runs on a virtual clock in tests.
 */
import type { Log, Timers } from '@hearsay/core'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { STABLE_LINK_MS } from './constants.js'
import { describeError } from './errors.js'
import { timeoutSignal } from './signals.js'

/** Why the last dial to a peer failed: it could not be reached, or it refused us. */
export type FailureKind = 'unreachable' | 'refused'

/** Why this node dials a peer: found by discovery, a bootstrap address, `connect()`, or it connected to us. */
export type PeerSource = 'discovery' | 'bootstrap' | 'connect' | 'inbound'

/** Retry delays: `min(maxMs, initialMs·2^(attempt-1))·(1 ± jitter)`. */
export class Backoff {
  constructor (
    readonly initialMs: number,
    readonly maxMs: number,
    readonly jitter: number,
    private readonly random: () => number
  ) {}

  /** Delay before retry number `attempt` (1 for the first retry). */
  delay (attempt: number): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.max(0, attempt - 1))
    return Math.round(base * (1 + this.jitter * (2 * this.random() - 1)))
  }

  /** `ms` stretched by up to `jitter`, never shortened. */
  stretch (ms: number): number {
    return ms * (1 + this.jitter * this.random())
  }
}

/** What the dialler needs from libp2p. */
export interface DialNetwork {
  /** Open a connection to a peer (by id, or at these addresses); resolves with the peer reached. */
  dial: (target: PeerId | Multiaddr | Multiaddr[], signal: AbortSignal) => Promise<{ remotePeer: PeerId }>
  /** Whether an open connection to the peer exists. */
  connected: (peer: PeerId) => boolean
  /** Forget the peer in the peer store, so its next sighting is reported as a new discovery. */
  forget: (peer: PeerId) => Promise<void>
}

export interface DiallerInit {
  network: DialNetwork
  timers: Timers
  log: Log
  backoff: Backoff
  /** Whether this node opens the channel to `id` (it then dials a new discovery at once). */
  initiates: (id: string) => boolean
  bootstrap: Multiaddr[]
  dialTimeoutMs: number
  maxRedialAttempts: number
  discoveryDialDelayMs: number
  sightingDialIntervalMs: number
  onDialFailure?: (peer: string, err: unknown) => void
}

/** The dialler's view of one peer. */
export interface DialState {
  readonly id: string
  readonly peerId: PeerId
  source: PeerSource
  /** Redial for as long as the node runs (bootstrap, connect()). */
  persistent: boolean
  /** Addresses to dial instead of the peer store's (bootstrap). */
  addrs?: Multiaddr[]
  dialing?: Promise<void>
  timer?: unknown
  nextDialAt?: number
  /** Addresses the pending dial uses (from the sighting that scheduled it) instead of the peer store's. */
  nextDialAddrs?: Multiaddr[]
  lastDialAt?: number
  failures: number
  lastFailure?: FailureKind
  /** Given up on (removed from the peer store) and not reached since. */
  givenUp: boolean
}

/** A bootstrap address, dialled on start and whenever the link to its peer drops. */
interface BootstrapTarget { addr: Multiaddr, peerId?: string, failures: number, timer?: unknown, dialing: boolean }

export class Dialler {
  private readonly init: DiallerInit
  private readonly net: DialNetwork
  private readonly timers: Timers
  private readonly log: Log
  private readonly backoff: Backoff
  private readonly bootstrap: BootstrapTarget[]
  private readonly states = new Map<string, DialState>()
  private running = false

  constructor (init: DiallerInit) {
    this.init = init
    this.net = init.network
    this.timers = init.timers
    this.log = init.log
    this.backoff = init.backoff
    this.bootstrap = init.bootstrap.map(addr => {
      const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
      return { addr, peerId: id, failures: 0, dialing: false }
    })
  }

  /** Start dialling: the bootstrap addresses at once, then whatever sightings and lost links ask for. */
  start (): void {
    if (this.running) return
    this.running = true
    for (const target of this.bootstrap) void this.dialBootstrap(target)
  }

  /** Cancel every pending dial and forget every peer. */
  stop (): void {
    this.running = false
    for (const target of this.bootstrap) {
      this.timers.clearTimeout(target.timer)
      target.timer = undefined
      target.failures = 0
    }
    for (const st of this.states.values()) this.cancel(st)
    this.states.clear()
  }

  get (id: string): Readonly<DialState> | undefined {
    return this.states.get(id)
  }

  /** Every peer known, in the order first seen. */
  list (): Array<Readonly<DialState>> {
    return [...this.states.values()]
  }

  /** The peer's state, created with `source` when it is new. */
  track (peerId: PeerId, source: PeerSource): Readonly<DialState> {
    return this.state(peerId, source)
  }

  /** Keep redialling this peer for as long as the node runs; returns what to dial it by. */
  persist (peerId: PeerId, source: PeerSource): PeerId | Multiaddr[] {
    const st = this.state(peerId, source)
    st.persistent = true
    return st.addrs ?? peerId
  }

  /** A connection to the peer opened: no dial is due. */
  linkUp (id: string): void {
    const st = this.states.get(id)
    if (st === undefined) return
    // the failure count stays until a channel opens (or the link proves stable), so a peer that
    // drops us right after the handshake still backs off
    this.cancel(st)
  }

  /** A channel opened to the peer: its failures are forgiven. */
  reached (id: string): void {
    const st = this.states.get(id)
    if (st !== undefined) this.resetFailures(st)
  }

  /**
   * The last connection to the peer closed. It counts as a success when it stayed up
   * `STABLE_LINK_MS`, and as a refusal when it dropped before a channel opened on it (e.g. the
   * peer's gater refused us after the handshake). Then the peer is redialled after its backoff.
   */
  linkDown (id: string, openedAt: number, channelOpenedAt: number | undefined): void {
    const st = this.states.get(id)
    if (!this.running || st === undefined) return
    const lived = this.timers.now() - openedAt
    if (lived >= STABLE_LINK_MS) {
      this.resetFailures(st)
    } else if (channelOpenedAt === undefined || channelOpenedAt < openedAt) {
      st.failures++
      st.lastFailure = 'refused'
      for (const target of this.targetsOf(id)) target.failures++
      this.log(`link to ${id} dropped after ${lived} ms before a channel opened (failure ${st.failures})`)
    }
    this.log(`link to ${id} closed`)
    for (const target of this.targetsOf(id)) this.scheduleBootstrap(target)
    if (st.addrs === undefined) this.scheduleDial(st)
  }

  /**
   * A discovery mechanism saw the peer. A new peer, or one whose last failure was "unreachable",
   * is dialled now (not more often than `sightingDialIntervalMs`, the higher id after
   * `discoveryDialDelayMs`); one that refused us keeps its backoff.
   */
  sighted (info: PeerInfo): void {
    if (!this.running) return
    const id = info.id.toString()
    const st = this.state(info.id, 'discovery')
    if (st.source === 'inbound') st.source = 'discovery'
    if (this.net.connected(info.id) || st.dialing !== undefined) return
    const addrs = info.multiaddrs.length > 0 ? info.multiaddrs.map(a => withPeerId(a, id)) : undefined
    const now = this.timers.now()
    if (st.lastFailure === 'refused') {
      // a refusal is not cured by being seen again: keep the backoff and the failure count; only a
      // peer given up on (no retry pending) gets its next retry, after its current delay
      if (st.timer === undefined) {
        this.log.trace(`${id} seen again; it refused us last time, retrying after the backoff`)
        this.setDialTimer(st, this.backoff.delay(st.failures + 1), addrs)
      }
      return
    }
    // new, or unreachable last time: seeing it is fresh evidence it is back, so dial it now,
    // but not more often than sightingDialIntervalMs
    const pairDelay = this.init.initiates(id) ? 0 : this.backoff.stretch(this.init.discoveryDialDelayMs)
    const spacing = st.lastDialAt === undefined ? 0 : st.lastDialAt + this.init.sightingDialIntervalMs - now
    const delay = Math.max(pairDelay, spacing, 0)
    if (st.timer !== undefined && st.nextDialAt !== undefined && st.nextDialAt <= now + delay) return
    if (st.failures > 0) this.log.trace(`${id} seen again after ${st.failures} unreachable dials: redialling in ${Math.round(delay)} ms`)
    this.setDialTimer(st, delay, addrs)
  }

  private state (peerId: PeerId, source: PeerSource): DialState {
    const id = peerId.toString()
    let st = this.states.get(id)
    if (st === undefined) {
      st = { id, peerId, source, persistent: false, failures: 0, givenUp: false }
      this.states.set(id, st)
    }
    return st
  }

  private cancel (st: DialState): void {
    this.timers.clearTimeout(st.timer)
    st.timer = undefined
    st.nextDialAt = undefined
  }

  private resetFailures (st: DialState): void {
    st.failures = 0
    st.lastFailure = undefined
    st.givenUp = false
    for (const target of this.targetsOf(st.id)) target.failures = 0
  }

  private targetsOf (id: string): BootstrapTarget[] {
    return this.bootstrap.filter(t => t.peerId === id)
  }

  private scheduleDial (st: DialState): void {
    if (!this.running) return
    if (!st.persistent && st.source === 'inbound') return // it found us; it will come back
    if (!st.persistent && st.failures >= this.init.maxRedialAttempts) {
      const line = `giving up on ${st.id} after ${st.failures} failed dials (until it is discovered again)`
      if (st.givenUp) this.log.trace(line)
      else this.log(line)
      st.givenUp = true
      st.nextDialAt = undefined
      st.nextDialAddrs = undefined
      // libp2p reports a peer as discovered only when it enters the peer store: forget it there, so
      // the next sighting (an mDNS announcement) is reported again and dialled at once
      this.net.forget(st.peerId).catch((err: unknown) => {
        this.log(`could not forget ${st.id} in the peer store: ${describeError(err)}`)
      })
      return
    }
    this.setDialTimer(st, this.backoff.delay(st.failures + 1))
  }

  private setDialTimer (st: DialState, delay: number, addrs?: Multiaddr[]): void {
    this.timers.clearTimeout(st.timer)
    st.nextDialAt = this.timers.now() + delay
    st.nextDialAddrs = addrs
    st.timer = this.timers.setTimeout(() => {
      const target = st.nextDialAddrs
      st.timer = undefined
      st.nextDialAt = undefined
      st.nextDialAddrs = undefined
      void this.dial(st, target)
    }, delay)
  }

  /** Dial a peer: its bootstrap address, else the addresses of the sighting that scheduled it, else the peer store's. */
  private async dial (st: DialState, seen?: Multiaddr[]): Promise<void> {
    if (!this.running || st.dialing !== undefined) return
    if (this.net.connected(st.peerId)) return
    st.lastDialAt = this.timers.now()
    const attempt = (async () => {
      try {
        this.log.trace(`dialling ${st.id}`)
        await this.net.dial(st.addrs ?? seen ?? st.peerId, timeoutSignal(this.timers, this.init.dialTimeoutMs))
      } catch (err) {
        st.failures++
        st.lastFailure = failureKind(err)
        this.init.onDialFailure?.(st.id, err)
        const msg = `dial to ${st.id} failed (attempt ${st.failures}, ${st.lastFailure}): ${describeError(err)}`
        if (st.failures === 1) this.log.warn(msg)
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
    if (!this.running || target.dialing) return
    if (target.peerId !== undefined && this.net.connected(peerIdFromString(target.peerId))) return
    target.dialing = true
    try {
      const conn = await this.net.dial(target.addr, timeoutSignal(this.timers, this.init.dialTimeoutMs))
      // failures are reset once a channel opens on the link (or it stays up), not on the dial alone
      target.peerId = conn.remotePeer.toString()
      const st = this.state(conn.remotePeer, 'bootstrap')
      st.source = 'bootstrap'
      st.persistent = true
      st.addrs = [target.addr]
    } catch (err) {
      target.failures++
      this.init.onDialFailure?.(target.peerId ?? target.addr.toString(), err)
      const msg = `dial to bootstrap ${target.addr.toString()} failed (attempt ${target.failures}): ${describeError(err)}`
      if (target.failures === 1) this.log.warn(msg)
      else this.log(msg)
      this.scheduleBootstrap(target)
    } finally {
      target.dialing = false
    }
  }

  private scheduleBootstrap (target: BootstrapTarget): void {
    if (!this.running) return
    this.timers.clearTimeout(target.timer)
    target.timer = this.timers.setTimeout(() => {
      target.timer = undefined
      void this.dialBootstrap(target)
    }, this.backoff.delay(target.failures + 1))
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
