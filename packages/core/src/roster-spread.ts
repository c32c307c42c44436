/**
 * How the roster spreads (the Roster frame, PROTOCOL.md): a summary (hash and count) on every new
 * session and to one random peer each gossip round; a differing summary answered with every
 * statement (at most once a second per session); statements new to this node flooded to every
 * other session at once, and sent again each round for `ROSTER_HOT_ROUNDS` rounds after a change
 * to peers not known to hold them. What the statements mean, and whether to take them, is trust.ts's.
 */
import { equalBytes, toHex } from './bytes.js'
import type { Timers } from './clock.js'
import { ROSTER_ANSWER_INTERVAL_MS, ROSTER_HOT_ROUNDS } from './constants.js'
import { TrustError } from './errors.js'
import type { PeerTable } from './peers.js'
import { ROSTER_HEADER_BYTES, type RosterMessage } from './protocol.js'
import type { Random } from './random.js'
import type { Session } from './session.js'
import type { SignedStatement } from './statements.js'
import type { Trust } from './trust.js'

/** Recent statements kept for the rounds after a change (older ones are left to summaries). */
const RECENT_MAX = 256

const summaryOf = (hash: Uint8Array, count: number): string => `${toHex(hash)}/${count}`

export interface RosterSpreadDeps {
  trust: Trust
  peers: PeerTable
  timers: Timers
  rng: Random
}

export class RosterSpread {
  private readonly answeredAt = new Map<string, number>()
  /** Each peer's roster summary as it last told us (hex hash and count). */
  private readonly summaries = new Map<string, string>()
  /** Gossip rounds left in which peers not known to agree get the recent statements again. */
  private hotRounds = 0
  /** Statements taken since the roster last stayed unchanged for `ROSTER_HOT_ROUNDS` rounds. */
  private recent: SignedStatement[] = []

  constructor (private readonly d: RosterSpreadDeps) {}

  /** Statements new to this node: to every open session but the one they came from, now and in the next rounds. */
  learned (statements: SignedStatement[], from: string | undefined): void {
    for (const p of this.d.peers.connected()) if (p.id !== from) this.send(p.session as Session, statements)
    this.hotRounds = ROSTER_HOT_ROUNDS
    this.recent = [...this.recent, ...statements].slice(-RECENT_MAX)
  }

  /** A session opened: a managed node sends its summary. */
  opened (session: Session): void {
    if (this.d.trust.managed) session.sendRoster({ kind: 'ask', hash: this.d.trust.hash, count: this.d.trust.count, statements: [] })
  }

  /** Each gossip round, one random peer gets our summary (repairs what flooding missed). */
  round (): void {
    const open = this.d.peers.connected()
    if (!this.d.trust.managed || open.length === 0) return
    // for a few rounds after a change, every peer that has not told us it holds what we hold gets
    // the new statements again and our summary: a flood a lost frame cut short is repaired a hop a
    // round on any mesh, at no cost while nothing changes
    if (this.hotRounds > 0) {
      this.hotRounds--
      const mine = summaryOf(this.d.trust.hash, this.d.trust.count)
      for (const p of open) {
        if (this.summaries.get(p.id) === mine) continue
        this.send(p.session as Session, this.recent)
        this.opened(p.session as Session)
      }
      if (this.hotRounds === 0) this.recent = []
      return
    }
    this.opened(this.d.rng.pick(open).session as Session)
  }

  /** A roster frame from a peer. */
  async received (session: Session, msg: RosterMessage): Promise<void> {
    const peerId = session.remoteId
    // trust turned off (no `trust` option): roster traffic is ignored, as by a build without it
    if (!this.d.trust.enabled) return
    this.summaries.set(peerId, summaryOf(msg.hash, msg.count))
    if (msg.kind === 'statements') {
      const { added, refusal } = await this.d.trust.add(msg.statements, peerId)
      if (refusal?.forged === true) session.fail(new TrustError(refusal.reason))
      else if (refusal?.alreadyUsed === true) session.close(`refused: ${refusal.reason}`, true)
      // tell the sender where we stand now: that we took them (it sends what we still lack), or that
      // we already hold everything it does (it stops sending them again)
      else if (added.length > 0 || (msg.statements.length > 0 && refusal === undefined && summaryOf(msg.hash, msg.count) === summaryOf(this.d.trust.hash, this.d.trust.count))) {
        session.sendRoster({ kind: 'answer', hash: this.d.trust.hash, count: this.d.trust.count, statements: [] })
      }
      return
    }
    if (!this.d.trust.managed) {
      // unmanaged: ask for the peer's statements by answering with an empty summary
      if (msg.kind === 'ask' && this.d.trust.adopts) session.sendRoster({ kind: 'answer', hash: this.d.trust.hash, count: 0, statements: [] })
      return
    }
    if (!this.answers(peerId, msg)) return
    this.send(session, this.d.trust.all())
    if (msg.kind === 'ask') session.sendRoster({ kind: 'answer', hash: this.d.trust.hash, count: this.d.trust.count, statements: [] })
  }

  /** Send statements in as many frames as they need. */
  private send (session: Session, statements: SignedStatement[]): void {
    let batch: Uint8Array[] = []
    let bytes = ROSTER_HEADER_BYTES
    const flush = (): void => {
      if (batch.length > 0) session.sendRoster({ kind: 'statements', hash: this.d.trust.hash, count: this.d.trust.count, statements: batch })
      batch = []
      bytes = ROSTER_HEADER_BYTES
    }
    for (const s of statements) {
      if (bytes + s.bytes.length + 2 > session.frameLimit) flush()
      batch.push(s.bytes)
      bytes += s.bytes.length + 2
    }
    flush()
  }

  /** Whether to answer a peer's summary with every statement: differs, and not answered within a second. */
  answers (peerId: string, msg: RosterMessage): boolean {
    if (!this.d.trust.managed) return false
    if (msg.count === this.d.trust.count && equalBytes(msg.hash, this.d.trust.hash)) return false
    const now = this.d.timers.now()
    if (now - (this.answeredAt.get(peerId) ?? -Infinity) < ROSTER_ANSWER_INTERVAL_MS) return false
    this.answeredAt.set(peerId, now)
    return true
  }

  /** Connected peers whose roster, as they last told us, equals ours (for `hearsay join`: admitted). */
  agreeing (): string[] {
    const mine = summaryOf(this.d.trust.hash, this.d.trust.count)
    return this.d.peers.connected().filter(p => this.summaries.get(p.id) === mine).map(p => p.id)
  }

  forget (peerId: string): void {
    this.summaries.delete(peerId)
    this.answeredAt.delete(peerId)
  }
}

