/**
 * The storage contract. A store keeps, per document, an append-only list of Yjs updates plus the
 * document's fingerprint after the last write, so a node can start and answer digest exchanges
 * from `list()` alone without loading any document. It also keeps small metadata records
 * (per-peer checkpoints, identity).
 *
 * Implementations: `createMemoryStorage()` in core and `@hearsay/leveldb`. Both pass
 * `runStorageTests`.
 */

export interface StoredDocInfo {
  /** Document id. */
  readonly id: string
  /** Fingerprint of the document state after its last write (see `fingerprint.ts`). */
  readonly fingerprint: Uint8Array
  /**
   * Bytes of the document's stored updates (payloads, not keys or checksums), as kept by the
   * store: it grows with each append and drops to the snapshot's size on replace or compaction.
   * Stores should answer it from what they already keep per document, without reading every
   * record. Optional: a store that does not know it leaves it out, and the node counts the
   * document as 0 bytes until it writes to it.
   */
  readonly bytes?: number
}

/**
 * Data a store found gone or damaged when it opened: documents it held before and cannot find
 * now, or records its engine dropped while recovering. The node reports each in `problems()`.
 */
export interface StorageLoss {
  /** What was found, for the log and `problems()`. */
  readonly message: string
  /** Documents the store held before and cannot find now, when it knows which. */
  readonly docIds: readonly string[]
  /** How many documents are missing when the ids are not known (0: unknown or none). */
  readonly missing: number
}

export interface Storage {
  /** Open the store. Idempotent. Rejects with `StorageError` when it cannot be opened. */
  open(): Promise<void>
  /** Flush and close. Idempotent. */
  close(): Promise<void>
  /** Every stored document with its last fingerprint, in no particular order. */
  list(): Promise<StoredDocInfo[]>
  /**
   * Every update stored for a document, oldest first (a compacted snapshot counts as one update).
   * `[]` for an unknown document. Rejects with `StorageCorruptionError` naming the document when
   * its records cannot be read back.
   */
  load(docId: string): Promise<Uint8Array[]>
  /**
   * Append updates to a document atomically together with the fingerprint of the state they lead
   * to. Resolves when the write is durable by the store's own contract.
   */
  append(docId: string, updates: Uint8Array[], fingerprint: Uint8Array): Promise<void>
  /** Replace everything stored for a document with one snapshot of the same state (compaction). */
  replace(docId: string, snapshot: Uint8Array, fingerprint: Uint8Array): Promise<void>
  /** Remove a document and its records. */
  delete(docId: string): Promise<void>
  /** Read a metadata record. */
  getMeta(key: string): Promise<Uint8Array | undefined>
  /** Write a metadata record. */
  setMeta(key: string, value: Uint8Array): Promise<void>
  /**
   * Optional: what the store found lost or damaged when it opened (see `StorageLoss`); `[]` when
   * nothing. A store that cannot tell leaves it out.
   */
  losses?(): StorageLoss[]
}
