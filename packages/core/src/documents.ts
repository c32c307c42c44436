/**
 * The documents a node holds: loaded on demand from storage, fingerprinted for the collection
 * digest, written back in batches, and evicted from memory when idle and over budget.
 *
 * Every change to a loaded document goes through its Y.Doc `update` event. The store marks the
 * fingerprint stale, queues the update for storage, and tells the node (`onChange`) so it can
 * propagate local edits and announce the new digest root.
 *
 * A document whose stored data cannot be read back is quarantined: every later access rejects
 * with the same `StorageCorruptionError` (naming it) without touching storage again, exchanges
 * and live updates skip it, and the node reports it (`node.problems()`). Other documents keep
 * working.
 *
 * Exchanges read documents that are not in memory through `stateVector()` and `diff()`, which
 * answer from the stored updates without building a Y.Doc (see `STORED_MERGE_MAX_RECORDS`).
 */
import * as Y from 'yjs'
import { equalBytes } from './bytes.js'
import { bytesOf, liveUpdate } from './compaction.js'
import { DigestTree } from './digest.js'
import { STORAGE_RETRY_MS, STORED_MERGE_MAX_RECORDS } from './constants.js'
import { InvalidUpdateError, StorageCorruptionError, isCorruption } from './errors.js'
import type { Timers } from './clock.js'
import { docFingerprint } from './fingerprint.js'
import type { Log } from './logger.js'
import type { Storage, StorageLoss } from './storage.js'

/** Transaction origin of updates replayed from storage. */
export const STORAGE_ORIGIN = Symbol('hearsay:storage')

export interface DocumentsOptions {
  storage: Storage
  log: Log
  /** Most documents kept in memory that no caller holds open. */
  maxLoadedDocs: number
  storageBatchMs: number
  /** Called for every change to a document after it is applied. */
  onChange: (docId: string, update: Uint8Array, origin: unknown) => void
  /** Called after a batch of writes stored something (`storedBytes` may have changed). */
  onStored?: () => void
  timers: Timers
  /** Client id of each Y.Doc loaded; Yjs draws a random one when unset. */
  newClientId?: () => number
}

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

/** What an exchange needs of a document: the loaded Y.Doc, or its stored updates merged into one. */
type DocState = { doc: Y.Doc, update?: undefined } | { doc?: undefined, update: Uint8Array }

/** `DocProblem.error` of documents a store lost. */
export const STORAGE_LOSS_ERROR = 'StorageLossError'


interface Entry {
  id: string
  doc: Y.Doc | undefined
  loading: Promise<Y.Doc> | undefined
  /** Fingerprint no longer matches the loaded doc. */
  stale: boolean
  /** Callers holding the doc through `node.open()`; held docs are never evicted. */
  holds: number
  lastUsed: number
}

export class Documents {
  readonly tree = new DigestTree()
  private readonly entries = new Map<string, Entry>()
  private readonly stale = new Set<Entry>()
  private pendingWrites = new Map<string, Uint8Array[]>()
  /** Documents whose updates are being written right now: never evicted until stored. */
  private readonly writingIds = new Map<string, number>()
  private writeTimer: unknown
  private evictTimer: unknown
  /** Tail of the chain of batch writes; resolves with the first error of the last batch, if any. */
  private writing: Promise<unknown> = Promise.resolve(undefined)
  private readonly quarantine = new Map<string, { error: StorageCorruptionError, since: number }>()
  /** Documents the store lost (`StorageLoss.docIds`), until they are stored again. */
  private readonly missing = new Map<string, { message: string, since: number }>()
  /** Losses the store could not attribute to documents. */
  private readonly damage: Array<{ loss: StorageLoss, since: number }> = []
  loadedCount = 0
  docsLoaded = 0
  /** Exchange answers computed from stored updates, without loading the document. */
  storedReads = 0
  /**
   * Stored bytes per document: the store's `StoredDocInfo.bytes` at start (0 when it does not say),
   * plus the updates appended since, set again to what the store returned whenever a document's
   * updates are read (a load, or an exchange answered from storage). Compaction inside the store
   * is seen only then, so this can be larger than what the store holds now; it is an estimate of
   * the collection's size.
   */
  private readonly sizes = new Map<string, number>()
  /** Sum of `sizes`. */
  storedBytes = 0
  /** `relieve()` does nothing before this time (node clock), after a failed write. */
  private relieveAfter = 0

  constructor (private readonly o: DocumentsOptions) {}

  /**
   * Read every stored document's fingerprint into the digest; loads no document. Entries are
   * made only for documents in use, so a large store costs only its digest.
   */
  async init (): Promise<void> {
    const now = this.o.timers.now()
    for (const loss of this.o.storage.losses?.() ?? []) {
      const ids = Array.isArray(loss.docIds) ? loss.docIds.filter(id => typeof id === 'string' && id !== '') : []
      this.o.log.warn('storage lost data: %s (%d documents named%s); peers holding them restore them at the next exchange', loss.message, ids.length, loss.missing > 0 ? `, ${loss.missing} missing` : '')
      for (const id of ids) this.missing.set(id, { message: loss.message, since: now })
      if (ids.length === 0) this.damage.push({ loss, since: now })
    }
    for (const { id, fingerprint, bytes } of await this.o.storage.list()) {
      this.tree.set(id, fingerprint)
      const n = typeof bytes === 'number' && Number.isFinite(bytes) && bytes > 0 ? bytes : 0
      this.sizes.set(id, (this.sizes.get(id) ?? 0) + n)
      this.storedBytes += n
    }
  }

  /** What the store holds for a document, as just read back. */
  private measured (id: string, updates: readonly Uint8Array[]): void {
    if (updates.length === 0) return
    const n = bytesOf(updates)
    this.storedBytes += n - (this.sizes.get(id) ?? 0)
    this.sizes.set(id, n)
  }

  private newEntry (id: string): Entry {
    return { id, doc: undefined, loading: undefined, stale: false, holds: 0, lastUsed: this.o.timers.now() }
  }

  /** Ids of every document with content. */
  ids (): string[] {
    this.refresh()
    return [...this.tree.ids()]
  }

  has (docId: string): boolean {
    if (this.stale.size > 0) this.refresh()
    return this.tree.has(docId)
  }

  isLoaded (docId: string): boolean {
    return this.entries.get(docId)?.doc !== undefined
  }

  /** Documents quarantined, lost or damaged (see `DocProblem`). */
  problems (): DocProblem[] {
    return [
      ...[...this.quarantine].map(([docId, q]) => ({ kind: 'corrupt' as const, docId, error: q.error.name, message: q.error.message, since: q.since })),
      // a document that is also quarantined (its records are there but unreadable) is listed once, as corrupt
      ...[...this.missing].filter(([docId]) => !this.quarantine.has(docId)).map(([docId, m]) => ({ kind: 'missing' as const, docId, error: STORAGE_LOSS_ERROR, message: `document "${docId}": ${m.message}`, since: m.since })),
      ...this.damage.map(({ loss, since }) => ({ kind: 'damaged' as const, docId: '', error: STORAGE_LOSS_ERROR, message: loss.missing > 0 ? `${loss.message} (${loss.missing} documents missing)` : loss.message, since }))
    ]
  }

  /** Documents quarantined as corrupt. */
  get quarantined (): number { return this.quarantine.size }

  /** Documents the store lost (named, until stored again, plus counted ones). */
  get lost (): number {
    let n = 0
    for (const id of this.missing.keys()) if (!this.quarantine.has(id)) n++
    for (const { loss } of this.damage) n += Number.isSafeInteger(loss.missing) && loss.missing > 0 ? loss.missing : 0
    return n
  }

  /** Remember a corruption error for its document (logged once); returns `err` for rethrowing. */
  private noteError (docId: string, err: unknown): unknown {
    if (isCorruption(err) && !this.quarantine.has(docId)) {
      this.quarantine.set(docId, { error: err, since: this.o.timers.now() })
      this.o.log.warn('document %s is quarantined, other documents keep syncing: %s', docId, err.message)
    }
    return err
  }

  /**
   * The document, loading it from storage if needed. A new id gives a new empty document.
   * Rejects with `StorageCorruptionError` naming the document when its stored data cannot be
   * read back, including records stored for a document the store did not list.
   */
  async get (docId: string): Promise<Y.Doc> {
    const q = this.quarantine.get(docId)
    if (q !== undefined) throw q.error
    let e = this.entries.get(docId)
    if (e === undefined) {
      e = this.newEntry(docId)
      this.entries.set(docId, e)
    }
    e.lastUsed = this.o.timers.now()
    if (e.doc !== undefined) return e.doc
    let loading = e.loading
    if (loading === undefined) {
      // cleared asynchronously, after the assignment: load() may complete synchronously
      const entry = e
      loading = entry.loading = this.load(entry).finally(() => { entry.loading = undefined })
    }
    return await loading
  }

  private async load (e: Entry): Promise<Y.Doc> {
    // the id as guid: a random guid costs ~30 calls to the system RNG per document
    const doc = new Y.Doc({ guid: e.id })
    if (this.o.newClientId !== undefined) doc.clientID = this.o.newClientId()
    let updates: Uint8Array[]
    try {
      // read even for a document the store did not list: its head may be missing or corrupt
      updates = await this.o.storage.load(e.id)
      if (updates.length > 0 && !this.tree.has(e.id)) {
        throw new StorageCorruptionError(e.id, `${updates.length} update records are stored but the store did not list the document (its head record is missing or corrupt); delete it to re-sync it from peers`)
      }
      this.measured(e.id, updates)
    } catch (err) {
      doc.destroy()
      throw this.noteError(e.id, err)
    }
    if (updates.length > 0) {
      try {
        Y.transact(doc, () => { for (const u of updates) Y.applyUpdate(doc, u) }, STORAGE_ORIGIN)
      } catch (err) {
        doc.destroy()
        throw this.noteError(e.id, new StorageCorruptionError(e.id, 'stored updates could not be applied', { cause: err }))
      }
      this.docsLoaded++
    }
    doc.on('update', (update: Uint8Array, origin: unknown) => { this.changed(e, update, origin) })
    e.doc = doc
    this.loadedCount++
    if (updates.length > 0) {
      const fp = docFingerprint(doc)
      const stored = this.tree.get(e.id)?.fingerprint
      if (stored !== undefined && !equalBytes(stored, fp)) {
        this.o.log.warn('document %s: stored fingerprint did not match its content; using the content', e.id)
        this.tree.set(e.id, fp)
      }
    }
    return doc
  }

  private changed (e: Entry, update: Uint8Array, origin: unknown): void {
    if (origin === STORAGE_ORIGIN) return
    e.lastUsed = this.o.timers.now()
    e.stale = true
    this.stale.add(e)
    const pending = this.pendingWrites.get(e.id)
    if (pending === undefined) this.pendingWrites.set(e.id, [update])
    else pending.push(update)
    this.scheduleWrite()
    this.o.onChange(e.id, update, origin)
  }

  /** Bring every stale fingerprint up to date in the digest tree. */
  refresh (): void {
    for (const e of this.stale) {
      if (e.doc !== undefined) this.tree.set(e.id, docFingerprint(e.doc))
      e.stale = false
    }
    this.stale.clear()
  }

  /** Fingerprint of a document with content, up to date. */
  fingerprint (docId: string): Uint8Array | undefined {
    const e = this.entries.get(docId)
    if (e?.stale === true) this.refresh()
    return this.tree.get(docId)?.fingerprint
  }

  /**
   * The document as an exchange needs it. A loaded document is used as it is. One not in memory is
   * answered from its stored updates without keeping a Y.Doc: the single record as it is (a
   * snapshot after compaction, or one write, which Yjs encodes without what it deleted), or up to
   * `STORED_MERGE_MAX_RECORDS` records made into one (`liveUpdate`: merged when none deletes
   * anything, else compacted, so content deleted by a later record is not sent). Past that, the
   * document is loaded like any other (and evicted again when over budget). Nothing is cached:
   * the update is dropped as soon as the answer is encoded.
   */
  private async state (docId: string): Promise<DocState> {
    const q = this.quarantine.get(docId)
    if (q !== undefined) throw q.error
    const e = this.entries.get(docId)
    if (e?.doc !== undefined) return { doc: e.doc }
    if (e?.loading !== undefined || !this.tree.has(docId)) return { doc: await this.get(docId) }
    let updates: Uint8Array[]
    try {
      updates = await this.o.storage.load(docId)
    } catch (err) {
      throw this.noteError(docId, err)
    }
    if (this.tree.has(docId)) this.measured(docId, updates)
    // loaded meanwhile (and maybe changed since): the document is the truth
    const again = this.entries.get(docId)
    if (again?.doc !== undefined) return { doc: again.doc }
    if (updates.length === 0 || updates.length > STORED_MERGE_MAX_RECORDS) return { doc: await this.get(docId) }
    let update: Uint8Array
    try {
      update = updates.length === 1 ? updates[0] as Uint8Array : liveUpdate(updates)
    } catch (err) {
      throw this.noteError(docId, new StorageCorruptionError(docId, 'stored updates could not be applied', { cause: err }))
    }
    this.storedReads++
    return { update }
  }

  /** State vector of a document (see `state()` for documents not in memory). */
  async stateVector (docId: string): Promise<Uint8Array> {
    const s = await this.state(docId)
    if (s.doc !== undefined) return Y.encodeStateVector(s.doc)
    try {
      return Y.encodeStateVectorFromUpdate(s.update)
    } catch (err) {
      throw this.noteError(docId, new StorageCorruptionError(docId, 'stored updates could not be decoded', { cause: err }))
    }
  }

  /**
   * What a peer at `stateVector` lacks of a document (everything when undefined), as one update
   * (see `state()` for documents not in memory). Throws `InvalidUpdateError` when the state
   * vector cannot be decoded.
   */
  async diff (docId: string, stateVector: Uint8Array | undefined): Promise<Uint8Array> {
    let sv: Uint8Array | undefined
    if (stateVector !== undefined) {
      try {
        Y.decodeStateVector(stateVector)
        sv = stateVector
      } catch (err) {
        throw new InvalidUpdateError(docId, 'malformed state vector', { cause: err })
      }
    }
    const s = await this.state(docId)
    if (s.doc !== undefined) return sv === undefined ? Y.encodeStateAsUpdate(s.doc) : Y.encodeStateAsUpdate(s.doc, sv)
    if (sv === undefined) return s.update
    try {
      return Y.diffUpdate(s.update, sv)
    } catch (err) {
      throw this.noteError(docId, new StorageCorruptionError(docId, 'stored updates could not be decoded', { cause: err }))
    }
  }

  /**
   * Validate a Yjs update and apply it with `origin`. An update that cannot be decoded is
   * rejected with `InvalidUpdateError` before the document is touched. `validated`: the caller
   * already ran `validateUpdate` on it (a frame's updates are all checked before any is applied).
   */
  async applyUpdate (docId: string, update: Uint8Array, origin: unknown, validated = false): Promise<void> {
    if (!validated) validateUpdate(docId, update)
    let doc = await this.get(docId)
    while (this.entries.get(docId)?.doc !== doc) doc = await this.get(docId)
    try {
      Y.applyUpdate(doc, update, origin)
    } catch (err) {
      throw new InvalidUpdateError(docId, 'could not be applied', { cause: err })
    }
  }

  hold (docId: string): void {
    const e = this.entries.get(docId)
    if (e !== undefined) e.holds++
  }

  release (docId: string): void {
    const e = this.entries.get(docId)
    if (e !== undefined && e.holds > 0) e.holds--
    this.evictIdle()
  }

  /**
   * Unload idle documents past the budget, soon. Eviction runs only as a timer task of its own,
   * never inline: a caller that awaited `get()` gets to use the doc before it can be unloaded
   * (a destroyed Y.Doc drops its listeners, and edits to it would be lost).
   */
  evictIdle (): void {
    if (this.loadedCount <= this.o.maxLoadedDocs || this.evictTimer !== undefined) return
    this.evictTimer = this.o.timers.setTimeout(() => {
      this.evictTimer = undefined
      this.evictNow()
    }, 0)
  }

  private evictNow (): void {
    if (this.loadedCount <= this.o.maxLoadedDocs) return
    const idle = [...this.entries.values()]
      .filter(e => e.doc !== undefined && e.holds === 0 && !this.pendingWrites.has(e.id) && !this.writingIds.has(e.id))
      .sort((a, b) => a.lastUsed - b.lastUsed)
    for (const e of idle) {
      if (this.loadedCount <= this.o.maxLoadedDocs) break
      if (e.stale) this.refresh()
      e.doc?.destroy()
      e.doc = undefined
      this.loadedCount--
      this.entries.delete(e.id)
    }
  }

  private scheduleWrite (delayMs = this.o.storageBatchMs): void {
    if (this.writeTimer !== undefined) return
    this.writeTimer = this.o.timers.setTimeout(() => {
      this.writeTimer = undefined
      // errors are logged, and the updates stay queued for the next attempt
      void this.flushOnce()
    }, delayMs)
  }

  /**
   * Write every queued update to storage; resolves when all of them are stored. A batch that was
   * already being written and failed has its updates queued again: they are retried once here
   * before the error is reported.
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
   * Start writing the queued updates after the batches already being written. Resolves with the
   * first error of the batch being written before this call or of this one (undefined: stored);
   * `ownOnly`: of this one only, when it has any.
   */
  private async flushOnce (ownOnly = false): Promise<unknown> {
    if (this.writeTimer !== undefined) {
      this.o.timers.clearTimeout(this.writeTimer)
      this.writeTimer = undefined
    }
    const before = this.writing
    const batch = this.pendingWrites
    if (batch.size === 0) return await before
    this.pendingWrites = new Map()
    this.refresh()
    // fingerprints of exactly the state these updates lead to, taken now, not at write time
    const fingerprints = new Map<string, Uint8Array>()
    for (const id of batch.keys()) {
      this.writingIds.set(id, (this.writingIds.get(id) ?? 0) + 1)
      const fp = this.tree.get(id)?.fingerprint
      if (fp !== undefined) fingerprints.set(id, fp)
    }
    const mine = before.then(async () => await this.store(batch, fingerprints))
    this.writing = mine
    const [a, b] = await Promise.all([before, mine])
    return ownOnly ? b : a ?? b
  }

  /**
   * Append one batch; never rejects. The documents' appends are issued together, so a store with
   * group commit writes them in one batch (one fsync). Failed documents are queued again and
   * retried later.
   */
  private async store (batch: Map<string, Uint8Array[]>, fingerprints: Map<string, Uint8Array>): Promise<unknown> {
    let error: unknown
    let stored = false
    await Promise.all([...batch].map(async ([id, updates]) => {
      const fp = fingerprints.get(id)
      try {
        if (fp !== undefined) {
          await this.o.storage.append(id, updates, fp)
          let n = 0
          for (const u of updates) n += u.length
          this.sizes.set(id, (this.sizes.get(id) ?? 0) + n)
          this.storedBytes += n
          stored = true
          if (this.missing.delete(id)) this.o.log('document %s, lost from storage, is stored again', id)
        }
      } catch (err) {
        error ??= err
        this.o.log.error('could not store %d updates of document %s', updates.length, id, err)
        // keep them queued, ahead of newer ones, and try again later
        const again = this.pendingWrites.get(id)
        this.pendingWrites.set(id, again === undefined ? updates : [...updates, ...again])
        this.scheduleWrite(STORAGE_RETRY_MS)
      } finally {
        const n = (this.writingIds.get(id) ?? 1) - 1
        if (n === 0) this.writingIds.delete(id)
        else this.writingIds.set(id, n)
      }
    }))
    this.evictIdle()
    if (stored) this.o.onStored?.()
    return error
  }

  /**
   * Backpressure for bulk receives (an exchange bringing many documents): documents with
   * unwritten updates cannot be evicted, so once more than half of `maxLoadedDocs` of them are
   * queued, the caller waits for them to be written, after which they can be evicted.
   */
  async relieve (): Promise<void> {
    if (this.pendingWrites.size <= this.o.maxLoadedDocs / 2 || this.o.timers.now() < this.relieveAfter) return
    // while storage fails, do not hammer it on every document: the retry timer takes over
    if (await this.flushOnce() !== undefined) this.relieveAfter = this.o.timers.now() + STORAGE_RETRY_MS
    this.evictIdle()
  }

  async close (): Promise<void> {
    await this.flush()
    if (this.evictTimer !== undefined) this.o.timers.clearTimeout(this.evictTimer)
    for (const e of this.entries.values()) e.doc?.destroy()
    this.entries.clear()
    this.loadedCount = 0
  }
}


/**
 * Parse an update fully (every struct and the delete set) without applying it; throws
 * `InvalidUpdateError` when it is not a well-formed Yjs update.
 */
export function validateUpdate (docId: string, update: Uint8Array): void {
  if (update.length < 2) throw new InvalidUpdateError(docId, `${update.length} bytes is too short to be an update`)
  try {
    // decodeUpdate reads the delete set too (parseUpdateMeta stops after the structs), so an update
    // whose structs are fine but whose delete set is broken never reaches applyUpdate, which would
    // integrate the structs before failing on it
    const { structs, ds } = Y.decodeUpdate(update)
    for (const s of structs) {
      if (!Number.isSafeInteger(s.id.client) || !Number.isSafeInteger(s.id.clock) || !(s.length >= 0)) throw new Error('structs with a bad client or clock')
    }
    for (const [client, items] of ds.clients) {
      if (!Number.isSafeInteger(client)) throw new Error('a delete set with a bad client')
      for (const d of items) if (!Number.isSafeInteger(d.clock) || !Number.isSafeInteger(d.len) || d.len < 0) throw new Error('a delete set with a bad range')
    }
  } catch (err) {
    throw new InvalidUpdateError(docId, err instanceof Error ? err.message : 'could not be decoded', { cause: err })
  }
}
