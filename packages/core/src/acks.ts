/**
 * Acknowledgements, the asking side: which peers hold a document, in memory and in storage.
 * Nothing is sent while nobody asks, so the live path pays nothing for them; the answering side
 * is held-reports.ts.
 *
 * - `replicated(docId, …)` and `syncState(docId)` make the node follow the document: every open
 *   session that may read it gets a `watch` Ack frame, sent again every `ACK_REWATCH_MS` while
 *   someone waits (a lost frame costs at most that), and to each session that opens.
 * - Peers answer with `held` reports: the state vector applied in memory and, when known, the one
 *   in storage. A report is a fact about the past (state only grows), so reports of one session
 *   are merged by taking the larger clock; a new session's first report replaces the old one.
 * - A waiter resolves once the peers it names (or that many peers) hold a state vector covering
 *   the document's state vector as of the call (in storage, when `durable`); it rejects with
 *   `ReplicationTimeoutError` naming who did not confirm. Following ends `ACK_LINGER_MS` after
 *   the last `syncState` call once nobody waits, with an `unwatch`.
 */
import * as Y from 'yjs'
import { ACK_LINGER_MS, ACK_MAX_FOLLOWED_DOCS, ACK_REWATCH_MS, ACK_TIMEOUT_MS } from './constants.js'
import { NextTurn } from './clock.js'
import { ConfigError, NotStartedError, ReplicationTimeoutError } from './errors.js'
import type { HeldReportsDeps } from './held-reports.js'
import type { HeldDoc, StateVector } from './protocol.js'
import type { Session } from './session.js'

export type PeerSync = 'synced' | 'behind' | 'unknown'

/** What this node knows of one peer's copy of a document. */
export interface PeerSyncState {
  peerId: string
  /** The peer's device name in the roster, if any. */
  name?: string
  /**
   * `synced`: the peer holds everything this node holds of the document; `behind`: it is
   * connected and lacks some of it; `unknown`: no report yet, or not connected and not known to
   * hold everything.
   */
  state: PeerSync
  /** The peer's storage holds everything this node holds of the document. */
  durable: boolean
  connected: boolean
}

export interface DocSyncState { docId: string, peers: PeerSyncState[] }

export interface ReplicatedOptions {
  /** These peers, or this many peers (any that may read the document). @default 1 */
  peers?: string[] | number
  /** Wait until the peers' storage holds it, not only their memory. @default false */
  durable?: boolean
  /** @default ACK_TIMEOUT_MS (30 s) */
  timeoutMs?: number
}

export interface Replicated {
  docId: string
  /** The peers that confirmed. */
  peers: string[]
}

interface Report { applied: StateVector, stored: StateVector | undefined, session: Session }

interface Waiter {
  target: StateVector
  durable: boolean
  want: string[] | number
  resolve: (r: Replicated) => void
  reject: (err: Error) => void
  timer: unknown
}

/** A document whose sync state this node follows. */
interface Followed {
  docId: string
  /** Our own state vector, once read. */
  local: StateVector | undefined
  reports: Map<string, Report>
  /** Sessions sent a watch. */
  watching: Set<Session>
  waiters: Set<Waiter>
  lingerUntil: number
  /** The state last emitted, as JSON. */
  last: string
}

/** What the asking side reads is what the answering side does, plus names and where to say what changed. */
export interface AcksDeps extends HeldReportsDeps {
  nameOf: (peerId: string) => string | undefined
  /** A followed document's sync state changed. */
  changed: (state: DocSyncState) => void
}

/** Whether `sv` holds at least every clock of `target`. */
export function covers (sv: StateVector | undefined, target: StateVector): boolean {
  if (sv === undefined) return false
  for (const [client, clock] of target) if ((sv.get(client) ?? 0) < clock) return false
  return true
}

function merged (a: StateVector, b: StateVector): StateVector {
  const out = new Map(a)
  for (const [client, clock] of b) if ((out.get(client) ?? 0) < clock) out.set(client, clock)
  return out
}

export class Acks {
  private readonly followed = new Map<string, Followed>()
  /** Followed documents whose own state vector is to be read again. */
  private readonly localDirty = new Set<string>()
  /** Our own state vectors of followed documents that changed, read on the next turn (one read per turn). */
  private readonly reading: NextTurn
  private tickTimer: unknown
  private stopped = false

  constructor (private readonly d: AcksDeps) {
    this.reading = new NextTurn(d.timers, () => {
      this.readLocal().catch((err: unknown) => { this.d.log.error('could not read state vectors', err) })
    })
  }

  // -- watching

  async replicated (docId: string, options: ReplicatedOptions = {}): Promise<Replicated> {
    const want = options.peers ?? 1
    const durable = options.durable ?? false
    const timeoutMs = options.timeoutMs ?? ACK_TIMEOUT_MS
    if (typeof want === 'number' ? !Number.isInteger(want) || want < 1 || want > 1024 : !Array.isArray(want) || want.length === 0 || want.length > 1024 || want.some(p => typeof p !== 'string' || p.length === 0)) {
      throw new ConfigError('replicated: peers must be 1..1024 or a non-empty list of peer ids')
    }
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 86_400_000) throw new ConfigError('replicated: timeoutMs must be 1..86400000')
    if (typeof durable !== 'boolean') throw new ConfigError('replicated: durable must be a boolean')
    const target = Y.decodeStateVector((await this.d.docs.vectors(docId)).applied)
    if (this.stopped) throw new NotStartedError('node stopped')
    const f = this.follow(docId)
    return await new Promise<Replicated>((resolve, reject) => {
      const w: Waiter = { target, durable, want, resolve, reject, timer: undefined }
      w.timer = this.d.timers.setTimeout(() => {
        f.waiters.delete(w)
        const confirmed = this.holders(f, w)
        const missing = typeof want === 'number'
          ? [...this.candidates(f)].filter(p => !confirmed.includes(p))
          : want.filter(p => !confirmed.includes(p))
        const what = typeof want === 'number' ? `${want} peer(s)` : want.join(', ')
        reject(new ReplicationTimeoutError(docId, missing, confirmed,
          `"${docId}" not confirmed ${durable ? 'stored' : 'held'} by ${what} within ${timeoutMs} ms (confirmed: ${confirmed.join(', ') || 'none'}; missing: ${missing.join(', ') || 'no peer that may read it is connected'})`))
      }, timeoutMs)
      f.waiters.add(w)
      this.watch(f, true)
      this.check(f)
      this.tick()
    })
  }

  /** What this node knows of each peer's copy; starts following the document for `ACK_LINGER_MS`. */
  syncState (docId: string): DocSyncState {
    const f = this.follow(docId)
    f.lingerUntil = this.d.timers.now() + ACK_LINGER_MS
    this.tick()
    return this.state(f)
  }

  private follow (docId: string): Followed {
    let f = this.followed.get(docId)
    if (f !== undefined) {
      // most recently asked last: the first one is dropped past the cap
      this.followed.delete(docId)
      this.followed.set(docId, f)
      return f
    }
    if (this.followed.size >= ACK_MAX_FOLLOWED_DOCS) {
      for (const old of this.followed.values()) {
        if (old.waiters.size > 0) continue
        this.unfollow(old)
        break
      }
    }
    f = { docId, local: undefined, reports: new Map(), watching: new Set(), waiters: new Set(), lingerUntil: 0, last: '' }
    this.followed.set(docId, f)
    this.changed(docId)
    this.watch(f, false)
    return f
  }

  private unfollow (f: Followed): void {
    for (const s of f.watching) s.sendAck({ kind: 'unwatch', docIds: [f.docId] })
    this.followed.delete(f.docId)
  }

  /** Send a watch to every open session that may read the document (`again`: also those already sent one). */
  private watch (f: Followed, again: boolean): void {
    for (const p of this.d.peers.connected()) {
      const session = p.session as Session
      if ((!again && f.watching.has(session)) || !this.d.readable(p.id, f.docId)) continue
      f.watching.add(session)
      session.sendAck({ kind: 'watch', docIds: [f.docId] })
    }
  }

  /** Peers whose report covers the waiter's target. */
  private holders (f: Followed, w: Waiter): string[] {
    const out: string[] = []
    for (const [peerId, r] of f.reports) if (covers(w.durable ? r.stored : r.applied, w.target)) out.push(peerId)
    return out
  }

  /** Peers that could confirm: connected and allowed to read, or reporting. */
  private candidates (f: Followed): Set<string> {
    const out = new Set(f.reports.keys())
    for (const p of this.d.peers.connected()) if (this.d.readable(p.id, f.docId)) out.add(p.id)
    return out
  }

  private check (f: Followed): void {
    for (const w of f.waiters) {
      const holders = this.holders(f, w)
      const done = typeof w.want === 'number' ? holders.length >= w.want : w.want.every(p => holders.includes(p))
      if (!done) continue
      f.waiters.delete(w)
      this.d.timers.clearTimeout(w.timer)
      w.resolve({ docId: f.docId, peers: typeof w.want === 'number' ? holders : w.want.slice() })
    }
    this.emitState(f)
  }

  private state (f: Followed): DocSyncState {
    const peers: PeerSyncState[] = []
    const connected = new Set(this.d.peers.connected().map(p => p.id))
    const ids = new Set(f.reports.keys())
    for (const id of connected) if (this.d.readable(id, f.docId)) ids.add(id)
    for (const peerId of [...ids].sort()) {
      const r = f.reports.get(peerId)
      const live = connected.has(peerId)
      const has = f.local !== undefined && covers(r?.applied, f.local)
      const state: PeerSync = has ? 'synced' : r !== undefined && live && f.local !== undefined ? 'behind' : 'unknown'
      const name = this.d.nameOf(peerId)
      peers.push({ peerId, ...(name !== undefined ? { name } : {}), state, durable: f.local !== undefined && covers(r?.stored, f.local), connected: live })
    }
    return { docId: f.docId, peers }
  }

  private emitState (f: Followed): void {
    const s = this.state(f)
    const json = JSON.stringify(s)
    if (json === f.last) return
    f.last = json
    this.d.changed(s)
  }

  /** While anything is followed: watches again for waiters (losses), and following that lapsed ends. */
  private tick (): void {
    if (this.tickTimer !== undefined || this.stopped) return
    this.tickTimer = this.d.timers.setTimeout(() => {
      this.tickTimer = undefined
      const now = this.d.timers.now()
      for (const f of [...this.followed.values()]) {
        if (f.waiters.size > 0) this.watch(f, true)
        else if (f.lingerUntil <= now) this.unfollow(f)
      }
      if (this.followed.size > 0) this.tick()
    }, ACK_REWATCH_MS)
  }

  /** A peer's `held` reports. */
  received (session: Session, held: HeldDoc[]): void {
    if (this.stopped) return
    this.d.counters.acksReceived += held.length
    for (const h of held) this.report(session, h)
  }

  private report (session: Session, h: HeldDoc): void {
    const f = this.followed.get(h.docId)
    if (f === undefined) return
    const old = f.reports.get(session.remoteId)
    const r: Report = old === undefined || old.session !== session
      ? { applied: h.applied, stored: h.stored, session }
      : { applied: merged(old.applied, h.applied), stored: h.stored === undefined ? old.stored : old.stored === undefined ? h.stored : merged(old.stored, h.stored), session }
    f.reports.set(session.remoteId, r)
    this.check(f)
  }

  /** A document changed here (any origin): if followed, our own state vector is read again. */
  changed (docId: string): void {
    if (!this.followed.has(docId)) return
    this.localDirty.add(docId)
    if (!this.stopped) this.reading.schedule()
  }

  private async readLocal (): Promise<void> {
    const local = [...this.localDirty]
    this.localDirty.clear()
    for (const docId of local) {
      let applied: Uint8Array
      try {
        applied = (await this.d.docs.vectors(docId)).applied
      } catch {
        continue // quarantined: reported by node.problems(), not here
      }
      const f = this.followed.get(docId)
      if (f === undefined) continue
      f.local = Y.decodeStateVector(applied)
      this.check(f)
    }
  }

  /** A session opened: documents followed get a watch on it. */
  opened (session: Session): void {
    const docIds: string[] = []
    for (const f of this.followed.values()) {
      if (!this.d.readable(session.remoteId, f.docId)) continue
      f.watching.add(session)
      docIds.push(f.docId)
    }
    for (let i = 0; i < docIds.length; i += 256) session.sendAck({ kind: 'watch', docIds: docIds.slice(i, i + 256) })
  }

  /** A session closed: what we know of the peer is no longer live. */
  closed (session: Session): void {
    for (const f of this.followed.values()) {
      if (f.watching.delete(session)) this.emitState(f)
    }
  }

  /** The peer was forgotten. */
  forget (peerId: string): void {
    for (const f of this.followed.values()) f.reports.delete(peerId)
  }

  stop (): void {
    this.stopped = true
    this.reading.cancel()
    if (this.tickTimer !== undefined) this.d.timers.clearTimeout(this.tickTimer)
    for (const f of this.followed.values()) {
      for (const w of f.waiters) {
        this.d.timers.clearTimeout(w.timer)
        w.reject(new NotStartedError(`node stopped while waiting for "${f.docId}" to be replicated`))
      }
    }
    this.followed.clear()
  }
}
