/**
 * The write path from documents to storage: updates queued per document, appended in batches
 * `storageBatchMs` apart (one append per document, issued together so a store with group commit
 * makes it one fsync), each with the fingerprint of exactly the state it leads to. A batch that
 * fails stays queued, ahead of newer updates, and is retried after `STORAGE_RETRY_MS`; nothing is
 * dropped. Documents with updates queued or being written are `busy`: never evicted.
 */
import type { Timers } from './clock.js'
import { STORAGE_RETRY_MS } from './constants.js'
import type { Log } from './logger.js'
import type { Storage } from './storage.js'

export interface WriteQueueDeps {
  storage: Storage
  timers: Timers
  log: Log
  batchMs: number
  /** Up-to-date fingerprints of these documents, taken when their batch starts. */
  fingerprints: (ids: Iterable<string>) => Map<string, Uint8Array>
  /**
   * State vectors of these documents (those loaded and tracked), taken with their fingerprints:
   * what their queued updates lead to.
   */
  stateVectors: (ids: Iterable<string>) => Map<string, Uint8Array>
  /**
   * `bytes` of the document's updates were stored. `vector`: everything up to this state vector
   * is now in the store (undefined when not known, e.g. while an earlier failed write waits for
   * its retry).
   */
  stored: (docId: string, bytes: number, vector: Uint8Array | undefined) => void
  /** A batch finished (stored or not): documents may be evicted now; `any`: something was stored. */
  batchDone: (any: boolean) => void
}

export class WriteQueue {
  private pending = new Map<string, Uint8Array[]>()
  /** Documents whose updates are being written right now. */
  private readonly writingIds = new Map<string, number>()
  private timer: unknown
  /** Tail of the chain of batch writes; resolves with the first error of the last batch, if any. */
  private writing: Promise<unknown> = Promise.resolve(undefined)
  /** `relieve()` does nothing before this time (node clock), after a failed write. */
  private relieveAfter = 0
  /** Batches started so far. */
  private batches = 0
  /** Per document, the last batch started when one of its writes failed: what those batches store is not all it had. */
  private readonly failedAt = new Map<string, number>()

  constructor (private readonly d: WriteQueueDeps) {}

  /** Queue an update of a document for the next batch. */
  add (docId: string, update: Uint8Array): void {
    const list = this.pending.get(docId)
    if (list === undefined) this.pending.set(docId, [update])
    else list.push(update)
    this.schedule()
  }

  /** Drop the document's queued updates (it is being forgotten). */
  discard (docId: string): void {
    this.pending.delete(docId)
  }

  /** Whether the document has updates queued or being written. */
  busy (docId: string): boolean {
    return this.pending.has(docId) || this.writingIds.has(docId)
  }

  /** Documents with updates queued. */
  get queuedDocs (): number {
    return this.pending.size
  }

  /**
   * Write every queued update; resolves when all of them are stored. A batch that was already
   * being written and failed has its updates queued again: they are retried once here before the
   * error is reported.
   */
  async flush (): Promise<void> {
    if (await this.flushOnce() === undefined) return
    // the retry: only its own batch counts (what failed before it is in it, queued again)
    const err = await this.flushOnce(true)
    if (err !== undefined) throw err
  }

  /**
   * Write the queued updates now, once (no retry: failed ones stay queued for the retry timer).
   * Resolves with the first error of the batches written before and of this one; never rejects.
   */
  async writeNow (): Promise<unknown> {
    return await this.flushOnce()
  }

  /**
   * Backpressure for bulk receives: once more than `limit` documents have updates queued, the
   * caller waits for them to be written. While storage fails, it does not hammer it on every
   * document: the retry timer takes over. Returns whether it wrote.
   */
  async relieve (limit: number): Promise<boolean> {
    if (this.pending.size <= limit || this.d.timers.now() < this.relieveAfter) return false
    if (await this.flushOnce() !== undefined) this.relieveAfter = this.d.timers.now() + STORAGE_RETRY_MS
    return true
  }

  private schedule (delayMs = this.d.batchMs): void {
    if (this.timer !== undefined) return
    this.timer = this.d.timers.setTimeout(() => {
      this.timer = undefined
      // errors are logged, and the updates stay queued for the next attempt
      void this.flushOnce()
    }, delayMs)
  }

  /**
   * Start writing the queued updates after the batches already being written. Resolves with the
   * first error of the batch being written before this call or of this one (undefined: stored);
   * `ownOnly`: of this one only, when it has any.
   */
  private async flushOnce (ownOnly = false): Promise<unknown> {
    if (this.timer !== undefined) {
      this.d.timers.clearTimeout(this.timer)
      this.timer = undefined
    }
    const before = this.writing
    const batch = this.pending
    if (batch.size === 0) return await before
    this.pending = new Map()
    // fingerprints of exactly the state these updates lead to, taken now, not at write time
    const fingerprints = this.d.fingerprints(batch.keys())
    const vectors = this.d.stateVectors(batch.keys())
    const seq = ++this.batches
    for (const id of batch.keys()) this.writingIds.set(id, (this.writingIds.get(id) ?? 0) + 1)
    const mine = before.then(async () => await this.store(batch, fingerprints, vectors, seq))
    this.writing = mine
    const [a, b] = await Promise.all([before, mine])
    return ownOnly ? b : a ?? b
  }

  /** Append one batch; never rejects. Failed documents are queued again and retried later. */
  private async store (batch: Map<string, Uint8Array[]>, fingerprints: Map<string, Uint8Array>, vectors: Map<string, Uint8Array>, seq: number): Promise<unknown> {
    let error: unknown
    let stored = false
    await Promise.all([...batch].map(async ([id, updates]) => {
      const fp = fingerprints.get(id)
      try {
        if (fp !== undefined) {
          await this.d.storage.append(id, updates, fp)
          let n = 0
          for (const u of updates) n += u.length
          // a batch started before a failed write of this document lacks what failed
          const failed = this.failedAt.get(id)
          if (failed !== undefined && seq > failed) this.failedAt.delete(id)
          this.d.stored(id, n, failed !== undefined && seq <= failed ? undefined : vectors.get(id))
          stored = true
        }
      } catch (err) {
        error ??= err
        this.failedAt.set(id, this.batches)
        this.d.log.error('could not store %d updates of document %s', updates.length, id, err)
        // keep them queued, ahead of newer ones, and try again later
        const again = this.pending.get(id)
        this.pending.set(id, again === undefined ? updates : [...updates, ...again])
        this.schedule(STORAGE_RETRY_MS)
      } finally {
        const n = (this.writingIds.get(id) ?? 1) - 1
        if (n === 0) this.writingIds.delete(id)
        else this.writingIds.set(id, n)
      }
    }))
    this.d.batchDone(stored)
    return error
  }
}
