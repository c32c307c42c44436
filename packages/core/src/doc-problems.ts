/**
 * What is wrong with stored data, per document: documents quarantined because their stored data
 * cannot be read back (every later access rejects with the same `StorageCorruptionError` without
 * touching storage again), documents the store lost when it opened (until stored again), and
 * losses it could not attribute to any document. `node.problems()` lists them.
 */
import { isCorruption, type StorageCorruptionError } from './errors.js'
import type { Log } from './logger.js'
import type { StorageLoss } from './storage.js'

/**
 * Something wrong with stored data. `corrupt`: a document left out of syncing because its stored
 * data cannot be read back. `missing`: a document the store held before and, when it opened,
 * could not find or found older than it was (its latest writes dropped); cleared once the
 * document is stored again, e.g. restored by a peer. `damaged`: the store dropped records while
 * opening and cannot tell which documents they belonged to.
 */
export interface DocProblem {
  kind: 'corrupt' | 'missing' | 'damaged'
  /** The document; `''` for `damaged`. */
  docId: string
  /** `StorageCorruptionError` (corrupt) or `StorageLossError` (missing, damaged). */
  error: string
  message: string
  /** When it was found (node clock, ms). */
  since: number
}

/** `DocProblem.error` of documents a store lost. */
export const STORAGE_LOSS_ERROR = 'StorageLossError'

export class DocProblems {
  private readonly quarantine = new Map<string, { error: StorageCorruptionError, since: number }>()
  /** Documents the store lost (`StorageLoss.docIds`), until they are stored again. */
  private readonly missing = new Map<string, { message: string, since: number }>()
  /** Losses the store could not attribute to documents. */
  private readonly damage: Array<{ loss: StorageLoss, since: number }> = []

  constructor (private readonly log: Log) {}

  /** What the store reported lost when it opened. */
  losses (losses: readonly StorageLoss[], now: number): void {
    for (const loss of losses) {
      const ids = Array.isArray(loss.docIds) ? loss.docIds.filter(id => typeof id === 'string' && id !== '') : []
      this.log.warn('storage lost data: %s (%d documents named%s); peers holding them restore them at the next exchange', loss.message, ids.length, loss.missing > 0 ? `, ${loss.missing} missing` : '')
      for (const id of ids) this.missing.set(id, { message: loss.message, since: now })
      if (ids.length === 0) this.damage.push({ loss, since: now })
    }
  }

  /** The error a quarantined document rejects with. */
  quarantined (docId: string): StorageCorruptionError | undefined {
    return this.quarantine.get(docId)?.error
  }

  /** Remember a corruption error for its document (logged once); returns `err` for rethrowing. */
  note (docId: string, err: unknown, now: number): unknown {
    if (isCorruption(err) && !this.quarantine.has(docId)) {
      this.quarantine.set(docId, { error: err, since: now })
      this.log.warn('document %s is quarantined, other documents keep syncing: %s', docId, err.message)
    }
    return err
  }

  /** The document was stored again: no longer missing. */
  stored (docId: string): void {
    if (this.missing.delete(docId)) this.log('document %s, lost from storage, is stored again', docId)
  }

  list (): DocProblem[] {
    return [
      ...[...this.quarantine].map(([docId, q]) => ({ kind: 'corrupt' as const, docId, error: q.error.name, message: q.error.message, since: q.since })),
      // a document that is also quarantined (its records are there but unreadable) is listed once, as corrupt
      ...[...this.missing].filter(([docId]) => !this.quarantine.has(docId)).map(([docId, m]) => ({ kind: 'missing' as const, docId, error: STORAGE_LOSS_ERROR, message: `document "${docId}": ${m.message}`, since: m.since })),
      ...this.damage.map(({ loss, since }) => ({ kind: 'damaged' as const, docId: '', error: STORAGE_LOSS_ERROR, message: loss.missing > 0 ? `${loss.message} (${loss.missing} documents missing)` : loss.message, since }))
    ]
  }

  /** Documents quarantined as corrupt. */
  get quarantinedCount (): number { return this.quarantine.size }

  /** Documents the store lost (named, until stored again, plus counted ones). */
  get lost (): number {
    let n = 0
    for (const id of this.missing.keys()) if (!this.quarantine.has(id)) n++
    for (const { loss } of this.damage) n += Number.isSafeInteger(loss.missing) && loss.missing > 0 ? loss.missing : 0
    return n
  }
}
