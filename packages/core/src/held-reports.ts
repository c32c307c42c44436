/**
 * Held reports: the answering side of acknowledgements. A peer that follows a document sends a
 * `watch` (acks.ts); this node then reports to it what it holds of that document, at once, after
 * each change applied to it and after each write of it to storage, until `unwatch` or the end of
 * the session. A report carries the state vector applied in memory and the one the store holds
 * for certain (`Documents.vectors`, never ahead of a completed write), so no peer is ever told
 * "stored" early.
 *
 * A peer may have up to `ACK_MAX_WATCHES_PER_PEER` documents watched, only documents both may
 * read, and ask about `ACK_WATCHES_PER_SECOND` a second; others are ignored, logged once a minute.
 * Changes within one turn of the event loop make one report per peer.
 */
import * as Y from 'yjs'
import { NextTurn, type Timers } from './clock.js'
import { ACK_MAX_WATCHES_PER_PEER, ACK_WATCHES_PER_SECOND } from './constants.js'
import type { Documents } from './documents.js'
import { LogThrottle, type Log } from './logger.js'
import type { Counters } from './metrics.js'
import type { PeerTable } from './peers.js'
import { FRAME_OVERHEAD, heldSizeEstimate, type HeldDoc } from './protocol.js'
import { PeerRate } from './receive-limits.js'
import type { Session } from './session.js'

export interface HeldReportsDeps {
  peers: PeerTable
  docs: Documents
  timers: Timers
  log: Log
  counters: Counters
  /** Whether this node and the peer may both read the document. */
  readable: (peerId: string, docId: string) => boolean
}

export class HeldReports {
  /** Documents each peer watches here. */
  private readonly served = new Map<string, Set<string>>()
  /** Reports owed: peer → documents. */
  private readonly owed = new Map<string, Set<string>>()
  private readonly rate: PeerRate
  /** Reports owed, sent on the next turn (changes in one turn make one report per peer). */
  private readonly reporting: NextTurn
  private readonly logs: LogThrottle
  private stopped = false

  constructor (private readonly d: HeldReportsDeps) {
    this.rate = new PeerRate(ACK_WATCHES_PER_SECOND, ACK_MAX_WATCHES_PER_PEER, d.timers)
    this.logs = new LogThrottle(() => d.timers.now())
    this.reporting = new NextTurn(d.timers, () => {
      this.flush().catch((err: unknown) => { this.d.log.error('could not report held documents', err) })
    })
  }

  /** A peer's `watch`: report on these documents (at once, then after every change). */
  watch (peerId: string, docIds: string[]): void {
    if (this.stopped) return
    if (!this.rate.take(peerId, docIds.length)) {
      this.note(`${peerId} asks about more than ${ACK_WATCHES_PER_SECOND} documents a second: watches ignored`)
      return
    }
    let set = this.served.get(peerId)
    if (set === undefined) this.served.set(peerId, set = new Set())
    for (const id of docIds) {
      if (!this.d.readable(peerId, id)) continue
      if (!set.has(id) && set.size >= ACK_MAX_WATCHES_PER_PEER) {
        this.note(`${peerId} watches more than ${ACK_MAX_WATCHES_PER_PEER} documents: "${id}" and later ones are not reported`)
        continue
      }
      set.add(id)
      this.owe(peerId, id)
    }
  }

  /** Whether some peer watches the document. */
  watched (docId: string): boolean {
    for (const set of this.served.values()) if (set.has(docId)) return true
    return false
  }

  /** A peer's `unwatch`. */
  unwatch (peerId: string, docIds: string[]): void {
    const set = this.served.get(peerId)
    for (const id of docIds) set?.delete(id)
  }

  /** A document changed here, or a write of it completed: peers watching it are owed a report. */
  changed (docId: string): void {
    for (const [peerId, set] of this.served) if (set.has(docId)) this.owe(peerId, docId)
  }

  private owe (peerId: string, docId: string): void {
    let set = this.owed.get(peerId)
    if (set === undefined) this.owed.set(peerId, set = new Set())
    set.add(docId)
    if (!this.stopped) this.reporting.schedule()
  }

  private async flush (): Promise<void> {
    const owed = [...this.owed]
    this.owed.clear()
    const vectors = new Map<string, HeldDoc | undefined>()
    for (const [peerId, docIds] of owed) {
      const held: HeldDoc[] = []
      for (const docId of docIds) {
        if (!(this.served.get(peerId)?.has(docId) ?? false) || !this.d.readable(peerId, docId)) continue
        if (!vectors.has(docId)) {
          try {
            const v = await this.d.docs.vectors(docId)
            vectors.set(docId, { docId, applied: Y.decodeStateVector(v.applied), stored: v.stored === undefined ? undefined : Y.decodeStateVector(v.stored) })
          } catch {
            vectors.set(docId, undefined) // quarantined: reported by node.problems(), not here
          }
        }
        const h = vectors.get(docId)
        if (h !== undefined) held.push(h)
      }
      const session = this.d.peers.openSession(peerId)
      if (session !== undefined && held.length > 0) this.send(session, held)
    }
  }

  private send (session: Session, held: HeldDoc[]): void {
    const budget = session.frameLimit - FRAME_OVERHEAD - 16
    let batch: HeldDoc[] = []
    let size = 0
    const flush = (): void => {
      if (batch.length === 0) return
      session.sendAck({ kind: 'held', held: batch })
      this.d.counters.acksSent += batch.length
      batch = []
      size = 0
    }
    for (const h of held) {
      const n = heldSizeEstimate(h)
      if (n > budget) continue // a state vector of tens of thousands of clients: not reported
      if (size + n > budget) flush()
      batch.push(h)
      size += n
    }
    flush()
  }

  /** Log once a minute. */
  private note (message: string): void {
    if (this.logs.allows()) this.d.log.warn(message)
  }

  /** A session closed: its peer's watches end. */
  closed (peerId: string): void {
    this.served.delete(peerId)
    this.owed.delete(peerId)
  }

  forget (peerId: string): void {
    this.rate.forget(peerId)
  }

  stop (): void {
    this.stopped = true
    this.reporting.cancel()
  }
}
