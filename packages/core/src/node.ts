/**
 * `createNode`: many Y.Docs kept in sync with peers over any `Transport`, stored in any `Storage`.
 *
 * The data path of a local edit: Y.Doc `update` event → `Documents` (fingerprint marked stale,
 * update queued for storage) → `onChange` here → batched into a Live frame → `Session.sendLive`
 * on every open session (direct mail), or the peer's bounded retry queue when it is away. On the
 * other side: `Session.onFrame` → decoded, validated → `Documents.applyUpdate` with the session
 * as transaction origin, so it is never echoed back. Anti-entropy exchanges (`exchange.ts`)
 * repair whatever live propagation missed.
 */
import * as Y from 'yjs'
import { equalBytes, toHex } from './bytes.js'
import { ClusterState, type MemberState } from './cluster.js'
import { guarded } from './guard.js'
import { PeerFlow } from './flow.js'
import {
  ANTI_ENTROPY_FANOUT, ANTI_ENTROPY_INTERVAL_MS, CLUSTER_DEAD_MS, CLUSTER_FORGET_DEAD_MULTIPLE, CLUSTER_INTERVAL_MS, CLUSTER_MAX_MESSAGE_BYTES,
  CLUSTER_MAX_MEMBERS, CLUSTER_MAX_VALUE_BYTES, CLUSTER_REJECTION_LOG_MS, CLUSTER_SUSPECT_MS, FLOW_INCREASE, FLOW_INITIAL_WINDOW, FLOW_MAX_WINDOW, FLOW_MIN_WINDOW,
  FLOW_OUTBOX_BYTES, FLOW_TARGET_DELAY_MS, ANTI_ENTROPY_JITTER, ANTI_ENTROPY_MODE, ANTI_ENTROPY_REACH, EXCHANGE_TIMEOUT_MS, LIVE_BATCH_MS, MAX_FRAME_BYTES,
  MIN_FRAME_BYTES, PROPAGATION_MODE, RETRY_QUEUE_BYTES, RUMOR_ABSENT_PEER_MS, RUMOR_FANOUT, RUMOR_MAX_HOPS, RUMOR_SEEN_IDS,
  SEND_QUEUE_BYTES, STATUS_INTERVAL_MS, STORAGE_BATCH_MS, PEER_CHECKPOINT_INTERVAL_MS, PEER_CHECKPOINTS_MAX
} from './constants.js'
import {
  MAX_LOADED_DOCS, RECEIVE_BUFFER_BYTES, QUOTA_BYTES_BURST, QUOTA_BYTES_PER_MINUTE, QUOTA_DOCS_BURST, QUOTA_DOCS_PER_MINUTE, RECEIVE_QUEUE_BYTES
} from './constants.js'
import { CreationQuota, ReceiveBudget } from './receive-limits.js'
import { Documents, type DocProblem } from './documents.js'
import type { Timers } from './clock.js'
import { ConfigError, NotStartedError, PeerUnavailableError } from './errors.js'
import { MAX_GOSSIP_KEY_BYTES } from './protocol.js'
import { Emitter } from './events.js'
import type { SyncReport } from './exchange.js'
import { validateDocId } from './fingerprint.js'
import { silentLogger, type Logger } from './logger.js'
import { createMemoryStorage } from './memory-storage.js'
import { FRAME_OVERHEAD, type AntiEntropyMode, type LiveEntry } from './protocol.js'
import { createRandom } from './random.js'
import { nextInRing, passSequence, ringOrder } from './ring.js'
import { RumorMill, type PropagationMode } from './rumor.js'
import { Session, type Counters, type SessionHost } from './session.js'
import type { Storage } from './storage.js'
import type { Channel, Transport } from './transport.js'

export type { SyncReport } from './exchange.js'
export type { AntiEntropyMode } from './protocol.js'
export type { PropagationMode } from './rumor.js'
export type { MemberState } from './cluster.js'
export type { DocProblem } from './documents.js'

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

export interface PeerInfo {
  id: string
  connected: boolean
  /** `alive` while connected or heard from (directly or by gossip) within `cluster.suspectMs`. */
  state: MemberState
  /** The member's `setMeta` entries, as last gossiped. */
  meta: Record<string, string>
  /** Our collection digest root equals the one the peer last told us. */
  inSync: boolean
  /** Documents the peer last said it holds. */
  docCount: number
  /**
   * Bytes of document updates the member last announced storing (its `hearsay/bytes` cluster
   * entry, `metrics().storedBytes` on its side); undefined until heard, or with cluster state off.
   * An estimate: compaction and merging make replicas of the same documents differ in size.
   */
  bytes: number | undefined
  /**
   * When we last heard from the peer or saw its heartbeat rise (ms, node clock). A member known
   * only through gossip whose heartbeat has not risen since starts at `suspectMs` before we first
   * heard of it, so it shows `suspect` until it proves alive.
   */
  lastSeen: number
  /**
   * When an exchange with the peer last completed (ms, node clock), kept across restarts in the
   * store's `hearsay/peers` record; undefined when never. Peers from before a restart are listed
   * (`connected: false`) with the digest root they had at last contact, so `inSync` says whether
   * we still agree with them.
   */
  lastSync: number | undefined
}

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

export interface NodeMetrics extends Counters {
  /** Documents with content. */
  docs: number
  /** Documents currently in memory. */
  docsInMemory: number
  /** Documents read from storage into a Y.Doc since start. */
  docsLoaded: number
  /** Exchange answers computed from stored updates without loading the document. */
  docsReadStored: number
  /**
   * Bytes of document updates stored: the sizes the store listed at start plus what was appended
   * since, set again to what the store holds whenever a document's updates are read (loaded, or
   * an exchange answered from storage). The store's own compaction is seen only then, so this can
   * overstate it.
   */
  storedBytes: number
  /** Documents quarantined because their stored data cannot be read back (see `problems()`). */
  docsQuarantined: number
  /**
   * Documents the store found lost when it opened (see `problems()`, kind `missing` or
   * `damaged`); a missing one stops counting once it is stored again (restored by a peer).
   */
  docsLost: number
  sessions: number
  /** Live updates dropped from retry queues that overflowed. */
  retryQueueOverflows: number
  /** Times a peer's flow control window was halved because frames waited too long. */
  flowCongestions: number
  /** Outboxes of held-back updates that overflowed (anti-entropy repaired instead). */
  flowOutboxOverflows: number
  /** Bytes of live updates held back for slow peers right now. */
  flowHeldBytes: number
  /** Cluster state entries from peers dropped by the trust rules (cluster.ts): implausible, forged or over a limit. */
  gossipEntriesRejected: number
  /** Exceptions caught by the last-resort guard (guard.ts) in the node's timers; each is logged. */
  timerFaults: number
}

export interface NodeEvents extends Record<string, unknown> {
  'peer:connect': { peerId: string }
  'peer:disconnect': { peerId: string, reason: string }
  /** A document changed; `peerId` is set when the change came from a peer. */
  'doc:update': { docId: string, update: Uint8Array, peerId: string | undefined }
}

export interface HearsayNode {
  readonly id: string
  start(): Promise<void>
  stop(): Promise<void>
  /**
   * The document with this id, loaded from storage or created empty. Local edits to it propagate
   * at once. The node keeps it in memory until `close(docId)`.
   */
  open(docId: string): Promise<Y.Doc>
  /** Let the node unload the document when idle. The Y.Doc must not be used afterwards. */
  close(docId: string): void
  /** Ids of every document with content, loaded or not. */
  docs(): string[]
  /** One anti-entropy exchange with a connected peer now; resolves when both sides are done. */
  syncWith(peerId: string, options?: { mode?: AntiEntropyMode, timeoutMs?: number }): Promise<SyncReport>
  /**
   * One closed-loop repair pass: push-pull with every connected replica in ring order, then around
   * again up to the one before last, so all of them end with everything any of them had.
   * At most 2n − 3 exchanges, each bounded by `antiEntropy.timeoutMs`. Known members without a
   * session are listed in `unreachable`: the pass says nothing about them.
   */
  repairPass(): Promise<RepairReport>
  /** Resolves when every change made so far is stored and handed to the transport for connected peers. */
  flush(): Promise<void>
  metrics(): NodeMetrics
  /**
   * Every peer seen since start and every member heard of by cluster gossip, except members not
   * heard from for 10 × `cluster.deadMs` (forgotten).
   */
  peers(): PeerInfo[]
  /**
   * Problems with stored data, each with a `kind`: `corrupt`, documents whose stored data could
   * not be read back (`StorageCorruptionError`), each left out of syncing, `open()` rejecting
   * for it; `missing`, documents the store held before and found gone or older when it opened
   * (until they are stored again, e.g. restored by a peer); `damaged`, records the store dropped
   * without knowing whose. Other documents keep syncing.
   */
  problems(): DocProblem[]
  /**
   * Set an entry of this node's cluster state, gossiped to every member (`peers()[i].meta`).
   * Keys up to 64 bytes, not starting with `hearsay/`; values up to 1 KiB.
   */
  setMeta(key: string, value: string): void
  /** Current collection digest root (16 bytes) and document count. */
  digest(): { root: Uint8Array, count: number }
  /**
   * Change settings while running (see `RuntimeOptions`). Invalid settings throw `ConfigError`
   * and change nothing.
   */
  configure(options: RuntimeOptions): void
  on<K extends keyof NodeEvents>(event: K, fn: (e: NodeEvents[K]) => void): () => void
}

interface KnownPeer {
  id: string
  session: Session | undefined
  root: Uint8Array | undefined
  docCount: number
  lastSeen: number
  /** Live updates waiting for the peer to come back. */
  retry: LiveEntry[]
  retryBytes: number
  /** Updates were lost on the way to this peer: run an exchange as soon as possible. */
  needsRepair: boolean
  flow: PeerFlow
  /** Our digest root when our Hello went out on the current session. */
  helloRoot: Uint8Array | undefined
  /** When an exchange with the peer last completed (node clock). */
  lastSync: number | undefined
  /** When its checkpoint was last written to storage (node clock). */
  checkpointedAt: number | undefined
  /** The root its last written checkpoint holds. */
  checkpointRoot: Uint8Array | undefined
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref?.()
    return t
  },
  clearTimeout: h => { clearTimeout(h as ReturnType<typeof setTimeout>) },
  now: () => Date.now()
}

function checkNumber (name: string, v: number | undefined, min: number): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < min)) {
    throw new ConfigError(`${name} must be a number >= ${min}, got ${String(v)}`)
  }
}

function checkOneOf (name: string, v: string | undefined, allowed: readonly string[]): void {
  if (v !== undefined && !allowed.includes(v)) {
    throw new ConfigError(`${name} must be one of ${allowed.map(a => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`)
  }
}

function checkAntiEntropy (ae: AntiEntropyOptions | undefined): void {
  if (ae === undefined) return
  checkOneOf('antiEntropy.mode', ae.mode, ['push', 'pull', 'push-pull'])
  checkNumber('antiEntropy.intervalMs', ae.intervalMs, 1)
  checkNumber('antiEntropy.timeoutMs', ae.timeoutMs, 1)
  checkNumber('antiEntropy.fanout', ae.fanout, 1)
  if (ae.fanout !== undefined && !Number.isInteger(ae.fanout)) throw new ConfigError(`antiEntropy.fanout must be an integer, got ${ae.fanout}`)
  checkOneOf('antiEntropy.selection', ae.selection, ['random', 'ring'])
  checkOneOf('antiEntropy.reach', ae.reach, ['connected', 'members'])
  if (ae.jitter !== undefined && !(ae.jitter >= 0 && ae.jitter < 1)) throw new ConfigError(`antiEntropy.jitter must be in [0, 1), got ${ae.jitter}`)
}

export function createNode (options: NodeOptions): HearsayNode {
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
    if (options.quota === null || typeof options.quota !== 'object') throw new ConfigError('quota must be an object')
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

  const id = options.id
  const transport = options.transport
  const storage = options.storage ?? createMemoryStorage()
  const logger = options.logger ?? silentLogger()
  const log = logger.forComponent(`hearsay:node:${id.slice(-8)}`)
  const timers = options.timers ?? realTimers
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32)
  const rng = createRandom(seed)
  const maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES
  let liveBatchMs = options.liveBatchMs ?? LIVE_BATCH_MS
  const retryQueueBytes = options.retryQueueBytes ?? RETRY_QUEUE_BYTES
  const statusIntervalMs = options.statusIntervalMs ?? STATUS_INTERVAL_MS
  let live = options.live ?? true
  const propagation = {
    mode: PROPAGATION_MODE as PropagationMode,
    fanout: RUMOR_FANOUT,
    maxHops: RUMOR_MAX_HOPS,
    seenIds: RUMOR_SEEN_IDS,
    absentPeerMs: RUMOR_ABSENT_PEER_MS,
    ...stripUndefined(options.propagation ?? {})
  }
  const ae = {
    mode: ANTI_ENTROPY_MODE as AntiEntropyMode,
    intervalMs: ANTI_ENTROPY_INTERVAL_MS,
    fanout: ANTI_ENTROPY_FANOUT,
    selection: 'random' as 'random' | 'ring',
    reach: ANTI_ENTROPY_REACH as 'connected' | 'members',
    jitter: ANTI_ENTROPY_JITTER,
    enabled: true,
    onConnect: true,
    timeoutMs: EXCHANGE_TIMEOUT_MS
  }
  Object.assign(ae, stripUndefined(options.antiEntropy ?? {}))

  const clusterOpts = {
    enabled: true,
    intervalMs: CLUSTER_INTERVAL_MS,
    suspectMs: CLUSTER_SUSPECT_MS,
    deadMs: CLUSTER_DEAD_MS,
    maxMessageBytes: CLUSTER_MAX_MESSAGE_BYTES,
    maxMembers: CLUSTER_MAX_MEMBERS,
    ...stripUndefined(options.cluster ?? {})
  }
  // this run of our cluster state: a restart starts a later one (see cluster.ts)
  const members = new ClusterState(id, clusterOpts, () => timers.now(), timers.now())
  const clusterRng = createRandom(seed ^ 0x434c5553)
  let heartbeat = 0
  let gossipTimer: unknown
  const rumors = new RumorMill(propagation, createRandom(seed ^ 0x52554d52))
  const events = new Emitter<NodeEvents>()
  const counters: Counters = {
    bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0, framesRejected: 0, liveUpdatesSent: 0,
    liveUpdatesReceived: 0, liveFramesShed: 0, liveFramesDropped: 0, rumorUpdatesSent: 0, rumorUpdatesReceived: 0, exchangesStarted: 0, exchangesCompleted: 0, exchangesFailed: 0, docsSent: 0, docsReceived: 0, sessionFaults: 0, docsRefused: 0, receiveAborts: 0, stalledSessions: 0
  }
  let gossipEntriesRejected = 0
  /** When each session last logged dropped cluster entries. */
  const rejectionsLogged = new WeakMap<Session, number>()
  let timerFaults = 0
  /** Run a timer's work through the last-resort guard: a throw is logged and counted, never fatal. */
  const guardTimer = (what: string, fn: () => void): void => {
    guarded(log, what, fn, () => { timerFaults++ })
  }
  let retryQueueOverflows = 0
  let flowCongestions = 0
  let flowOutboxOverflows = 0
  const flowOpts = {
    enabled: true,
    targetDelayMs: FLOW_TARGET_DELAY_MS,
    initialWindow: FLOW_INITIAL_WINDOW,
    minWindow: FLOW_MIN_WINDOW,
    maxWindow: FLOW_MAX_WINDOW,
    increase: FLOW_INCREASE,
    outboxBytes: FLOW_OUTBOX_BYTES,
    ...stripUndefined(options.flowControl ?? {})
  }
  const peers = new Map<string, KnownPeer>()
  let state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new'
  let liveQueue: LiveEntry[] = []
  let liveTimer: unknown
  let statusTimer: unknown
  let roundTimer: unknown
  let announcedRoot: Uint8Array | undefined
  /** Stored bytes last published in cluster state (`hearsay/bytes`). */
  let announcedBytes: number | undefined
  /** The replica the last ring round reconciled with. */
  let ringLast: string | undefined
  /** Members a round is dialling (`antiEntropy.reach: 'members'`). */
  const dialing = new Set<string>()

  const docs = new Documents({
    storage,
    log: logger.forComponent(`hearsay:docs:${id.slice(-8)}`),
    maxLoadedDocs: options.maxLoadedDocs ?? MAX_LOADED_DOCS,
    storageBatchMs: options.storageBatchMs ?? STORAGE_BATCH_MS,
    timers,
    newClientId: options.newClientId,
    onStored () {
      // the size is announced with the digest, at the same cadence
      if (docs.storedBytes !== announcedBytes) scheduleStatus()
    },
    onChange (docId, update, origin) {
      const from = origin instanceof Session ? origin.remoteId : undefined
      if (from === undefined && live) queueLive({ docId, update })
      scheduleStatus()
      events.emit('doc:update', { docId, update, peerId: from })
    }
  })

  const digest = (): { root: Uint8Array, count: number } => {
    docs.refresh()
    return { root: docs.tree.rootHash, count: docs.tree.size }
  }

  const peer = (peerId: string): KnownPeer => {
    let p = peers.get(peerId)
    if (p === undefined) {
      p = { id: peerId, session: undefined, root: undefined, docCount: 0, lastSeen: timers.now(), retry: [], retryBytes: 0, needsRepair: false, flow: new PeerFlow(flowOpts), helloRoot: undefined, lastSync: undefined, checkpointedAt: undefined, checkpointRoot: undefined }
      peers.set(peerId, p)
    }
    return p
  }

  const host: SessionHost = {
    id,
    docs,
    log: logger.forComponent(`hearsay:session:${id.slice(-8)}`),
    timers,
    maxFrameBytes,
    sendQueueBytes: options.sendQueueBytes ?? SEND_QUEUE_BYTES,
    receiveQueueBytes: options.receiveQueueBytes ?? RECEIVE_QUEUE_BYTES,
    counters,
    budget: new ReceiveBudget(options.receiveBufferBytes ?? RECEIVE_BUFFER_BYTES),
    quota: new CreationQuota({
      docsPerMinute: options.quota?.docsPerMinute ?? QUOTA_DOCS_PER_MINUTE,
      docsBurst: options.quota?.docsBurst ?? QUOTA_DOCS_BURST,
      bytesPerMinute: options.quota?.bytesPerMinute ?? QUOTA_BYTES_PER_MINUTE,
      bytesBurst: options.quota?.bytesBurst ?? QUOTA_BYTES_BURST
    }, timers),
    get exchangeTimeoutMs () { return ae.timeoutMs },
    digest,
    onOpen (session) {
      const p = peer(session.remoteId)
      log('session with %s open', session.remoteId)
      p.session = session
      p.lastSeen = timers.now()
      // our root changed during the handshake: the Status that said so was not sent on it
      const current = digest()
      if (p.helloRoot !== undefined && !equalBytes(current.root, p.helloRoot)) session.sendStatus(current.root, current.count)
      if (p.retry.length > 0) {
        const queued = p.retry
        p.retry = []
        p.retryBytes = 0
        sendLive(p, queued)
      }
      events.emit('peer:connect', { peerId: session.remoteId })
      // the hello carried the peer's digest root: equal to ours, there is nothing to reconcile
      if (p.root !== undefined && equalBytes(p.root, current.root)) {
        p.needsRepair = false
        return
      }
      // one push-pull exchange brings both sides level, so only the lower id starts it; a node that
      // pushes or pulls only starts its own, in its own direction
      if (ae.enabled && (p.needsRepair || (ae.onConnect && (ae.mode !== 'push-pull' || id < session.remoteId)))) repair(p)
    },
    onExchangeCompleted (session) {
      const p = peer(session.remoteId)
      p.lastSync = timers.now()
      if (p.checkpointedAt === undefined || p.lastSync - p.checkpointedAt >= PEER_CHECKPOINT_INTERVAL_MS) saveCheckpoints()
      // the root this exchange led to goes out as soon as its writes are stored, not after
      // statusIntervalMs: a link dropped in between would leave the peer (and its checkpoint)
      // with a root from the middle of the sync
      // (one attempt: while storage fails, the retry timer and the throttled Status take over)
      void docs.writeNow().then(err => { if (err === undefined) announceNow() })
    },
    onClosed (session, reason) {
      const p = peers.get(session.remoteId)
      if (p?.session !== session) return
      p.session = undefined
      // updates held back for the peer wait for it like any other
      if (p.flow.holding) queueRetry(p, p.flow.take())
      if (state === 'started') saveCheckpoints()
      log('session with %s closed: %s', session.remoteId, reason)
      events.emit('peer:disconnect', { peerId: session.remoteId, reason })
    },
    onStatus (session, root, docCount) {
      const p = peer(session.remoteId)
      p.root = root
      p.docCount = docCount
      p.lastSeen = timers.now()
      // the peer confirms it holds what we hold: a checkpoint written before that (say, as an
      // exchange completed, before its final Status) is rewritten, so a crash does not leave it
      // with a root from the middle of a sync
      if (state === 'started' && p.checkpointedAt !== undefined && (p.checkpointRoot === undefined || !equalBytes(root, p.checkpointRoot)) && equalBytes(root, digest().root)) saveCheckpoints()
    },
    onLiveApplied (session) {
      peer(session.remoteId).lastSeen = timers.now()
    },
    onGossip (session, msg) {
      peer(session.remoteId).lastSeen = timers.now()
      if (!clusterOpts.enabled) return
      members.apply(msg.entries, session.remoteId)
      const rejected = members.takeRejections()
      if (rejected.size > 0) {
        let n = 0
        for (const count of rejected.values()) n += count
        gossipEntriesRejected += n
        // every frame is counted; the log says so at most once per peer per interval
        const now = timers.now()
        if (now - (rejectionsLogged.get(session) ?? -Infinity) >= CLUSTER_REJECTION_LOG_MS) {
          rejectionsLogged.set(session, now)
          host.log.warn('dropped %d cluster state entries from %s: %s', n, session.remoteId, [...rejected].map(([why, count]) => `${why} (${count})`).join(', '))
        }
      }
      const budget = session.frameLimit / 2
      if (msg.request) {
        session.sendGossip({ request: false, answer: true, digest: members.digest(), entries: members.deltasFor(msg.digest, budget) })
      } else if (msg.answer) {
        const entries = members.deltasFor(msg.digest, budget)
        if (entries.length > 0) session.sendGossip({ request: false, answer: false, digest: [], entries })
      }
    },
    onDrain (session, bytes, delayMs) {
      const p = peers.get(session.remoteId)
      if (p?.session !== session || !flowOpts.enabled) return
      if (p.flow.drained(bytes, delayMs, timers.now())) flowCongestions++
      if (p.flow.holding && session.backlog < p.flow.window) sendBatches(session, p.flow.take())
    },
    sendLimit (session) {
      const w = peers.get(session.remoteId)?.flow.window
      return flowOpts.enabled && w !== undefined ? Math.min(w, host.sendQueueBytes) : host.sendQueueBytes
    },
    onReceiveOverflow (session) {
      // what was dropped comes back in an exchange, which waits behind the frames being applied
      const p = peer(session.remoteId)
      if (!p.needsRepair) log('dropping live updates from %s while earlier ones are applied; an exchange will repair them', session.remoteId)
      p.needsRepair = true
      repair(p)
    },
    onRumorApplied (session, hops, entries) {
      peer(session.remoteId).lastSeen = timers.now()
      const fresh = rumors.fresh(entries)
      if (fresh.length > 0 && rumors.forwards(hops)) spread(fresh, hops + 1, session.remoteId)
    }
  }

  function onChannel (channel: Channel): Session {
    const p = peer(channel.remoteId)
    if (p.session !== undefined) p.session.close('replaced by a new connection', false)
    const session = new Session(host, channel)
    p.session = session
    p.helloRoot = digest().root
    if (state !== 'started') session.close('node is not running', true)
    return session
  }

  function queueLive (entry: LiveEntry): void {
    liveQueue.push(entry)
    if (liveTimer === undefined) liveTimer = timers.setTimeout(flushLive, liveBatchMs)
  }

  /** Merge queued local updates per document and send them to every peer. */
  function flushLive (): void {
    liveTimer = undefined
    if (liveQueue.length === 0) return
    // no peer to send to or queue for (and no rumor to start): merging would be wasted work
    if (peers.size === 0 && propagation.mode !== 'rumor') {
      liveQueue = []
      return
    }
    const byDoc = new Map<string, Uint8Array[]>()
    for (const e of liveQueue) {
      const list = byDoc.get(e.docId)
      if (list === undefined) byDoc.set(e.docId, [e.update])
      else list.push(e.update)
    }
    liveQueue = []
    const entries: LiveEntry[] = []
    for (const [docId, updates] of byDoc) entries.push({ docId, update: updates.length === 1 ? updates[0] as Uint8Array : Y.mergeUpdates(updates) })
    const rumor = spreadsRumors()
    if (rumor) spread(rumors.fresh(entries), 1, undefined)
    for (const p of peers.values()) {
      if (p.session?.state === 'open') {
        if (!rumor) sendLive(p, entries)
      } else {
        queueRetry(p, entries)
      }
    }
  }

  /** Keep live updates for a peer that is away, until the bounded queue overflows. */
  function queueRetry (p: KnownPeer, entries: LiveEntry[]): void {
    if (p.needsRepair) return
    for (const e of entries) {
      p.retry.push(e)
      p.retryBytes += e.update.length + e.docId.length
    }
    if (p.retryBytes > retryQueueBytes) {
      log('retry queue for %s overflowed (%d bytes): anti-entropy will repair', p.id, p.retryBytes)
      retryQueueOverflows += p.retry.length
      p.retry = []
      p.retryBytes = 0
      p.needsRepair = true
    }
  }

  /** Direct mail to a connected peer, through its flow control (flow.ts). */
  function sendLive (p: KnownPeer, entries: LiveEntry[]): void {
    const session = p.session as Session
    if (!flowOpts.enabled || p.flow.admits(session.backlog)) {
      sendBatches(session, entries)
      return
    }
    if (!p.flow.hold(entries)) {
      flowOutboxOverflows++
      log('updates held for %s overflowed: anti-entropy will repair', p.id)
      p.needsRepair = true
      repair(p)
    }
  }

  /**
   * Rumors in `auto` mode: some member that is still up is not connected to us, so direct mail
   * would miss it. With cluster state, "still up" is heard from (its heartbeat travels through
   * others) within `cluster.suspectMs`: a member that is down does not hold the node in rumor mode,
   * its retry queue waits for it. A member just heard of, not yet seen rising, counts until it is
   * dead: rumors reach it if it is up. Without cluster state, any peer heard from within `absentPeerMs`.
   */
  function spreadsRumors (): boolean {
    if (propagation.mode !== 'auto') return propagation.mode === 'rumor'
    const now = timers.now()
    const window = clusterOpts.enabled ? clusterOpts.suspectMs : propagation.absentPeerMs
    for (const pid of new Set(knownIds())) {
      const p = peers.get(pid)
      if (p?.session?.state === 'open') continue
      const heard = Math.max(p?.lastSeen ?? -Infinity, members.lastHeard(pid) ?? -Infinity)
      if (now - heard < window) return true
      if (clusterOpts.enabled && members.unconfirmed(pid) && members.state(pid) !== 'dead') return true
    }
    return false
  }

  function publishDigest (root: Uint8Array, count: number): void {
    if (!clusterOpts.enabled) return
    members.set('hearsay/root', root)
    members.set('hearsay/docs', textEncoder.encode(String(count)))
    if (docs.storedBytes !== announcedBytes) {
      announcedBytes = docs.storedBytes
      members.set('hearsay/bytes', textEncoder.encode(String(announcedBytes)))
    }
  }

  function scheduleGossip (): void {
    if (gossipTimer !== undefined) timers.clearTimeout(gossipTimer)
    gossipTimer = undefined
    if (!clusterOpts.enabled || state !== 'started') return
    gossipTimer = timers.setTimeout(() => {
      gossipTimer = undefined
      guardTimer('gossip round', gossipRound)
      scheduleGossip()
    }, clusterOpts.intervalMs * (1 + 0.25 * (2 * clusterRng.next() - 1)))
  }

  /** Bump the heartbeat, forget long-dead members, and send our digest to one random connected peer. */
  function gossipRound (): void {
    members.set('hearsay/hb', textEncoder.encode(String(++heartbeat)))
    for (const gone of members.forget()) log('forgot %s: not heard from in %d ms', gone, clusterOpts.deadMs * CLUSTER_FORGET_DEAD_MULTIPLE)
    const now = timers.now()
    for (const p of [...peers.values()]) {
      if (p.session === undefined && members.lastHeard(p.id) === undefined && now - p.lastSeen >= clusterOpts.deadMs * CLUSTER_FORGET_DEAD_MULTIPLE) peers.delete(p.id)
    }
    const open = [...peers.values()].filter(p => p.session?.state === 'open')
    if (open.length === 0) return
    const p = clusterRng.pick(open)
    if (!(p.session as Session).sendGossip({ request: true, answer: false, digest: members.digest(), entries: [] })) {
      log('cluster digest does not fit a frame to %s', p.id)
    }
  }

  function memberState (connected: boolean, lastSeen: number): MemberState {
    if (connected) return 'alive'
    const quiet = timers.now() - lastSeen
    return quiet < clusterOpts.suspectMs ? 'alive' : quiet < clusterOpts.deadMs ? 'suspect' : 'dead'
  }

  /** Send a rumor's entries to `fanout` random connected peers other than the one it came from. */
  function spread (entries: LiveEntry[], hops: number, from: string | undefined): void {
    if (entries.length === 0) return
    const open = [...peers.values()].filter(p => p.session?.state === 'open' && p.id !== from)
    for (const p of rumors.targets(open)) sendBatches(p.session as Session, entries, hops)
  }

  /**
   * Send entries in frames that fit the session, as Live frames, or Rumor frames when `hops` is
   * given; anything too large for a frame goes by anti-entropy.
   */
  function sendBatches (session: Session, entries: LiveEntry[], hops?: number): void {
    const budget = session.frameLimit - FRAME_OVERHEAD - 16
    let batch: LiveEntry[] = []
    let size = 0
    let shed = false
    const p = peer(session.remoteId)
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
    if (shed) {
      p.needsRepair = true
      repair(p)
    }
  }

  /**
   * The open session with a peer. One still in its handshake is waited for; with no session at
   * all, the transport dials the peer when it can. Rejects with `PeerUnavailableError` when no
   * session opens within `timeoutMs`.
   */
  async function openSession (peerId: string, timeoutMs: number): Promise<Session> {
    const current = peers.get(peerId)?.session
    if (current?.state === 'open') return current
    if (current === undefined && transport.connect === undefined) throw new PeerUnavailableError(`no open session with ${peerId}`)
    return await new Promise<Session>((resolve, reject) => {
      const dial = new AbortController()
      const done = (err?: Error): void => {
        timers.clearTimeout(timer)
        offConnect()
        offDisconnect()
        dial.abort()
        const s = peers.get(peerId)?.session
        if (err === undefined && s?.state === 'open') resolve(s)
        else reject(err ?? new PeerUnavailableError(`no open session with ${peerId}`))
      }
      const timer = timers.setTimeout(() => { done(new PeerUnavailableError(`no session with ${peerId} opened within ${timeoutMs} ms`)) }, timeoutMs)
      const offConnect = events.on('peer:connect', e => { if (e.peerId === peerId) done() })
      const offDisconnect = events.on('peer:disconnect', e => {
        if (e.peerId === peerId) done(new PeerUnavailableError(`the session with ${peerId} closed before it opened: ${e.reason}`))
      })
      if (current === undefined) {
        transport.connect!(peerId, { signal: dial.signal }).catch((err: unknown) => {
          done(new PeerUnavailableError(`could not reach ${peerId}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }))
        })
      }
    })
  }

  /**
   * Run an exchange with the peer now (a round, a connect, lost updates), unless one of ours is
   * already running: in the configured mode, or push-pull when live updates to the peer were lost,
   * which any mode must repair. A failed exchange marks the peer to be repaired first next time.
   */
  function repair (p: KnownPeer): void {
    const s = p.session
    if (s === undefined || s.state !== 'open' || s.activeInitiated > 0) return
    const mode = p.needsRepair ? 'push-pull' : ae.mode
    p.needsRepair = false
    s.startExchange(mode, ae.timeoutMs).catch((err: Error) => {
      p.needsRepair = true
      log('exchange with %s failed: %s', p.id, err.message)
    })
  }

  function scheduleStatus (): void {
    if (statusTimer !== undefined || state !== 'started') return
    statusTimer = timers.setTimeout(() => guardTimer('status announcement', () => {
      statusTimer = undefined
      announce()
    }), statusIntervalMs)
  }

  /** Tell peers the digest root (and cluster state the size) if either changed since last time. */
  function announce (): void {
    const { root, count } = digest()
    const rootChanged = announcedRoot === undefined || !equalBytes(root, announcedRoot)
    if (!rootChanged && docs.storedBytes === announcedBytes) return
    announcedRoot = root
    publishDigest(root, count)
    if (rootChanged) for (const p of peers.values()) p.session?.sendStatus(root, count)
  }

  /** `announce()` now, replacing a scheduled one. */
  function announceNow (): void {
    if (state !== 'started') return
    if (statusTimer !== undefined) {
      timers.clearTimeout(statusTimer)
      statusTimer = undefined
    }
    announce()
  }

  function scheduleRound (): void {
    if (roundTimer !== undefined) timers.clearTimeout(roundTimer)
    roundTimer = undefined
    if (!ae.enabled || state !== 'started') return
    const wait = ae.intervalMs * (1 + ae.jitter * (2 * rng.next() - 1))
    roundTimer = timers.setTimeout(() => {
      roundTimer = undefined
      guardTimer('anti-entropy round', runRound)
      scheduleRound()
    }, wait)
  }

  /**
   * Reconcile with `fanout` random peers, those that missed live updates first: connected ones,
   * or with `reach: 'members'` any alive member, dialled when it has no open session.
   */
  function runRound (): void {
    const open = [...peers.values()].filter(p => p.session?.state === 'open')
    const openIds = new Set(open.map(p => p.id))
    const others = ae.reach === 'members'
      ? members.others().filter(pid => !openIds.has(pid) && !dialing.has(pid) && members.state(pid) === 'alive' &&
        // without `connect`, only a session already in its handshake can open
        (transport.connect !== undefined || peers.get(pid)?.session !== undefined))
      : []
    if (open.length + others.length === 0) return
    const needy = open.filter(p => p.needsRepair).map(p => p.id)
    const candidates = [...openIds, ...others]
    const picked = ae.selection === 'ring'
      ? ringPicks(needy, new Set(candidates))
      : ae.fanout === 1
      ? [rng.pick(needy.length > 0 ? needy : candidates)]
      : needy.length >= ae.fanout
      ? rng.shuffle(needy).slice(0, ae.fanout)
      : [...needy, ...rng.shuffle(candidates.filter(pid => !needy.includes(pid))).slice(0, ae.fanout - needy.length)]
    for (const pid of picked) {
      const p = peers.get(pid)
      if (p?.session?.state === 'open') repair(p)
      else dialForRound(pid)
    }
  }

  /** A round picked a member with no open session: open one (bounded by `timeoutMs`), then reconcile. */
  function dialForRound (pid: string): void {
    dialing.add(pid)
    openSession(pid, ae.timeoutMs).then(() => {
      dialing.delete(pid)
      if (state === 'started') repair(peer(pid))
    }, (err: unknown) => {
      dialing.delete(pid)
      log('anti-entropy round could not reach %s: %s', pid, err instanceof Error ? err.message : String(err))
    })
  }

  /** Peers that missed updates first, then the next candidates in ring order. */
  function ringPicks (needy: string[], candidates: Set<string>): string[] {
    const picked = needy.slice(0, ae.fanout)
    const usable = (pid: string): boolean => candidates.has(pid) && !picked.includes(pid)
    const next = nextInRing(ringOrder(id, knownIds()), ringLast, ae.fanout - picked.length, usable)
    if (next.length > 0) ringLast = next[next.length - 1]
    return [...picked, ...next]
  }

  /**
   * Per-peer checkpoints, one metadata record (`hearsay/peers`, JSON): for each peer, its digest
   * root and document count at last contact, when we last heard from it and when an exchange with
   * it last completed. Written when a session closes, at most every `PEER_CHECKPOINT_INTERVAL_MS`
   * per peer after completed exchanges, when a peer's Status confirms it holds our root (and its
   * checkpoint says otherwise), and on stop; read at start. The `PEER_CHECKPOINTS_MAX`
   * most recently seen peers are kept.
   */
  let checkpointWrite: Promise<void> = Promise.resolve()
  function saveCheckpoints (): Promise<void> {
    const record: Record<string, StoredCheckpoint> = {}
    const now = timers.now()
    const seen = (p: KnownPeer): number => p.session?.state === 'open' ? now : p.lastSeen
    // the most recently seen ones: peers with a new id every run must not pile up forever
    const kept = [...peers.values()].filter(p => p.root !== undefined).sort((x, y) => seen(y) - seen(x)).slice(0, PEER_CHECKPOINTS_MAX)
    for (const p of kept) {
      record[p.id] = { root: toHex(p.root as Uint8Array), docCount: p.docCount, lastSeen: seen(p), lastSync: p.lastSync }
      p.checkpointedAt = now
      p.checkpointRoot = p.root
    }
    const bytes = textEncoder.encode(JSON.stringify(record))
    checkpointWrite = checkpointWrite.then(async () => { await storage.setMeta(CHECKPOINT_KEY, bytes) }).catch((err: unknown) => {
      log.warn('could not store peer checkpoints: %s', err instanceof Error ? err.message : String(err))
    })
    return checkpointWrite
  }

  async function loadCheckpoints (): Promise<void> {
    let record: Record<string, StoredCheckpoint>
    try {
      const raw = await storage.getMeta(CHECKPOINT_KEY)
      if (raw === undefined) return
      record = JSON.parse(textDecoder.decode(raw)) as Record<string, StoredCheckpoint>
    } catch (err) {
      log.warn('ignoring unreadable peer checkpoints: %s', err instanceof Error ? err.message : String(err))
      return
    }
    for (const [pid, c] of Object.entries(record)) {
      if (pid === id || typeof c?.root !== 'string' || !/^[0-9a-f]*$/.test(c.root)) continue
      const p = peer(pid)
      p.root = fromHex(c.root)
      p.docCount = Number(c.docCount) || 0
      p.lastSeen = Number(c.lastSeen) || 0
      p.lastSync = c.lastSync === undefined ? undefined : Number(c.lastSync)
      // nothing is queued for a peer from before the restart: the exchange on reconnect repairs
      p.needsRepair = true
    }
    if (peers.size > 0) log('restored checkpoints of %d peers', peers.size)
  }

  function knownIds (): string[] {
    return [...peers.keys(), ...members.others()]
  }

  const requireStarted = (): void => {
    if (state !== 'started') throw new NotStartedError(`node ${id} is not started`)
  }

  return {
    id,
    async start () {
      if (state === 'started' || state === 'starting') return
      if (state !== 'new') throw new NotStartedError(`node ${id} was stopped; create a new node to start again`)
      state = 'starting'
      await storage.open()
      await docs.init()
      await loadCheckpoints()
      state = 'started'
      const d = digest()
      publishDigest(d.root, d.count)
      await transport.start({ onChannel })
      scheduleRound()
      scheduleGossip()
      log('started with %d documents', docs.tree.size)
    },
    async stop () {
      if (state !== 'started') return
      state = 'stopping'
      for (const t of [roundTimer, statusTimer, gossipTimer]) if (t !== undefined) timers.clearTimeout(t)
      roundTimer = statusTimer = gossipTimer = undefined
      if (liveTimer !== undefined) {
        timers.clearTimeout(liveTimer)
        flushLive()
      }
      for (const p of peers.values()) p.session?.close('node stopping', true)
      await transport.stop()
      await saveCheckpoints()
      await docs.close()
      await storage.close()
      state = 'stopped'
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
    docs: () => docs.ids(),
    async syncWith (peerId, opts = {}) {
      requireStarted()
      checkAntiEntropy({ mode: opts.mode, timeoutMs: opts.timeoutMs })
      const timeoutMs = opts.timeoutMs ?? ae.timeoutMs
      const s = await openSession(peerId, timeoutMs)
      return await s.startExchange(opts.mode ?? ae.mode, timeoutMs)
    },
    async repairPass () {
      requireStarted()
      const started = timers.now()
      const report: RepairReport = { exchanges: 0, failed: [], unreachable: [], docsSent: 0, docsReceived: 0, durationMs: 0 }
      const ring = ringOrder(id, knownIds())
      const reachable = ring.filter(pid => peers.get(pid)?.session?.state === 'open')
      report.unreachable = ring.filter(pid => !reachable.includes(pid))
      for (const pid of passSequence(reachable)) {
        const s = peers.get(pid)?.session
        try {
          if (s === undefined || s.state !== 'open') throw new PeerUnavailableError(`no open session with ${pid}`)
          const r = await s.startExchange('push-pull', ae.timeoutMs)
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
    },
    async flush () {
      if (liveTimer !== undefined) {
        timers.clearTimeout(liveTimer)
        flushLive()
      }
      await docs.flush()
    },
    metrics () {
      let sessions = 0
      for (const p of peers.values()) if (p.session?.state === 'open') sessions++
      let flowHeldBytes = 0
      for (const p of peers.values()) flowHeldBytes += p.flow.bytes
      return {
        ...counters,
        docs: docs.tree.size,
        docsInMemory: docs.loadedCount,
        docsLoaded: docs.docsLoaded,
        docsReadStored: docs.storedReads,
        storedBytes: docs.storedBytes,
        docsQuarantined: docs.quarantined,
        docsLost: docs.lost,
        sessions,
        retryQueueOverflows,
        flowCongestions,
        flowOutboxOverflows,
        flowHeldBytes,
        gossipEntriesRejected,
        timerFaults
      }
    },
    peers () {
      const { root } = digest()
      const ids = new Set([...peers.keys(), ...members.others()])
      return [...ids].map(pid => {
        const p = peers.get(pid)
        const connected = p?.session?.state === 'open'
        const gossiped = members.entries(pid)
        // a connected peer's own Status is the freshest news; otherwise gossip may be newer
        const gossipRoot = gossiped.get('hearsay/root')
        const theirRoot = connected || gossipRoot === undefined ? p?.root : gossipRoot
        const gossipDocs = gossiped.get('hearsay/docs')
        const gossipBytes = gossiped.get('hearsay/bytes')
        const bytes = gossipBytes === undefined ? undefined : Number(textDecoder.decode(gossipBytes))
        const lastSeen = Math.max(p?.lastSeen ?? -Infinity, members.lastHeard(pid) ?? -Infinity)
        const meta: Record<string, string> = {}
        for (const [k, v] of gossiped) if (!k.startsWith('hearsay/')) meta[k] = textDecoder.decode(v)
        return {
          id: pid,
          connected,
          state: memberState(connected, lastSeen),
          inSync: theirRoot !== undefined && equalBytes(theirRoot, root),
          docCount: connected || gossipDocs === undefined ? p?.docCount ?? 0 : Number(textDecoder.decode(gossipDocs)),
          lastSeen,
          bytes: bytes !== undefined && Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined,
          lastSync: p?.lastSync,
          meta
        }
      })
    },
    problems: () => docs.problems(),
    setMeta (key, value) {
      if (typeof key !== 'string' || key.length === 0 || textEncoder.encode(key).length > MAX_GOSSIP_KEY_BYTES || key.startsWith('hearsay/')) {
        throw new ConfigError(`meta key must be 1 to ${MAX_GOSSIP_KEY_BYTES} bytes and not start with "hearsay/", got ${JSON.stringify(key)}`)
      }
      const bytes = textEncoder.encode(String(value))
      if (bytes.length > CLUSTER_MAX_VALUE_BYTES) throw new ConfigError(`meta value must be at most ${CLUSTER_MAX_VALUE_BYTES} bytes, got ${bytes.length}`)
      const refused = members.refuses(key, bytes)
      if (refused !== undefined) throw new ConfigError(`meta entry ${JSON.stringify(key)} refused: ${refused}`)
      members.set(key, bytes)
    },
    digest,
    configure (opts) {
      if (opts === null || typeof opts !== 'object') throw new ConfigError('configure needs an options object')
      // validate everything against the merged settings first, so an error changes nothing
      const next = {
        ae: { ...ae, ...stripUndefined(opts.antiEntropy ?? {}) },
        propagation: { ...propagation, ...stripUndefined(opts.propagation ?? {}) },
        cluster: { ...clusterOpts, ...stripUndefined(opts.cluster ?? {}) },
        flow: { ...flowOpts, ...stripUndefined(opts.flowControl ?? {}) }
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

      const gossipWas = { enabled: clusterOpts.enabled, intervalMs: clusterOpts.intervalMs }
      const flowWas = flowOpts.enabled
      Object.assign(ae, next.ae)
      Object.assign(propagation, next.propagation)
      Object.assign(clusterOpts, next.cluster)
      Object.assign(flowOpts, next.flow)
      if (opts.live !== undefined) live = opts.live
      if (opts.liveBatchMs !== undefined) liveBatchMs = opts.liveBatchMs

      if (opts.antiEntropy !== undefined) scheduleRound()
      if (clusterOpts.enabled !== gossipWas.enabled || clusterOpts.intervalMs !== gossipWas.intervalMs) {
        if (clusterOpts.enabled && !gossipWas.enabled && state === 'started') {
          const d = digest()
          publishDigest(d.root, d.count)
        }
        scheduleGossip()
      }
      for (const p of peers.values()) {
        p.flow.clamp()
        // held updates would wait for a drain that no longer looks at them
        if (flowWas && !flowOpts.enabled && p.flow.holding && p.session?.state === 'open') sendBatches(p.session, p.flow.take())
      }
    },
    on: (event, fn) => events.on(event, fn)
  }
}

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { ignoreBOM: true })

/** Metadata record holding the per-peer checkpoints. */
const CHECKPOINT_KEY = 'hearsay/peers'

interface StoredCheckpoint {
  /** The peer's digest root at last contact, hex. */
  root: string
  docCount: number
  lastSeen: number
  lastSync: number | undefined
}

const fromHex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], x => parseInt(x, 16))

function checkFlow (o: FlowControlOptions | undefined): void {
  if (o === undefined) return
  for (const k of ['targetDelayMs', 'initialWindow', 'minWindow', 'maxWindow', 'increase', 'outboxBytes'] as const) checkNumber(`flowControl.${k}`, o[k], 1)
  if (o.minWindow !== undefined && o.maxWindow !== undefined && o.maxWindow < o.minWindow) throw new ConfigError('flowControl.maxWindow must be at least flowControl.minWindow')
}

function checkBoolean (name: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`)
}

function checkCluster (o: ClusterOptions | undefined): void {
  if (o === undefined) return
  checkNumber('cluster.intervalMs', o.intervalMs, 1)
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
  checkNumber('propagation.maxHops', o.maxHops, 1)
  if (o.maxHops !== undefined && o.maxHops > 254) throw new ConfigError(`propagation.maxHops must be at most 254, got ${o.maxHops}`)
  checkNumber('propagation.seenIds', o.seenIds, 1)
  checkNumber('propagation.absentPeerMs', o.absentPeerMs, 0)
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
