/**
 * Anti-entropy: exchanges (exchange.ts) that bring a peer and this node level, whatever live
 * propagation missed.
 *
 * It owns "this peer is owed an exchange" (`needsRepair`): `reconcile(peer, why)` is the one way
 * in, for a peer that connected, a periodic round's pick, updates that were lost on the way to it,
 * an exchange that failed, or a peer restored from a checkpoint. Peers owed an exchange go first in
 * the next round, and their exchange is push-pull whatever the configured mode. It also runs the
 * periodic rounds (random or ring picks, among connected peers or alive members, dialling those
 * with no session), `syncWith` and `repairPass`.
 */
import type { Timers } from './clock.js'
import type { ClusterState } from './cluster.js'
import { PeerUnavailableError } from './errors.js'
import type { Log } from './logger.js'
import type { Settings } from './options.js'
import type { PeerTable } from './peers.js'
import type { AntiEntropyMode } from './protocol.js'
import type { Random } from './random.js'
import { nextInRing, passSequence, ringOrder } from './ring.js'
import type { Session } from './session.js'
import type { Transport } from './transport.js'
import type { SyncReport } from './exchange.js'

/**
 * Why to reconcile with a peer: it `connect`ed, a `round` picked it, updates to it were `lost`
 * (run now), its last exchange `failed` or it was `restored` from a checkpoint (first in the next
 * round, or when it connects).
 */
export type ReconcileReason = 'connect' | 'round' | 'lost' | 'failed' | 'restored'

export interface RepairReport {
  /** Exchanges run, in order. */
  exchanges: number
  /** Replicas whose exchange failed or that went away during the pass. */
  failed: string[]
  /** Known members (peers seen or heard of by gossip) with no open session: the pass could not reach them. */
  unreachable: string[]
  docsSent: number
  docsReceived: number
  /** Node clock time the pass took, in ms. */
  durationMs: number
}

export interface AntiEntropyDeps {
  selfId: string
  peers: PeerTable
  members: ClusterState
  transport: Transport
  settings: Settings
  timers: Timers
  log: Log
  rng: Random
  /** Runs a timer's work through the last-resort guard (guard.ts). */
  guard: (what: string, fn: () => void) => void
  /** Whether this node and its peers agree (idle.ts): periodic rounds are skipped then. */
  idle: () => boolean
  /** The wait before the next round, from the base interval (idle.ts backs it off while quiet). */
  interval: (baseMs: number) => number
}

export class AntiEntropy {
  private readonly owed = new Set<string>()
  private running = false
  private roundTimer: unknown
  private roundDueAt = 0
  /** The replica the last ring round reconciled with. */
  private ringLast: string | undefined
  /** Members a round is dialling (`reach: 'members'`). */
  private readonly dialing = new Set<string>()

  constructor (private readonly d: AntiEntropyDeps) {}

  /** Whether the peer is owed an exchange (updates to it were lost, or its last exchange failed). */
  needsRepair (peerId: string): boolean {
    return this.owed.has(peerId)
  }

  reconcile (peerId: string, why: ReconcileReason): void {
    if (why === 'lost' || why === 'failed' || why === 'restored') this.owed.add(peerId)
    if (why === 'failed' || why === 'restored') return
    this.run(peerId)
  }

  /**
   * The peer's session opened. Its Hello carried its digest root: equal to ours, there is nothing
   * to reconcile. Otherwise one push-pull exchange brings both sides level, so only the lower id
   * starts it; a node that pushes or pulls only starts its own, in its own direction. A peer owed
   * an exchange gets one either way.
   */
  connected (peerId: string, inSync: boolean): void {
    if (inSync) {
      this.owed.delete(peerId)
      return
    }
    const { ae } = this.d.settings
    if (ae.enabled && (this.owed.has(peerId) || (ae.onConnect && (ae.mode !== 'push-pull' || this.d.selfId < peerId)))) this.reconcile(peerId, 'connect')
  }

  forget (peerId: string): void {
    this.owed.delete(peerId)
  }

  start (): void {
    this.running = true
    this.schedule()
  }

  stop (): void {
    this.running = false
    if (this.roundTimer !== undefined) this.d.timers.clearTimeout(this.roundTimer)
    this.roundTimer = undefined
  }

  /** A backed-off round due later than a base interval from now comes at the base interval instead. */
  hurry (): void {
    const { ae } = this.d.settings
    if (this.roundTimer !== undefined && this.roundDueAt > this.d.timers.now() + ae.intervalMs * (1 + ae.jitter)) this.schedule()
  }

  /**
   * (Re)schedule the next periodic round, after `intervalMs` ± jitter (longer while idle: idle.ts).
   * A round while this node and its peers agree is skipped: every exchange would find nothing.
   */
  schedule (): void {
    const { ae } = this.d.settings
    if (this.roundTimer !== undefined) this.d.timers.clearTimeout(this.roundTimer)
    this.roundTimer = undefined
    if (!ae.enabled || !this.running) return
    const wait = this.d.interval(ae.intervalMs) * (1 + ae.jitter * (2 * this.d.rng.next() - 1))
    this.roundDueAt = this.d.timers.now() + wait
    this.roundTimer = this.d.timers.setTimeout(() => {
      this.roundTimer = undefined
      if (!this.d.idle()) this.d.guard('anti-entropy round', () => { this.round() })
      this.schedule()
    }, wait)
  }

  /**
   * Run an exchange with the peer now, unless one of ours is already running: in the configured
   * mode, or push-pull when the peer is owed one, which any mode must repair. A failed exchange
   * leaves the peer owed one, first in the next round.
   */
  private run (peerId: string): void {
    const s = this.d.peers.openSession(peerId)
    if (s === undefined || s.activeInitiated > 0) return
    const mode = this.owed.has(peerId) ? 'push-pull' : this.d.settings.ae.mode
    this.owed.delete(peerId)
    s.startExchange(mode, this.d.settings.ae.timeoutMs).catch((err: Error) => {
      this.reconcile(peerId, 'failed')
      this.d.log('exchange with %s failed: %s', peerId, err.message)
    })
  }

  /**
   * Reconcile with `fanout` random peers, those owed an exchange first: connected ones, or with
   * `reach: 'members'` any alive member, dialled when it has no open session.
   */
  private round (): void {
    const { ae } = this.d.settings
    const { peers, members, rng } = this.d
    const open = peers.connected()
    const openIds = new Set(open.map(p => p.id))
    const others = ae.reach === 'members'
      ? members.others().filter(pid => !openIds.has(pid) && !this.dialing.has(pid) && members.state(pid) === 'alive' &&
        // without `connect`, only a session already in its handshake can open
        (this.d.transport.connect !== undefined || peers.get(pid)?.session !== undefined))
      : []
    if (open.length + others.length === 0) return
    const needy = open.filter(p => this.owed.has(p.id)).map(p => p.id)
    const candidates = [...openIds, ...others]
    const picked = ae.selection === 'ring'
      ? this.ringPicks(needy, new Set(candidates))
      : ae.fanout === 1
      ? [rng.pick(needy.length > 0 ? needy : candidates)]
      : needy.length >= ae.fanout
      ? rng.shuffle(needy).slice(0, ae.fanout)
      : [...needy, ...rng.shuffle(candidates.filter(pid => !needy.includes(pid))).slice(0, ae.fanout - needy.length)]
    for (const pid of picked) {
      if (peers.openSession(pid) !== undefined) this.reconcile(pid, 'round')
      else this.dialForRound(pid)
    }
  }

  /** A round picked a member with no open session: open one (bounded by `timeoutMs`), then reconcile. */
  private dialForRound (pid: string): void {
    this.dialing.add(pid)
    this.session(pid, this.d.settings.ae.timeoutMs).then(() => {
      this.dialing.delete(pid)
      if (this.running) this.reconcile(pid, 'round')
    }, (err: unknown) => {
      this.dialing.delete(pid)
      this.d.log('anti-entropy round could not reach %s: %s', pid, err instanceof Error ? err.message : String(err))
    })
  }

  /** Peers owed an exchange first, then the next candidates in ring order. */
  private ringPicks (needy: string[], candidates: Set<string>): string[] {
    const { fanout } = this.d.settings.ae
    const picked = needy.slice(0, fanout)
    const usable = (pid: string): boolean => candidates.has(pid) && !picked.includes(pid)
    const next = nextInRing(ringOrder(this.d.selfId, this.knownIds()), this.ringLast, fanout - picked.length, usable)
    if (next.length > 0) this.ringLast = next[next.length - 1]
    return [...picked, ...next]
  }

  /** One exchange with a peer now; resolves when both sides are done. */
  async syncWith (peerId: string, opts: { mode?: AntiEntropyMode, timeoutMs?: number }): Promise<SyncReport> {
    const timeoutMs = opts.timeoutMs ?? this.d.settings.ae.timeoutMs
    const s = await this.session(peerId, timeoutMs)
    return await s.startExchange(opts.mode ?? this.d.settings.ae.mode, timeoutMs)
  }

  /** One closed-loop repair pass over every connected replica, in ring order (see `HearsayNode.repairPass`). */
  async repairPass (): Promise<RepairReport> {
    const { timers, peers, log } = this.d
    const started = timers.now()
    const report: RepairReport = { exchanges: 0, failed: [], unreachable: [], docsSent: 0, docsReceived: 0, durationMs: 0 }
    const ring = ringOrder(this.d.selfId, this.knownIds())
    const reachable = ring.filter(pid => peers.openSession(pid) !== undefined)
    report.unreachable = ring.filter(pid => !reachable.includes(pid))
    for (const pid of passSequence(reachable)) {
      const s = peers.openSession(pid)
      try {
        if (s === undefined) throw new PeerUnavailableError(`no open session with ${pid}`)
        const r = await s.startExchange('push-pull', this.d.settings.ae.timeoutMs)
        report.exchanges++
        report.docsSent += r.docsSent
        report.docsReceived += r.docsReceived
      } catch (err) {
        log('repair pass: exchange with %s failed: %s', pid, err instanceof Error ? err.message : String(err))
        if (!report.failed.includes(pid)) report.failed.push(pid)
      }
    }
    report.durationMs = timers.now() - started
    return report
  }

  /**
   * The open session with a peer. One still in its handshake is waited for; with no session at
   * all, the transport dials the peer when it can. Rejects with `PeerUnavailableError` when no
   * session opens within `timeoutMs`.
   */
  async session (peerId: string, timeoutMs: number): Promise<Session> {
    const { peers, timers, transport } = this.d
    const current = peers.get(peerId)?.session
    if (current?.state === 'open') return current
    if (current === undefined && transport.connect === undefined) throw new PeerUnavailableError(`no open session with ${peerId}`)
    return await new Promise<Session>((resolve, reject) => {
      const dial = new AbortController()
      const done = (err?: Error): void => {
        timers.clearTimeout(timer)
        offOpen()
        offClosed()
        dial.abort()
        const s = peers.openSession(peerId)
        if (err === undefined && s !== undefined) resolve(s)
        else reject(err ?? new PeerUnavailableError(`no open session with ${peerId}`))
      }
      const timer = timers.setTimeout(() => { done(new PeerUnavailableError(`no session with ${peerId} opened within ${timeoutMs} ms`)) }, timeoutMs)
      const offOpen = peers.on('open', e => { if (e.peer.id === peerId) done() })
      const offClosed = peers.on('closed', e => {
        if (e.peer.id === peerId) done(new PeerUnavailableError(`the session with ${peerId} closed before it opened: ${e.reason}`))
      })
      if (current === undefined) {
        transport.connect!(peerId, { signal: dial.signal }).catch((err: unknown) => {
          done(new PeerUnavailableError(`could not reach ${peerId}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }))
        })
      }
    })
  }

  private knownIds (): string[] {
    return [...this.d.peers.ids(), ...this.d.members.others()]
  }
}
