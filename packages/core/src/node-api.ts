/**
 * What an application sees of a node: the `HearsayNode` interface and its events. `createNode`
 * (node.ts) builds one.
 */
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'
import type { DocSyncState, Replicated, ReplicatedOptions } from './acks.js'
import type { RepairReport } from './anti-entropy.js'
import type { DocProblem } from './doc-problems.js'
import type { SyncReport } from './exchange.js'
import type { NodeMetrics } from './metrics.js'
import type { NodeTrust } from './node-trust.js'
import type { RuntimeOptions } from './options.js'
import type { PeerInfo } from './peers.js'
import type { AntiEntropyMode } from './protocol.js'

export interface NodeEvents extends Record<string, unknown> {
  'peer:connect': { peerId: string }
  'peer:disconnect': { peerId: string, reason: string }
  /**
   * A document changed; `peerId` is set when the change came from a peer. One event per run of
   * transactions with the same origin, on the microtask after them (a loop of edits in one turn is
   * one event, up to 1,024 transactions each); `update` holds the whole run.
   */
  'doc:update': { docId: string, update: Uint8Array, peerId: string | undefined }
  /** What this node knows of its peers' copies of a followed document changed (see `syncState`). */
  'doc:sync': DocSyncState
  /** Cluster gossip brought `setMeta` entries of these members; read them with `peers()`. */
  'peer:meta': { peerIds: string[] }
}

export interface HearsayNode {
  readonly id: string
  start(): Promise<void>
  stop(): Promise<void>
  /**
   * The document with this id, loaded from storage or created empty. Local edits to it propagate
   * at once. Each call holds the document once: the node keeps it in memory until every `open` has
   * been matched by a `close(docId)`. A call that rejects holds nothing.
   */
  open(docId: string): Promise<Y.Doc>
  /**
   * Give back one hold taken by `open`. Once none is left the node may unload the document when
   * idle, and the Y.Doc must not be used afterwards.
   */
  close(docId: string): void
  /**
   * Drop a document from this node's memory, digest and store (say, to free space on a small
   * device). Peers that hold it bring it back in a later exchange. Rejects with `ConfigError`
   * while it is open.
   */
  forget(docId: string): Promise<void>
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
  /**
   * The document's presence: a y-protocols `Awareness` (cursors, selections, names), shared with
   * every connected peer that may read the document and never stored. Open the document first so
   * the Awareness shares its Y.Doc's client id (as y-prosemirror's cursors expect). The same
   * instance is returned until the node stops.
   */
  awareness(docId: string): Awareness
  /**
   * Resolves when the peers named (or that many peers that may read the document) hold it at
   * least at this node's version as of the call, in their storage when `durable`; rejects with
   * `ReplicationTimeoutError` naming who did not confirm after `timeoutMs`.
   */
  replicated(docId: string, options?: ReplicatedOptions): Promise<Replicated>
  /**
   * What this node knows of each peer's copy of the document: `synced`, `behind` or `unknown`,
   * and whether it is in the peer's storage. The first call starts following the document
   * (reports arrive as `doc:sync` events); following lapses a minute after the last call.
   */
  syncState(docId: string): DocSyncState
  /** Current collection digest root (16 bytes) and document count. */
  digest(): { root: Uint8Array, count: number }
  /**
   * Who may read and write what: the swarm's roster of devices, grants and revocations, and the
   * admin operations (trust.ts, TRUST.md). Unmanaged (no `trust.genesis`), every member may do
   * everything.
   */
  readonly trust: NodeTrust
  /**
   * Change settings while running (see `RuntimeOptions`). Invalid settings throw `ConfigError`
   * and change nothing.
   */
  configure(options: RuntimeOptions): void
  on<K extends keyof NodeEvents>(event: K, fn: (e: NodeEvents[K]) => void): () => void
}
