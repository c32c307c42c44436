/**
 * Every default of `@hearsay/leveldb`, in one place. Each option that takes one of these documents
 * it with `@default`.
 */

/** How a write must be stored before `append`, `replace`, `delete` and `setMeta` resolve. */
export type Durability = 'process' | 'power'

/**
 * Default durability: `'power'`. Every write batch is fsynced before it resolves, so an
 * acknowledged edit survives power loss and kernel panics, not only a killed process. Edge devices
 * (Raspberry Pis on SD cards, laptops running out of battery) lose power far more often than
 * servers; concurrent writes share one fsync (group commit), which keeps the cost per edit low.
 */
export const DURABILITY: Durability = 'power'

/**
 * Once more than this many update records were appended to a document since its last merge, they
 * are merged into one (`mergeTail` in core: `Y.mergeUpdates`, the snapshot is not read), so a
 * document holds a bounded number of records whatever its size. A document is also compacted
 * once more updates than this, and than its snapshot's bytes / `COMPACT_RECORD_BYTES` (core), were
 * appended since its last compaction.
 */
export const COMPACT_AFTER_UPDATES = 500

/**
 * Merged runs kept after a document's snapshot; one more and they are merged into one (work in
 * proportion to the tail, once every this many × `compactAfterUpdates` records).
 */
export const TAIL_RUNS = 32

/**
 * A document is compacted automatically once the updates appended since its last compaction
 * (everything but the snapshot) add up to more than this many bytes and more than the snapshot.
 */
export const COMPACT_AFTER_BYTES = 1024 * 1024

/**
 * Compaction applies a document's updates to a garbage-collecting Y.Doc this many per transaction
 * and encodes its state (deleted content dropped, see `compactUpdates` in core), giving the event
 * loop back between batches.
 */
export const COMPACTION_MERGE_BATCH = 100

/**
 * Concurrent writes are committed together as one LevelDB batch (one fsync with `'power'`
 * durability), up to this many bytes per batch. A single larger write is committed alone.
 */
export const MAX_COMMIT_BYTES = 4 * 1024 * 1024

/** LevelDB block cache, in bytes (classic-level's own default is 8 MiB). */
export const CACHE_SIZE_BYTES = 8 * 1024 * 1024

/** LevelDB memtable size before it is written to a table file, in bytes (classic-level default). */
export const WRITE_BUFFER_BYTES = 4 * 1024 * 1024

/** Most table files LevelDB keeps open at once (lower it on devices with a small fd limit). */
export const MAX_OPEN_FILES = 1000

/**
 * Heads (counters and fingerprint) of recently written documents kept in memory, so an append
 * costs no read. Least recently used ones beyond this are dropped once no write is in flight.
 */
export const HEAD_CACHE_ENTRIES = 4096

/** Version of the on-disk layout written by this package. */
export const FORMAT_VERSION = 1

/** Logger component name. */
export const LOG_COMPONENT = 'hearsay:leveldb'

/**
 * The manifest written on close lists document ids up to this many; past it only their number is
 * kept (a loss is then reported as a count). 100,000 ids of ~30 bytes is ~3 MB.
 */
export const MANIFEST_MAX_IDS = 100_000

/** Largest manifest read at open, in bytes (ids are at most core's `MAX_DOC_ID_BYTES` each). */
export const MANIFEST_MAX_BYTES = 64 * 1024 * 1024

/** Bytes of LevelDB's `LOG` file read at open for its recovery report. */
export const RECOVERY_LOG_MAX_BYTES = 256 * 1024
