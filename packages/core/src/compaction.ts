/**
 * Compaction: a document's stored updates rewritten as one snapshot holding only what is live.
 *
 * The updates are applied to a transient garbage-collecting `Y.Doc` (`gc: true`) and its state is
 * encoded. Overwritten map values and deleted text or array content are dropped to their length
 * (what Yjs needs to keep ids consistent), exactly as a live document would keep them; merging
 * the updates with `Y.mergeUpdates` instead would keep every deleted byte forever, and its cost
 * grows faster than linearly with the number of inputs. Structs still waiting for missing
 * dependencies are kept in the snapshot (Yjs encodes a document's pending updates with it).
 *
 * Applying is linear in the bytes of the updates; updates are applied `batch` at a time, each
 * batch in one transaction, so garbage is collected as it goes and a caller can give the event
 * loop back between batches.
 */
import * as Y from 'yjs'
import { COMPACT_RECORD_BYTES, COMPACTION_APPLY_BATCH, LIVE_MERGE_MAX_UPDATES } from './constants.js'

export interface CompactOptions {
  /** Updates applied per transaction. @default COMPACTION_APPLY_BATCH (100) */
  batch?: number
}

/** Bytes of `updates` in total. */
export const bytesOf = (updates: readonly Uint8Array[]): number => {
  let n = 0
  for (const u of updates) n += u.length
  return n
}

const batchOf = (o: CompactOptions): number => {
  const b = o.batch ?? COMPACTION_APPLY_BATCH
  return Number.isSafeInteger(b) && b >= 1 ? b : COMPACTION_APPLY_BATCH
}

/**
 * One snapshot of the state `updates` lead to, without deleted content. Throws what Yjs throws
 * when an update cannot be applied (callers turn it into a `StorageCorruptionError`).
 */
export function compactUpdates (updates: readonly Uint8Array[], options: CompactOptions = {}): Uint8Array {
  const batch = batchOf(options)
  const doc = new Y.Doc({ gc: true })
  try {
    for (let i = 0; i < updates.length; i += batch) applyBatch(doc, updates, i, batch)
    return Y.encodeStateAsUpdate(doc)
  } finally {
    doc.destroy()
  }
}

/**
 * `compactUpdates` that awaits `pause()` between batches (to yield, or to abort by throwing).
 */
export async function compactUpdatesAsync (updates: readonly Uint8Array[], pause: () => Promise<void>, options: CompactOptions = {}): Promise<Uint8Array> {
  const batch = batchOf(options)
  const doc = new Y.Doc({ gc: true })
  try {
    for (let i = 0; i < updates.length; i += batch) {
      applyBatch(doc, updates, i, batch)
      await pause()
    }
    return Y.encodeStateAsUpdate(doc)
  } finally {
    doc.destroy()
  }
}

/**
 * One update of the state `updates` lead to, without deleted content, for a small number of
 * updates (an exchange answered from stored records): merged with `Y.mergeUpdates` when nothing
 * in them is deleted (about 10 times cheaper for small documents), otherwise `compactUpdates`.
 */
export function liveUpdate (updates: readonly Uint8Array[]): Uint8Array {
  const merged = Y.mergeUpdates(updates as Uint8Array[])
  return Y.decodeUpdate(merged).ds.clients.size === 0 ? merged : compactUpdates(updates)
}

/**
 * Whether a stored document is due for compaction (the rule memory storage and LevelDB share):
 * the bytes after its snapshot exceed both `afterBytes` and the snapshot, so each compaction reads
 * at most about twice what was added since the last one; or the updates appended since the last
 * compaction exceed both `afterUpdates` and the snapshot's bytes / `COMPACT_RECORD_BYTES`, so
 * deleted content does not pile up (deletions add few bytes).
 */
export function compactionDue (doc: { snapshotBytes: number, tailBytes: number, appended: number }, afterBytes: number, afterUpdates: number): boolean {
  return (doc.tailBytes > afterBytes && doc.tailBytes > doc.snapshotBytes) ||
    (doc.appended > afterUpdates && doc.appended > doc.snapshotBytes / COMPACT_RECORD_BYTES)
}

/**
 * Updates merged into one with `Y.mergeUpdates`, at most `run` at a time (its cost grows faster
 * than linearly with the number of inputs), then the merged runs likewise until one is left.
 * Deleted content is kept (`compactUpdates` drops it). Throws what Yjs throws on a bad update.
 */
export function mergeTail (updates: readonly Uint8Array[], run = LIVE_MERGE_MAX_UPDATES): Uint8Array {
  const r = Math.max(2, run)
  let level = updates as Uint8Array[]
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i < level.length; i += r) {
      const part = level.slice(i, i + r)
      next.push(part.length === 1 ? part[0] as Uint8Array : Y.mergeUpdates(part))
    }
    level = next
  }
  return level[0] ?? Y.mergeUpdates([])
}

function applyBatch (doc: Y.Doc, updates: readonly Uint8Array[], from: number, batch: number): void {
  const end = Math.min(updates.length, from + batch)
  Y.transact(doc, () => {
    for (let i = from; i < end; i++) Y.applyUpdate(doc, updates[i] as Uint8Array)
  })
}
