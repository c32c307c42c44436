/**
 * Group commit: writes queued while one batch is being stored go out together as the next atomic
 * LevelDB batch (FIFO, at most `maxCommitBytes` unless one write is larger on its own), so
 * concurrent writes share one fsync under `'power'` durability.
 */
import { StorageError } from '@hearsay/core'
import type { Log } from '@hearsay/core'
import type { BatchOp, Db } from './database.js'
import { messageOf, wrapIo } from './io-errors.js'

interface PendingWrite {
  ops: BatchOp[]
  bytes: number
  docIds: string[]
  resolve: () => void
  reject: (err: Error) => void
}

export interface GroupCommitOptions {
  path: string
  /** fsync each batch (`'power'` durability). */
  sync: boolean
  maxCommitBytes: number
  /** The database writes go to; undefined once it is closed (queued writes then fail). */
  db: () => Db | undefined
  /** A batch holding writes of these documents failed: their cached heads are no longer true. */
  failed: (docIds: string[]) => void
  log: Log
}

export class GroupCommit {
  private queue: PendingWrite[] = []
  private writing: Promise<void> | undefined

  constructor (private readonly o: GroupCommitOptions) {}

  /** Queues a write of `bytes` touching `docIds`; resolves once its batch is stored. */
  async commit (ops: BatchOp[], bytes: number, docIds: string[]): Promise<void> {
    return await new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, bytes, docIds, resolve, reject })
      if (this.writing === undefined) this.writing = this.drain()
    })
  }

  /** Resolves once every write queued so far has settled. */
  async settled (): Promise<void> {
    while (this.writing !== undefined) await this.writing
  }

  private async drain (): Promise<void> {
    while (this.queue.length > 0) {
      const take = this.nextBatch()
      const ops = take.length === 1 ? (take[0] as PendingWrite).ops : take.flatMap(w => w.ops)
      try {
        const db = this.o.db()
        if (db === undefined) throw new StorageError(`LevelDB store at ${this.o.path} is not open`)
        await db.batch(ops, { sync: this.o.sync })
        for (const w of take) w.resolve()
      } catch (err) {
        const e = wrapIo(this.o.path, err, 'write')
        this.o.log.error('write of %d operations failed: %s', ops.length, messageOf(err))
        for (const w of take) {
          this.o.failed(w.docIds)
          w.reject(e)
        }
      }
    }
    this.writing = undefined
  }

  /** The oldest queued writes up to `maxCommitBytes` (always at least one). */
  private nextBatch (): PendingWrite[] {
    const take: PendingWrite[] = []
    let size = 0
    while (this.queue.length > 0 && (take.length === 0 || size + (this.queue[0] as PendingWrite).bytes <= this.o.maxCommitBytes)) {
      const w = this.queue.shift() as PendingWrite
      take.push(w)
      size += w.bytes
    }
    return take
  }
}
