/**
 * Every default of the engine, in one place. Each option that takes one of these documents it
 * with `@default`.
 */

/** Wire protocol version carried in every frame. */
export const PROTOCOL_VERSION = 1

/** libp2p protocol id (and the name of the protocol in logs). */
export const PROTOCOL_ID = '/hearsay/sync/1.0.0'

/**
 * Largest frame a node sends or accepts, in bytes. Larger messages are split across frames;
 * a single document update larger than this travels in chunks.
 */
export const MAX_FRAME_BYTES = 1024 * 1024

/** Smallest allowed value of `maxFrameBytes`: a frame must hold at least one digest range. */
export const MIN_FRAME_BYTES = 8 * 1024

/** Largest document update accepted from a peer after reassembling its chunks. */
export const MAX_UPDATE_BYTES = 64 * 1024 * 1024

/** Longest document id, in UTF-8 bytes. */
export const MAX_DOC_ID_BYTES = 512

/** A warning that repeats (per peer, per kind) is logged at most this often, in ms; the rest are counted. */
export const LOG_REPEAT_MS = 60_000

/** Default anti-entropy mode. */
export const ANTI_ENTROPY_MODE = 'push-pull'

/** Default interval between periodic anti-entropy rounds, in ms. */
export const ANTI_ENTROPY_INTERVAL_MS = 1000

/** Peers reconciled with in each periodic anti-entropy round. */
export const ANTI_ENTROPY_FANOUT = 1

/**
 * Which peers a periodic anti-entropy round may pick: 'connected' (open sessions only) or
 * 'members' (also alive cluster members, dialled for the round).
 */
export const ANTI_ENTROPY_REACH = 'connected'

/** Each round waits `interval * (1 ± jitter)`, so peers do not fall into lock-step. */
export const ANTI_ENTROPY_JITTER = 0.25

/** How long one anti-entropy exchange may take before it is abandoned, in ms. */
export const EXCHANGE_TIMEOUT_MS = 30_000

/** Most messages one exchange may take before it is abandoned as runaway. */
export const MAX_EXCHANGE_MESSAGES = 256

/** Exchanges a node answers at once per peer; more are refused. */
export const MAX_CONCURRENT_EXCHANGES = 8

/** Branching factor of the collection digest tree (nibbles of the document key hash). */
export const DIGEST_FANOUT = 16

/** A digest range holding at most this many documents is sent as a list instead of split further. */
export const DIGEST_LEAF_SIZE = 8

/** A digest tree bucket splits into children above this many documents. */
export const DIGEST_BUCKET_SIZE = 32

/** Documents kept in memory when nobody holds them open; idle ones past this are unloaded. */
export const MAX_LOADED_DOCS = 1000

/**
 * A document's transactions with the same origin become one update (doc-changes.ts), taken on the
 * next microtask; a run is taken at once when it reaches this many transactions, so an app that
 * makes thousands of edits in one turn gets them out in bounded updates.
 */
export const CHANGE_RUN_MAX_TRANSACTIONS = 1024

/** A run is also taken at once when its transactions added this many clock ticks (about characters or items). */
export const CHANGE_RUN_MAX_CLOCKS = 256 * 1024

/** A loaded document's fingerprint folds the deleted ranges its transactions added into its sorted ones when they are read, or at once past this many (doc-fingerprint.ts). */
export const DOC_FINGERPRINT_MAX_ADDED = 4096

/** How long local updates wait to be batched into one live frame, in ms (0: the next turn of the event loop). */
export const LIVE_BATCH_MS = 0

/**
 * A live batch is sent at once when it holds this many local updates, without waiting for the
 * next turn: an app that types thousands of edits in one turn gets them out in bounded batches,
 * each bounded work, instead of one batch whose merge grows faster than linearly.
 */
export const LIVE_BATCH_MAX_UPDATES = 1024

/** A live batch is also sent at once when its updates pass this many bytes. */
export const LIVE_BATCH_MAX_BYTES = 256 * 1024

/**
 * Updates of one document in a live batch are merged (`Y.mergeUpdates`) at most this many at a
 * time; a batch with more sends several merged updates. Merging is cheaper than sending each
 * update alone, but its cost grows faster than linearly with the number of inputs.
 */
export const LIVE_MERGE_MAX_UPDATES = 64

/** How fresh updates spread by default: direct mail while fully connected, rumors otherwise. */
export const PROPAGATION_MODE = 'auto'

/** Peers a rumor is passed to at each hop. */
export const RUMOR_FANOUT = 3

/** A rumor is not passed on after this many hops. */
export const RUMOR_MAX_HOPS = 8

/** Update ids remembered to recognise a rumor already seen (oldest forgotten first). */
export const RUMOR_SEEN_IDS = 10_000

/** In `auto` mode without cluster state, a disconnected peer heard from within this many ms makes a node spread rumors. */
export const RUMOR_ABSENT_PEER_MS = 5 * 60_000

/** Cluster state is gossiped (and the heartbeat bumped) this often, in ms. */
export const CLUSTER_INTERVAL_MS = 1000

/**
 * While a node and its peers agree (idle.ts), the gossip interval doubles after every round up to
 * this, in ms, and anti-entropy rounds are skipped; any difference resets both at once. With two
 * idle peers this is about one gossip round trip a minute.
 */
export const CLUSTER_IDLE_MAX_MS = 60_000

/** A member not heard from for this long is suspected, in ms. */
export const CLUSTER_SUSPECT_MS = 5000

/** A member not heard from for this long is considered dead, in ms. */
export const CLUSTER_DEAD_MS = 30_000

/**
 * A member not heard from for this many times `cluster.deadMs` is forgotten (5 min by default):
 * it leaves `peers()` and cluster gossip, and comes back only with newer state of its own.
 */
export const CLUSTER_FORGET_DEAD_MULTIPLE = 10

/** Largest batch of cluster entries sent in one answer, in bytes (the Scuttlebutt MTU). */
export const CLUSTER_MAX_MESSAGE_BYTES = 16 * 1024

/** Longest value of a cluster state entry (`setMeta`), in bytes. */
export const CLUSTER_MAX_VALUE_BYTES = 1024

/** A frame the transport takes longer than this to accept (ms) halves the peer's flow control window. */
export const FLOW_TARGET_DELAY_MS = 100

/** Bytes a channel may have waiting before live updates to that peer are held back, at first. */
export const FLOW_INITIAL_WINDOW = 256 * 1024

/** The flow control window never shrinks below this, in bytes. */
export const FLOW_MIN_WINDOW = 16 * 1024

/** ... nor grows past this, in bytes. */
export const FLOW_MAX_WINDOW = 4 * 1024 * 1024

/** Bytes the window grows by for each window's worth of bytes the channel drains (additive increase). */
export const FLOW_INCREASE = 16 * 1024

/** Most bytes of live updates held back for one connected peer; past it, anti-entropy repairs. */
export const FLOW_OUTBOX_BYTES = 1024 * 1024

/** Most bytes of live updates queued per disconnected peer; past this the queue is dropped and anti-entropy repairs. */
export const RETRY_QUEUE_BYTES = 4 * 1024 * 1024

/** Most bytes queued for sending on one channel before live frames for that peer are shed (anti-entropy repairs). */
export const SEND_QUEUE_BYTES = 8 * 1024 * 1024

/**
 * Most bytes of received live and rumor frames waiting to be applied, per peer; past this, further
 * ones are dropped and an exchange with the peer repairs them (a slow disk or CPU bounds memory).
 */
export const RECEIVE_QUEUE_BYTES = 8 * 1024 * 1024

/**
 * After local changes, peers are told the new digest root at most this often, in ms. After a
 * completed exchange it is told as soon as the exchange's writes are stored.
 */
export const STATUS_INTERVAL_MS = 200

/** Updates written to storage are batched for this long, in ms. `flush()` forces a write. */
export const STORAGE_BATCH_MS = 10

/**
 * Memory storage compacts a document (see `memory-storage.ts`) once more updates than this were
 * appended since its last compaction, and more than its snapshot's bytes / `COMPACT_RECORD_BYTES`.
 */
export const MEMORY_COMPACT_UPDATES = 500

/**
 * The snapshot bytes per update appended that make a store compact a document (`compactionDue`,
 * with its update threshold): deletions add few bytes, and compaction drops what they deleted. An
 * update is rarely under 8 bytes, so the work stays linear in what is written.
 */
export const COMPACT_RECORD_BYTES = 8

/**
 * Memory storage also compacts a document once the bytes after its snapshot exceed both this and
 * the snapshot's size: each compaction costs about the bytes it reads, at most twice what was
 * added since the last one, so total work is linear in what is written, and a document never
 * holds more than about twice its compacted size.
 */
export const MEMORY_COMPACT_MIN_BYTES = 64 * 1024

/** Compaction applies stored updates this many per transaction (see `compaction.ts`). */
export const COMPACTION_APPLY_BATCH = 100

/**
 * An exchange answers for a document that is not in memory from its stored updates when it has
 * at most this many records: one record (a compacted snapshot, or a single write) is sent as it
 * is; several are merged into one, or compacted when they delete anything (see `liveUpdate`
 * in `compaction.ts`), so deleted content is never sent. Past it, the document is loaded instead (and evicted again when over budget).
 */
export const STORED_MERGE_MAX_RECORDS = 100

/** Updates whose write to storage failed are tried again after this long, in ms (or at `flush()`). */
export const STORAGE_RETRY_MS = 1000

/**
 * A peer's sync checkpoint (digest root, document count, last contact and last completed
 * exchange; read back at start) is written when its session closes, on stop, and after a
 * completed exchange at most this often, in ms.
 */
export const PEER_CHECKPOINT_INTERVAL_MS = 60_000

/** Sync checkpoints are kept for at most this many peers, the most recently seen ones. */
export const PEER_CHECKPOINTS_MAX = 256

/**
 * Largest version, generation or exchange id accepted in a frame (2^48). Far above anything an
 * honest node counts to (a generation is a start time in ms: 2^48 ms is the year 10889), and far
 * enough below 2^53 that adding to one can never leave the safe integers.
 */
export const MAX_WIRE_COUNTER = 2 ** 48

/** Largest document count accepted in a frame (Hello, Status, a digest range): 2^32. */
export const MAX_WIRE_COUNT = 2 ** 32

/** Largest `maxFrameBytes` a peer may announce in its Hello (4 GiB); we send the smaller of the two anyway. */
export const MAX_ANNOUNCED_FRAME_BYTES = 2 ** 32

/**
 * A cluster member's generation (its start time in ms) more than this far ahead of our clock is
 * refused: no honest clock is a day ahead, and a far-future generation would shadow the member's
 * real runs until our clock caught up.
 */
export const CLUSTER_MAX_CLOCK_SKEW_MS = 24 * 60 * 60 * 1000

/**
 * Versions an owner may publish per ms, on average, in cluster state. Honest nodes publish a few
 * dozen per second (heartbeat, digest root, counts, `setMeta`); a version above what its owner
 * could have counted at this rate (plus `CLUSTER_VERSION_BURST`) is refused.
 */
export const CLUSTER_MAX_VERSIONS_PER_MS = 1

/** Versions an owner may publish at once, above `CLUSTER_MAX_VERSIONS_PER_MS`. */
export const CLUSTER_VERSION_BURST = 100_000

/**
 * Most members cluster state holds (ourselves included). Entries of further members learned
 * through gossip are dropped and counted (`gossipEntriesRejected`), so a peer announcing invented
 * members cannot grow a node's memory or its `peers()` past this.
 */
export const CLUSTER_MAX_MEMBERS = 2048

/** Most keys in one member's cluster state map (4 are taken by the node itself: hearsay/hb, root, docs, bytes). */
export const CLUSTER_MAX_KEYS_PER_MEMBER = 32

/**
 * Most bytes (keys and values) of one member's cluster state map; with `CLUSTER_MAX_MEMBERS` it
 * bounds the whole of cluster state (2048 × 8 KiB = 16 MiB at most).
 */
export const CLUSTER_MAX_MEMBER_BYTES = 8 * 1024

/** Dropped cluster state entries are counted every time and logged at most this often per session, in ms. */
export const CLUSTER_REJECTION_LOG_MS = 60_000

/**
 * Bytes of exchange frames waiting to be applied and of half-received (chunked) document updates
 * the whole node holds at once, across every exchange with every peer. A frame or chunk past it
 * aborts its exchange, which is retried later. Room for one update of `MAX_UPDATE_BYTES` in flight
 * and more besides.
 */
export const RECEIVE_BUFFER_BYTES = 96 * 1024 * 1024

/**
 * New documents one peer may make this node create at once (the creation quota's burst): an honest
 * initial sync of 100,000 documents goes through in one go.
 */
export const QUOTA_DOCS_BURST = 100_000

/** ... and per minute after that. */
export const QUOTA_DOCS_PER_MINUTE = 20_000

/** Bytes of updates creating new documents one peer may send at once. */
export const QUOTA_BYTES_BURST = 1024 * 1024 * 1024

/** ... and per minute after that. */
export const QUOTA_BYTES_PER_MINUTE = 64 * 1024 * 1024

/** Most statements a roster holds (trust.ts); statements past it are refused and logged. */
export const MAX_ROSTER_STATEMENTS = 10_000

/** Largest encoded roster statement, in bytes. */
export const MAX_STATEMENT_BYTES = 2048

/** Most grants one statement carries. */
export const MAX_STATEMENT_GRANTS = 32

/** Longest device name in the roster, in UTF-8 bytes. */
export const MAX_DEVICE_NAME_BYTES = 64

/** Longest signer or device id in a statement, in UTF-8 bytes. */
export const MAX_TRUST_ID_BYTES = 128

/** Claims kept per invite: two are enough to know it was used twice. */
export const MAX_CLAIMS_PER_INVITE = 2

/** Gossip rounds after a roster change in which peers not known to hold it get the new statements again. */
export const ROSTER_HOT_ROUNDS = 10

/** A peer's request for our whole roster is answered at most this often, in ms. */
export const ROSTER_ANSWER_INTERVAL_MS = 1000

/** Largest presence (awareness) state of one client, as JSON in UTF-8 bytes; larger ones are not shared. */
export const PRESENCE_MAX_STATE_BYTES = 16 * 1024

/** Most presence clients a node holds for one document from its peers. */
export const PRESENCE_MAX_CLIENTS_PER_DOC = 256

/** Most documents with presence a node keeps for its peers (documents it did not ask about itself). */
export const PRESENCE_MAX_DOCS = 1024

/** Bytes of presence states (JSON) a node holds from its peers, in total. */
export const PRESENCE_MAX_BYTES = 16 * 1024 * 1024

/** Presence states a peer may send per second (a token bucket), past which they are dropped. */
export const PRESENCE_STATES_PER_SECOND = 1000

/** Burst of presence states a peer may send at once. */
export const PRESENCE_STATES_BURST = 2000

/** Most documents one peer may ask this node to report on at once (acks.ts). */
export const ACK_MAX_WATCHES_PER_PEER = 4096

/** Documents a peer may ask this node to report on per second (Ack `watch`, a token bucket of `ACK_MAX_WATCHES_PER_PEER`). */
export const ACK_WATCHES_PER_SECOND = 1000

/** Default wait of `node.replicated()`, in ms. */
export const ACK_TIMEOUT_MS = 30_000

/** While someone waits on a document, its watch is sent again this often (a lost frame costs at most this), in ms. */
export const ACK_REWATCH_MS = 1000

/** After `node.syncState(docId)`, peers keep reporting on the document for this long, in ms. */
export const ACK_LINGER_MS = 60_000

/** Most documents this node follows the sync state of at once; the least recently asked is dropped past it. */
export const ACK_MAX_FOLLOWED_DOCS = 1024
