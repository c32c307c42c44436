/**
 * One session per connected peer: the handshake, strict decoding of every frame, in-order
 * processing, sending with a bound on queued bytes, and the anti-entropy exchanges with that peer.
 *
 * Any frame that does not decode, or breaks the protocol, closes the session with a reason
 * (sent to the peer in a Close message and logged); documents are never touched by it.
 */
import { EXCHANGE_TIMEOUT_MS, MAX_CONCURRENT_EXCHANGES, MAX_EXCHANGE_MESSAGES, MIN_FRAME_BYTES } from './constants.js'
import type { Timers } from './clock.js'
import { validateUpdate, type Documents } from './documents.js'
import { HearsayError, PeerUnavailableError, ProtocolError, ReceiveLimitError, TimeoutError, isCorruption } from './errors.js'
import { guarded } from './guard.js'
import { Exchange, type ExchangeLimits, type SyncReport } from './exchange.js'
import type { Log } from './logger.js'
import {
  ItemKind, MessageType, SYNC_HEADER_BYTES, decodeFrame, encodeClose, encodeGossip, encodeHello, encodeLive, encodeRumor, encodeStatus, encodeSync,
  itemSizeEstimate, type AntiEntropyMode, type GossipMessage, type LiveEntry, type Message, type SyncItem, type SyncMessage
} from './protocol.js'
import type { CreationQuota, ReceiveBudget } from './receive-limits.js'
import type { Channel, ChannelHandler } from './transport.js'

/** A session logs refused documents at most this often, in ms. */
const QUOTA_LOG_INTERVAL_MS = 60_000

/** Exchanges remembered as aborted before they were tracked (ids only grow: old ones never return). */
const MAX_ABANDONED = 64

/** What a session needs from its node. */
export interface SessionHost {
  readonly id: string
  readonly docs: Documents
  readonly log: Log
  readonly timers: Timers
  readonly maxFrameBytes: number
  readonly sendQueueBytes: number
  /** Bytes of received live and rumor frames waiting to be applied past which more are dropped. */
  readonly receiveQueueBytes: number
  readonly counters: Counters
  /** Node-wide bytes of exchange frames waiting to be applied and half-received updates (receive-limits.ts). */
  readonly budget: ReceiveBudget
  /** New documents each peer may make this node create (receive-limits.ts). */
  readonly quota: CreationQuota
  /** How long an exchange the peer started may run before this side gives it up, in ms. */
  readonly exchangeTimeoutMs: number
  /** Current digest root and document count. */
  digest(): { root: Uint8Array, count: number }
  onOpen(session: Session): void
  onClosed(session: Session, reason: string): void
  onStatus(session: Session, root: Uint8Array, docCount: number): void
  /** An exchange with the peer (started by either side) completed. */
  onExchangeCompleted?(session: Session, report: SyncReport): void
  onLiveApplied(session: Session, entries: LiveEntry[]): void
  /** A rumor's updates were applied (see rumor.ts); the node decides whether to pass it on. */
  onRumorApplied(session: Session, hops: number, entries: LiveEntry[]): void
  /** Live or rumor frames from the peer were dropped because the ones before were still being applied. */
  onReceiveOverflow(session: Session): void
  /** Cluster state gossip (cluster.ts). */
  onGossip(session: Session, msg: GossipMessage): void
  /** The transport took a frame of `bytes` off the backlog, `delayMs` after it was sent (flow.ts). */
  onDrain(session: Session, bytes: number, delayMs: number): void
  /** Backlog past which exchange replies wait for the channel; `sendQueueBytes` when absent. */
  sendLimit?(session: Session): number
}

export interface Counters {
  bytesSent: number
  bytesReceived: number
  messagesSent: number
  messagesReceived: number
  framesRejected: number
  liveUpdatesSent: number
  liveUpdatesReceived: number
  liveFramesShed: number
  /** Received live and rumor frames dropped past `receiveQueueBytes` (an exchange repairs them). */
  liveFramesDropped: number
  /** Updates sent in rumors, first-hand and forwarded. */
  rumorUpdatesSent: number
  rumorUpdatesReceived: number
  exchangesStarted: number
  exchangesCompleted: number
  exchangesFailed: number
  docsSent: number
  docsReceived: number
  /**
   * Untyped exceptions (bugs) raised while handling a peer's input, caught by the last-resort
   * guard (guard.ts): each closed only that peer's session.
   */
  sessionFaults: number
  /** New documents from peers refused by the creation quota (receive-limits.ts); a later exchange brings them. */
  docsRefused: number
  /** Exchanges aborted because a receive limit was reached (queued frames or half-received updates); retried later. */
  receiveAborts: number
  /** Sessions closed because the peer stopped reading (its backlog passed 2 × sendQueueBytes). */
  stalledSessions: number
}

interface ExchangeState {
  ex: Exchange
  /** Items received in the message now arriving. */
  incoming: number
  /** Reply items waiting for a frame, and their estimated size. */
  pending: SyncItem[]
  pendingBytes: number
  /** Items already sent in frames of the reply being built. */
  replied: number
  startedAt: number
  timer: unknown
  resolve?: (r: SyncReport) => void
  reject?: (err: Error) => void
}

export class Session implements ChannelHandler {
  readonly remoteId: string
  state: 'handshake' | 'open' | 'closed' = 'handshake'
  /** The peer's frame limit from its hello. */
  private remoteMaxFrame = MIN_FRAME_BYTES
  private inbox: Promise<void> = Promise.resolve()
  /** Bytes of live and rumor frames in `inbox` not applied yet. */
  private inboxBytes = 0
  private queuedBytes = 0
  private readonly exchanges = new Map<string, ExchangeState>()
  private nextExchangeId = 1
  /** The highest id of an exchange the peer started: its ids only grow, so lower ones have ended. */
  private lastPeerExchangeId = 0
  closeReason: string | undefined
  /** Exchanges of the peer aborted before this side tracked them (their first frames still queued). */
  private readonly abandoned = new Set<string>()
  /** When this session last logged a refused document. */
  private quotaLoggedAt = -Infinity

  constructor (private readonly host: SessionHost, private readonly channel: Channel) {
    this.remoteId = channel.remoteId
    const { root, count } = host.digest()
    this.send(encodeHello({ nodeId: host.id, maxFrameBytes: host.maxFrameBytes, root, docCount: count }))
  }

  /** Bytes handed to the transport that it has not taken yet. */
  get backlog (): number {
    return this.queuedBytes
  }

  /** Backlog past which the peer is taken to have stopped reading (see `send`). */
  private get stallBytes (): number {
    return 2 * this.host.sendQueueBytes + (2 * MAX_CONCURRENT_EXCHANGES + 1) * this.frameLimit
  }

  /** The largest frame both sides accept. */
  get frameLimit (): number {
    return Math.min(this.host.maxFrameBytes, this.remoteMaxFrame)
  }

  /** Exchanges this node started with the peer that are still running. */
  get activeInitiated (): number {
    let n = 0
    for (const k of this.exchanges.keys()) if (k.startsWith('i')) n++
    return n
  }

  private send (frame: Uint8Array): void {
    if (this.state === 'closed') return
    const c = this.host.counters
    c.bytesSent += frame.length
    c.messagesSent++
    this.queuedBytes += frame.length
    if (this.queuedBytes > this.stallBytes) {
      // live frames stop at sendQueueBytes and each exchange's reply waits for the backlog after at
      // most one more frame: what still piles up (cluster state, status) means the peer stopped
      // reading; hang up on it
      c.stalledSessions++
      this.host.log.warn('closing session with %s: it stopped reading (%d bytes wait to be sent)', this.remoteId, this.queuedBytes)
      this.close(`peer stopped reading: ${this.queuedBytes} bytes wait to be sent`, false)
      return
    }
    const sentAt = this.host.timers.now()
    this.channel.send(frame).then(
      () => {
        this.queuedBytes -= frame.length
        if (this.state === 'open') this.guard('drain', () => { this.host.onDrain(this, frame.length, this.host.timers.now() - sentAt) })
      },
      (err: unknown) => {
        this.queuedBytes -= frame.length
        this.guard('send failure', () => { this.close(err instanceof Error ? err.message : 'send failed', false) })
      })
  }

  /** Send live updates unless the channel is backed up; false when shed (anti-entropy repairs). */
  sendLive (entries: LiveEntry[]): boolean {
    if (this.state !== 'open') return false
    if (this.queuedBytes > this.host.sendQueueBytes) {
      this.host.counters.liveFramesShed++
      return false
    }
    this.send(encodeLive(entries))
    this.host.counters.liveUpdatesSent += entries.length
    return true
  }

  /** Send a rumor unless the channel is backed up; false when shed (anti-entropy repairs). */
  sendRumor (hops: number, entries: LiveEntry[]): boolean {
    if (this.state !== 'open') return false
    if (this.queuedBytes > this.host.sendQueueBytes) {
      this.host.counters.liveFramesShed++
      return false
    }
    this.send(encodeRumor(hops, entries))
    this.host.counters.rumorUpdatesSent += entries.length
    return true
  }

  /** Send cluster state; false when closed or when it would not fit a frame (nothing sent). */
  sendGossip (msg: Omit<GossipMessage, 'type'>): boolean {
    if (this.state !== 'open') return false
    const frame = encodeGossip(msg)
    if (frame.length > this.frameLimit) return false
    this.send(frame)
    return true
  }

  sendStatus (root: Uint8Array, docCount: number): void {
    if (this.state === 'open') this.send(encodeStatus({ root, docCount }))
  }

  onFrame (frame: Uint8Array): void {
    this.guard('frame', () => { this.handleFrame(frame) })
  }

  /**
   * Run peer-driven work; anything it throws closes this session only, logged and counted in
   * `sessionFaults` (guard.ts), instead of reaching the event loop.
   */
  private guard (what: string, fn: () => void): void {
    guarded(this.host.log, `${what} from ${this.remoteId}`, fn, err => {
      this.host.counters.sessionFaults++
      this.fail(err)
    })
  }

  private handleFrame (frame: Uint8Array): void {
    if (this.state === 'closed') return
    const c = this.host.counters
    c.bytesReceived += frame.length
    c.messagesReceived++
    let msg: Message
    try {
      msg = decodeFrame(frame, this.host.maxFrameBytes)
      if (this.state === 'handshake' && msg.type !== MessageType.Hello) throw new ProtocolError(`expected hello, got message type ${msg.type}`)
    } catch (err) {
      c.framesRejected++
      this.fail(err)
      return
    }
    switch (msg.type) {
      case MessageType.Hello: return this.onHello(msg.nodeId, msg.maxFrameBytes, msg.root, msg.docCount)
      case MessageType.Live:
      case MessageType.Rumor:
        if (this.inboxBytes + frame.length > this.host.receiveQueueBytes) {
          c.liveFramesDropped++
          this.host.onReceiveOverflow(this)
          return
        }
        return msg.type === MessageType.Live ? this.onLive(msg.entries, frame.length) : this.onRumor(msg.hops, msg.entries, frame.length)
      case MessageType.Gossip: return this.host.onGossip(this, msg)
      case MessageType.Sync:
        // frames of exchanges waiting to be applied count against the node's receive buffer, with
        // half-received updates: past it, the exchange is aborted (retried later) instead of held
        if (!this.host.budget.take(frame.length)) return this.abandon(msg)
        return this.enqueue(async () => {
          try {
            await this.onSync(msg, frame.length)
          } finally {
            this.host.budget.give(frame.length)
          }
        })
      case MessageType.Status: return this.host.onStatus(this, msg.root, msg.docCount)
      case MessageType.Close:
        this.host.log('peer %s closed the session: %s', this.remoteId, msg.reason)
        return this.close(`peer closed: ${msg.reason}`, false)
    }
  }

  onClose (reason?: string): void {
    this.close(reason ?? 'channel closed', false)
  }

  /** Run `task` after every frame before it; `bytes` count towards `receiveQueueBytes` until it ran. */
  private enqueue (task: () => Promise<void>, bytes = 0): void {
    this.inboxBytes += bytes
    this.inbox = this.inbox.then(task).catch((err: unknown) => {
      // typed errors are the protocol's own verdicts; anything else is a fault the guard counts
      if (err instanceof HearsayError) this.guard('inbox', () => { this.fail(err) })
      else this.guard('inbox', () => { throw err })
    }).finally(() => { this.inboxBytes -= bytes })
  }

  private onHello (nodeId: string, maxFrameBytes: number, root: Uint8Array, docCount: number): void {
    try {
      if (this.state !== 'handshake') throw new ProtocolError('second hello on an open session')
      if (nodeId !== this.remoteId) throw new ProtocolError(`hello names node "${nodeId}" but the connection is from "${this.remoteId}"`)
      if (maxFrameBytes < MIN_FRAME_BYTES) throw new ProtocolError(`peer frame limit ${maxFrameBytes} is below the minimum ${MIN_FRAME_BYTES}`)
    } catch (err) {
      this.host.counters.framesRejected++
      this.fail(err)
      return
    }
    this.remoteMaxFrame = maxFrameBytes
    this.state = 'open'
    this.host.onStatus(this, root, docCount)
    this.host.onOpen(this)
  }

  private onLive (entries: LiveEntry[], bytes: number): void {
    this.enqueue(async () => {
      // every update is decoded before any is applied: a bad one rejects the whole frame
      for (const e of entries) validateUpdate(e.docId, e.update)
      const applied = await this.apply(entries)
      this.host.counters.liveUpdatesReceived += applied.length
      this.host.onLiveApplied(this, applied)
    }, bytes)
  }

  private onRumor (hops: number, entries: LiveEntry[], bytes: number): void {
    this.enqueue(async () => {
      for (const e of entries) validateUpdate(e.docId, e.update)
      const applied = await this.apply(entries)
      this.host.counters.rumorUpdatesReceived += applied.length
      this.host.onRumorApplied(this, hops, applied)
    }, bytes)
  }

  /**
   * Apply validated entries; those of a document whose stored data is corrupt (quarantined, see
   * documents.ts) are dropped, the others applied. Returns the entries applied.
   */
  /** Apply entries that `validateUpdate` accepted; those for quarantined documents are dropped. */
  private async apply (entries: LiveEntry[]): Promise<LiveEntry[]> {
    const applied: LiveEntry[] = []
    for (const e of entries) {
      // a new document the peer may not create now: dropped; anti-entropy brings it later
      if (!this.admit(e.docId, e.update.length)) continue
      try {
        await this.host.docs.applyUpdate(e.docId, e.update, this, true)
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
    if (this.host.docs.has(docId) || this.host.quota.take(this.remoteId, bytes)) return true
    this.host.counters.docsRefused++
    const now = this.host.timers.now()
    if (now - this.quotaLoggedAt >= QUOTA_LOG_INTERVAL_MS) {
      this.quotaLoggedAt = now
      this.host.log.warn('refusing new documents from %s past its creation quota (first: "%s"); they come in a later exchange', this.remoteId, docId)
    }
    return false
  }

  /** The limits an exchange with this peer works within. */
  private get limits (): ExchangeLimits {
    return { budget: this.host.budget, admit: (docId, bytes) => this.admit(docId, bytes) }
  }

  /**
   * A frame of an exchange arrived while the receive queue is full: abort that exchange (the peer is
   * told why and retries later) instead of holding the frame.
   */
  private abandon (msg: SyncMessage): void {
    const key = `${msg.fromInitiator ? 'r' : 'i'}${msg.exchangeId}`
    if (this.abandoned.has(key)) return
    this.host.counters.receiveAborts++
    const err = new ReceiveLimitError(`exchange frames waiting and half-received updates would pass the node's ${this.host.budget.limit} bytes (receiveBufferBytes)`)
    // its frames still queued, and any that follow, find it abandoned
    this.abandoned.add(key)
    if (this.abandoned.size > MAX_ABANDONED) this.abandoned.delete(this.abandoned.keys().next().value as string)
    const st = this.exchanges.get(key)
    if (st !== undefined) return this.abort(key, st, err)
    this.host.log.warn('aborting exchange %d with %s: %s', msg.exchangeId, this.remoteId, err.message)
    this.send(encodeSync({ exchangeId: msg.exchangeId, fromInitiator: !msg.fromInitiator, more: false, mode: msg.mode, items: [{ kind: ItemKind.Abort, reason: err.message }] }))
  }

  /** End an exchange this side gives up on, telling the peer why. */
  private abort (key: string, st: ExchangeState, err: Error): void {
    this.host.log.warn('aborting exchange %d with %s: %s', st.ex.id, this.remoteId, err.message)
    this.send(encodeSync({ exchangeId: st.ex.id, fromInitiator: st.ex.role === 'initiator', more: false, mode: st.ex.mode, items: [{ kind: ItemKind.Abort, reason: err.message }] }))
    this.endExchange(key, st, err)
  }

  /** Start an exchange; resolves with its report when both sides are done. */
  startExchange (mode: AntiEntropyMode, timeoutMs = EXCHANGE_TIMEOUT_MS): Promise<SyncReport> {
    if (this.state !== 'open') return Promise.reject(new PeerUnavailableError(`no open session with ${this.remoteId}`))
    const id = this.nextExchangeId++
    const ex = new Exchange(id, 'initiator', mode, this.host.docs, this, this.maxChunk(), this.limits)
    this.host.counters.exchangesStarted++
    return new Promise((resolve, reject) => {
      const st = this.track(`i${id}`, ex, timeoutMs)
      st.resolve = resolve
      st.reject = reject
      this.enqueue(async () => {
        await this.emit(st, ex.opening())
        this.finishMessage(st)
      })
    })
  }

  private maxChunk (): number {
    // room for the frame header, the longest document id and the item's own fields
    return this.frameLimit - SYNC_HEADER_BYTES - 1600
  }

  private track (key: string, ex: Exchange, timeoutMs: number): ExchangeState {
    const st: ExchangeState = { ex, incoming: 0, pending: [], pendingBytes: 0, replied: 0, startedAt: this.host.timers.now(), timer: undefined }
    st.timer = this.host.timers.setTimeout(() => this.guard('exchange timeout', () => {
      const reason = `did not finish in ${timeoutMs} ms`
      // tell the peer, so it stops sending for an exchange this side no longer follows
      this.send(encodeSync({ exchangeId: ex.id, fromInitiator: ex.role === 'initiator', more: false, mode: ex.mode, items: [{ kind: ItemKind.Abort, reason }] }))
      this.endExchange(key, st, new TimeoutError(`exchange ${ex.id} with ${this.remoteId} ${reason}`))
    }), timeoutMs)
    this.exchanges.set(key, st)
    return st
  }

  private async onSync (msg: SyncMessage, frameBytes: number): Promise<void> {
    if (this.state !== 'open') return
    const key = `${msg.fromInitiator ? 'r' : 'i'}${msg.exchangeId}`
    if (this.abandoned.has(key)) return
    let st = this.exchanges.get(key)
    if (st === undefined) {
      // a late frame of an exchange this side already ended (timed out, refused) starts nothing
      if (!msg.fromInitiator || msg.exchangeId <= this.lastPeerExchangeId) {
        this.host.log('ignoring a frame of exchange %d with %s, which already ended', msg.exchangeId, this.remoteId)
        return
      }
      this.lastPeerExchangeId = msg.exchangeId
      if (this.exchanges.size >= MAX_CONCURRENT_EXCHANGES) {
        this.send(encodeSync({ exchangeId: msg.exchangeId, fromInitiator: false, more: false, mode: msg.mode, items: [{ kind: ItemKind.Abort, reason: 'too many concurrent exchanges' }] }))
        return
      }
      st = this.track(key, new Exchange(msg.exchangeId, 'responder', msg.mode, this.host.docs, this, this.maxChunk(), this.limits), this.host.exchangeTimeoutMs)
    }
    if (msg.mode !== st.ex.mode) throw new ProtocolError(`exchange ${msg.exchangeId} changed mode from ${st.ex.mode} to ${msg.mode}`)
    const current = st
    current.ex.report.bytesReceived += frameBytes
    current.incoming += msg.items.length
    current.ex.check(msg.items)
    try {
      await current.ex.handle(msg.items, async item => { await this.emit(current, item) })
    } catch (err) {
      if (!(err instanceof ReceiveLimitError)) throw err
      this.host.counters.receiveAborts++
      this.abort(key, current, err)
      return
    }
    if (current.ex.abortReason !== undefined) {
      this.endExchange(key, current, new ProtocolError(`peer aborted exchange ${msg.exchangeId}: ${current.ex.abortReason}`))
      return
    }
    if (msg.more) return
    // the peer's message is complete
    current.ex.messages++
    if (current.incoming === 0) {
      if (current.ex.incomplete) throw new ProtocolError(`exchange ${msg.exchangeId} ended with a document half sent`)
      this.endExchange(key, current)
      return
    }
    current.incoming = 0
    if (current.ex.messages >= MAX_EXCHANGE_MESSAGES) throw new ProtocolError(`exchange ${msg.exchangeId} ran past ${MAX_EXCHANGE_MESSAGES} messages`)
    if (!this.finishMessage(current)) this.endExchange(key, current)
  }

  /** Add an item to the reply being built, sending a frame whenever one fills up. */
  private async emit (st: ExchangeState, item: SyncItem): Promise<void> {
    const size = itemSizeEstimate(item)
    const limit = this.host.sendLimit?.(this) ?? this.host.sendQueueBytes
    // frames no larger than the backlog allowed (flow.ts), so a slow peer's reply is paced item by item
    const frameBytes = Math.min(this.frameLimit, Math.max(MIN_FRAME_BYTES, limit)) - SYNC_HEADER_BYTES
    if (st.pending.length > 0 && st.pendingBytes + size > frameBytes) this.sendItems(st, true)
    st.pending.push(item)
    st.pendingBytes += size
    // yield to the channel when it is backed up, so a large reply streams instead of piling up
    while (this.queuedBytes > limit && this.state === 'open' && !st.ex.ended) {
      await new Promise(resolve => setImmediate(resolve))
    }
  }

  /**
   * Send the last frame of the message being built (possibly empty: an empty message ends the
   * exchange). Returns whether the message carried any item.
   */
  private finishMessage (st: ExchangeState): boolean {
    this.sendItems(st, false)
    st.ex.messages++
    const any = st.replied > 0
    st.replied = 0
    return any
  }

  private sendItems (st: ExchangeState, more: boolean): void {
    const frame = encodeSync({ exchangeId: st.ex.id, fromInitiator: st.ex.role === 'initiator', more, mode: st.ex.mode, items: st.pending })
    st.ex.report.bytesSent += frame.length
    st.replied += st.pending.length
    st.pending = []
    st.pendingBytes = 0
    this.send(frame)
  }

  private endExchange (key: string, st: ExchangeState, err?: Error): void {
    if (this.exchanges.get(key) !== st) return
    this.exchanges.delete(key)
    st.ex.release()
    this.host.timers.clearTimeout(st.timer)
    const c = this.host.counters
    const r = st.ex.report
    r.roundTrips = Math.ceil(st.ex.messages / 2)
    r.durationMs = this.host.timers.now() - st.startedAt
    c.docsSent += r.docsSent
    c.docsReceived += r.docsReceived
    if (err === undefined) {
      c.exchangesCompleted++
      this.host.onExchangeCompleted?.(this, r)
      st.resolve?.(r)
    } else {
      c.exchangesFailed++
      this.host.log('exchange %d with %s failed: %s', st.ex.id, this.remoteId, err.message)
      st.reject?.(err)
    }
    this.host.docs.evictIdle()
  }

  /** Close after a bad frame or a protocol violation: tell the peer why, then hang up. */
  fail (err: unknown): void {
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
    if (this.state === 'closed') return
    this.host.log.warn('closing session with %s: %s', this.remoteId, reason)
    this.close(reason, true)
  }

  close (reason: string, tellPeer: boolean): void {
    if (this.state === 'closed') return
    if (tellPeer) this.send(encodeClose(reason))
    this.state = 'closed'
    this.closeReason = reason
    for (const [key, st] of [...this.exchanges]) this.endExchange(key, st, new PeerUnavailableError(`session with ${this.remoteId} closed: ${reason}`))
    this.channel.close(reason)
    this.host.onClosed(this, reason)
  }
}
