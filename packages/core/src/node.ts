/**
 * `createNode`: many Y.Docs kept in sync with peers over any `Transport`, stored in any `Storage`.
 *
 * A node is a handful of subsystems, built and wired here and nowhere else:
 * - `Documents` (documents.ts): the Y.Docs, loaded on demand, fingerprinted, written to storage;
 * - `PeerTable` (peers.ts): every peer known, its session, its checkpoint;
 * - `Session` (session.ts) per connection, with its exchanges (exchange-runner.ts);
 * - `LivePropagator` (live.ts): fresh local updates to peers at once, as direct mail or rumors;
 * - `AntiEntropy` (anti-entropy.ts): exchanges that repair whatever live propagation missed;
 * - `Membership` (membership.ts): cluster state gossip and status announcements.
 * Options are resolved in options.ts, counters live in metrics.ts. ARCHITECTURE.md walks a local
 * edit through them to a remote Y.Doc.
 */
import { AntiEntropy } from './anti-entropy.js'
import { equalBytes } from './bytes.js'
import type { MemberState } from './cluster.js'
import { PEER_CHECKPOINT_INTERVAL_MS, CLUSTER_FORGET_DEAD_MULTIPLE } from './constants.js'
import { DigestViews } from './digest-views.js'
import { Documents } from './documents.js'
import { NotStartedError } from './errors.js'
import { Emitter } from './events.js'
import { validateDocId } from './fingerprint.js'
import { guarded } from './guard.js'
import { IdleBackoff } from './idle.js'
import { LivePropagator } from './live.js'
import { silentLogger } from './logger.js'
import { Membership } from './membership.js'
import { createMemoryStorage } from './memory-storage.js'
import { createCounters } from './metrics.js'
import { applyRuntime, checkAntiEntropy, checkNodeOptions, resolveSettings, type NodeOptions } from './options.js'
import { peerOf } from './origin.js'
import { PeerTable } from './peers.js'
import { createRandom } from './random.js'
import { CreationQuota, ReceiveBudget } from './receive-limits.js'
import { Session, type SessionContext } from './session.js'
import type { Channel } from './transport.js'
import { RosterSpread } from './roster-spread.js'
import { Trust } from './trust.js'
import { trustFacade } from './node-trust.js'
import { Presence } from './presence.js'
import { Acks } from './acks.js'
import { HeldReports } from './held-reports.js'
import type { HearsayNode, NodeEvents } from './node-api.js'

export type { SyncReport } from './exchange.js'
export type { AntiEntropyMode } from './protocol.js'
export type { PropagationMode } from './rumor.js'
export type { MemberState } from './cluster.js'
export type { DocProblem } from './doc-problems.js'
export type { RepairReport } from './anti-entropy.js'
export type { PeerInfo } from './peers.js'
export type { NodeTrust, TrustOptions, DeviceInfo, TrustChange } from './trust.js'
export type { NodeMetrics } from './metrics.js'
export type { DocSyncState, PeerSyncState, PeerSync, Replicated, ReplicatedOptions } from './acks.js'
export type { NodeOptions, RuntimeOptions, AntiEntropyOptions, PropagationOptions, ClusterOptions, FlowControlOptions, QuotaOptions } from './options.js'

export type { HearsayNode, NodeEvents } from './node-api.js'

/** The node's lifecycle: new → starting → started → stopping → stopped (a stopped node stays stopped). */
type NodeState = 'new' | 'starting' | 'started' | 'stopping' | 'stopped'

const NEXT_STATE: Record<NodeState, NodeState | undefined> = { new: 'starting', starting: 'started', started: 'stopping', stopping: 'stopped', stopped: undefined }

export function createNode (options: NodeOptions): HearsayNode {
  checkNodeOptions(options)
  const settings = resolveSettings(options)
  const { id, transport } = options
  const { timers, seed } = settings
  const storage = options.storage ?? createMemoryStorage()
  const logger = options.logger ?? silentLogger()
  const log = logger.forComponent(`hearsay:node:${id.slice(-8)}`)
  const counters = createCounters()
  const events = new Emitter<NodeEvents>()
  let state: NodeState = 'new'
  /** The one transition function of the node's lifecycle. */
  const enter = (next: NodeState): void => {
    if (NEXT_STATE[state] !== next) throw new NotStartedError(`node ${id} cannot go from ${state} to ${next}`)
    state = next
  }
  /** Run a timer's work through the last-resort guard: a throw is logged and counted, never fatal. */
  const guard = (what: string, fn: () => void): void => { guarded(log, what, fn, () => { counters.timerFaults++ }) }

  // -- the subsystems
  const docs = new Documents({
    storage,
    log: logger.forComponent(`hearsay:docs:${id.slice(-8)}`),
    maxLoadedDocs: settings.maxLoadedDocs,
    storageBatchMs: settings.storageBatchMs,
    timers,
    newClientId: options.newClientId,
    onStored: () => { membership.sizeChanged() },
    onDocStored: docId => { reports.changed(docId) },
    tracksStored: docId => reports.watched(docId),
    onChange: (docId, update, origin) => { changed(docId, update, peerOf(origin)) }
  })
  const digest = (): { root: Uint8Array, count: number } => {
    docs.refresh()
    return { root: docs.tree.rootHash, count: docs.tree.size }
  }
  const peers = new PeerTable(id, timers, storage, log)
  const trust = new Trust({
    selfId: id, options: options.trust, storage, timers, counters, log: logger.forComponent(`hearsay:trust:${id.slice(-8)}`)
  })
  const rosterSpread = new RosterSpread({ trust, peers, timers, rng: createRandom(seed ^ 0x52535052) })
  const views = new DigestViews(id, docs.tree, () => trust.current)
  /** The digest of what we share with `peerId` (all of it, unmanaged). */
  const digestFor = (peerId: string): { root: Uint8Array, count: number } => {
    docs.refresh()
    const { tree } = views.scope(peerId)
    return { root: tree.rootHash, count: tree.size }
  }
  /** Whether this node and the peer may both read the document (presence and acknowledgements). */
  const readable = (peerId: string, docId: string): boolean => trust.may(peerId, docId, 'read') && trust.may(id, docId, 'read')
  // Quiet when idle (idle.ts): gossip backs off and anti-entropy pauses while everyone agrees
  // (a connected member's heartbeat must still arrive well within the horizon at which silent members are forgotten)
  const idle = new IdleBackoff({ quiet: () => quiet(), maxMs: () => Math.min(settings.cluster.idleMaxMs, settings.cluster.deadMs * CLUSTER_FORGET_DEAD_MULTIPLE / 4) })
  const membership = new Membership({
    selfId: id, peers, settings, timers, log, counters, guard, digest, digestFor, rng: createRandom(seed ^ 0x434c5553), storedBytes: () => docs.storedBytes,
    interval: base => idle.interval(base)
  })
  const members = membership.members
  const antiEntropy = new AntiEntropy({
    selfId: id, peers, members, transport, settings, timers, log, guard, rng: createRandom(seed), idle: () => idle.idle, interval: base => idle.interval(base)
  })
  const live = new LivePropagator({
    peers, members, settings, timers, log, counters, rng: createRandom(seed ^ 0x52554d52), owed: peerId => antiEntropy.needsRepair(peerId)
  })
  const presence = new Presence({
    peers, timers, counters, readable, log, maxHops: settings.propagation.maxHops, relays: () => live.spreadsRumors(), clientIdOf: docId => docs.clientIdOf(docId)
  })
  const acks = new Acks({ peers, docs, timers, log, counters, readable, nameOf: pid => trust.nameOf(pid), changed: s => { events.emit('doc:sync', s) } })
  const reports = new HeldReports({ peers, docs, timers, log, counters, readable })
  const sessionContext: SessionContext = {
    id,
    docs,
    log: logger.forComponent(`hearsay:session:${id.slice(-8)}`),
    timers,
    counters,
    maxFrameBytes: settings.maxFrameBytes,
    sendQueueBytes: settings.sendQueueBytes,
    receiveQueueBytes: settings.receiveQueueBytes,
    budget: new ReceiveBudget(settings.receiveBufferBytes),
    quota: new CreationQuota(settings.quota, timers),
    get exchangeTimeoutMs () { return settings.ae.timeoutMs },
    digest: digestFor,
    scope: peerId => views.scope(peerId),
    sendLimit: session => live.sendLimit(session)
  }

  // -- the wiring

  // A document changed. A local change goes to peers at once (live); any change makes our digest
  // root move, which membership announces.
  function changed (docId: string, update: Uint8Array, from: string | undefined): void {
    idle.reset()
    if (from === undefined) {
      live.local({ docId, update })
      if (!trust.may(id, docId, 'write')) trust.unshared(docId)
    }
    membership.scheduleStatus()
    acks.changed(docId)
    reports.changed(docId)
    events.emit('doc:update', { docId, update, peerId: from })
  }

  /**
   * Whether this node and its peers agree (idle.ts): every connected peer announced our root for
   * what we share and is owed no exchange, and every member not dead is connected.
   */
  function quiet (): boolean {
    const open = new Set<string>()
    for (const p of peers.connected()) {
      open.add(p.id)
      if (antiEntropy.needsRepair(p.id) || p.root === undefined || !equalBytes(p.root, digestFor(p.id).root)) return false
    }
    for (const m of members.others()) if (!open.has(m) && members.state(m) !== 'dead') return false
    return true
  }
  membership.on('round', () => { idle.step() })
  membership.on('news', () => { idle.reset() })
  idle.on('reset', () => {
    membership.hurry()
    antiEntropy.hurry()
  })

  // When the live propagator reports that updates to a peer were lost, anti-entropy reconciles
  // with that peer (at once if it is connected, as soon as it connects otherwise).
  live.on('lost', ({ peerId }) => {
    idle.reset()
    antiEntropy.reconcile(peerId, 'lost')
  })

  // Each gossip round, the peer table forgets peers that have no session and that nobody has
  // heard of for 10 × `cluster.deadMs` (membership.ts); live propagation and anti-entropy forget
  // them with it.
  peers.on('forgot', ({ peerId }) => {
    live.forget(peerId)
    antiEntropy.forget(peerId)
    trust.forget(peerId)
    rosterSpread.forget(peerId)
    views.forget(peerId)
    presence.forget(peerId)
    acks.forget(peerId)
    reports.forget(peerId)
  })

  // Each gossip round, one peer gets our roster summary; statements new to us go to the peers.
  membership.on('round', () => { rosterSpread.round() })
  membership.on('meta', e => { events.emit('peer:meta', e) })
  // Each gossip round, presence held only for peers that has no state left is dropped.
  membership.on('round', () => { presence.sweep() })
  trust.on('learned', ({ statements, from }) => { rosterSpread.learned(statements, from) })

  // The roster changed: what each pair shares is computed again, revoked devices are hung up on,
  // and each connected peer whose share changed gets our new root for it and an exchange (a new
  // grant brings the documents it covers at once).
  trust.on('change', () => {
    idle.reset()
    const changed = new Set(views.invalidate())
    for (const p of peers.connected()) {
      const session = p.session as Session
      if (trust.revoked(p.id)) {
        refuseRevoked(session)
        continue
      }
      if (!changed.has(p.id)) continue
      const d = digestFor(p.id)
      session.sendStatus(d.root, d.count)
      antiEntropy.reconcile(p.id, 'connect')
    }
  })

  // A transport connection becomes a session, which replaces any older one with the same peer.
  function onChannel (channel: Channel): Session {
    peers.get(channel.remoteId)?.session?.close('replaced by a new connection', false)
    const session = new Session(sessionContext, channel)
    peers.attach(session, digestFor(channel.remoteId).root)
    wire(session)
    if (state !== 'started') session.close('node is not running', true)
    else if (trust.revoked(channel.remoteId)) refuseRevoked(session)
    return session
  }

  /** Hang up on a device the roster revoked, at connect or when the revocation arrives. */
  function refuseRevoked (session: Session): void {
    counters.revokedSessions++
    log.warn('refused %s: the device is revoked', session.remoteId)
    session.close('device revoked', true)
  }

  function wire (session: Session): void {
    const peerId = session.remoteId
    // The peer's Hello and Status frames update its entry in the peer table. A Status saying it
    // holds exactly our root rewrites a checkpoint written before that (say, as an exchange
    // completed), so a crash does not leave it with a root from the middle of a sync.
    session.on('status', ({ root, docCount }) => {
      const p = peers.status(peerId, root, docCount)
      const same = equalBytes(root, digestFor(peerId).root)
      if (!same) idle.reset()
      if (state === 'started' && peers.checkpointDiffers(p, root) && same) void peers.saveCheckpoints()
    })
    // The handshake finished: our root if it moved since our Hello, then the updates that waited
    // for the peer (live), then anti-entropy decides whether to reconcile.
    session.on('open', () => {
      const p = peers.opened(session)
      idle.reset()
      log('session with %s open', peerId)
      const current = digestFor(peerId)
      if (p.helloRoot !== undefined && !equalBytes(current.root, p.helloRoot)) session.sendStatus(current.root, current.count)
      live.opened(session)
      rosterSpread.opened(session)
      presence.opened(session)
      acks.opened(session)
      events.emit('peer:connect', { peerId })
      antiEntropy.connected(peerId, p.root !== undefined && equalBytes(p.root, current.root))
    })
    // It closed: updates held back for it go to its retry queue, and its checkpoint is written.
    session.on('closed', ({ reason }) => {
      if (peers.closed(session, reason) === undefined) return
      idle.reset()
      live.closed(peerId)
      presence.closed(peerId)
      acks.closed(session)
      reports.closed(peerId)
      if (state === 'started') void peers.saveCheckpoints()
      log('session with %s closed: %s', peerId, reason)
      events.emit('peer:disconnect', { peerId, reason })
    })
    session.on('live', () => { peers.touch(peerId) })
    // A rumor's fresh updates are passed on by live propagation.
    session.on('rumor', ({ hops, entries }) => {
      peers.touch(peerId)
      live.relay(session, hops, entries)
    })
    // Roster frames go to the roster's spreading, which answers them and has trust take or refuse statements.
    session.on('roster', msg => {
      peers.touch(peerId)
      rosterSpread.received(session, msg).catch((err: unknown) => { session.fail(err) })
    })
    // Presence is applied within its caps (presence.ts); reports on what the peer holds go to acknowledgements (acks.ts), its watches to held reports (held-reports.ts).
    session.on('presence', msg => {
      peers.touch(peerId)
      presence.received(session, msg)
    })
    session.on('ack', msg => {
      if (msg.kind === 'held') acks.received(session, msg.held)
      else if (msg.kind === 'watch') reports.watch(peerId, msg.docIds)
      else reports.unwatch(peerId, msg.docIds)
    })
    session.on('gossip', msg => {
      peers.touch(peerId)
      membership.received(session, msg)
    })
    // Drained frames drive the peer's flow control window (live).
    session.on('drain', ({ bytes, delayMs }) => { live.drained(session, bytes, delayMs) })
    // Live frames from the peer were dropped while earlier ones were applied: what was dropped
    // comes back in an exchange, which waits behind the frames being applied.
    session.on('overflow', () => {
      idle.reset()
      if (!antiEntropy.needsRepair(peerId)) log('dropping live updates from %s while earlier ones are applied; an exchange will repair them', peerId)
      antiEntropy.reconcile(peerId, 'lost')
    })
    // An exchange completed: the peer's checkpoint is due, and the root it led to goes out as soon
    // as its writes are stored, not after statusIntervalMs: a link dropped in between would leave
    // the peer (and its checkpoint) with a root from the middle of the sync. One attempt: while
    // storage fails, the retry timer and the throttled Status take over.
    session.on('exchangeDone', () => {
      const p = peers.ensure(peerId)
      p.lastSync = timers.now()
      if (p.checkpointedAt === undefined || p.lastSync - p.checkpointedAt >= PEER_CHECKPOINT_INTERVAL_MS) void peers.saveCheckpoints()
      void docs.writeNow().then(err => { if (err === undefined) membership.announceNow() })
    })
  }

  const requireStarted = (): void => {
    if (state !== 'started') throw new NotStartedError(`node ${id} is not started`)
  }

  // -- the facade
  return {
    id,
    async start () {
      if (state === 'started' || state === 'starting') return
      if (state !== 'new') throw new NotStartedError(`node ${id} was stopped; create a new node to start again`)
      enter('starting')
      await storage.open()
      await trust.init()
      await docs.init()
      // nothing was queued for the peers of the last run: the exchange on reconnect repairs
      for (const pid of await peers.loadCheckpoints()) antiEntropy.reconcile(pid, 'restored')
      enter('started')
      membership.start()
      await transport.start({ onChannel })
      antiEntropy.start()
      membership.startGossip()
      log('started with %d documents', docs.tree.size)
    },
    async stop () {
      if (state !== 'started') return
      enter('stopping')
      presence.stop()
      acks.stop()
      reports.stop()
      antiEntropy.stop()
      membership.stop()
      docs.takeChanges()
      live.flush()
      for (const p of peers.all()) p.session?.close('node stopping', true)
      await transport.stop()
      await peers.saveCheckpoints()
      await trust.flush()
      await docs.close()
      await storage.close()
      enter('stopped')
      log('stopped')
    },
    async open (docId) {
      validateDocId(docId)
      requireStarted()
      const doc = await docs.get(docId)
      docs.hold(docId)
      return doc
    },
    close (docId) {
      docs.release(docId)
    },
    async forget (docId) {
      validateDocId(docId)
      requireStarted()
      await docs.forget(docId)
      membership.scheduleStatus()
    },
    docs: () => docs.ids(),
    async syncWith (peerId, opts = {}) {
      requireStarted()
      checkAntiEntropy({ mode: opts.mode, timeoutMs: opts.timeoutMs })
      return await antiEntropy.syncWith(peerId, opts)
    },
    async repairPass () {
      requireStarted()
      return await antiEntropy.repairPass()
    },
    async flush () {
      docs.takeChanges()
      live.flush()
      await docs.flush()
    },
    metrics: () => ({
      ...counters,
      docs: docs.tree.size,
      docsInMemory: docs.loadedCount,
      docsLoaded: docs.docsLoaded,
      docsReadStored: docs.storedReads,
      storedBytes: docs.storedBytes,
      docsQuarantined: docs.quarantined,
      docsLost: docs.lost,
      sessions: peers.connected().length,
      flowHeldBytes: live.heldBytes
    }),
    peers: () => peers.view(pid => digestFor(pid).root, !trust.managed, pid => trust.nameOf(pid), members, (connected, lastSeen) => membership.stateOf(connected, lastSeen)),
    problems: () => docs.problems(),
    setMeta: (key, value) => {
      membership.setMeta(key, value)
      idle.reset()
    },
    awareness (docId) {
      validateDocId(docId)
      requireStarted()
      return presence.awareness(docId)
    },
    async replicated (docId, opts) {
      validateDocId(docId)
      requireStarted()
      return await acks.replicated(docId, opts)
    },
    syncState (docId) {
      validateDocId(docId)
      requireStarted()
      return acks.syncState(docId)
    },
    digest,
    trust: trustFacade(trust, rosterSpread),
    configure (opts) {
      const change = applyRuntime(settings, opts)
      if (change.antiEntropy) antiEntropy.schedule()
      membership.reconfigured(change.gossip, change.clusterEnabled)
      live.reconfigured(change.flowDisabled)
    },
    on: (event, fn) => events.on(event, fn)
  }
}
