/**
 * Membership: this node's side of cluster state (cluster.ts) and what it tells peers about itself.
 *
 * It runs the gossip loop (each round bumps the heartbeat, forgets long-dead members and sends our
 * cluster digest to one random connected peer), answers and applies peers' gossip under the trust
 * rules (entries refused are counted and logged at most once a minute per session), decides each
 * member's `alive`/`suspect`/`dead` state, keeps `setMeta` entries, and makes the status
 * announcements: our digest root to every session and, with the document count and stored bytes,
 * into cluster state, at most every `statusIntervalMs` after changes.
 */
import { equalBytes } from './bytes.js'
import type { Timers } from './clock.js'
import { ClusterState, type MemberState } from './cluster.js'
import { CLUSTER_FORGET_DEAD_MULTIPLE, CLUSTER_MAX_VALUE_BYTES, CLUSTER_REJECTION_LOG_MS } from './constants.js'
import { ConfigError } from './errors.js'
import { Emitter } from './events.js'
import type { Log } from './logger.js'
import type { Counters } from './metrics.js'
import type { Settings } from './options.js'
import type { PeerTable } from './peers.js'
import { MAX_GOSSIP_KEY_BYTES, type GossipMessage } from './protocol.js'
import type { Random } from './random.js'
import type { Session } from './session.js'

export interface MembershipEvents extends Record<string, unknown> {
  /** A gossip round began (about once per `cluster.intervalMs`). */
  round: { now: number }
  /** Gossip brought `setMeta` entries of these members (new or not: listeners re-read `peers()`). */
  meta: { peerIds: string[] }
  /** Gossip brought entries other than heartbeats (a new member, root, count, metadata). */
  news: Record<string, never>
}

export interface MembershipDeps {
  selfId: string
  peers: PeerTable
  settings: Settings
  timers: Timers
  log: Log
  counters: Counters
  rng: Random
  /** Our digest root and document count now. */
  digest: () => { root: Uint8Array, count: number }
  /** The root and count of what we share with one peer (digest-views.ts). */
  digestFor: (peerId: string) => { root: Uint8Array, count: number }
  /** Bytes of document updates stored now (`metrics().storedBytes`). */
  storedBytes: () => number
  guard: (what: string, fn: () => void) => void
  /**
   * The wait before the next gossip round, from the base interval (idle.ts backs it off while
   * quiet). While it is longer than the base, a round may stay silent (Trickle's suppression).
   */
  interval: (baseMs: number) => number
}

export class Membership extends Emitter<MembershipEvents> {
  readonly members: ClusterState
  private running = false
  private heartbeat = 0
  private gossipTimer: unknown
  private gossipDueAt = 0
  private statusTimer: unknown
  private announcedRoot: Uint8Array | undefined
  /** Stored bytes last published in cluster state (`hearsay/bytes`). */
  private announcedBytes: number | undefined
  /** When each session last logged dropped cluster entries. */
  private readonly rejectionsLogged = new WeakMap<Session, number>()
  /** A peer's gossip round reached us since our last round. */
  private heard = false

  constructor (private readonly d: MembershipDeps) {
    super()
    // this run of our cluster state: a restart starts a later one (see cluster.ts)
    this.members = new ClusterState(d.selfId, d.settings.cluster, () => d.timers.now(), d.timers.now())
  }

  /** Publish our digest into cluster state; announcements may go out from now on. */
  start (): void {
    this.running = true
    const { root, count } = this.d.digest()
    this.publish(root, count)
  }

  /** Begin the gossip loop (once the transport is up). */
  startGossip (): void {
    this.scheduleGossip()
  }

  stop (): void {
    this.running = false
    for (const t of [this.gossipTimer, this.statusTimer]) if (t !== undefined) this.d.timers.clearTimeout(t)
    this.gossipTimer = this.statusTimer = undefined
  }

  /** The cluster settings changed. */
  reconfigured (gossipChanged: boolean, clusterEnabled: boolean): void {
    if (!gossipChanged) return
    if (clusterEnabled && this.running) {
      const { root, count } = this.d.digest()
      this.publish(root, count)
    }
    this.scheduleGossip()
  }

  /** A member's state: `alive` while connected or heard from within `suspectMs`, then `suspect`, then `dead`. */
  stateOf (connected: boolean, lastSeen: number): MemberState {
    if (connected) return 'alive'
    const { suspectMs, deadMs } = this.d.settings.cluster
    const quiet = this.d.timers.now() - lastSeen
    return quiet < suspectMs ? 'alive' : quiet < deadMs ? 'suspect' : 'dead'
  }

  setMeta (key: string, value: string): void {
    if (typeof key !== 'string' || key.length === 0 || textEncoder.encode(key).length > MAX_GOSSIP_KEY_BYTES || key.startsWith('hearsay/')) {
      throw new ConfigError(`meta key must be 1 to ${MAX_GOSSIP_KEY_BYTES} bytes and not start with "hearsay/", got ${JSON.stringify(key)}`)
    }
    const bytes = textEncoder.encode(String(value))
    if (bytes.length > CLUSTER_MAX_VALUE_BYTES) throw new ConfigError(`meta value must be at most ${CLUSTER_MAX_VALUE_BYTES} bytes, got ${bytes.length}`)
    const refused = this.members.refuses(key, bytes)
    if (refused !== undefined) throw new ConfigError(`meta entry ${JSON.stringify(key)} refused: ${refused}`)
    this.members.set(key, bytes)
  }

  /** Cluster state gossip from a peer: apply it under the trust rules, then answer. */
  received (session: Session, msg: GossipMessage): void {
    if (!this.d.settings.cluster.enabled) return
    const { members } = this
    members.apply(msg.entries, session.remoteId)
    const meta = new Set<string>()
    let news = false
    for (const e of msg.entries) {
      if (e.nodeId === this.d.selfId) continue
      if (!e.key.startsWith('hearsay/')) meta.add(e.nodeId)
      if (e.key !== 'hearsay/hb') news = true
    }
    if (meta.size > 0) this.emit('meta', { peerIds: [...meta] })
    if (news) this.emit('news', {})
    const rejected = members.takeRejections()
    if (rejected.size > 0) {
      let n = 0
      for (const count of rejected.values()) n += count
      this.d.counters.gossipEntriesRejected += n
      // every frame is counted; the log says so at most once per peer per interval
      const now = this.d.timers.now()
      if (now - (this.rejectionsLogged.get(session) ?? -Infinity) >= CLUSTER_REJECTION_LOG_MS) {
        this.rejectionsLogged.set(session, now)
        this.d.log.warn('dropped %d cluster state entries from %s: %s', n, session.remoteId, [...rejected].map(([why, count]) => `${why} (${count})`).join(', '))
      }
    }
    const budget = session.frameLimit / 2
    if (msg.request) {
      this.heard = true
      session.sendGossip({ request: false, answer: true, digest: members.digest(), entries: members.deltasFor(msg.digest, budget) })
    } else if (msg.answer) {
      const entries = members.deltasFor(msg.digest, budget)
      if (entries.length > 0) session.sendGossip({ request: false, answer: false, digest: [], entries })
    }
  }

  /** Our documents changed: announce the new root after `statusIntervalMs`, unless one is pending. */
  scheduleStatus (): void {
    if (this.statusTimer !== undefined || !this.running) return
    this.statusTimer = this.d.timers.setTimeout(() => this.d.guard('status announcement', () => {
      this.statusTimer = undefined
      this.announce()
    }), this.d.settings.statusIntervalMs)
  }

  /** The stored size changed: it is announced with the digest, at the same cadence. */
  sizeChanged (): void {
    if (this.d.storedBytes() !== this.announcedBytes) this.scheduleStatus()
  }

  /** Announce now, replacing a scheduled announcement. */
  announceNow (): void {
    if (!this.running) return
    if (this.statusTimer !== undefined) {
      this.d.timers.clearTimeout(this.statusTimer)
      this.statusTimer = undefined
    }
    this.announce()
  }

  /** Tell peers the digest root (and cluster state the size) if either changed since last time. */
  private announce (): void {
    const { root, count } = this.d.digest()
    const rootChanged = this.announcedRoot === undefined || !equalBytes(root, this.announcedRoot)
    if (!rootChanged && this.d.storedBytes() === this.announcedBytes) return
    this.announcedRoot = root
    this.publish(root, count)
    if (!rootChanged) return
    for (const p of this.d.peers.all()) {
      if (p.session === undefined) continue
      const shared = this.d.digestFor(p.id)
      p.session.sendStatus(shared.root, shared.count)
    }
  }

  private publish (root: Uint8Array, count: number): void {
    if (!this.d.settings.cluster.enabled) return
    this.members.set('hearsay/root', root)
    this.members.set('hearsay/docs', textEncoder.encode(String(count)))
    const bytes = this.d.storedBytes()
    if (bytes !== this.announcedBytes) {
      this.announcedBytes = bytes
      this.members.set('hearsay/bytes', textEncoder.encode(String(bytes)))
    }
  }

  /** A backed-off gossip round due later than a base interval from now comes at the base interval instead. */
  hurry (): void {
    if (this.gossipTimer !== undefined && this.gossipDueAt > this.d.timers.now() + this.d.settings.cluster.intervalMs * 1.25) this.scheduleGossip()
  }

  private scheduleGossip (): void {
    const { cluster } = this.d.settings
    if (this.gossipTimer !== undefined) this.d.timers.clearTimeout(this.gossipTimer)
    this.gossipTimer = undefined
    if (!cluster.enabled || !this.running) return
    let wait = this.d.interval(cluster.intervalMs) * (1 + 0.25 * (2 * this.d.rng.next() - 1))
    // a backed-off round still comes when a silent member or peer is due to be forgotten
    const forgetAt = earliest(this.members.nextForgetAt(), this.d.peers.nextQuietAt(cluster.deadMs * CLUSTER_FORGET_DEAD_MULTIPLE, this.known))
    if (forgetAt !== undefined) wait = Math.min(wait, Math.max(cluster.intervalMs, forgetAt - this.d.timers.now() + 1))
    this.gossipDueAt = this.d.timers.now() + wait
    this.gossipTimer = this.d.timers.setTimeout(() => {
      this.gossipTimer = undefined
      this.d.guard('gossip round', () => { this.gossipRound() })
      this.scheduleGossip()
    }, wait)
  }

  /** Whether cluster state knows the member (the peer table keeps such peers). */
  private readonly known = (peerId: string): boolean => this.members.lastHeard(peerId) !== undefined

  /**
   * Bump the heartbeat, forget long-dead members (and peers with no session that nobody has heard
   * of for as long), and send our digest to one random connected peer, unless we are backed off
   * and a peer's round reached us since our last one: then that exchange carried our heartbeat
   * already, and a pair of quiet nodes makes one exchange an interval, not two.
   */
  private gossipRound (): void {
    const { members } = this
    const forgetAfter = this.d.settings.cluster.deadMs * CLUSTER_FORGET_DEAD_MULTIPLE
    members.set('hearsay/hb', textEncoder.encode(String(++this.heartbeat)))
    for (const gone of members.forget()) this.d.log('forgot %s: not heard from in %d ms', gone, forgetAfter)
    this.d.peers.forgetQuiet(forgetAfter, this.known)
    const base = this.d.settings.cluster.intervalMs
    const silent = this.heard && this.d.interval(base) > base
    this.heard = false
    this.emit('round', { now: this.d.timers.now() })
    const open = this.d.peers.connected()
    if (open.length === 0 || silent) return
    const p = this.d.rng.pick(open)
    if (!(p.session as Session).sendGossip({ request: true, answer: false, digest: members.digest(), entries: [] })) {
      this.d.log('cluster digest does not fit a frame to %s', p.id)
    }
  }
}

const textEncoder = new TextEncoder()

const earliest = (a: number | undefined, b: number | undefined): number | undefined => a === undefined ? b : b === undefined ? a : Math.min(a, b)
