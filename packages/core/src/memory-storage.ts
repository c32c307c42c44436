/**
 * In-memory `Storage`: the default when a node is given none. Nothing survives the process.
 */
import { bytesOf, compactUpdates } from './compaction.js'
import { MEMORY_COMPACT_MIN_BYTES, MEMORY_COMPACT_UPDATES } from './constants.js'
import { ConfigError, StorageError } from './errors.js'
import type { Storage, StoredDocInfo } from './storage.js'

export interface MemoryStorageOptions {
  /**
   * Compact a document once more than this many records (and more than its snapshot's bytes / 64)
   * were appended since its last compaction. @default MEMORY_COMPACT_UPDATES (500)
   */
  compactAfterUpdates?: number
  /**
   * Compact a document once the bytes appended since its last compaction exceed both this and
   * its snapshot's size. @default MEMORY_COMPACT_MIN_BYTES (64 KiB)
   */
  compactAfterBytes?: number
}

interface Entry {
  updates: Uint8Array[]
  fingerprint: Uint8Array
  /** Bytes of every record. */
  bytes: number
  /** Bytes of the snapshot written by the last compaction or replace (0: none). */
  snapshotBytes: number
  /** Records and bytes appended since then. */
  tailRecords: number
  tailBytes: number
}

function positive (name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ConfigError(`memory storage: ${name} must be a positive integer, got ${String(v)}`)
  return v
}

export function createMemoryStorage (options: MemoryStorageOptions = {}): Storage {
  const afterUpdates = positive('compactAfterUpdates', options.compactAfterUpdates, MEMORY_COMPACT_UPDATES)
  const afterBytes = positive('compactAfterBytes', options.compactAfterBytes, MEMORY_COMPACT_MIN_BYTES)
  const due = (e: Entry): boolean => e.updates.length > 1 &&
    ((e.tailBytes > afterBytes && e.tailBytes > e.snapshotBytes) ||
     (e.tailRecords > afterUpdates && e.tailRecords > e.snapshotBytes / 64))
  const setSnapshot = (e: Entry, snapshot: Uint8Array): void => {
    e.updates = [snapshot]
    e.bytes = e.snapshotBytes = snapshot.length
    e.tailRecords = e.tailBytes = 0
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
      return docs.get(docId)?.updates.slice() ?? []
    },
    async append (docId, updates, fingerprint) {
      check()
      const e = docs.get(docId) ?? { updates: [], fingerprint, bytes: 0, snapshotBytes: 0, tailRecords: 0, tailBytes: 0 }
      const n = bytesOf(updates)
      e.updates.push(...updates.map(u => u.slice()))
      e.fingerprint = fingerprint.slice()
      e.bytes += n
      e.tailBytes += n
      e.tailRecords += updates.length
      docs.set(docId, e)
      if (due(e)) {
        try {
          setSnapshot(e, compactUpdates(e.updates))
        } catch {
          // the updates stay stored as given (loading them reports the document as corrupt);
          // not tried again until as much again has been appended
          e.snapshotBytes = e.bytes
          e.tailRecords = e.tailBytes = 0
        }
      }
    },
    async replace (docId, snapshot, fingerprint) {
      check()
      const e: Entry = { updates: [], fingerprint: fingerprint.slice(), bytes: 0, snapshotBytes: 0, tailRecords: 0, tailBytes: 0 }
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
