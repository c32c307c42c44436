/**
 * The live propagator: fresh local updates to peers at once, as direct mail or rumors.
 *
 * It owns the batch of local updates waiting for the next tick (`liveBatchMs`; sent at once past
 * `LIVE_BATCH_MAX_UPDATES` or `LIVE_BATCH_MAX_BYTES`, merged per document in runs of at most
 * `LIVE_MERGE_MAX_UPDATES`, so every step of the live path is bounded work), each peer's bounded
 * retry queue (updates for a peer that is away) and flow control (`PeerFlow`: a window on the
 * channel backlog and an outbox of held-back updates, flow.ts), and the `RumorMill` (rumor.ts).
 *
 * Whatever it cannot deliver — a retry queue or an outbox that overflowed, a frame shed because the
 * channel was backed up, an update too large for a frame — it reports as `lost(peerId, reason)`;
 * the node wires that to anti-entropy, which reconciles with the peer.
 */
import * as Y from 'yjs'
import type { Timers } from './clock.js'
import type { ClusterState } from './cluster.js'
import { LIVE_BATCH_MAX_BYTES, LIVE_BATCH_MAX_UPDATES, LIVE_MERGE_MAX_UPDATES } from './constants.js'
import { Emitter } from './events.js'
import { PeerFlow } from './flow.js'
import type { Log } from './logger.js'
import type { Counters } from './metrics.js'
import type { Settings } from './options.js'
import type { PeerTable } from './peers.js'
import { FRAME_OVERHEAD, type LiveEntry } from './protocol.js'
import type { Random } from './random.js'
import { RumorMill } from './rumor.js'
import type { Session } from './session.js'

/** Why updates to a peer were lost. */
export type LossReason = 'retry-overflow' | 'outbox-overflow' | 'shed'

export interface LiveEvents extends Record<string, unknown> {
  /** Updates meant for the peer did not reach it: only an exchange can repair that. */
  lost: { peerId: string, reason: LossReason }
}

export interface LiveDeps {
  peers: PeerTable
  /** Cluster state, read to tell whether some member that is up is not connected (rumor mode). */
  members: ClusterState
  settings: Settings
  timers: Timers
  log: Log
  counters: Counters
  rng: Random
  /** Whether anti-entropy already owes the peer an exchange: nothing is queued for it then. */
  owed: (peerId: string) => boolean
}

/** A peer's share of live propagation, kept across its sessions. */
interface LivePeer {
  /** Live updates waiting for the peer to come back. */
  retry: LiveEntry[]
  retryBytes: number
  flow: PeerFlow
}

export class LivePropagator extends Emitter<LiveEvents> {
  private queue: LiveEntry[] = []
  private queueBytes = 0
  private timer: unknown
  private readonly state = new Map<string, LivePeer>()
  readonly rumors: RumorMill

  constructor (private readonly d: LiveDeps) {
    super()
    this.rumors = new RumorMill(d.settings.propagation, d.rng)
  }

  private of (peerId: string): LivePeer {
    let s = this.state.get(peerId)
    if (s === undefined) this.state.set(peerId, s = { retry: [], retryBytes: 0, flow: new PeerFlow(this.d.settings.flow) })
    return s
  }

  /** A local update: batched, then sent on the next tick (when live propagation is on). */
  local (entry: LiveEntry): void {
    if (!this.d.settings.live.enabled) return
    this.queue.push(entry)
    this.queueBytes += entry.update.length
    if (this.queue.length >= LIVE_BATCH_MAX_UPDATES || this.queueBytes >= LIVE_BATCH_MAX_BYTES) this.flush()
    else if (this.timer === undefined) this.timer = this.d.timers.setTimeout(() => { this.flush() }, this.d.settings.live.batchMs)
  }

  /** Send the batch now (the timer's work; also on `flush()` and stop): merged per document, to every peer (or queued for those away). */
  flush (): void {
    if (this.timer !== undefined) this.d.timers.clearTimeout(this.timer)
    this.timer = undefined
    if (this.queue.length === 0) return
    this.queueBytes = 0
    // no peer to send to or queue for (and no rumor to start): merging would be wasted work
    if (this.d.peers.size === 0 && this.d.settings.propagation.mode !== 'rumor') {
      this.queue = []
      return
    }
    const byDoc = new Map<string, Uint8Array[]>()
    for (const e of this.queue) {
      const list = byDoc.get(e.docId)
      if (list === undefined) byDoc.set(e.docId, [e.update])
      else list.push(e.update)
    }
    this.queue = []
    const entries: LiveEntry[] = []
    for (const [docId, updates] of byDoc) {
      for (let i = 0; i < updates.length; i += LIVE_MERGE_MAX_UPDATES) {
        const run = updates.slice(i, i + LIVE_MERGE_MAX_UPDATES)
        entries.push({ docId, update: run.length === 1 ? run[0] as Uint8Array : Y.mergeUpdates(run) })
      }
    }
    const rumor = this.spreadsRumors()
    if (rumor) this.spread(this.rumors.fresh(entries), 1, undefined)
    for (const p of this.d.peers.all()) {
      if (p.session?.state === 'open') {
        if (!rumor) this.sendLive(p.session, entries)
      } else {
        this.queueRetry(p.id, entries)
      }
    }
  }

  /** The peer's session opened: what waited for it goes out. */
  opened (session: Session): void {
    const s = this.of(session.remoteId)
    if (s.retry.length === 0) return
    const queued = s.retry
    s.retry = []
    s.retryBytes = 0
    this.sendLive(session, queued)
  }

  /** The peer's session closed: updates held back for it wait for it like any other. */
  closed (peerId: string): void {
    const s = this.state.get(peerId)
    if (s?.flow.holding === true) this.queueRetry(peerId, s.flow.take())
  }

  /** The peer was forgotten by the peer table. */
  forget (peerId: string): void {
    this.state.delete(peerId)
  }

  /** The transport took `bytes` off the session's backlog `delayMs` after they were sent (flow.ts). */
  drained (session: Session, bytes: number, delayMs: number): void {
    if (this.d.peers.get(session.remoteId)?.session !== session || !this.d.settings.flow.enabled) return
    const s = this.of(session.remoteId)
    if (s.flow.drained(bytes, delayMs, this.d.timers.now())) this.d.counters.flowCongestions++
    if (s.flow.holding && session.backlog < s.flow.window) this.sendBatches(session, s.flow.take())
  }

  /** Backlog past which replies to the peer wait: its flow control window, within `sendQueueBytes`. */
  sendLimit (session: Session): number {
    const max = this.d.settings.sendQueueBytes
    return this.d.settings.flow.enabled ? Math.min(this.of(session.remoteId).flow.window, max) : max
  }

  /** A rumor from `session` was applied: pass on what is fresh, one hop further, while it may go on. */
  relay (session: Session, hops: number, entries: LiveEntry[]): void {
    const fresh = this.rumors.fresh(entries)
    if (fresh.length > 0 && this.rumors.forwards(hops)) this.spread(fresh, hops + 1, session.remoteId)
  }

  /** The flow control settings changed: clamp every window, and release what switched-off flow control held. */
  reconfigured (flowDisabled: boolean): void {
    for (const p of this.d.peers.all()) {
      const s = this.of(p.id)
      s.flow.clamp()
      // held updates would wait for a drain that no longer looks at them
      if (flowDisabled && s.flow.holding && p.session?.state === 'open') this.sendBatches(p.session, s.flow.take())
    }
  }

  /** Bytes of live updates held back for slow peers right now. */
  get heldBytes (): number {
    let n = 0
    for (const s of this.state.values()) n += s.flow.bytes
    return n
  }

  /** Keep live updates for a peer that is away, until the bounded queue overflows. */
  private queueRetry (peerId: string, entries: LiveEntry[]): void {
    if (this.d.owed(peerId)) return
    const s = this.of(peerId)
    for (const e of entries) {
      s.retry.push(e)
      s.retryBytes += e.update.length + e.docId.length
    }
    if (s.retryBytes > this.d.settings.retryQueueBytes) {
      this.d.log('retry queue for %s overflowed (%d bytes): anti-entropy will repair', peerId, s.retryBytes)
      this.d.counters.retryQueueOverflows += s.retry.length
      s.retry = []
      s.retryBytes = 0
      this.emit('lost', { peerId, reason: 'retry-overflow' })
    }
  }

  /** Direct mail to a connected peer, through its flow control (flow.ts). */
  private sendLive (session: Session, entries: LiveEntry[]): void {
    const s = this.of(session.remoteId)
    if (!this.d.settings.flow.enabled || s.flow.admits(session.backlog)) {
      this.sendBatches(session, entries)
      return
    }
    if (!s.flow.hold(entries)) {
      this.d.counters.flowOutboxOverflows++
      this.d.log('updates held for %s overflowed: anti-entropy will repair', session.remoteId)
      this.emit('lost', { peerId: session.remoteId, reason: 'outbox-overflow' })
    }
  }

  /**
   * Rumors in `auto` mode: some member that is still up is not connected to us, so direct mail
   * would miss it. With cluster state, "still up" is heard from (its heartbeat travels through
   * others) within `cluster.suspectMs`: a member that is down does not hold the node in rumor mode,
   * its retry queue waits for it. A member just heard of, not yet seen rising, counts until it is
   * dead: rumors reach it if it is up. Without cluster state, any peer heard from within `absentPeerMs`.
   */
  spreadsRumors (): boolean {
    const { propagation, cluster } = this.d.settings
    if (propagation.mode !== 'auto') return propagation.mode === 'rumor'
    const { members, peers } = this.d
    const now = this.d.timers.now()
    const window = cluster.enabled ? cluster.suspectMs : propagation.absentPeerMs
    for (const pid of new Set([...peers.ids(), ...members.others()])) {
      const p = peers.get(pid)
      if (p?.session?.state === 'open') continue
      const heard = Math.max(p?.lastSeen ?? -Infinity, members.lastHeard(pid) ?? -Infinity)
      if (now - heard < window) return true
      if (cluster.enabled && members.unconfirmed(pid) && members.state(pid) !== 'dead') return true
    }
    return false
  }

  /** Send a rumor's entries to `fanout` random connected peers other than the one it came from. */
  private spread (entries: LiveEntry[], hops: number, from: string | undefined): void {
    if (entries.length === 0) return
    const open = this.d.peers.connected().filter(p => p.id !== from)
    for (const p of this.rumors.targets(open)) this.sendBatches(p.session as Session, entries, hops)
  }

  /**
   * Send entries in frames that fit the session, as Live frames, or Rumor frames when `hops` is
   * given; anything too large for a frame goes by anti-entropy.
   */
  private sendBatches (session: Session, entries: LiveEntry[], hops?: number): void {
    const budget = session.frameLimit - FRAME_OVERHEAD - 16
    let batch: LiveEntry[] = []
    let size = 0
    let shed = false
    const send = (): void => {
      if (batch.length > 0 && !(hops === undefined ? session.sendLive(batch) : session.sendRumor(hops, batch))) shed = true
      batch = []
      size = 0
    }
    for (const e of entries) {
      const n = e.update.length + e.docId.length * 3 + 16
      if (n > budget) {
        shed = true
        continue
      }
      if (size + n > budget) send()
      batch.push(e)
      size += n
    }
    send()
    if (shed) this.emit('lost', { peerId: session.remoteId, reason: 'shed' })
  }
}
