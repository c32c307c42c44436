/**
 * The heads of documents in memory: each document's counters and fingerprint, read from its head
 * record on first use and kept up to date by the writes of this process (so an append costs no
 * read), one lock per document, and rebuilding a head from the update records when the head is
 * missing or corrupt. Least recently used heads beyond `HEAD_CACHE_ENTRIES` leave the cache once
 * no write or lock holds them.
 */
import type { Log } from '@hearsay/core'
import { HEAD_CACHE_ENTRIES } from './constants.js'
import type { BatchOp, Db } from './database.js'
import { decodeHead, encodeHead, headKey, seal, seqOf, unseal, updateRange } from './layout.js'

/** What is stored for one document. */
export interface DocStats {
  /** Update records (a compacted snapshot counts as one). */
  records: number
  /** Bytes of the stored updates (payloads, without keys and checksums). */
  bytes: number
  /** Bytes appended since the last compaction or replace. */
  tailBytes: number
}

/** Cached head of a document. */
export interface DocState extends DocStats {
  /** The document id in UTF-8. */
  id: Uint8Array
  exists: boolean
  nextSeq: number
  /** Undefined when the stored head was unreadable and the counters were rebuilt. */
  fingerprint: Uint8Array | undefined
  /** Settles when the last write queued for this document has been committed (or failed). */
  lastWrite: Promise<void>
  /** Writes queued and not yet settled. The entry may leave the cache only at 0. */
  pending: number
  /** A write of this document failed: re-read the head once its queued writes settle. */
  stale: boolean
  /**
   * Merged runs right after the snapshot (the records after them were appended since the last
   * merge). Not stored: 0 when the head is read, so the next merge takes every record after the snapshot.
   */
  runs: number
  /** Updates appended since the last compaction (not stored: every record after the snapshot when the head is read). */
  appended: number
}

/** Bytes of the document's snapshot (0: none; a snapshot is its first record). */
export const snapshotBytesOf = (st: DocStats): number => st.bytes - st.tailBytes

/** Records appended since the last merge. */
export const recentOf = (st: DocState): number => st.records - (snapshotBytesOf(st) > 0 ? 1 : 0) - st.runs

export const statsOf = (st: DocState): DocStats => ({ records: st.records, bytes: st.bytes, tailBytes: st.tailBytes })

/** The batch operation that stores `st` as the document's head record. */
export function headOp (st: DocState, fingerprint: Uint8Array): BatchOp {
  const key = headKey(st.id)
  return {
    type: 'put',
    key,
    value: seal(key, encodeHead({ nextSeq: st.nextSeq, records: st.records, bytes: st.bytes, tailBytes: st.tailBytes, fingerprint }))
  }
}

export class HeadCache {
  private readonly docs = new Map<string, DocState>()
  private readonly locks = new Map<string, Promise<void>>()

  constructor (private readonly log: Log, private readonly capacity = HEAD_CACHE_ENTRIES) {}

  /** Heads in memory (for tests and diagnostics). */
  get size (): number { return this.docs.size }

  /** The cached head, if any, without reading or reordering. */
  peek (docId: string): DocState | undefined {
    return this.docs.get(docId)
  }

  /** Runs `fn` alone among the calls for the same document (FIFO). */
  async withLock<T> (docId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(docId) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = prev.then(async () => { await mine })
    this.locks.set(docId, tail)
    await prev
    try {
      return await fn()
    } finally {
      release()
      if (this.locks.get(docId) === tail) this.locks.delete(docId)
    }
  }

  /** The head of a document, read on first use or after a failed write. Call under its lock. */
  async state (db: Db, docId: string, id: Uint8Array): Promise<DocState> {
    const cached = this.docs.get(docId)
    if (cached !== undefined && !cached.stale) {
      this.docs.delete(docId) // most recently used last
      this.docs.set(docId, cached)
      return cached
    }
    if (cached !== undefined) await cached.lastWrite
    const st = await this.read(db, docId, id)
    if (cached !== undefined) {
      st.lastWrite = cached.lastWrite
      st.pending = cached.pending
    }
    this.docs.set(docId, st)
    return st
  }

  /** Records a queued write of a document; the cache is trimmed once it settles. */
  track (st: DocState, write: Promise<void>): void {
    st.pending++
    st.lastWrite = write.then(() => {}, () => {}).finally(() => {
      st.pending--
      this.trim()
    })
  }

  /** A write of these documents failed: their heads are re-read at next use. */
  markStale (docIds: string[]): void {
    for (const id of docIds) {
      const st = this.docs.get(id)
      if (st !== undefined) st.stale = true
    }
  }

  clear (): void {
    this.docs.clear()
  }

  /** Drops least recently used heads beyond the capacity that have no write or lock in flight. */
  private trim (): void {
    let excess = this.docs.size - this.capacity
    if (excess <= 0) return
    for (const [docId, st] of this.docs) {
      if (excess <= 0) break
      if (st.pending > 0 || this.locks.has(docId)) continue
      this.docs.delete(docId)
      excess--
    }
  }

  private async read (db: Db, docId: string, id: Uint8Array): Promise<DocState> {
    const key = headKey(id)
    const raw = await db.get(key)
    const fresh: DocState = { id, exists: false, nextSeq: 0, records: 0, bytes: 0, tailBytes: 0, fingerprint: undefined, lastWrite: Promise.resolve(), pending: 0, stale: false, runs: 0, appended: 0 }
    if (raw === undefined) {
      const last = await db.keys({ ...updateRange(id), reverse: true, limit: 1 }).all()
      if (last.length === 0) return fresh
      this.log.warn('document %s has update records but no head record; adopting them', docId)
      return await rebuild(db, id, fresh)
    }
    const body = unseal(key, raw)
    const head = body === undefined ? undefined : decodeHead(body)
    if (head === undefined) {
      this.log.error('head record of document %s is corrupt; rebuilding its counters from its update records (its fingerprint is unknown until the next write)', docId)
      return await rebuild(db, id, fresh)
    }
    const st = { ...fresh, exists: true, ...head }
    st.appended = recentOf(st)
    return st
  }
}

/** Counters rebuilt from a document's update records; the fingerprint stays unknown. */
async function rebuild (db: Db, id: Uint8Array, st: DocState): Promise<DocState> {
  for await (const [k, v] of db.iterator({ ...updateRange(id) })) {
    st.exists = true
    st.nextSeq = seqOf(k) + 1
    st.records++
    st.bytes += Math.max(0, v.length - 4)
  }
  st.tailBytes = st.bytes
  st.appended = st.records
  return st
}
