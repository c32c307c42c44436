/**
 * Compaction, in the background once a threshold is crossed (or on demand), each step costing
 * work in proportion to what was appended, not to the document:
 * - the records appended since the last merge, past `compactAfterUpdates`, are merged into one
 *   run (`mergeTail`: the snapshot is not read); past `TAIL_RUNS` runs, the runs and the new
 *   records are merged into one. A document thus holds a bounded number of records.
 * - the whole document is compacted into one snapshot (content unchanged, deleted content
 *   dropped) once the bytes after its snapshot outgrow both `compactAfterBytes` and the snapshot,
 *   or the updates appended since the last compaction outnumber both `compactAfterUpdates` and
 *   the snapshot's bytes / `COMPACT_RECORD_BYTES` (`compactionDue` in core). LevelDB is then asked
 *   to reclaim the space of the removed records.
 */
import { StorageCorruptionError, StorageError, compactUpdatesAsync, compactionDue, mergeTail } from '@hearsay/core'
import type { Log } from '@hearsay/core'
import { compactRange } from './database.js'
import type { BatchOp, Db } from './database.js'
import type { GroupCommit } from './group-commit.js'
import { TAIL_RUNS } from './constants.js'
import { headOp, recentOf, snapshotBytesOf, statsOf } from './heads.js'
import type { DocState, DocStats, HeadCache } from './heads.js'
import { Aborted, messageOf, wrapIo } from './io-errors.js'
import { checked, seqOf, seal, updateKey, updateRange } from './layout.js'
import type { LevelSettings } from './options.js'

export interface CompactorDeps {
  settings: LevelSettings
  heads: HeadCache
  commits: GroupCommit
  /** The database while the store is open, undefined once it is closing (compaction stops). */
  openDb: () => Db | undefined
  log: Log
}

const nextTick = async (): Promise<void> => { await new Promise<void>(resolve => setImmediate(resolve)) }

export class Compactor {
  /** Documents waiting for a background compaction, with their ids in UTF-8. */
  private readonly waiting = new Map<string, Uint8Array>()
  private running: Promise<void> | undefined

  constructor (private readonly d: CompactorDeps) {}

  /** Whether a document has crossed a threshold. */
  needs (st: DocState): boolean {
    return this.step(st) !== undefined
  }

  /** What a document is due for: a compaction, a merge of its recent records, or nothing. */
  private step (st: DocState): 'compact' | 'merge' | undefined {
    const s = this.d.settings
    if (!st.exists || st.records <= 1) return undefined
    const snapshot = snapshotBytesOf(st)
    if (compactionDue({ snapshotBytes: snapshot, tailBytes: st.tailBytes, appended: st.appended }, s.compactAfterBytes, s.compactAfterUpdates)) return 'compact'
    // a merge keeps deleted content, so it must never leave a document as a single record (sent
    // to peers as it is): with no snapshot, more than compactAfterUpdates records means at least
    // as many updates appended since the last compaction, and the rule above compacts first
    return recentOf(st) > s.compactAfterUpdates ? 'merge' : undefined
  }

  /** After a write: queue a background compaction of the document when it needs one. */
  schedule (docId: string, st: DocState): void {
    if (!this.d.settings.autoCompact || this.d.openDb() === undefined || !this.needs(st)) return
    this.waiting.set(docId, st.id)
    this.running ??= this.runQueue().finally(() => { this.running = undefined })
  }

  /** The document was deleted or is being compacted on demand: no background compaction. */
  forget (docId: string): void {
    this.waiting.delete(docId)
  }

  /** Resolves when the background compactions queued so far have finished. */
  async idle (): Promise<void> {
    while (this.running !== undefined) await this.running
  }

  /** Drops the queue and waits for the compaction under way (it stops at its next yield). */
  async stop (): Promise<void> {
    this.waiting.clear()
    await this.running
  }

  /** `LevelStorage.compact`: compacts a document now, whatever its size. */
  async compactNow (db: Db, docId: string, id: Uint8Array): Promise<DocStats | undefined> {
    this.forget(docId)
    const range = updateRange(id)
    // LevelDB writes its memtable out unchanged, dead versions included, at a level where a
    // manual compaction does not reach it: write the current records out first, so the
    // compaction after the rewrite below merges the rewrite with them and drops the dead ones
    await compactRange(db, range, docId, this.d.log)
    let stats: DocStats | undefined
    try {
      stats = await this.compactDoc(db, docId, id, true)
    } catch (err) {
      if (err instanceof Aborted) throw new StorageError(`LevelDB store at ${this.d.settings.path} closed during compaction`)
      throw wrapIo(this.d.settings.path, err, 'compaction')
    }
    if (stats !== undefined) await compactRange(db, range, docId, this.d.log)
    return stats
  }

  private async runQueue (): Promise<void> {
    await nextTick()
    for (;;) {
      const db = this.d.openDb()
      const next = this.waiting.entries().next()
      if (db === undefined || next.done === true) return
      const [docId, id] = next.value
      this.waiting.delete(docId)
      try {
        const before = this.d.heads.peek(docId)?.bytes ?? 0
        const stats = await this.compactDoc(db, docId, id, false)
        // LevelDB keeps the deleted records in its files until its own compaction reaches them:
        // when much was dropped, ask it to rewrite the document's range now
        if (stats !== undefined && before - stats.bytes > this.d.settings.compactAfterBytes && this.d.openDb() !== undefined) {
          await compactRange(db, updateRange(id), docId, this.d.log)
        }
      } catch (err) {
        if (err instanceof Aborted) return
        this.d.log.error('compaction of document %s failed: %s', docId, messageOf(err))
      }
    }
  }

  /**
   * Under the document's lock: merges every record into one (`force`, or when due for it), or the
   * records appended since the last merge when due for that. Returns the stats afterwards.
   */
  private async compactDoc (db: Db, docId: string, id: Uint8Array, force: boolean): Promise<DocStats | undefined> {
    const { heads, commits, log } = this.d
    return await heads.withLock(docId, async () => {
      const st = await heads.state(db, docId, id)
      if (!st.exists) return undefined
      const step = force ? 'compact' : this.step(st)
      if (st.records <= 1 || step === undefined) return statsOf(st)
      if (step === 'merge') return await this.mergeRecent(db, docId, id, st)
      if (st.fingerprint === undefined) {
        log.warn('not compacting document %s: its head is being rebuilt and its fingerprint is unknown until the next write', docId)
        return statsOf(st)
      }
      await st.lastWrite
      const started = performance.now()
      const keys: Uint8Array[] = []
      // views into the values LevelDB handed out (no copy): they are applied into a new document
      const bodies: Uint8Array[] = []
      for await (const [k, v] of db.iterator({ ...updateRange(id) })) {
        const body = checked(k, v)
        if (body === undefined) throw new StorageCorruptionError(docId, `update record ${seqOf(k)} failed its checksum; not compacting. Delete the document to re-sync it from peers`)
        keys.push(k)
        bodies.push(body)
      }
      if (bodies.length <= 1) return statsOf(st)
      const before = bodies.reduce((n, b) => n + b.length, 0)
      const merged = await this.merge(docId, bodies)
      const ops: BatchOp[] = keys.map(key => ({ type: 'del', key }))
      const key = updateKey(id, st.nextSeq++)
      ops.push({ type: 'put', key, value: seal(key, merged) })
      Object.assign(st, { records: 1, bytes: merged.length, tailBytes: 0, runs: 0, appended: 0 })
      ops.push(headOp(st, st.fingerprint))
      const write = commits.commit(ops, merged.length, [docId])
      heads.track(st, write)
      await write
      log('compacted document %s: %d records, %d bytes -> 1 record, %d bytes in %d ms', docId, keys.length, before, merged.length, Math.round(performance.now() - started))
      return statsOf(st)
    })
  }

  /**
   * The records appended since the last merge (and the merged runs before them, once there would
   * be more than `TAIL_RUNS`) made into one record at the end. Call under the document's lock.
   */
  private async mergeRecent (db: Db, docId: string, id: Uint8Array, st: DocState): Promise<DocStats> {
    const { heads, commits, log } = this.d
    if (st.fingerprint === undefined) return statsOf(st)
    await st.lastWrite
    const recent = recentOf(st)
    const count = recent + (st.runs >= TAIL_RUNS ? st.runs : 0)
    if (count < 2) return statsOf(st)
    const keys: Uint8Array[] = []
    // views into the values LevelDB handed out (no copy): the merge below makes a new buffer
    const bodies: Uint8Array[] = []
    for await (const [k, v] of db.iterator({ ...updateRange(id), reverse: true, limit: count })) {
      const body = checked(k, v)
      if (body === undefined) throw new StorageCorruptionError(docId, `update record ${seqOf(k)} failed its checksum; not merging. Delete the document to re-sync it from peers`)
      keys.push(k)
      bodies.push(body)
    }
    bodies.reverse()
    let merged: Uint8Array
    try {
      merged = mergeTail(bodies)
    } catch (err) {
      throw new StorageCorruptionError(docId, `its updates cannot be merged (${messageOf(err)}); not merging`, { cause: err })
    }
    const before = bodies.reduce((n, b) => n + b.length, 0)
    const ops: BatchOp[] = keys.map(key => ({ type: 'del', key }))
    const key = updateKey(id, st.nextSeq++)
    ops.push({ type: 'put', key, value: seal(key, merged) })
    st.records -= keys.length - 1
    st.bytes += merged.length - before
    st.tailBytes += merged.length - before
    st.runs = count > recent ? 1 : st.runs + 1
    ops.push(headOp(st, st.fingerprint))
    const write = commits.commit(ops, merged.length, [docId])
    heads.track(st, write)
    await write
    log('merged %d records of document %s, %d bytes -> %d', keys.length, docId, before, merged.length)
    return statsOf(st)
  }

  /** The updates merged into one, giving the event loop back between batches; stops when the store closes. */
  private async merge (docId: string, bodies: Uint8Array[]): Promise<Uint8Array> {
    try {
      return await compactUpdatesAsync(bodies, async () => {
        await nextTick()
        if (this.d.openDb() === undefined) throw new Aborted('closing')
      }, { batch: this.d.settings.compactionMergeBatch })
    } catch (err) {
      if (err instanceof Aborted) throw err
      throw new StorageCorruptionError(docId, `its updates cannot be applied (${messageOf(err)}); not compacting`, { cause: err })
    }
  }
}
