/**
 * The documents a node holds: loaded on demand from storage, fingerprinted for the collection
 * digest, written back in batches, and evicted from memory when idle and over budget.
 *
 * Every change to a loaded document is collected per run of transactions with the same origin
 * (doc-changes.ts) and taken as one update on the next microtask (`takeChanges()` takes them at
 * once). The store marks the fingerprint stale as soon as a transaction commits; when the update
 * is taken, it queues it for storage (the write path is doc-writes.ts) and tells the node
 * (`onChange`) so it can propagate local edits and announce the new digest root. Whatever reads
 * the write queue's state takes the waiting changes first.
 *
 * A document whose stored data cannot be read back is quarantined (doc-problems.ts): every later
 * access rejects with the same `StorageCorruptionError` (naming it) without touching storage
 * again, exchanges and live updates skip it, and the node reports it (`node.problems()`). Other
 * documents keep working.
 *
 * Exchanges read documents that are not in memory through `stateVector()` and `diff()`, which
 * answer from the stored updates without building a Y.Doc (see `STORED_MERGE_MAX_RECORDS`).
 */
import * as Y from 'yjs'
import { equalBytes } from './bytes.js'
import { NextTurn, type Timers } from './clock.js'
import { bytesOf, liveUpdate } from './compaction.js'
import { STORED_MERGE_MAX_RECORDS } from './constants.js'
import { DigestTree } from './digest.js'
import { DocChanges } from './doc-changes.js'
import { DocFingerprint } from './doc-fingerprint.js'
import { DocProblems, type DocProblem } from './doc-problems.js'
import { WriteQueue } from './doc-writes.js'
import { ConfigError, InvalidUpdateError, StorageCorruptionError } from './errors.js'
import type { Log } from './logger.js'
import type { Storage } from './storage.js'
import { validateUpdate } from './updates.js'

/** The state vector of an empty document. */
const EMPTY_VECTOR = new Uint8Array([0])

/** Transaction origin of updates replayed from storage. */
export const STORAGE_ORIGIN = Symbol('hearsay:storage')

export interface DocumentsOptions {
  storage: Storage
  log: Log
  /** Most documents kept in memory that no caller holds open. */
  maxLoadedDocs: number
  storageBatchMs: number
  /**
   * Called with every change to a document after it is applied: one update per run of
   * transactions with the same origin, on the next microtask (or when taken).
   */
  onChange: (docId: string, update: Uint8Array, origin: unknown) => void
  /** Called after a batch of writes stored something (`storedBytes` may have changed). */
  onStored?: () => void
  /** Called after a write of this document completed. */
  onDocStored?: (docId: string) => void
  /**
   * Whether someone wants to know how far the document's store goes (a peer watches it): only
   * then is its state vector taken with each write. @default never
   */
  tracksStored?: (docId: string) => boolean
  timers: Timers
  /** Client id of each Y.Doc loaded; Yjs draws a random one when unset. */
  newClientId?: () => number
}

/** What an exchange needs of a document: the loaded Y.Doc, or its stored updates merged into one. */
type DocState = { doc: Y.Doc, update?: undefined } | { doc?: undefined, update: Uint8Array }

interface Entry {
  id: string
  doc: Y.Doc | undefined
  /** The loaded doc's changes waiting to be taken. */
  changes: DocChanges | undefined
  /** The loaded doc's fingerprint, kept up to date cheaply (doc-fingerprint.ts). */
  fingerprint: DocFingerprint | undefined
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
  /** Loaded documents with changes waiting to be taken, and whether a microtask will take them. */
  private readonly changing = new Set<Entry>()
  private takeQueued = false
  /** Eviction, as a timer task of its own (see `evictIdle`). */
  private readonly eviction: NextTurn
  private readonly trouble: DocProblems
  private readonly writes: WriteQueue
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
  /** Documents with writes pending: the state vector known to be in the store (see `vectors`). */
  private readonly storedVectors = new Map<string, Uint8Array>()

  constructor (private readonly o: DocumentsOptions) {
    this.trouble = new DocProblems(o.log)
    this.eviction = new NextTurn(o.timers, () => { this.evictNow() })
    this.writes = new WriteQueue({
      storage: o.storage,
      timers: o.timers,
      log: o.log,
      batchMs: o.storageBatchMs,
      fingerprints: ids => {
        this.refresh()
        const fps = new Map<string, Uint8Array>()
        for (const id of ids) {
          const fp = this.tree.get(id)?.fingerprint
          if (fp !== undefined) fps.set(id, fp)
        }
        return fps
      },
      stateVectors: ids => {
        const out = new Map<string, Uint8Array>()
        for (const id of ids) {
          const doc = this.entries.get(id)?.doc
          if (doc !== undefined && this.o.tracksStored?.(id) === true) out.set(id, Y.encodeStateVector(doc))
        }
        return out
      },
      stored: (id, n, vector) => {
        this.sizes.set(id, (this.sizes.get(id) ?? 0) + n)
        this.storedBytes += n
        this.trouble.stored(id)
        if (vector !== undefined) this.storedVectors.set(id, vector)
        else this.storedVectors.delete(id)
        this.o.onDocStored?.(id)
      },
      batchDone: any => {
        this.evictIdle()
        if (any) this.o.onStored?.()
      }
    })
  }

  /**
   * Read every stored document's fingerprint into the digest; loads no document. Entries are
   * made only for documents in use, so a large store costs only its digest.
   */
  async init (): Promise<void> {
    this.trouble.losses(this.o.storage.losses?.() ?? [], this.o.timers.now())
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
    return { id, doc: undefined, changes: undefined, fingerprint: undefined, loading: undefined, stale: false, holds: 0, lastUsed: this.o.timers.now() }
  }

  /** Ids of every document with content. */
  ids (): string[] {
    this.refresh()
    return [...this.tree.ids()]
  }

  /** Whether the document has content (the creation quota counts only new ones). */
  has (docId: string): boolean {
    // a loaded document changed since its fingerprint: it has content, and the fingerprint (a
    // whole encoding of the document) need not be taken now, once per update on the live path
    const e = this.entries.get(docId)
    if (e?.stale === true && e.doc !== undefined) return true
    return this.tree.has(docId)
  }

  /** The Yjs client id of the document while it is loaded. */
  clientIdOf (docId: string): number | undefined {
    return this.entries.get(docId)?.doc?.clientID
  }

  isLoaded (docId: string): boolean {
    return this.entries.get(docId)?.doc !== undefined
  }

  /** Documents quarantined, lost or damaged (see `DocProblem`). */
  problems (): DocProblem[] {
    return this.trouble.list()
  }

  /** Documents quarantined as corrupt. */
  get quarantined (): number { return this.trouble.quarantinedCount }

  /** Documents the store lost (named, until stored again, plus counted ones). */
  get lost (): number { return this.trouble.lost }

  /** Remember a corruption error for its document (logged once); returns `err` for rethrowing. */
  private noteError (docId: string, err: unknown): unknown {
    return this.trouble.note(docId, err, this.o.timers.now())
  }

  /**
   * The document, loading it from storage if needed. A new id gives a new empty document.
   * Rejects with `StorageCorruptionError` naming the document when its stored data cannot be
   * read back, including records stored for a document the store did not list.
   */
  async get (docId: string): Promise<Y.Doc> {
    const q = this.trouble.quarantined(docId)
    if (q !== undefined) throw q
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
    e.changes = new DocChanges(doc, {
      deliver: (update, origin) => { this.changed(e, update, origin) },
      waiting: () => { this.waiting(e) },
      skip: origin => origin === STORAGE_ORIGIN
    })
    e.fingerprint = new DocFingerprint(doc)
    e.doc = doc
    this.loadedCount++
    if (updates.length > 0) {
      const fp = e.fingerprint.value()
      const stored = this.tree.get(e.id)?.fingerprint
      if (stored !== undefined && !equalBytes(stored, fp)) {
        this.o.log.warn('document %s: stored fingerprint did not match its content; using the content', e.id)
        this.tree.set(e.id, fp)
      }
    }
    return doc
  }

  /** A transaction changed the document: its fingerprint is stale now, its run is taken soon. */
  private waiting (e: Entry): void {
    e.lastUsed = this.o.timers.now()
    e.stale = true
    this.stale.add(e)
    this.changing.add(e)
    if (this.takeQueued) return
    this.takeQueued = true
    queueMicrotask(() => {
      this.takeQueued = false
      this.takeChanges()
    })
  }

  /** A run of changes was taken (each of its transactions marked the fingerprint stale, in `waiting`). */
  private changed (e: Entry, update: Uint8Array, origin: unknown): void {
    this.writes.add(e.id, update)
    // stored whatever a listener does; a listener that throws does not stop the next run
    try {
      this.o.onChange(e.id, update, origin)
    } catch (err) {
      this.o.log.error('document %s: handling a change failed', e.id, err)
    }
  }

  /** Take every document's waiting changes now: queued for storage, and passed to `onChange`. */
  takeChanges (): void {
    const failed: Entry[] = []
    for (const e of this.changing) {
      this.changing.delete(e)
      try {
        e.changes?.take()
      } catch (err) {
        // what could not be encoded stays waiting, and is tried again at the next take
        this.o.log.error('document %s: its changes could not be taken', e.id, err)
        failed.push(e)
      }
    }
    for (const e of failed) this.changing.add(e)
  }

  /** Bring every stale fingerprint up to date in the digest tree. */
  refresh (): void {
    for (const e of this.stale) {
      // a loaded document has both (`load` sets them together)
      if (e.doc !== undefined && e.fingerprint !== undefined) this.tree.set(e.id, e.fingerprint.value())
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
    const q = this.trouble.quarantined(docId)
    if (q !== undefined) throw q
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
   * The document's state vector in memory (`applied`), and the one its store holds for certain
   * (`stored`): the same when no write of it is pending; while some are, the state of the last
   * write that completed while `tracksStored` said yes (undefined when none did, or after a failed
   * write until its retry succeeded). Never ahead of the store.
   */
  async vectors (docId: string): Promise<{ applied: Uint8Array, stored: Uint8Array | undefined }> {
    this.takeChanges()
    const doc = this.entries.get(docId)?.doc
    // a document this node does not hold: nothing, without making an empty one
    if (doc === undefined && !this.has(docId)) return { applied: EMPTY_VECTOR, stored: EMPTY_VECTOR }
    if (doc === undefined || !this.writes.busy(docId)) {
      this.storedVectors.delete(docId)
      const applied = doc !== undefined ? Y.encodeStateVector(doc) : await this.stateVector(docId)
      // loaded meanwhile and changed: what is stored is what the store said
      return { applied, stored: this.writes.busy(docId) ? undefined : applied }
    }
    return { applied: Y.encodeStateVector(doc), stored: this.storedVectors.get(docId) }
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

  /**
   * Drop a document from this node: from memory, the digest and the store. Rejects with
   * `ConfigError` while a caller holds it open. Peers that hold it bring it back in a later
   * exchange, like any document this node lacks.
   */
  async forget (docId: string): Promise<void> {
    const e = this.entries.get(docId)
    if (e !== undefined && e.holds > 0) throw new ConfigError(`"${docId}" is open: close it before forgetting it`)
    if (e?.loading !== undefined) await e.loading.catch(() => {})
    const gone = this.entries.get(docId)
    if (gone?.doc !== undefined) {
      gone.changes?.stop()
      gone.fingerprint?.stop()
      this.changing.delete(gone)
      gone.doc.destroy()
      this.loadedCount--
    }
    this.entries.delete(docId)
    // what was queued for it is dropped; a write under way finishes before the delete
    while (this.writes.busy(docId)) {
      this.writes.discard(docId)
      await this.writes.writeNow()
    }
    this.tree.delete(docId)
    this.storedBytes -= this.sizes.get(docId) ?? 0
    this.sizes.delete(docId)
    this.storedVectors.delete(docId)
    await this.o.storage.delete(docId)
    // a peer's update brought it back meanwhile: what it holds now is stored whole again
    const back = this.entries.get(docId)
    if (back?.doc !== undefined) {
      this.writes.add(docId, Y.encodeStateAsUpdate(back.doc))
      back.stale = true
      this.stale.add(back)
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
    if (this.loadedCount > this.o.maxLoadedDocs) this.eviction.schedule()
  }

  private evictNow (): void {
    if (this.loadedCount <= this.o.maxLoadedDocs) return
    this.takeChanges()
    const idle = [...this.entries.values()]
      .filter(e => e.doc !== undefined && e.holds === 0 && !this.writes.busy(e.id) && e.changes?.pending !== true)
      .sort((a, b) => a.lastUsed - b.lastUsed)
    for (const e of idle) {
      if (this.loadedCount <= this.o.maxLoadedDocs) break
      if (e.stale) this.refresh()
      e.doc?.destroy()
      e.doc = undefined
      this.loadedCount--
      this.entries.delete(e.id)
      this.storedVectors.delete(e.id)
    }
  }

  /** Write every queued update to storage; resolves when all of them are stored (see `WriteQueue.flush`). */
  async flush (): Promise<void> {
    this.takeChanges()
    await this.writes.flush()
  }

  /** Write the queued updates now, once; resolves with the first error, never rejects. */
  async writeNow (): Promise<unknown> {
    this.takeChanges()
    return await this.writes.writeNow()
  }

  /**
   * Backpressure for bulk receives (an exchange bringing many documents): documents with
   * unwritten updates cannot be evicted, so once more than half of `maxLoadedDocs` of them are
   * queued, the caller waits for them to be written, after which they can be evicted.
   */
  async relieve (): Promise<void> {
    this.takeChanges()
    if (await this.writes.relieve(this.o.maxLoadedDocs / 2)) this.evictIdle()
  }

  async close (): Promise<void> {
    await this.flush()
    this.eviction.cancel()
    for (const e of this.entries.values()) e.doc?.destroy()
    this.entries.clear()
    this.loadedCount = 0
  }
}

