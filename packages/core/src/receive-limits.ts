/**
 * What a node holds and creates because of what peers send, bounded in total.
 *
 * - `ReceiveBudget`: bytes of exchange frames waiting to be applied and of half-received
 *   (chunked) document updates, held across every exchange of every session. A frame or chunk
 *   that would take the node past the budget aborts its exchange instead (the peer is told why,
 *   what it held is freed, and the next anti-entropy exchange retries with what is still missing:
 *   whatever was applied before stays applied, so retries make progress).
 * - `CreationQuota`: a token bucket per peer for the documents (and their bytes) that peer may
 *   make this node create. A refused document is not created; its updates stay with the peer,
 *   and a later exchange, once the bucket refilled, brings them. The defaults let an honest
 *   initial sync of 100,000 documents through at once.
 *
 * Both count what they refuse; the node reports it in `metrics()` and the log.
 */
import type { Timers } from './clock.js'

/** Bytes of exchange frames and partial updates held by the whole node, past which exchanges are aborted. */
export class ReceiveBudget {
  private held = 0

  constructor (readonly limit: number) {}

  /**
   * Take `bytes` if they fit; false (nothing taken) when they would pass the limit. Bytes larger
   * than the whole budget are taken while nothing else is held, so one frame always gets through.
   */
  take (bytes: number): boolean {
    if (this.held + bytes > this.limit && this.held > 0) return false
    this.held += bytes
    return true
  }

  give (bytes: number): void {
    this.held = Math.max(0, this.held - bytes)
  }

  /** Bytes held right now. */
  get bytes (): number {
    return this.held
  }
}

export interface QuotaSettings {
  /** New documents one peer may make this node create per minute, after the burst. */
  docsPerMinute: number
  /** New documents one peer may create at once (the bucket's size). */
  docsBurst: number
  /** Bytes of updates creating new documents one peer may send per minute, after the burst. */
  bytesPerMinute: number
  /** ... at once. */
  bytesBurst: number
}

interface Bucket { docs: number, bytes: number, at: number }

/** Peers whose buckets are kept; full buckets of peers beyond it are dropped first. */
const MAX_BUCKETS = 1024

/** Token buckets per peer for documents created on its behalf. */
export class CreationQuota {
  private readonly buckets = new Map<string, Bucket>()
  /** Documents refused so far. */
  refused = 0

  constructor (private s: QuotaSettings, private readonly timers: Pick<Timers, 'now'>) {}

  configure (s: QuotaSettings): void {
    this.s = s
  }

  /** Whether `peer` may create one more document of `bytes` now; takes the tokens when it may. */
  take (peer: string, bytes: number): boolean {
    const b = this.refill(peer)
    if (b.docs < 1 || b.bytes < bytes) {
      this.refused++
      return false
    }
    b.docs -= 1
    b.bytes -= bytes
    return true
  }

  private refill (peer: string): Bucket {
    const now = this.timers.now()
    let b = this.buckets.get(peer)
    if (b === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.dropFull(now)
      b = { docs: this.s.docsBurst, bytes: this.s.bytesBurst, at: now }
      this.buckets.set(peer, b)
      return b
    }
    const minutes = Math.max(0, now - b.at) / 60_000
    b.docs = Math.min(this.s.docsBurst, b.docs + minutes * this.s.docsPerMinute)
    b.bytes = Math.min(this.s.bytesBurst, b.bytes + minutes * this.s.bytesPerMinute)
    b.at = now
    return b
  }

  /** Forget buckets that have refilled (they would start full anyway), oldest first. */
  private dropFull (now: number): void {
    for (const [peer, b] of this.buckets) {
      const minutes = Math.max(0, now - b.at) / 60_000
      if (b.docs + minutes * this.s.docsPerMinute >= this.s.docsBurst && b.bytes + minutes * this.s.bytesPerMinute >= this.s.bytesBurst) this.buckets.delete(peer)
    }
    // still full of peers that are all busy creating: the oldest goes (its peer starts afresh)
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string)
  }
}

/**
 * A token bucket per peer for one kind of thing a peer asks of this node (presence states,
 * watched documents): `burst` at once, `perSecond` after that. Buckets of peers that are full
 * again are dropped, so at most `MAX_BUCKETS` are kept.
 */
export class PeerRate {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly perSecond: number, private readonly burst: number, private readonly timers: Pick<Timers, 'now'>) {}

  /** Take `n` of the peer's tokens; false (nothing taken) when it has fewer. */
  take (peer: string, n: number): boolean {
    const now = this.timers.now()
    let b = this.buckets.get(peer)
    if (b === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.dropFull(now)
      this.buckets.set(peer, b = { tokens: this.burst, at: now })
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perSecond / 1000)
    b.at = now
    if (b.tokens < n) return false
    b.tokens -= n
    return true
  }

  forget (peer: string): void {
    this.buckets.delete(peer)
  }

  private dropFull (now: number): void {
    for (const [peer, b] of this.buckets) if (b.tokens + (now - b.at) * this.perSecond / 1000 >= this.burst) this.buckets.delete(peer)
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string)
  }
}
