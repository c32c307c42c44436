/**
 * The anti-entropy exchanges running on one session: tracking them by id and side, framing the
 * items each one emits into Sync frames (paced by the channel backlog), timing them out, aborting
 * them (a receive limit, a timeout, the session closing) and ending them with a report.
 *
 * The algorithm of one exchange is exchange.ts; the session (session.ts) decodes frames and hands
 * Sync messages here, in order.
 */
import type { Timers } from './clock.js'
import { MAX_CONCURRENT_EXCHANGES, MAX_EXCHANGE_MESSAGES, MIN_FRAME_BYTES } from './constants.js'
import type { Documents } from './documents.js'
import { ProtocolError, ReceiveLimitError, TimeoutError } from './errors.js'
import { Exchange, type ExchangeLimits, type SyncReport } from './exchange.js'
import type { Log } from './logger.js'
import type { Counters } from './metrics.js'
import type { PeerOrigin } from './origin.js'
import { ItemKind, SYNC_HEADER_BYTES, encodeSync, itemSizeEstimate, type AntiEntropyMode, type SyncItem, type SyncMessage } from './protocol.js'
import type { ReceiveBudget } from './receive-limits.js'

/** Exchanges remembered as aborted before they were tracked (ids only grow: old ones never return). */
const MAX_ABANDONED = 64

/** What the exchanges need of their session. */
export interface ExchangeLink {
  readonly remoteId: string
  readonly origin: PeerOrigin
  readonly isOpen: boolean
  /** The largest frame both sides accept. */
  readonly frameLimit: number
  /** Bytes handed to the transport that it has not taken yet. */
  readonly backlog: number
  /** Backlog past which replies wait for the channel (flow control). */
  sendLimit(): number
  send(frame: Uint8Array): void
  /** Run `task` after every frame received before it. */
  enqueue(task: () => Promise<void>): void
  /** Run timer work through the session's last-resort guard. */
  guard(what: string, fn: () => void): void
  /** The limits an exchange with this peer works within. */
  readonly limits: ExchangeLimits
  exchangeDone(report: SyncReport): void
}

export interface ExchangeContext {
  readonly docs: Documents
  readonly log: Log
  readonly timers: Timers
  readonly counters: Counters
  readonly budget: ReceiveBudget
  /** How long an exchange the peer started may run before this side gives it up, in ms. */
  readonly exchangeTimeoutMs: number
}

interface Running {
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

/** `i<id>` for exchanges this side started, `r<id>` for the peer's. */
const keyOf = (msg: SyncMessage): string => `${msg.fromInitiator ? 'r' : 'i'}${msg.exchangeId}`

export class ExchangeRunner {
  private readonly running = new Map<string, Running>()
  private nextId = 1
  /** The highest id of an exchange the peer started: its ids only grow, so lower ones have ended. */
  private lastPeerId = 0
  /** Exchanges of the peer aborted before this side tracked them (their first frames still queued). */
  private readonly abandoned = new Set<string>()

  constructor (private readonly link: ExchangeLink, private readonly c: ExchangeContext) {}

  /** Exchanges this node started with the peer that are still running. */
  get activeInitiated (): number {
    let n = 0
    for (const k of this.running.keys()) if (k.startsWith('i')) n++
    return n
  }

  /** Start an exchange; resolves with its report when both sides are done. */
  start (mode: AntiEntropyMode, timeoutMs: number): Promise<SyncReport> {
    const id = this.nextId++
    const ex = new Exchange(id, 'initiator', mode, this.c.docs, this.link.origin, this.maxChunk(), this.link.limits)
    this.c.counters.exchangesStarted++
    return new Promise((resolve, reject) => {
      const st = this.track(`i${id}`, ex, timeoutMs)
      st.resolve = resolve
      st.reject = reject
      this.link.enqueue(async () => {
        await this.emit(st, ex.opening())
        this.finishMessage(st)
      })
    })
  }

  /**
   * A frame of an exchange arrived while the receive buffer is full: abort that exchange (the peer
   * is told why and retries later) instead of holding the frame.
   */
  abandon (msg: SyncMessage): void {
    const key = keyOf(msg)
    if (this.abandoned.has(key)) return
    this.c.counters.receiveAborts++
    const err = new ReceiveLimitError(`exchange frames waiting and half-received updates would pass the node's ${this.c.budget.limit} bytes (receiveBufferBytes)`)
    // its frames still queued, and any that follow, find it abandoned
    this.abandoned.add(key)
    if (this.abandoned.size > MAX_ABANDONED) this.abandoned.delete(this.abandoned.keys().next().value as string)
    const st = this.running.get(key)
    if (st !== undefined) return this.abort(key, st, err)
    this.c.log.warn('aborting exchange %d with %s: %s', msg.exchangeId, this.link.remoteId, err.message)
    this.link.send(encodeSync({ exchangeId: msg.exchangeId, fromInitiator: !msg.fromInitiator, more: false, mode: msg.mode, items: [{ kind: ItemKind.Abort, reason: err.message }] }))
  }

  /** A Sync message from the peer, in order. */
  async receive (msg: SyncMessage, frameBytes: number): Promise<void> {
    if (!this.link.isOpen) return
    const key = keyOf(msg)
    if (this.abandoned.has(key)) return
    let st = this.running.get(key)
    if (st === undefined) {
      // a late frame of an exchange this side already ended (timed out, refused) starts nothing
      if (!msg.fromInitiator || msg.exchangeId <= this.lastPeerId) {
        this.c.log('ignoring a frame of exchange %d with %s, which already ended', msg.exchangeId, this.link.remoteId)
        return
      }
      this.lastPeerId = msg.exchangeId
      if (this.running.size >= MAX_CONCURRENT_EXCHANGES) {
        this.link.send(encodeSync({ exchangeId: msg.exchangeId, fromInitiator: false, more: false, mode: msg.mode, items: [{ kind: ItemKind.Abort, reason: 'too many concurrent exchanges' }] }))
        return
      }
      st = this.track(key, new Exchange(msg.exchangeId, 'responder', msg.mode, this.c.docs, this.link.origin, this.maxChunk(), this.link.limits), this.c.exchangeTimeoutMs)
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
      this.c.counters.receiveAborts++
      this.abort(key, current, err)
      return
    }
    if (current.ex.abortReason !== undefined) {
      this.end(key, current, new ProtocolError(`peer aborted exchange ${msg.exchangeId}: ${current.ex.abortReason}`))
      return
    }
    if (msg.more) return
    // the peer's message is complete
    current.ex.messages++
    if (current.incoming === 0) {
      if (current.ex.incomplete) throw new ProtocolError(`exchange ${msg.exchangeId} ended with a document half sent`)
      this.end(key, current)
      return
    }
    current.incoming = 0
    if (current.ex.messages >= MAX_EXCHANGE_MESSAGES) throw new ProtocolError(`exchange ${msg.exchangeId} ran past ${MAX_EXCHANGE_MESSAGES} messages`)
    if (!this.finishMessage(current)) this.end(key, current)
  }

  /** The session closed: every running exchange fails with `err`. */
  failAll (err: Error): void {
    for (const [key, st] of [...this.running]) this.end(key, st, err)
  }

  private maxChunk (): number {
    // room for the frame header, the longest document id and the item's own fields
    return this.link.frameLimit - SYNC_HEADER_BYTES - 1600
  }

  private track (key: string, ex: Exchange, timeoutMs: number): Running {
    const st: Running = { ex, incoming: 0, pending: [], pendingBytes: 0, replied: 0, startedAt: this.c.timers.now(), timer: undefined }
    st.timer = this.c.timers.setTimeout(() => this.link.guard('exchange timeout', () => {
      const reason = `did not finish in ${timeoutMs} ms`
      // tell the peer, so it stops sending for an exchange this side no longer follows
      this.link.send(encodeSync({ exchangeId: ex.id, fromInitiator: ex.role === 'initiator', more: false, mode: ex.mode, items: [{ kind: ItemKind.Abort, reason }] }))
      this.end(key, st, new TimeoutError(`exchange ${ex.id} with ${this.link.remoteId} ${reason}`))
    }), timeoutMs)
    this.running.set(key, st)
    return st
  }

  /** End an exchange this side gives up on, telling the peer why. */
  private abort (key: string, st: Running, err: Error): void {
    this.c.log.warn('aborting exchange %d with %s: %s', st.ex.id, this.link.remoteId, err.message)
    this.link.send(encodeSync({ exchangeId: st.ex.id, fromInitiator: st.ex.role === 'initiator', more: false, mode: st.ex.mode, items: [{ kind: ItemKind.Abort, reason: err.message }] }))
    this.end(key, st, err)
  }

  /** Add an item to the reply being built, sending a frame whenever one fills up. */
  private async emit (st: Running, item: SyncItem): Promise<void> {
    const size = itemSizeEstimate(item)
    const limit = this.link.sendLimit()
    // frames no larger than the backlog allowed (flow.ts), so a slow peer's reply is paced item by item
    const frameBytes = Math.min(this.link.frameLimit, Math.max(MIN_FRAME_BYTES, limit)) - SYNC_HEADER_BYTES
    if (st.pending.length > 0 && st.pendingBytes + size > frameBytes) this.sendItems(st, true)
    st.pending.push(item)
    st.pendingBytes += size
    // yield to the channel when it is backed up, so a large reply streams instead of piling up
    while (this.link.backlog > limit && this.link.isOpen && !st.ex.ended) {
      await new Promise(resolve => setImmediate(resolve))
    }
  }

  /**
   * Send the last frame of the message being built (possibly empty: an empty message ends the
   * exchange). Returns whether the message carried any item.
   */
  private finishMessage (st: Running): boolean {
    this.sendItems(st, false)
    st.ex.messages++
    const any = st.replied > 0
    st.replied = 0
    return any
  }

  private sendItems (st: Running, more: boolean): void {
    const frame = encodeSync({ exchangeId: st.ex.id, fromInitiator: st.ex.role === 'initiator', more, mode: st.ex.mode, items: st.pending })
    st.ex.report.bytesSent += frame.length
    st.replied += st.pending.length
    st.pending = []
    st.pendingBytes = 0
    this.link.send(frame)
  }

  private end (key: string, st: Running, err?: Error): void {
    if (this.running.get(key) !== st) return
    this.running.delete(key)
    st.ex.release()
    this.c.timers.clearTimeout(st.timer)
    const c = this.c.counters
    const r = st.ex.report
    r.roundTrips = Math.ceil(st.ex.messages / 2)
    r.durationMs = this.c.timers.now() - st.startedAt
    c.docsSent += r.docsSent
    c.docsReceived += r.docsReceived
    if (err === undefined) {
      c.exchangesCompleted++
      this.link.exchangeDone(r)
      st.resolve?.(r)
    } else {
      c.exchangesFailed++
      this.c.log('exchange %d with %s failed: %s', st.ex.id, this.link.remoteId, err.message)
      st.reject?.(err)
    }
    this.c.docs.evictIdle()
  }
}
