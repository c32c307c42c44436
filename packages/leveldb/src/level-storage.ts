/**
 * `Storage` on LevelDB (classic-level): the store's lifecycle and the `Storage` operations, built
 * on the head cache (heads.ts), group commit (group-commit.ts) and compaction (compaction.ts).
 * See README.md for the key layout, the durability contract, compaction and corruption behaviour.
 */
import { ConfigError, StorageCorruptionError, StorageError, validateDocId } from '@hearsay/core'
import type { Log, Storage, StorageLoss, StoredDocInfo } from '@hearsay/core'
import { Compactor } from './compaction.js'
import { LOG_COMPONENT } from './constants.js'
import type { Durability } from './constants.js'
import { closeDatabase, openDatabase, scanHeads } from './database.js'
import type { BatchOp, Db } from './database.js'
import { GroupCommit } from './group-commit.js'
import { HeadCache, headOp, statsOf } from './heads.js'
import type { DocState, DocStats } from './heads.js'
import { errorCode, messageOf, wrapIo } from './io-errors.js'
import { decodeHead, encodeUtf8, headKey, metaKey, seqOf, seal, unseal, updateKey, updateRange } from './layout.js'
import { resolveLevelOptions } from './options.js'
import type { LevelSettings, LevelStorageOptions } from './options.js'
import { verifyStore } from './verify.js'
import type { VerifyReport } from './verify.js'

/** A `Storage` on LevelDB, with compaction, statistics and an integrity check. */
export interface LevelStorage extends Storage {
  readonly path: string
  readonly durability: Durability
  /**
   * Compact a document's records into one snapshot now (content unchanged, deleted content
   * dropped), then ask LevelDB to
   * reclaim the space of the removed records. Resolves with the document's stats afterwards, or
   * undefined for an unknown document. Rejects with `StorageCorruptionError` when a record is bad.
   */
  compact(docId: string): Promise<DocStats | undefined>
  /** Records and bytes stored for a document, or undefined when it is unknown. */
  stats(docId: string): Promise<DocStats | undefined>
  /** Read and check every record of the store. */
  verify(): Promise<VerifyReport>
  /** Resolves when the background compactions scheduled so far have finished. */
  idle(): Promise<void>
  /**
   * What the last open found lost: records LevelDB dropped while recovering its write-ahead log,
   * and documents listed in the manifest of the last clean close that are gone (see README).
   */
  losses(): StorageLoss[]
}

/**
 * Where the store is in its life. `open` and `closing` hold the database: a closing store
 * finishes the writes and operations under way before it closes it.
 */
type Lifecycle =
  | { kind: 'closed' }
  | { kind: 'opening', done: Promise<void> }
  | { kind: 'open', db: Db }
  | { kind: 'closing', db: Db, done: Promise<void> }

/** The moves `enter` allows; anything else is a bug in this file. */
const MOVES: Record<Lifecycle['kind'], ReadonlyArray<Lifecycle['kind']>> = {
  closed: ['opening'],
  opening: ['open', 'closed'],
  open: ['closing'],
  closing: ['closed']
}

class LevelStore implements LevelStorage {
  readonly path: string
  readonly durability: Durability
  private readonly settings: LevelSettings
  private readonly log: Log
  private life: Lifecycle = { kind: 'closed' }
  /** What the last open found lost (see manifest.ts). */
  private found: StorageLoss[] = []
  /** Operations under way, which a close waits for. */
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly heads: HeadCache
  private readonly commits: GroupCommit
  private readonly compactor: Compactor

  constructor (options: LevelStorageOptions) {
    this.settings = resolveLevelOptions(options)
    this.path = this.settings.path
    this.durability = this.settings.durability
    this.log = this.settings.logger.forComponent(LOG_COMPONENT)
    this.heads = new HeadCache(this.log)
    this.commits = new GroupCommit({
      path: this.path,
      sync: this.durability === 'power',
      maxCommitBytes: this.settings.maxCommitBytes,
      db: () => this.life.kind === 'open' || this.life.kind === 'closing' ? this.life.db : undefined,
      failed: docIds => { this.heads.markStale(docIds) },
      log: this.log
    })
    this.compactor = new Compactor({
      settings: this.settings,
      heads: this.heads,
      commits: this.commits,
      openDb: () => this.life.kind === 'open' ? this.life.db : undefined,
      log: this.log
    })
  }

  // ---------------------------------------------------------------- lifecycle

  private enter (next: Lifecycle): void {
    if (!MOVES[this.life.kind].includes(next.kind)) {
      throw new StorageError(`LevelDB store at ${this.path} cannot go from ${this.life.kind} to ${next.kind}`)
    }
    this.life = next
  }

  async open (): Promise<void> {
    const life = this.life
    if (life.kind === 'open') return
    if (life.kind === 'opening') return await life.done
    if (life.kind === 'closing') {
      await life.done
      return await this.open()
    }
    const done = Promise.resolve().then(async () => await openDatabase(this.settings, this.log)).then(({ db, losses }) => {
      this.found = losses
      this.enter({ kind: 'open', db })
    }, (err: unknown) => {
      this.enter({ kind: 'closed' })
      throw err
    })
    this.enter({ kind: 'opening', done })
    return await done
  }

  async close (): Promise<void> {
    const life = this.life
    if (life.kind === 'closed') return
    if (life.kind === 'closing') return await life.done
    if (life.kind === 'opening') {
      await life.done.catch(() => {})
      return await this.close()
    }
    const done = Promise.resolve().then(async () => { await this.shutdown(life.db) }).finally(() => { this.enter({ kind: 'closed' }) })
    this.enter({ kind: 'closing', db: life.db, done })
    return await done
  }

  /** Stops compaction, lets the operations and writes under way finish, then closes the database. */
  private async shutdown (db: Db): Promise<void> {
    await this.compactor.stop()
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight])
    await this.commits.settled()
    this.heads.clear()
    await closeDatabase(this.path, db, this.log)
  }

  losses (): StorageLoss[] {
    return this.found.map(l => ({ ...l, docIds: [...l.docIds] }))
  }

  /** Runs a public operation: rejects when not open, and lets close() wait for it. */
  private async run<T> (fn: (db: Db) => Promise<T>): Promise<T> {
    if (this.life.kind !== 'open') throw new StorageError(`LevelDB store at ${this.path} is not open`)
    const p = fn(this.life.db)
    this.inflight.add(p)
    try {
      return await p
    } finally {
      this.inflight.delete(p)
    }
  }

  // ---------------------------------------------------------------- Storage

  async list (): Promise<StoredDocInfo[]> {
    return await this.run(async db => {
      const out: StoredDocInfo[] = []
      try {
        await scanHeads(db, (id, head) => {
          if (id === undefined || head === undefined) {
            this.log.error('skipping document %s in list(): its head record is corrupt', id ?? '<undecodable id>')
            return
          }
          out.push({ id, fingerprint: head.fingerprint, bytes: head.bytes })
        })
      } catch (err) {
        throw wrapIo(this.path, err, 'list')
      }
      return out
    })
  }

  async load (docId: string): Promise<Uint8Array[]> {
    const id = docIdBytes(docId)
    return await this.run(async db => {
      const snapshot = db.snapshot()
      try {
        const hk = headKey(id)
        const rawHead = await db.get(hk, { snapshot })
        const out: Uint8Array[] = []
        for await (const [k, v] of db.iterator({ ...updateRange(id), snapshot })) {
          const body = unseal(k, v)
          if (body === undefined) {
            throw new StorageCorruptionError(docId, `update record ${seqOf(k)} failed its checksum; delete the document to re-sync it from peers`)
          }
          out.push(body)
        }
        if (rawHead !== undefined) {
          const hb = unseal(hk, rawHead)
          const head = hb === undefined ? undefined : decodeHead(hb)
          if (head === undefined) {
            this.log.error('head record of document %s is corrupt; its updates load, its fingerprint is rewritten by the next write', docId)
          } else if (head.records !== out.length) {
            throw new StorageCorruptionError(docId, `its head lists ${head.records} update records but ${out.length} were found; delete the document to re-sync it from peers`)
          }
        }
        return out
      } catch (err) {
        if (errorCode(err) === 'LEVEL_CORRUPTION') throw new StorageCorruptionError(docId, `LevelDB could not read its records: ${messageOf(err)}`, { cause: err })
        throw wrapIo(this.path, err, 'load')
      } finally {
        await snapshot.close()
      }
    })
  }

  async append (docId: string, updates: Uint8Array[], fingerprint: Uint8Array): Promise<void> {
    const id = docIdBytes(docId)
    await this.run(async db => {
      let write: Promise<void> | undefined
      let st: DocState | undefined
      await this.heads.withLock(docId, async () => {
        try {
          st = await this.heads.state(db, docId, id)
        } catch (err) {
          throw wrapIo(this.path, err, 'read')
        }
        const ops: BatchOp[] = []
        let size = fingerprint.length
        for (const u of updates) {
          const key = updateKey(id, st.nextSeq++)
          ops.push({ type: 'put', key, value: seal(key, u) })
          st.records++
          st.bytes += u.length
          st.tailBytes += u.length
          size += u.length
        }
        st.appended += updates.length
        st.exists = true
        st.fingerprint = fingerprint.slice()
        ops.push(headOp(st, st.fingerprint))
        write = this.commits.commit(ops, size, [docId])
        this.heads.track(st, write)
      })
      await write
      if (st !== undefined) this.compactor.schedule(docId, st)
    })
  }

  async replace (docId: string, snapshot: Uint8Array, fingerprint: Uint8Array): Promise<void> {
    await this.rewrite(docId, 'replace', (st, id, ops) => {
      const key = updateKey(id, st.nextSeq++)
      ops.push({ type: 'put', key, value: seal(key, snapshot) })
      Object.assign(st, { exists: true, records: 1, bytes: snapshot.length, tailBytes: 0, runs: 0, appended: 0, fingerprint: fingerprint.slice() })
      ops.push(headOp(st, fingerprint))
      return snapshot.length
    })
  }

  async delete (docId: string): Promise<void> {
    await this.rewrite(docId, 'delete', (st, id, ops) => {
      ops.push({ type: 'del', key: headKey(id) })
      Object.assign(st, { exists: false, records: 0, bytes: 0, tailBytes: 0, runs: 0, appended: 0, fingerprint: undefined })
      return 0
    }, () => { this.compactor.forget(docId) })
  }

  /**
   * Under the document's lock, once its last write is done: drop all its update records, let
   * `build` add the rest of the batch (returning the bytes it writes), and commit it atomically.
   * `after` runs under the lock once the batch is stored.
   */
  private async rewrite (docId: string, what: string, build: (st: DocState, id: Uint8Array, ops: BatchOp[]) => number, after?: () => void): Promise<void> {
    const id = docIdBytes(docId)
    await this.run(async db => {
      await this.heads.withLock(docId, async () => {
        try {
          const st = await this.heads.state(db, docId, id)
          await st.lastWrite
          const ops: BatchOp[] = (await db.keys({ ...updateRange(id) }).all()).map(key => ({ type: 'del', key }))
          const write = this.commits.commit(ops, build(st, id, ops), [docId])
          this.heads.track(st, write)
          await write
          after?.()
        } catch (err) {
          throw wrapIo(this.path, err, what)
        }
      })
    })
  }

  async getMeta (key: string): Promise<Uint8Array | undefined> {
    const k = metaKeyBytes(key)
    return await this.run(async db => {
      let raw: Uint8Array | undefined
      try {
        raw = await db.get(k)
      } catch (err) {
        throw wrapIo(this.path, err, 'read')
      }
      if (raw === undefined) return undefined
      const body = unseal(k, raw)
      if (body === undefined) throw new StorageCorruptionError(undefined, `metadata record "${key}" failed its checksum; write it again with setMeta`)
      return body
    })
  }

  async setMeta (key: string, value: Uint8Array): Promise<void> {
    const k = metaKeyBytes(key)
    await this.run(async () => {
      await this.commits.commit([{ type: 'put', key: k, value: seal(k, value) }], value.length, [])
    })
  }

  // ---------------------------------------------------------------- LevelStorage

  async compact (docId: string): Promise<DocStats | undefined> {
    const id = docIdBytes(docId)
    return await this.run(async db => await this.compactor.compactNow(db, docId, id))
  }

  async stats (docId: string): Promise<DocStats | undefined> {
    const id = docIdBytes(docId)
    return await this.run(async db => await this.heads.withLock(docId, async () => {
      const st = await this.heads.state(db, docId, id)
      return st.exists ? statsOf(st) : undefined
    }))
  }

  async idle (): Promise<void> {
    await this.compactor.idle()
  }

  async verify (): Promise<VerifyReport> {
    return await this.run(async db => await verifyStore(this.path, db))
  }
}

/** A document id checked by the engine's rules, in UTF-8. Throws `InvalidDocIdError`. */
function docIdBytes (docId: string): Uint8Array {
  validateDocId(docId)
  return encodeUtf8(docId)
}

function metaKeyBytes (key: string): Uint8Array {
  if (typeof key !== 'string' || key === '') throw new ConfigError('metadata key must be a non-empty string')
  if (!key.isWellFormed()) throw new ConfigError('metadata key is not valid UTF-8 (lone surrogate)')
  return metaKey(encodeUtf8(key))
}

/**
 * A durable `Storage` on LevelDB at `options.path`. Call `open()` before use (a node does it in
 * `start()`); `open()` rejects with `StorageError` when the store cannot be opened.
 */
export function createLevelStorage (options: LevelStorageOptions): LevelStorage {
  return new LevelStore(options)
}
