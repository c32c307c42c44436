/**
 * The node's options: their types and documented defaults, validation (`checkNodeOptions`), the
 * resolved settings every subsystem reads (`resolveSettings`), and `applyRuntime`, which
 * validates a `configure()` call against the merged settings and applies it whole or not at all.
 *
 * Subsystems hold the same settings objects, so a change applied here is seen by all of them;
 * `applyRuntime` says what changed so the node can reschedule what depends on it.
 */
import type { TrustOptions } from './trust.js'
import {
  ANTI_ENTROPY_FANOUT, ANTI_ENTROPY_INTERVAL_MS, ANTI_ENTROPY_JITTER, ANTI_ENTROPY_MODE, ANTI_ENTROPY_REACH, CLUSTER_DEAD_MS, CLUSTER_IDLE_MAX_MS, CLUSTER_INTERVAL_MS,
  CLUSTER_MAX_MEMBERS, CLUSTER_MAX_MESSAGE_BYTES, CLUSTER_SUSPECT_MS, EXCHANGE_TIMEOUT_MS, FLOW_INCREASE, FLOW_INITIAL_WINDOW, FLOW_MAX_WINDOW,
  FLOW_MIN_WINDOW, FLOW_OUTBOX_BYTES, FLOW_TARGET_DELAY_MS, LIVE_BATCH_MS, MAX_FRAME_BYTES, MAX_LOADED_DOCS, MIN_FRAME_BYTES, PROPAGATION_MODE,
  QUOTA_BYTES_BURST, QUOTA_BYTES_PER_MINUTE, QUOTA_DOCS_BURST, QUOTA_DOCS_PER_MINUTE, RECEIVE_BUFFER_BYTES, RECEIVE_QUEUE_BYTES, RETRY_QUEUE_BYTES,
  RUMOR_ABSENT_PEER_MS, RUMOR_FANOUT, RUMOR_MAX_HOPS, RUMOR_SEEN_IDS, SEND_QUEUE_BYTES, STATUS_INTERVAL_MS, STORAGE_BATCH_MS
} from './constants.js'
import { realTimers, type Timers } from './clock.js'
import { ConfigError } from './errors.js'
import type { Logger } from './logger.js'
import { checkBoolean, checkFraction, checkNumber, checkObject, checkOneOf, stripUndefined } from './option-checks.js'
import type { AntiEntropyMode } from './protocol.js'
import type { PropagationMode } from './rumor.js'
import type { Storage } from './storage.js'
import type { Transport } from './transport.js'

/**
 * Flow control of direct mail per peer (flow.ts): an AIMD window on the channel backlog, and a
 * bounded outbox where held-back updates are merged per document.
 */
export interface FlowControlOptions {
  /** @default true */
  enabled?: boolean
  /** Frames the transport takes longer than this to accept, in ms, halve the window. @default FLOW_TARGET_DELAY_MS (100) */
  targetDelayMs?: number
  /** Starting window, in bytes of channel backlog. @default FLOW_INITIAL_WINDOW (256 KiB) */
  initialWindow?: number
  /** @default FLOW_MIN_WINDOW (16 KiB) */
  minWindow?: number
  /** @default FLOW_MAX_WINDOW (4 MiB) */
  maxWindow?: number
  /** Growth per window's worth of bytes drained. @default FLOW_INCREASE (16 KiB) */
  increase?: number
  /** Most bytes held back per peer before anti-entropy takes over. @default FLOW_OUTBOX_BYTES (1 MiB) */
  outboxBytes?: number
}

/**
 * Cluster state (cluster.ts): each node gossips a small map of its own (heartbeat, digest root,
 * document count, `setMeta` entries) by Scuttlebutt, so every node knows every member, connected
 * or not, and whether it is alive.
 */
export interface ClusterOptions {
  /** Gossip cluster state and detect failures. @default true */
  enabled?: boolean
  /** Time between gossip rounds with one random connected peer (±25%); the heartbeat rises each round. @default CLUSTER_INTERVAL_MS (1000) */
  intervalMs?: number
  /**
   * Longest gossip interval while this node and its peers agree (idle.ts: Trickle-style backoff,
   * doubling from `intervalMs` after every quiet round; anti-entropy rounds are skipped meanwhile).
   * Any difference resets it at once. At most `intervalMs` turns backoff off.
   * @default CLUSTER_IDLE_MAX_MS (60000)
   */
  idleMaxMs?: number
  /** A member not heard from (directly or by gossip) for this long is `suspect`. @default CLUSTER_SUSPECT_MS (5000) */
  suspectMs?: number
  /**
   * ... and `dead` after this long; after `CLUSTER_FORGET_DEAD_MULTIPLE` (10) times this long it is
   * forgotten (gone from `peers()`). @default CLUSTER_DEAD_MS (30000)
   */
  deadMs?: number
  /** Largest batch of entries in one answer, in bytes; a larger entry goes alone. @default CLUSTER_MAX_MESSAGE_BYTES (16 KiB) */
  maxMessageBytes?: number
  /**
   * Most members held in cluster state, ourselves included; entries of further members are dropped
   * and counted in `gossipEntriesRejected`. Lowering it forgets nobody, it only refuses newcomers.
   * @default CLUSTER_MAX_MEMBERS (2048)
   */
  maxMembers?: number
}

/**
 * How fresh updates spread (see rumor.ts). Anti-entropy repairs whatever either way misses.
 * @remarks `auto` sends direct mail while every peer heard from in the last `absentPeerMs` is
 * connected, and rumors as soon as one of them is not (a partial mesh).
 */
export interface PropagationOptions {
  /** 'direct': to every connected peer; 'rumor': to `fanout` random peers, passed on hop by hop. @default 'auto' */
  mode?: PropagationMode
  /** Peers a rumor goes to at each hop. @default RUMOR_FANOUT (3) */
  fanout?: number
  /** A rumor that has made this many hops is not passed on. @default RUMOR_MAX_HOPS (8) */
  maxHops?: number
  /** Update ids remembered so a rumor is passed on only on its first receipt. @default RUMOR_SEEN_IDS (10000) */
  seenIds?: number
  /**
   * In `auto` mode without cluster state (`cluster.enabled: false`), disconnected peers heard from
   * within this many ms make the node spread rumors; with it, members heard from within
   * `cluster.suspectMs` do. @default RUMOR_ABSENT_PEER_MS (5 min)
   */
  absentPeerMs?: number
}

export interface AntiEntropyOptions {
  /**
   * Which way documents travel in the exchanges this node starts (periodic rounds, on connect,
   * and `syncWith` unless told otherwise). An exchange that repairs lost live updates is always
   * push-pull. @default 'push-pull'
   */
  mode?: AntiEntropyMode
  /** Mean time between periodic rounds, in ms; each round picks `fanout` random peers (see `reach`). @default 1000 */
  intervalMs?: number
  /**
   * Peers reconciled with in each periodic round. Each extra peer costs one more exchange per
   * round; an update reaches everyone in fewer rounds (about log base 2k+1 of n for push-pull).
   * @default ANTI_ENTROPY_FANOUT (1)
   */
  fanout?: number
  /**
   * How round peers are chosen: `random`, or `ring`: the next replica (among those `reach`
   * allows) in a fixed ring order, so an update reaches everyone within n − 1 rounds (see
   * ring.ts). @default 'random'
   */
  selection?: 'random' | 'ring'
  /**
   * Which peers a periodic round may pick: `connected`, only peers with an open session; or
   * `members`, also members known through cluster state that are alive (heard from within
   * `cluster.suspectMs`), so a sparse mesh still spreads like a full one. A picked member with no
   * open session is dialled for the round (through `transport.connect`, within `timeoutMs`); a
   * failed dial skips that pick. The sessions it opens stay open like any other. `ring`
   * selection walks the same candidates. @default ANTI_ENTROPY_REACH ('connected')
   */
  reach?: 'connected' | 'members'
  /** Each wait is `intervalMs * (1 ± jitter)`. @default 0.25 */
  jitter?: number
  /**
   * Automatic anti-entropy: periodic rounds and the exchange on connect. `syncWith` works either way.
   * @default true
   */
  enabled?: boolean
  /**
   * Run one exchange in `mode` when a peer connects. A push-pull one brings both sides level, so
   * only the side with the lower id starts it; in push or pull mode each side starts its own.
   * @default true
   */
  onConnect?: boolean
  /** Give up an exchange after this long, in ms. @default 30000 */
  timeoutMs?: number
}

export interface NodeOptions {
  /** This node's id; must equal `transport.localId`. */
  id: string
  transport: Transport
  /** Where documents live. @default createMemoryStorage() */
  storage?: Storage
  /** @default silentLogger() */
  logger?: Logger
  antiEntropy?: AntiEntropyOptions
  /** Largest frame sent or accepted, in bytes. @default MAX_FRAME_BYTES (1 MiB) */
  maxFrameBytes?: number
  /**
   * Documents kept in memory that nobody holds through `open()`; idle ones past this are unloaded.
   * @remarks Lower it on small devices holding many documents. @default 1000
   */
  maxLoadedDocs?: number
  /** How long local updates wait to be batched into one live frame, in ms. @default 0 (next tick) */
  liveBatchMs?: number
  /**
   * Send local updates to connected peers at once (direct mail). Off, they travel only by
   * anti-entropy, as in the propagation benchmark. @default true
   */
  live?: boolean
  propagation?: PropagationOptions
  cluster?: ClusterOptions
  flowControl?: FlowControlOptions
  /** Most bytes of live updates kept for a peer while it is away. @default RETRY_QUEUE_BYTES (4 MiB) */
  retryQueueBytes?: number
  /** Bytes waiting on a channel past which live frames to that peer are shed. @default SEND_QUEUE_BYTES (8 MiB) */
  sendQueueBytes?: number
  /**
   * Bytes of live and rumor frames from one peer waiting to be applied (a slow disk or CPU) past
   * which further ones are dropped, and an exchange with the peer repairs them.
   * @default RECEIVE_QUEUE_BYTES (8 MiB)
   */
  receiveQueueBytes?: number
  /**
   * Bytes of exchange frames waiting to be applied and half-received (chunked) updates the node
   * holds across all exchanges with all peers; a frame or chunk past it aborts its exchange, which
   * is retried later. @default RECEIVE_BUFFER_BYTES (96 MiB)
   */
  receiveBufferBytes?: number
  /**
   * How many new documents (and bytes of them) one peer may make this node create: a token bucket
   * per peer. Refused documents are not created; a later exchange brings them once it refilled.
   * @default 100,000 documents and 1 GiB at once, then 20,000 documents and 64 MiB per minute
   */
  quota?: QuotaOptions
  /** Peers hear of our digest root at most this often after changes, in ms. @default 200 */
  statusIntervalMs?: number
  /** Updates are written to storage in batches this far apart, in ms; `flush()` writes at once. @default 10 */
  storageBatchMs?: number
  /** Seed of the node's random choices (peer picks, jitter). @default random */
  seed?: number
  /** Clock and timers; the simulator passes virtual ones. @default real timers */
  timers?: Timers
  /**
   * Yjs client id for each document the node loads.
   * @remarks For deterministic simulations only: ids must never repeat across nodes, restarts
   * and loads, or documents are corrupted. @default random (Yjs)
   */
  newClientId?: () => number
  /**
   * Who may read and write what (trust.ts, TRUST.md): the signature scheme, this device's key,
   * and the swarm's genesis statement. Omitted: every member may read and write everything.
   */
  trust?: TrustOptions
}

/** The creation quota per peer (receive-limits.ts); omitted fields keep their defaults. */
export interface QuotaOptions {
  /** @default QUOTA_DOCS_PER_MINUTE (20,000) */
  docsPerMinute?: number
  /** @default QUOTA_DOCS_BURST (100,000) */
  docsBurst?: number
  /** @default QUOTA_BYTES_PER_MINUTE (64 MiB) */
  bytesPerMinute?: number
  /** @default QUOTA_BYTES_BURST (1 GiB) */
  bytesBurst?: number
}

/**
 * Settings `node.configure()` can change on a running node; omitted ones stay as they are.
 * Everything else (`id`, `transport`, `storage`, `maxFrameBytes`, queue sizes, `seed`, `timers`...)
 * is fixed at `createNode`.
 * @remarks A new `cluster.intervalMs` or `antiEntropy.intervalMs` takes effect at once (the
 * pending round is rescheduled); new flow control bounds clamp every peer's current window.
 */
export interface RuntimeOptions {
  antiEntropy?: AntiEntropyOptions
  propagation?: PropagationOptions
  cluster?: ClusterOptions
  flowControl?: FlowControlOptions
  live?: boolean
  liveBatchMs?: number
}


/** Every setting a node runs with, defaults filled in. The four groups change through `applyRuntime`. */
export interface Settings {
  ae: Required<AntiEntropyOptions>
  propagation: Required<PropagationOptions>
  cluster: Required<ClusterOptions>
  flow: Required<FlowControlOptions>
  /** Direct mail and its batching, changeable at run time. */
  live: { enabled: boolean, batchMs: number }
  maxFrameBytes: number
  maxLoadedDocs: number
  retryQueueBytes: number
  sendQueueBytes: number
  receiveQueueBytes: number
  receiveBufferBytes: number
  quota: Required<QuotaOptions>
  statusIntervalMs: number
  storageBatchMs: number
  seed: number
  timers: Timers
}

/** Throws `ConfigError` naming the first invalid option. */
export function checkNodeOptions (options: NodeOptions): void {
  if (options === null || typeof options !== 'object') throw new ConfigError('createNode needs an options object')
  if (typeof options.id !== 'string' || options.id.length === 0) throw new ConfigError('options.id must be a non-empty string')
  if (options.transport === undefined) throw new ConfigError('options.transport is required (e.g. createMemoryNetwork().transport(id))')
  if (options.transport.localId !== options.id) {
    throw new ConfigError(`options.id "${options.id}" differs from the transport's local id "${options.transport.localId}"`)
  }
  checkAntiEntropy(options.antiEntropy)
  checkNumber('maxFrameBytes', options.maxFrameBytes, MIN_FRAME_BYTES)
  checkNumber('maxLoadedDocs', options.maxLoadedDocs, 0)
  checkNumber('liveBatchMs', options.liveBatchMs, 0)
  checkBoolean('live', options.live)
  checkNumber('retryQueueBytes', options.retryQueueBytes, 0)
  checkNumber('sendQueueBytes', options.sendQueueBytes, 0)
  checkNumber('receiveQueueBytes', options.receiveQueueBytes, 0)
  checkNumber('receiveBufferBytes', options.receiveBufferBytes, 0)
  if (options.quota !== undefined) {
    checkObject('quota', options.quota)
    checkNumber('quota.docsPerMinute', options.quota.docsPerMinute, 0)
    checkNumber('quota.docsBurst', options.quota.docsBurst, 1)
    checkNumber('quota.bytesPerMinute', options.quota.bytesPerMinute, 0)
    checkNumber('quota.bytesBurst', options.quota.bytesBurst, 1)
  }
  checkNumber('statusIntervalMs', options.statusIntervalMs, 0)
  checkPropagation(options.propagation)
  checkCluster(options.cluster)
  checkFlow(options.flowControl)
  checkNumber('storageBatchMs', options.storageBatchMs, 0)
}

/** The settings of a node created with `options` (already checked). */
export function resolveSettings (options: NodeOptions): Settings {
  return {
    ae: {
      mode: ANTI_ENTROPY_MODE,
      intervalMs: ANTI_ENTROPY_INTERVAL_MS,
      fanout: ANTI_ENTROPY_FANOUT,
      selection: 'random',
      reach: ANTI_ENTROPY_REACH,
      jitter: ANTI_ENTROPY_JITTER,
      enabled: true,
      onConnect: true,
      timeoutMs: EXCHANGE_TIMEOUT_MS,
      ...stripUndefined(options.antiEntropy ?? {})
    },
    propagation: {
      mode: PROPAGATION_MODE,
      fanout: RUMOR_FANOUT,
      maxHops: RUMOR_MAX_HOPS,
      seenIds: RUMOR_SEEN_IDS,
      absentPeerMs: RUMOR_ABSENT_PEER_MS,
      ...stripUndefined(options.propagation ?? {})
    },
    cluster: {
      enabled: true,
      intervalMs: CLUSTER_INTERVAL_MS,
      idleMaxMs: CLUSTER_IDLE_MAX_MS,
      suspectMs: CLUSTER_SUSPECT_MS,
      deadMs: CLUSTER_DEAD_MS,
      maxMessageBytes: CLUSTER_MAX_MESSAGE_BYTES,
      maxMembers: CLUSTER_MAX_MEMBERS,
      ...stripUndefined(options.cluster ?? {})
    },
    flow: {
      enabled: true,
      targetDelayMs: FLOW_TARGET_DELAY_MS,
      initialWindow: FLOW_INITIAL_WINDOW,
      minWindow: FLOW_MIN_WINDOW,
      maxWindow: FLOW_MAX_WINDOW,
      increase: FLOW_INCREASE,
      outboxBytes: FLOW_OUTBOX_BYTES,
      ...stripUndefined(options.flowControl ?? {})
    },
    live: { enabled: options.live ?? true, batchMs: options.liveBatchMs ?? LIVE_BATCH_MS },
    maxFrameBytes: options.maxFrameBytes ?? MAX_FRAME_BYTES,
    maxLoadedDocs: options.maxLoadedDocs ?? MAX_LOADED_DOCS,
    retryQueueBytes: options.retryQueueBytes ?? RETRY_QUEUE_BYTES,
    sendQueueBytes: options.sendQueueBytes ?? SEND_QUEUE_BYTES,
    receiveQueueBytes: options.receiveQueueBytes ?? RECEIVE_QUEUE_BYTES,
    receiveBufferBytes: options.receiveBufferBytes ?? RECEIVE_BUFFER_BYTES,
    quota: {
      docsPerMinute: options.quota?.docsPerMinute ?? QUOTA_DOCS_PER_MINUTE,
      docsBurst: options.quota?.docsBurst ?? QUOTA_DOCS_BURST,
      bytesPerMinute: options.quota?.bytesPerMinute ?? QUOTA_BYTES_PER_MINUTE,
      bytesBurst: options.quota?.bytesBurst ?? QUOTA_BYTES_BURST
    },
    statusIntervalMs: options.statusIntervalMs ?? STATUS_INTERVAL_MS,
    storageBatchMs: options.storageBatchMs ?? STORAGE_BATCH_MS,
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 32),
    timers: options.timers ?? realTimers
  }
}

/** What a `configure()` call changed, for the subsystems that must react. */
export interface RuntimeChange {
  /** Anti-entropy settings were given: the pending round is rescheduled. */
  antiEntropy: boolean
  /** `cluster.enabled` or `cluster.intervalMs` changed: the gossip loop is rescheduled. */
  gossip: boolean
  /** Cluster state was just switched on. */
  clusterEnabled: boolean
  /** Flow control was just switched off. */
  flowDisabled: boolean
}

/**
 * Validate `opts` against the merged settings first, so an error changes nothing; then apply it
 * to `s` in place (subsystems hold these objects) and say what changed.
 */
export function applyRuntime (s: Settings, opts: RuntimeOptions): RuntimeChange {
  if (opts === null || typeof opts !== 'object') throw new ConfigError('configure needs an options object')
  const next = {
    ae: { ...s.ae, ...stripUndefined(opts.antiEntropy ?? {}) },
    propagation: { ...s.propagation, ...stripUndefined(opts.propagation ?? {}) },
    cluster: { ...s.cluster, ...stripUndefined(opts.cluster ?? {}) },
    flow: { ...s.flow, ...stripUndefined(opts.flowControl ?? {}) }
  }
  checkAntiEntropy(next.ae)
  checkBoolean('antiEntropy.enabled', next.ae.enabled)
  checkBoolean('antiEntropy.onConnect', next.ae.onConnect)
  checkPropagation(next.propagation)
  checkCluster(next.cluster)
  checkBoolean('cluster.enabled', next.cluster.enabled)
  checkFlow(next.flow)
  checkBoolean('flowControl.enabled', next.flow.enabled)
  checkBoolean('live', opts.live)
  checkNumber('liveBatchMs', opts.liveBatchMs, 0)

  const gossipWas = { enabled: s.cluster.enabled, intervalMs: s.cluster.intervalMs }
  const flowWas = s.flow.enabled
  Object.assign(s.ae, next.ae)
  Object.assign(s.propagation, next.propagation)
  Object.assign(s.cluster, next.cluster)
  Object.assign(s.flow, next.flow)
  if (opts.live !== undefined) s.live.enabled = opts.live
  if (opts.liveBatchMs !== undefined) s.live.batchMs = opts.liveBatchMs
  return {
    antiEntropy: opts.antiEntropy !== undefined,
    gossip: s.cluster.enabled !== gossipWas.enabled || s.cluster.intervalMs !== gossipWas.intervalMs,
    clusterEnabled: s.cluster.enabled && !gossipWas.enabled,
    flowDisabled: flowWas && !s.flow.enabled
  }
}

/** Anti-entropy options, alone (also used for `syncWith`'s `mode` and `timeoutMs`). */
export function checkAntiEntropy (ae: AntiEntropyOptions | undefined): void {
  if (ae === undefined) return
  checkOneOf('antiEntropy.mode', ae.mode, ['push', 'pull', 'push-pull'])
  checkNumber('antiEntropy.intervalMs', ae.intervalMs, 1)
  checkNumber('antiEntropy.timeoutMs', ae.timeoutMs, 1)
  checkNumber('antiEntropy.fanout', ae.fanout, 1)
  if (ae.fanout !== undefined && !Number.isInteger(ae.fanout)) throw new ConfigError(`antiEntropy.fanout must be an integer, got ${ae.fanout}`)
  checkOneOf('antiEntropy.selection', ae.selection, ['random', 'ring'])
  checkOneOf('antiEntropy.reach', ae.reach, ['connected', 'members'])
  checkFraction('antiEntropy.jitter', ae.jitter)
}

function checkFlow (o: FlowControlOptions | undefined): void {
  if (o === undefined) return
  for (const k of ['targetDelayMs', 'initialWindow', 'minWindow', 'maxWindow', 'increase', 'outboxBytes'] as const) checkNumber(`flowControl.${k}`, o[k], 1)
  if (o.minWindow !== undefined && o.maxWindow !== undefined && o.maxWindow < o.minWindow) throw new ConfigError('flowControl.maxWindow must be at least flowControl.minWindow')
}

function checkCluster (o: ClusterOptions | undefined): void {
  if (o === undefined) return
  checkNumber('cluster.intervalMs', o.intervalMs, 1)
  checkNumber('cluster.idleMaxMs', o.idleMaxMs, 0)
  checkNumber('cluster.suspectMs', o.suspectMs, 1)
  checkNumber('cluster.deadMs', o.deadMs, 1)
  checkNumber('cluster.maxMessageBytes', o.maxMessageBytes, 256)
  checkNumber('cluster.maxMembers', o.maxMembers, 2)
  if (o.suspectMs !== undefined && o.deadMs !== undefined && o.deadMs < o.suspectMs) throw new ConfigError('cluster.deadMs must be at least cluster.suspectMs')
}

function checkPropagation (o: PropagationOptions | undefined): void {
  if (o === undefined) return
  checkOneOf('propagation.mode', o.mode, ['auto', 'direct', 'rumor'])
  checkNumber('propagation.fanout', o.fanout, 1)
  checkNumber('propagation.maxHops', o.maxHops, { min: 1, max: 254 })
  checkNumber('propagation.seenIds', o.seenIds, 1)
  checkNumber('propagation.absentPeerMs', o.absentPeerMs, 0)
}
