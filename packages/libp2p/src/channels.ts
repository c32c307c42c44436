/**
 * The channel table: which Hearsay channel is open to each peer, opening it, accepting it,
 * replacing and closing it, and the status behind `channels()` and the channel fields of `peers()`.
 *
 * One channel per peer pair: only the peer with the lower peer id opens the stream, on the oldest
 * open connection (relayed ones last); the other side accepts it. A second inbound stream from the same peer replaces
 * the first (the opener decided the old one is dead). Duplicate connections (both sides dialled at
 * once) therefore never produce two channels, and the opener closes the duplicates. After this
 * node closes a peer's channel it refuses the peer for a cool-down that doubles on every repeat.
 *
 * A channel prefers a connection that does not go through a relay: when a direct or LAN connection
 * to a peer opens while its channel runs over a relayed one (DCUtR punched a hole, mDNS found the
 * peer), the opener closes the relayed connection and the channel re-opens on the other. What
 * relayed channels send is paced together (pacing.ts), and their bytes are counted for status.
 *
 * Dialling is not done here: the table works on the connections libp2p already has.
 */
import { PeerUnavailableError } from '@hearsay/core'
import type { Log, Timers, TransportHandler } from '@hearsay/core'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { StreamChannel } from './channel.js'
import { STABLE_CHANNEL_MS } from './constants.js'
import type { Backoff } from './dialler.js'
import { describeError } from './errors.js'
import type { Pacer } from './pacing.js'
import { isRelayed, localSubnets, pathOf } from './paths.js'
import type { PathKind } from './paths.js'
import { timeoutSignal } from './signals.js'

/** Close reason of the channels shut when the transport stops. */
export const STOPPED = 'transport stopped'

export interface ChannelStatus {
  peer: string
  /** 'outbound' when this node opened the stream. */
  direction: 'inbound' | 'outbound'
  remoteAddr: string
  /** `lan` (an address on this host's own subnets), `direct`, or `relayed` (through a circuit relay). */
  path: PathKind
  openedAt: number
  bytesSent: number
  bytesReceived: number
  framesSent: number
  framesReceived: number
}

export interface ChannelTableInit {
  localId: string
  protocol: string
  maxFrameBytes: number
  streamOpenTimeoutMs: number
  /** Bound on closing a duplicate connection, in ms. */
  closeTimeoutMs: number
  closeCooldownMs: number
  /** Delays of stream re-opens; its `maxMs` caps the cool-down. */
  backoff: Backoff
  timers: Timers
  log: Log
  /** Open connections to the peer that may carry a channel, oldest first. */
  connections: (peer: PeerId) => Connection[]
  /** Paces what relayed channels send, all together. */
  relayPacer: Pacer
  /** A channel to the peer opened. */
  onOpened: (id: string) => void
}

/** What the table keeps per peer. */
export interface ChannelSlot {
  readonly id: string
  readonly peerId: PeerId
  channel?: StreamChannel
  opening?: Promise<void>
  /** The connection a channel is being opened on. */
  openingOn?: Connection
  openTimer?: unknown
  /** When a channel last opened. */
  openedAt?: number
  /** Channels in a row that closed before becoming stable. */
  churn: number
  closeStrikes: number
  /** Until when this node refuses the peer's channel after closing it. */
  refusedUntil: number
  /** The peer does not speak the protocol. */
  unsupported: boolean
  /** `connect()` calls waiting for the channel. */
  waiters: Set<() => void>
}

export class ChannelTable {
  private readonly init: ChannelTableInit
  private readonly timers: Timers
  private readonly log: Log
  private readonly slots = new Map<string, ChannelSlot>()
  private handler: TransportHandler | undefined
  /** Bytes of relayed channels already closed. */
  private readonly relayedClosed = { sent: 0, received: 0 }

  constructor (init: ChannelTableInit) {
    this.init = init
    this.timers = init.timers
    this.log = init.log
  }

  get running (): boolean {
    return this.handler !== undefined
  }

  start (handler: TransportHandler): void {
    this.handler = handler
  }

  /** Close every channel, wake every waiter and forget every peer. */
  stop (): void {
    this.handler = undefined
    for (const slot of this.slots.values()) {
      this.timers.clearTimeout(slot.openTimer)
      slot.openTimer = undefined
      slot.channel?.close(STOPPED)
      for (const w of slot.waiters) w()
    }
    this.slots.clear()
  }

  /** Only the lower peer id opens the stream: both sides agree, so there is never a duplicate. */
  initiates (remoteId: string): boolean {
    return this.init.localId < remoteId
  }

  get (id: string): Readonly<ChannelSlot> | undefined {
    return this.slots.get(id)
  }

  /** The peer's slot, created when it is new. */
  track (peerId: PeerId): Readonly<ChannelSlot> {
    return this.slot(peerId)
  }

  isOpen (id: string): boolean {
    return this.slots.get(id)?.channel?.isOpen === true
  }

  /** An explicit request to connect lifts this node's own cool-down. */
  liftCooldown (id: string): void {
    const slot = this.slots.get(id)
    if (slot !== undefined) slot.refusedUntil = 0
  }

  list (): ChannelStatus[] {
    const out: ChannelStatus[] = []
    const subnets = localSubnets()
    for (const slot of this.slots.values()) {
      const ch = slot.channel
      if (ch?.isOpen !== true) continue
      out.push({
        peer: slot.id,
        direction: ch.stream.direction,
        remoteAddr: ch.connection.remoteAddr.toString(),
        path: pathOf(ch.connection.remoteAddr, subnets),
        openedAt: ch.openedAt,
        bytesSent: ch.bytesSent,
        bytesReceived: ch.bytesReceived,
        framesSent: ch.framesSent,
        framesReceived: ch.framesReceived
      })
    }
    return out
  }

  /** Every open channel. */
  openChannels (): StreamChannel[] {
    const out: StreamChannel[] = []
    for (const slot of this.slots.values()) if (slot.channel?.isOpen === true) out.push(slot.channel)
    return out
  }

  /** Bytes sent and received over relayed channels since start (closed ones and open ones). */
  relayedBytes (): { sent: number, received: number } {
    let { sent, received } = this.relayedClosed
    for (const slot of this.slots.values()) {
      const ch = slot.channel
      if (ch?.isOpen === true && isRelayed(ch.connection.remoteAddr)) {
        sent += ch.bytesSent
        received += ch.bytesReceived
      }
    }
    return { sent, received }
  }

  /** A connection to the peer opened: the opener opens the channel on it, and duplicates are closed. */
  linkUp (peerId: PeerId): void {
    const slot = this.slot(peerId)
    if (this.initiates(slot.id) && slot.channel === undefined) this.scheduleOpen(slot, 0)
    this.pruneDuplicates(slot)
  }

  /** A connection closed but another survives: the channel (if it was on the closed one) is re-opened there. */
  relink (peerId: PeerId): void {
    const slot = this.slot(peerId)
    if (slot.channel === undefined && this.initiates(slot.id)) this.scheduleOpen(slot, 0)
  }

  /** Open the channel now (the opener's side), or wait for the opening under way. */
  async open (peerId: PeerId): Promise<void> {
    await this.openChannel(this.slot(peerId))
  }

  /** Resolves once the peer's channel is open; rejects when the signal aborts or the table stops. */
  async waitFor (peerId: PeerId, signal: AbortSignal): Promise<void> {
    const slot = this.slot(peerId)
    if (slot.channel?.isOpen === true) return
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        slot.waiters.delete(done)
        signal.removeEventListener('abort', onAbort)
        if (slot.channel?.isOpen === true) resolve()
        else reject(new PeerUnavailableError(`no channel to ${slot.id}: ${this.handler === undefined ? STOPPED : 'closed'}`))
      }
      const onAbort = (): void => {
        slot.waiters.delete(done)
        reject(new PeerUnavailableError(`no channel to ${slot.id} within the time allowed`, { cause: signal.reason }))
      }
      if (signal.aborted) { onAbort(); return }
      slot.waiters.add(done)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** A stream the peer opened, already checked to be allowed and in turn. */
  accept (stream: Stream, conn: Connection): void {
    const slot = this.slot(conn.remotePeer)
    const now = this.timers.now()
    if (slot.refusedUntil > now) {
      this.log(`refused a sync stream from ${slot.id}: cooling down for ${slot.refusedUntil - now} ms after closing its channel`)
      stream.abort(new Error('cooling down'))
      return
    }
    if (slot.channel?.isOpen === true) slot.channel.close('replaced by a new stream from the peer')
    this.install(slot, stream, conn)
  }

  private slot (peerId: PeerId): ChannelSlot {
    const id = peerId.toString()
    let slot = this.slots.get(id)
    if (slot === undefined) {
      slot = { id, peerId, churn: 0, closeStrikes: 0, refusedUntil: 0, unsupported: false, waiters: new Set() }
      this.slots.set(id, slot)
    }
    return slot
  }

  /**
   * Both sides dialled at once: keep one connection per peer. Only the peer that opens the channel
   * (the lower id) closes connections, so the two sides never close different ones: it keeps the
   * connection carrying the channel (or the one a channel is being opened on, else the oldest) and
   * closes the others.
   */
  private pruneDuplicates (slot: ChannelSlot): void {
    if (this.handler === undefined || !this.initiates(slot.id)) return
    const conns = this.init.connections(slot.peerId)
    if (conns.length < 2) return
    // the connection carrying the channel stays, unless it is relayed and a better one opened
    // (connections() lists those first): then the relayed one goes and the channel follows
    const current = slot.channel?.isOpen === true ? slot.channel.connection : slot.openingOn
    const better = conns[0] !== undefined && !isRelayed(conns[0].remoteAddr)
    const keep = current !== undefined && (!isRelayed(current.remoteAddr) || !better) ? current : conns[0]
    for (const c of conns) {
      if (c.id === keep?.id) continue
      this.log(`closing a duplicate connection to ${slot.id} (${c.direction}, ${c.remoteAddr.toString()})`)
      c.close({ signal: timeoutSignal(this.timers, this.init.closeTimeoutMs) }).catch((err: Error) => { c.abort(err) })
    }
  }

  private scheduleOpen (slot: ChannelSlot, delay: number): void {
    if (this.handler === undefined || slot.unsupported) return
    this.timers.clearTimeout(slot.openTimer)
    const wait = Math.max(delay, slot.refusedUntil - this.timers.now())
    slot.openTimer = this.timers.setTimeout(() => {
      slot.openTimer = undefined
      void this.openChannel(slot)
    }, wait)
  }

  private async openChannel (slot: ChannelSlot): Promise<void> {
    if (this.handler === undefined || slot.channel?.isOpen === true || slot.unsupported) return
    if (slot.opening !== undefined) { await slot.opening; return }
    if (slot.refusedUntil > this.timers.now()) { this.scheduleOpen(slot, 0); return }
    const [conn] = this.init.connections(slot.peerId)
    if (conn === undefined) return
    slot.openingOn = conn
    const attempt = (async () => {
      let stream: Stream
      try {
        stream = await conn.newStream(this.init.protocol, { signal: timeoutSignal(this.timers, this.init.streamOpenTimeoutMs), runOnLimitedConnection: false })
      } catch (err) {
        if ((err as Error).name === 'UnsupportedProtocolError') {
          slot.unsupported = true
          this.log.warn(`peer ${slot.id} does not speak ${this.init.protocol}; not syncing with it`)
          return
        }
        slot.churn++
        this.log(`opening a stream to ${slot.id} failed: ${describeError(err)}`)
        if (this.init.connections(slot.peerId).length > 0) this.scheduleOpen(slot, this.init.backoff.delay(slot.churn))
        return
      }
      if (this.handler === undefined || slot.channel?.isOpen === true) {
        stream.abort(new Error(STOPPED))
        return
      }
      this.install(slot, stream, conn)
    })()
    slot.opening = attempt
    try {
      await attempt
    } finally {
      slot.opening = undefined
      slot.openingOn = undefined
    }
  }

  private install (slot: ChannelSlot, stream: Stream, conn: Connection): void {
    const handler = this.handler
    if (handler === undefined) return
    const ch = new StreamChannel({
      remoteId: slot.id,
      stream,
      connection: conn,
      maxFrameBytes: this.init.maxFrameBytes,
      log: this.log,
      now: () => this.timers.now(),
      ...(isRelayed(conn.remoteAddr) ? { pacer: { pacer: this.init.relayPacer, timers: this.timers } } : {}),
      onClosed: (c, reason, local, error) => { this.onClosed(slot, c, reason, local, error) }
    })
    slot.channel = ch
    slot.openedAt = this.timers.now()
    this.init.onOpened(slot.id)
    this.log(`channel to ${slot.id} open (${stream.direction}, ${conn.remoteAddr.toString()})`)
    ch.attach(handler.onChannel(ch))
    for (const w of [...slot.waiters]) w()
    this.pruneDuplicates(slot)
  }

  private onClosed (slot: ChannelSlot, ch: StreamChannel, reason: string | undefined, local: boolean, error: boolean): void {
    if (slot.channel === ch) slot.channel = undefined
    if (isRelayed(ch.connection.remoteAddr)) {
      this.relayedClosed.sent += ch.bytesSent
      this.relayedClosed.received += ch.bytesReceived
    }
    if (reason === STOPPED) return
    const now = this.timers.now()
    if (now - ch.openedAt >= STABLE_CHANNEL_MS) {
      slot.churn = 0
      slot.closeStrikes = 0
    } else {
      slot.churn++
    }
    if (local) {
      slot.closeStrikes++
      const cooldown = Math.min(this.init.backoff.maxMs, this.init.closeCooldownMs * 2 ** (slot.closeStrikes - 1))
      slot.refusedUntil = now + cooldown
      const line = `closed the channel to ${slot.id}: ${reason ?? 'no reason given'} (refusing it for ${cooldown} ms)`
      if (error) this.log.warn(line)
      else this.log(line)
    } else {
      this.log(`channel to ${slot.id} closed: ${reason ?? 'no reason given'}`)
    }
    if (this.handler !== undefined && this.initiates(slot.id) && this.init.connections(slot.peerId).length > 0) {
      this.scheduleOpen(slot, this.init.backoff.delay(slot.churn))
    }
  }
}
