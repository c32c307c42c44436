/**
 * One session per connected peer: the handshake, strict decoding of every frame, in-order
 * processing, sending with a bound on queued bytes, and applying the peer's live and rumor updates
 * within the creation quota. Its anti-entropy exchanges run in `ExchangeRunner` (exchange-runner.ts).
 *
 * Any frame that does not decode, or breaks the protocol, closes the session with a reason
 * (sent to the peer in a Close message and logged); documents are never touched by it.
 *
 * The session tells the node what happened through typed events (`SessionEvents`); what it needs
 * to ask (our digest, the flow control limit) comes in its `SessionContext`.
 */
import { EXCHANGE_TIMEOUT_MS, MAX_CONCURRENT_EXCHANGES, MIN_FRAME_BYTES } from './constants.js'
import { validateUpdate } from './updates.js'
import { HearsayError, PeerUnavailableError, PermissionError, ProtocolError, isCorruption } from './errors.js'
import type { Scope } from './digest-views.js'
import { Emitter } from './events.js'
import { ExchangeRunner, type ExchangeContext, type ExchangeLink } from './exchange-runner.js'
import type { ExchangeLimits, SyncReport } from './exchange.js'
import { guarded } from './guard.js'
import { LogThrottle } from './logger.js'
import { PeerOrigin } from './origin.js'
import {
  MessageType, decodeFrame, encodeAck, encodeClose, encodeGossip, encodeHello, encodeLive, encodePresence, encodeRoster, encodeRumor, encodeStatus,
  type AckBody, type AckMessage, type AntiEntropyMode, type GossipMessage, type LiveEntry, type Message, type PresenceEntry, type PresenceMessage, type RosterMessage
} from './protocol.js'
import type { CreationQuota } from './receive-limits.js'
import type { Channel, ChannelHandler } from './transport.js'

/** What a session needs from its node. */
export interface SessionContext extends ExchangeContext {
  readonly id: string
  readonly maxFrameBytes: number
  readonly sendQueueBytes: number
  /** Bytes of received live and rumor frames waiting to be applied past which more are dropped. */
  readonly receiveQueueBytes: number
  /** New documents each peer may make this node create (receive-limits.ts). */
  readonly quota: CreationQuota
  /** Digest root and document count of what this node shares with the peer (digest-views.ts). */
  digest(peerId: string): { root: Uint8Array, count: number }
  /** What this node shares with the peer, by the roster (digest-views.ts). */
  scope(peerId: string): Scope
  /** Backlog past which exchange replies to this peer wait (flow control, live.ts). */
  sendLimit(session: Session): number
}

export interface SessionEvents extends Record<string, unknown> {
  /** The handshake finished. */
  open: undefined
  closed: { reason: string }
  /** The peer told its digest root and document count (in its Hello, then in Status frames). */
  status: { root: Uint8Array, docCount: number }
  /** A live frame's updates were applied. */
  live: { entries: LiveEntry[] }
  /** A rumor's updates were applied (see rumor.ts); the node decides whether to pass it on. */
  rumor: { hops: number, entries: LiveEntry[] }
  /** Cluster state gossip (cluster.ts). */
  gossip: GossipMessage
  /** Roster summary or statements (trust.ts). */
  roster: RosterMessage
  /** Presence states (presence.ts). */
  presence: PresenceMessage
  /** A watch on documents, or a report on documents we watch (acks.ts). */
  ack: AckMessage
  /** The transport took a frame of `bytes` off the backlog, `delayMs` after it was sent (flow.ts). */
  drain: { bytes: number, delayMs: number }
  /** Live or rumor frames from the peer were dropped because the ones before were still being applied. */
  overflow: undefined
  /** An exchange with the peer (started by either side) completed. */
  exchangeDone: SyncReport
}

/** The session's phase; a closed one keeps why. */
type Phase =
  | { kind: 'handshake' }
  | { kind: 'open' }
  | { kind: 'closed', reason: string }

export class Session extends Emitter<SessionEvents> implements ChannelHandler, ExchangeLink {
  readonly remoteId: string
  /** The transaction origin of every update applied from this peer. */
  readonly origin: PeerOrigin
  private phase: Phase = { kind: 'handshake' }
  /** The peer's frame limit from its hello. */
  private remoteMaxFrame = MIN_FRAME_BYTES
  private inbox: Promise<void> = Promise.resolve()
  /** Bytes of live and rumor frames in `inbox` not applied yet. */
  private inboxBytes = 0
  private queuedBytes = 0
  private readonly exchanges: ExchangeRunner
  /** Refused documents and updates are logged at most once a minute each. */
  private readonly logs: LogThrottle
  readonly limits: ExchangeLimits

  constructor (private readonly ctx: SessionContext, private readonly channel: Channel) {
    super()
    this.remoteId = channel.remoteId
    this.origin = new PeerOrigin(channel.remoteId)
    this.logs = new LogThrottle(() => ctx.timers.now())
    const remoteId = channel.remoteId
    this.limits = {
      budget: ctx.budget,
      admit: (docId, bytes) => this.admit(docId, bytes),
      get scope () { return ctx.scope(remoteId) },
      refused: docId => { this.refused(docId) }
    }
    this.exchanges = new ExchangeRunner(this, ctx)
    const { root, count } = ctx.digest(this.remoteId)
    this.send(encodeHello({ nodeId: ctx.id, maxFrameBytes: ctx.maxFrameBytes, root, docCount: count }))
  }

  /** The one transition function: handshake → open → closed, or handshake → closed. */
  private enter (next: Phase): void {
    const from = this.phase.kind
    if (from === 'closed' || (next.kind === 'open' && from !== 'handshake')) {
      throw new ProtocolError(`session with ${this.remoteId} cannot go from ${from} to ${next.kind}`)
    }
    this.phase = next
  }

  get state (): Phase['kind'] {
    return this.phase.kind
  }

  get isOpen (): boolean {
    return this.phase.kind === 'open'
  }

  /** Why the session closed, once it has. */
  get closeReason (): string | undefined {
    return this.phase.kind === 'closed' ? this.phase.reason : undefined
  }

  /** Bytes handed to the transport that it has not taken yet. */
  get backlog (): number {
    return this.queuedBytes
  }

  /** Backlog past which the peer is taken to have stopped reading (see `send`). */
  private get stallBytes (): number {
    return 2 * this.ctx.sendQueueBytes + (2 * MAX_CONCURRENT_EXCHANGES + 1) * this.frameLimit
  }

  /** The largest frame both sides accept. */
  get frameLimit (): number {
    return Math.min(this.ctx.maxFrameBytes, this.remoteMaxFrame)
  }

  /** Exchanges this node started with the peer that are still running. */
  get activeInitiated (): number {
    return this.exchanges.activeInitiated
  }

  sendLimit (): number {
    return this.ctx.sendLimit(this)
  }

  exchangeDone (report: SyncReport): void {
    this.emit('exchangeDone', report)
  }

  send (frame: Uint8Array): void {
    if (this.phase.kind === 'closed') return
    const c = this.ctx.counters
    c.bytesSent += frame.length
    c.messagesSent++
    this.queuedBytes += frame.length
    if (this.queuedBytes > this.stallBytes) {
      // live frames stop at sendQueueBytes and each exchange's reply waits for the backlog after at
      // most one more frame: what still piles up (cluster state, status) means the peer stopped
      // reading; hang up on it
      c.stalledSessions++
      this.ctx.log.warn('closing session with %s: it stopped reading (%d bytes wait to be sent)', this.remoteId, this.queuedBytes)
      this.close(`peer stopped reading: ${this.queuedBytes} bytes wait to be sent`, false)
      return
    }
    const sentAt = this.ctx.timers.now()
    this.channel.send(frame).then(
      () => {
        this.queuedBytes -= frame.length
        if (this.phase.kind === 'open') this.guard('drain', () => { this.emit('drain', { bytes: frame.length, delayMs: this.ctx.timers.now() - sentAt }) })
      },
      (err: unknown) => {
        this.queuedBytes -= frame.length
        this.guard('send failure', () => { this.close(err instanceof Error ? err.message : 'send failed', false) })
      })
  }

  /**
   * Send live updates unless the channel is backed up; false when shed (anti-entropy repairs).
   * Only updates to documents the roster lets us send this peer go (digest-views.ts).
   */
  sendLive (entries: LiveEntry[]): boolean {
    if (!this.admitsLive()) return false
    const allowed = this.allowed(entries)
    if (allowed.length > 0) this.send(encodeLive(allowed))
    this.ctx.counters.liveUpdatesSent += allowed.length
    return true
  }

  /** Send a rumor unless the channel is backed up; false when shed (anti-entropy repairs). */
  sendRumor (hops: number, entries: LiveEntry[]): boolean {
    if (!this.admitsLive()) return false
    const allowed = this.allowed(entries)
    if (allowed.length > 0) this.send(encodeRumor(hops, allowed))
    this.ctx.counters.rumorUpdatesSent += allowed.length
    return true
  }

  private allowed (entries: LiveEntry[]): LiveEntry[] {
    const scope = this.ctx.scope(this.remoteId)
    return scope.whole ? entries : entries.filter(e => scope.sends(e.docId))
  }

  /** Send presence states unless the channel is backed up (they are renewed anyway); false when not sent. */
  sendPresence (hops: number, relay: boolean, entries: PresenceEntry[]): boolean {
    if (this.phase.kind !== 'open' || this.queuedBytes > this.ctx.sendQueueBytes) return false
    this.send(encodePresence(hops, relay, entries))
    return true
  }

  /** Send a watch, an unwatch or a report (acks.ts); control traffic, never shed. */
  sendAck (m: AckBody): void {
    if (this.phase.kind === 'open') this.send(encodeAck(m))
  }

  /** Send a roster summary or statements (control traffic: never shed). */
  sendRoster (m: Omit<RosterMessage, 'type'>): void {
    if (this.phase.kind === 'open') this.send(encodeRoster(m))
  }

  private admitsLive (): boolean {
    if (this.phase.kind !== 'open') return false
    if (this.queuedBytes <= this.ctx.sendQueueBytes) return true
    this.ctx.counters.liveFramesShed++
    return false
  }

  /** Send cluster state; false when closed or when it would not fit a frame (nothing sent). */
  sendGossip (msg: Omit<GossipMessage, 'type'>): boolean {
    if (this.phase.kind !== 'open') return false
    const frame = encodeGossip(msg)
    if (frame.length > this.frameLimit) return false
    this.send(frame)
    return true
  }

  sendStatus (root: Uint8Array, docCount: number): void {
    if (this.phase.kind === 'open') this.send(encodeStatus({ root, docCount }))
  }

  /** Start an exchange; resolves with its report when both sides are done. */
  startExchange (mode: AntiEntropyMode, timeoutMs = EXCHANGE_TIMEOUT_MS): Promise<SyncReport> {
    if (this.phase.kind !== 'open') return Promise.reject(new PeerUnavailableError(`no open session with ${this.remoteId}`))
    return this.exchanges.start(mode, timeoutMs)
  }

  onFrame (frame: Uint8Array): void {
    this.guard('frame', () => { this.handleFrame(frame) })
  }

  onClose (reason?: string): void {
    this.close(reason ?? 'channel closed', false)
  }

  /**
   * Run peer-driven work; anything it throws closes this session only, logged and counted in
   * `sessionFaults` (guard.ts), instead of reaching the event loop.
   */
  guard (what: string, fn: () => void): void {
    guarded(this.ctx.log, `${what} from ${this.remoteId}`, fn, err => {
      this.ctx.counters.sessionFaults++
      this.fail(err)
    })
  }

  private handleFrame (frame: Uint8Array): void {
    if (this.phase.kind === 'closed') return
    const c = this.ctx.counters
    c.bytesReceived += frame.length
    c.messagesReceived++
    let msg: Message
    try {
      msg = decodeFrame(frame, this.ctx.maxFrameBytes)
      if (this.phase.kind === 'handshake' && msg.type !== MessageType.Hello) throw new ProtocolError(`expected hello, got message type ${msg.type}`)
    } catch (err) {
      c.framesRejected++
      this.fail(err)
      return
    }
    switch (msg.type) {
      case MessageType.Hello: return this.onHello(msg.nodeId, msg.maxFrameBytes, msg.root, msg.docCount)
      case MessageType.Live:
      case MessageType.Rumor:
        if (this.inboxBytes + frame.length > this.ctx.receiveQueueBytes) {
          c.liveFramesDropped++
          this.emit('overflow', undefined)
          return
        }
        return this.onUpdates(msg.type === MessageType.Rumor ? msg.hops : undefined, msg.entries, frame.length)
      case MessageType.Gossip: return this.emit('gossip', msg)
      case MessageType.Presence: return this.emit('presence', msg)
      case MessageType.Ack: return this.emit('ack', msg)
      case MessageType.Roster: return this.enqueue(async () => { this.emit('roster', msg) })
      case MessageType.Sync:
        // frames of exchanges waiting to be applied count against the node's receive buffer, with
        // half-received updates: past it, the exchange is aborted (retried later) instead of held
        if (!this.ctx.budget.take(frame.length)) return this.exchanges.abandon(msg)
        return this.enqueue(async () => {
          try {
            await this.exchanges.receive(msg, frame.length)
          } finally {
            this.ctx.budget.give(frame.length)
          }
        })
      case MessageType.Status: return this.emit('status', { root: msg.root, docCount: msg.docCount })
      case MessageType.Close:
        this.ctx.log('peer %s closed the session: %s', this.remoteId, msg.reason)
        return this.close(`peer closed: ${msg.reason}`, false)
    }
  }

  /** Run `task` after every frame before it; `bytes` count towards `receiveQueueBytes` until it ran. */
  enqueue (task: () => Promise<void>, bytes = 0): void {
    this.inboxBytes += bytes
    this.inbox = this.inbox.then(task).catch((err: unknown) => {
      // typed errors are the protocol's own verdicts; anything else is a fault the guard counts
      if (err instanceof HearsayError) this.guard('inbox', () => { this.fail(err) })
      else this.guard('inbox', () => { throw err })
    }).finally(() => { this.inboxBytes -= bytes })
  }

  private onHello (nodeId: string, maxFrameBytes: number, root: Uint8Array, docCount: number): void {
    try {
      if (this.phase.kind !== 'handshake') throw new ProtocolError('second hello on an open session')
      if (nodeId !== this.remoteId) throw new ProtocolError(`hello names node "${nodeId}" but the connection is from "${this.remoteId}"`)
      if (maxFrameBytes < MIN_FRAME_BYTES) throw new ProtocolError(`peer frame limit ${maxFrameBytes} is below the minimum ${MIN_FRAME_BYTES}`)
    } catch (err) {
      this.ctx.counters.framesRejected++
      this.fail(err)
      return
    }
    this.remoteMaxFrame = maxFrameBytes
    this.enter({ kind: 'open' })
    this.emit('status', { root, docCount })
    this.emit('open', undefined)
  }

  /** A live frame (`hops` undefined) or a rumor: every update is decoded before any is applied, so a bad one rejects the whole frame. */
  private onUpdates (hops: number | undefined, entries: LiveEntry[], bytes: number): void {
    this.enqueue(async () => {
      for (const e of entries) validateUpdate(e.docId, e.update)
      const applied = await this.apply(entries)
      if (hops === undefined) {
        this.ctx.counters.liveUpdatesReceived += applied.length
        this.emit('live', { entries: applied })
      } else {
        this.ctx.counters.rumorUpdatesReceived += applied.length
        this.emit('rumor', { hops, entries: applied })
      }
    }, bytes)
  }

  /**
   * Apply entries that `validateUpdate` accepted; those of a document whose stored data is corrupt
   * (quarantined, see documents.ts) are dropped, the others applied. Returns the entries applied.
   */
  private async apply (entries: LiveEntry[]): Promise<LiveEntry[]> {
    const applied: LiveEntry[] = []
    const scope = this.ctx.scope(this.remoteId)
    for (const e of entries) {
      // a document the peer may not write: refused before anything is touched
      if (!scope.whole && !scope.takes(e.docId)) {
        this.refused(e.docId)
        continue
      }
      // a new document the peer may not create now: dropped; anti-entropy brings it later
      if (!this.admit(e.docId, e.update.length)) continue
      try {
        await this.ctx.docs.applyUpdate(e.docId, e.update, this.origin, true)
        applied.push(e)
      } catch (err) {
        if (!isCorruption(err)) throw err
      }
    }
    return applied
  }

  /**
   * Whether the peer may make this node hold document `docId` (with `bytes` of updates): always for
   * a document we have, within the creation quota for a new one. A refusal is counted and logged
   * (at most once a minute per session).
   */
  private admit (docId: string, bytes: number): boolean {
    if (this.ctx.docs.has(docId) || this.ctx.quota.take(this.remoteId, bytes)) return true
    this.ctx.counters.docsRefused++
    if (this.logs.allows('quota')) {
      this.ctx.log.warn('refusing new documents from %s past its creation quota (first: "%s"); they come in a later exchange', this.remoteId, docId)
    }
    return false
  }

  /** An update to a document the peer may not write was refused: counted, logged once a minute. */
  refused (docId: string): void {
    this.ctx.counters.updatesRefused++
    if (!this.logs.allows('permission')) return
    const err = new PermissionError(this.remoteId, docId, 'write', `${this.remoteId} may not write "${docId}": its updates are refused`)
    this.ctx.log.warn('%s: %s (further refusals from this peer are counted in updatesRefused, logged once a minute)', err.name, err.message)
  }

  /** Close after a bad frame or a protocol violation: tell the peer why, then hang up. */
  fail (err: unknown): void {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    if (this.phase.kind === 'closed') return
    this.ctx.log.warn('closing session with %s: %s', this.remoteId, reason)
    this.close(reason, true)
  }

  close (reason: string, tellPeer: boolean): void {
    if (this.phase.kind === 'closed') return
    if (tellPeer) this.send(encodeClose(reason))
    this.enter({ kind: 'closed', reason })
    this.exchanges.failAll(new PeerUnavailableError(`session with ${this.remoteId} closed: ${reason}`))
    this.channel.close(reason)
    this.emit('closed', { reason })
  }
}
