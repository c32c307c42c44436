/**
 * In-memory `Storage`: the default when a node is given none. Nothing survives the process.
 *
 * A document is a snapshot (after a compaction or `replace`), then the updates appended since.
 * Each append is kept as one packed buffer (its updates copied in, length-prefixed), so a stream
 * of small edits costs a copy each, not an object each. Reading a document merges what was packed
 * into one record after the snapshot (`mergeTail`) and keeps that, so the work is done once and
 * only for documents read again; a document with no snapshot yet is compacted instead, as a merge
 * keeps deleted content and a document that is a single record is sent to peers as it is. The
 * whole document is compacted (`compactUpdates`: deleted content dropped) when `compactionDue`
 * says so, the rule LevelDB storage shares: the bytes after the snapshot exceed both
 * `compactAfterBytes` and the snapshot itself, or the updates appended since exceed both
 * `compactAfterUpdates` and the snapshot's bytes / `COMPACT_RECORD_BYTES` (deletions add few
 * bytes). Each compaction reads at most a few times what was added since the last one, and
 * deleted content does not pile up.
 */
import { bytesOf, compactUpdates, compactionDue, mergeTail } from './compaction.js'
import { MEMORY_COMPACT_MIN_BYTES, MEMORY_COMPACT_UPDATES } from './constants.js'
import { ConfigError, StorageError } from './errors.js'
import type { Storage, StoredDocInfo } from './storage.js'

export interface MemoryStorageOptions {
  /**
   * Compact a document once more updates than this (and than its snapshot's bytes / 8) were
   * appended since its last compaction. @default MEMORY_COMPACT_UPDATES (500)
   */
  compactAfterUpdates?: number
  /**
   * Compact a document once the bytes after its snapshot exceed both this and the snapshot's
   * size. @default MEMORY_COMPACT_MIN_BYTES (64 KiB)
   */
  compactAfterBytes?: number
}

interface Entry {
  /** Records: the snapshot first (when `snapshotBytes` > 0), then merged updates. */
  updates: Uint8Array[]
  /** Appends not read since: each its updates, length-prefixed (`pack`). */
  packs: Uint8Array[]
  fingerprint: Uint8Array
  /** Bytes of every update held (without the packs' prefixes). */
  bytes: number
  /** Bytes of the snapshot written by the last compaction or replace (0: none). */
  snapshotBytes: number
  /** Bytes after the snapshot. */
  tailBytes: number
  /** Updates appended since the snapshot. */
  appended: number
}

function positive (name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ConfigError(`memory storage: ${name} must be a positive integer, got ${String(v)}`)
  return v
}

/** Updates copied into one buffer, each after its length (4 bytes, big-endian). */
function pack (updates: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(bytesOf(updates) + 4 * updates.length)
  const view = new DataView(out.buffer)
  let at = 0
  for (const u of updates) {
    view.setUint32(at, u.length)
    out.set(u, at + 4)
    at += 4 + u.length
  }
  return out
}

/** The updates of a `pack` (views into it). */
function unpack (p: Uint8Array): Uint8Array[] {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength)
  const out: Uint8Array[] = []
  for (let at = 0; at < p.length;) {
    const n = view.getUint32(at)
    out.push(p.subarray(at + 4, at + 4 + n))
    at += 4 + n
  }
  return out
}

/** Every update of the document: its records and its packs'. */
const allOf = (e: Entry): Uint8Array[] => [...e.updates, ...e.packs.flatMap(unpack)]

function setSnapshot (e: Entry, snapshot: Uint8Array): void {
  e.updates = [snapshot]
  e.packs = []
  e.bytes = e.snapshotBytes = snapshot.length
  e.tailBytes = e.appended = 0
}

/** Compact the document into one snapshot (`compactUpdates`: deleted content dropped). */
function compact (e: Entry): void {
  try {
    setSnapshot(e, compactUpdates(allOf(e)))
  } catch {
    // the updates stay stored as given (loading them reports the document as corrupt);
    // not tried again until as much again has been appended
    e.updates = allOf(e).map(u => u.slice())
    e.packs = []
    e.snapshotBytes = e.bytes
    e.tailBytes = e.appended = 0
  }
}

/**
 * Merge the packs and the records after the snapshot into one record (done when the document is
 * read). A document with no snapshot yet is compacted instead: a merge keeps deleted content, and
 * a document that is a single record is sent to peers as it is.
 */
function mergePacks (e: Entry): void {
  if (e.packs.length === 0) return
  if (e.snapshotBytes === 0) {
    compact(e)
    return
  }
  const tail = [...e.updates.slice(1), ...e.packs.flatMap(unpack)]
  e.packs = []
  let merged: Uint8Array
  try {
    merged = mergeTail(tail)
  } catch {
    // kept as they are (applying them reports the document as corrupt)
    e.updates = [...e.updates.slice(0, 1), ...tail.map(u => u.slice())]
    return
  }
  const delta = merged.length - bytesOf(tail)
  e.updates = [...e.updates.slice(0, 1), merged]
  e.bytes += delta
  e.tailBytes += delta
}

export function createMemoryStorage (options: MemoryStorageOptions = {}): Storage {
  const afterUpdates = positive('compactAfterUpdates', options.compactAfterUpdates, MEMORY_COMPACT_UPDATES)
  const afterBytes = positive('compactAfterBytes', options.compactAfterBytes, MEMORY_COMPACT_MIN_BYTES)
  /** After an append: compact the document when it is due (see above). */
  const tidy = (e: Entry): void => {
    if (compactionDue(e, afterBytes, afterUpdates) && e.updates.length + e.packs.length >= 2) compact(e)
  }
  const docs = new Map<string, Entry>()
  const meta = new Map<string, Uint8Array>()
  let open = false
  const check = (): void => {
    if (!open) throw new StorageError('memory storage is not open')
  }
  return {
    async open () { open = true },
    async close () { open = false },
    async list (): Promise<StoredDocInfo[]> {
      check()
      return [...docs].map(([id, e]) => ({ id, fingerprint: e.fingerprint.slice(), bytes: e.bytes }))
    },
    async load (docId) {
      check()
      const e = docs.get(docId)
      if (e === undefined) return []
      mergePacks(e)
      return e.updates.slice()
    },
    async append (docId, updates, fingerprint) {
      check()
      const e = docs.get(docId) ?? { updates: [], packs: [], fingerprint, bytes: 0, snapshotBytes: 0, tailBytes: 0, appended: 0 }
      if (updates.length > 0) e.packs.push(pack(updates))
      const n = bytesOf(updates)
      e.fingerprint = fingerprint.slice()
      e.bytes += n
      e.tailBytes += n
      e.appended += updates.length
      docs.set(docId, e)
      tidy(e)
    },
    async replace (docId, snapshot, fingerprint) {
      check()
      const e: Entry = { updates: [], packs: [], fingerprint: fingerprint.slice(), bytes: 0, snapshotBytes: 0, tailBytes: 0, appended: 0 }
      setSnapshot(e, snapshot.slice())
      docs.set(docId, e)
    },
    async delete (docId) {
      check()
      docs.delete(docId)
    },
    async getMeta (key) {
      check()
      return meta.get(key)?.slice()
    },
    async setMeta (key, value) {
      check()
      meta.set(key, value.slice())
    }
  }
}
