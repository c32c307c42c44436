/**
 * `Storage` on LevelDB (classic-level). See README.md for the key layout, the durability contract,
 * compaction and corruption behaviour.
 */
import {
  compactUpdatesAsync,
  ConfigError,
  InvalidDocIdError,
  StorageCorruptionError,
  StorageError,
  silentLogger
} from '@hearsay/core'
import type { Log, Logger, Storage, StorageLoss, StoredDocInfo } from '@hearsay/core'
import type { ClassicLevel } from 'classic-level'
import {
  CACHE_SIZE_BYTES,
  COMPACT_AFTER_BYTES,
  COMPACT_AFTER_UPDATES,
  COMPACTION_MERGE_BATCH,
  DURABILITY,
  FORMAT_VERSION,
  LOG_COMPONENT,
  MAX_COMMIT_BYTES,
  MAX_DOC_ID_BYTES,
  HEAD_CACHE_ENTRIES,
  MANIFEST_MAX_BYTES,
  MAX_OPEN_FILES,
  WRITE_BUFFER_BYTES
} from './constants.js'
import type { Durability } from './constants.js'
import { findLosses, readManifest, recoveryErrors, removeManifest, writeManifest } from './manifest.js'
import type { StoredSeqs } from './manifest.js'
import {
  HEADS_END,
  HEADS_START,
  TAG_HEAD,
  TAG_UPDATE,
  decodeHead,
  decodeUtf8,
  decodeVersion,
  encodeHead,
  encodeUtf8,
  encodeVersion,
  formatKey,
  headKey,
  metaKey,
  checked,
  seal,
  seqOf,
  unseal,
  updateKey,
  updateRange
} from './layout.js'

export interface LevelStorageOptions {
  /** Directory of the LevelDB store. Created when missing. */
  path: string
  /** Where log lines go (component `hearsay:leveldb`). @default silentLogger() */
  logger?: Logger
  /**
   * When a write counts as stored, i.e. when `append`, `replace`, `delete` and `setMeta` resolve.
   * - `'power'`: written and fsynced. Survives a killed process, a kernel panic and power loss.
   * - `'process'`: handed to the operating system. Survives a killed process (kill -9, crash,
   *   out-of-memory kill), NOT power loss or a kernel panic: the last writes before the cut may
   *   be lost (whole batches, never half of one).
   * @default DURABILITY ('power')
   * @remarks Concurrent writes share one fsync, so `'power'` costs little when the engine
   * batches its writes; choose `'process'` for write-heavy nodes whose data also lives on peers.
   */
  durability?: Durability
  /** Compact a document automatically once it holds more than this many update records. @default COMPACT_AFTER_UPDATES (500) */
  compactAfterUpdates?: number
  /** Compact a document automatically once updates appended since its last compaction exceed this many bytes and the size of its snapshot. @default COMPACT_AFTER_BYTES (1 MiB) */
  compactAfterBytes?: number
  /** Run compaction automatically in the background when a threshold is crossed. @default true */
  autoCompact?: boolean
  /** Updates applied per transaction during compaction, with the event loop given back between batches. @default COMPACTION_MERGE_BATCH (100) */
  compactionMergeBatch?: number
  /** Largest group-commit batch, in bytes. @default MAX_COMMIT_BYTES (4 MiB) */
  maxCommitBytes?: number
  /** LevelDB block cache, in bytes. @default CACHE_SIZE_BYTES (8 MiB) */
  cacheSizeBytes?: number
  /** LevelDB write buffer (memtable), in bytes. @default WRITE_BUFFER_BYTES (4 MiB) */
  writeBufferBytes?: number
  /** Most table files open at once. @default MAX_OPEN_FILES (1000) @remarks Lower it where the fd limit is small. */
  maxOpenFiles?: number
}

/** What is stored for one document. */
export interface DocStats {
  /** Update records (a compacted snapshot counts as one). */
  records: number
  /** Bytes of the stored updates (payloads, without keys and checksums). */
  bytes: number
  /** Bytes appended since the last compaction or replace. */
  tailBytes: number
}

export interface CorruptionReport {
  /** The document concerned, or undefined for metadata and unreadable keys. */
  docId: string | undefined
  message: string
}

export interface VerifyReport {
  /** Documents with a readable head record. */
  documents: number
  /** Update records checked. */
  records: number
  /** Everything that failed a check. Empty when the store is sound. */
  corrupt: CorruptionReport[]
}

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

type Db = ClassicLevel<Uint8Array, Uint8Array>
type BatchOp = { type: 'put', key: Uint8Array, value: Uint8Array } | { type: 'del', key: Uint8Array }

interface PendingWrite {
  ops: BatchOp[]
  bytes: number
  docIds: string[]
  resolve: () => void
  reject: (err: Error) => void
}

/** Cached head of a document touched by a write in this session. */
interface DocState {
  id: Uint8Array
  exists: boolean
  nextSeq: number
  records: number
  bytes: number
  tailBytes: number
  /** Undefined when the stored head was unreadable and the counters were rebuilt. */
  fingerprint: Uint8Array | undefined
  /** Settles when the last write queued for this document has been committed (or failed). */
  lastWrite: Promise<void>
  /** Writes queued and not yet settled. The entry may leave the cache only at 0. */
  pending: number
  /** A write of this document failed: re-read the head once its queued writes settle. */
  stale: boolean
}

class Aborted extends Error {}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function positiveInt (name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${String(value)}`)
  return v
}

function errorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Head records read per step of `list()`. */
const LIST_BATCH = 1000

const nextTick = async (): Promise<void> => { await new Promise<void>(resolve => setImmediate(resolve)) }

export class LevelStorageImpl implements LevelStorage {
  readonly path: string
  readonly durability: Durability
  private readonly log: Log
  private readonly compactAfterUpdates: number
  private readonly compactAfterBytes: number
  private readonly autoCompact: boolean
  private readonly mergeBatch: number
  private readonly maxCommitBytes: number
  private readonly cacheSize: number
  private readonly writeBufferSize: number
  private readonly maxOpenFiles: number

  private db: Db | undefined
  private state: 'closed' | 'opening' | 'open' | 'closing' = 'closed'
  private opening: Promise<void> | undefined
  private closing: Promise<void> | undefined
  private readonly docs = new Map<string, DocState>()
  /** What the last open found lost (see manifest.ts). */
  private found: StorageLoss[] = []
  private readonly locks = new Map<string, Promise<void>>()
  private readonly inflight = new Set<Promise<unknown>>()
  private queue: PendingWrite[] = []
  private writing: Promise<void> | undefined
  private readonly toCompact = new Set<string>()
  private compacting: Promise<void> | undefined

  constructor (options: LevelStorageOptions) {
    if (typeof options?.path !== 'string' || options.path === '') throw new ConfigError('createLevelStorage: `path` must be a non-empty string')
    this.path = options.path
    this.log = (options.logger ?? silentLogger()).forComponent(LOG_COMPONENT)
    const durability = options.durability ?? DURABILITY
    if (durability !== 'process' && durability !== 'power') throw new ConfigError(`durability must be 'process' or 'power', got ${String(durability)}`)
    this.durability = durability
    this.compactAfterUpdates = positiveInt('compactAfterUpdates', options.compactAfterUpdates, COMPACT_AFTER_UPDATES)
    this.compactAfterBytes = positiveInt('compactAfterBytes', options.compactAfterBytes, COMPACT_AFTER_BYTES)
    this.autoCompact = options.autoCompact ?? true
    this.mergeBatch = positiveInt('compactionMergeBatch', options.compactionMergeBatch, COMPACTION_MERGE_BATCH, 2)
    this.maxCommitBytes = positiveInt('maxCommitBytes', options.maxCommitBytes, MAX_COMMIT_BYTES)
    this.cacheSize = positiveInt('cacheSizeBytes', options.cacheSizeBytes, CACHE_SIZE_BYTES, 0)
    this.writeBufferSize = positiveInt('writeBufferBytes', options.writeBufferBytes, WRITE_BUFFER_BYTES)
    this.maxOpenFiles = positiveInt('maxOpenFiles', options.maxOpenFiles, MAX_OPEN_FILES, 16)
  }

  // ---------------------------------------------------------------- lifecycle

  async open (): Promise<void> {
    if (this.state === 'open') return
    if (this.state === 'opening' && this.opening !== undefined) return await this.opening
    if (this.state === 'closing') await this.closing
    this.state = 'opening'
    this.opening = this.doOpen().then(() => {
      this.state = 'open'
    }, (err: unknown) => {
      this.state = 'closed'
      throw err
    }).finally(() => { this.opening = undefined })
    return await this.opening
  }

  private async doOpen (): Promise<void> {
    let mod: typeof import('classic-level')
    try {
      mod = await import('classic-level')
    } catch (err) {
      throw new StorageError(`cannot load the LevelDB native module for ${process.platform}-${process.arch} (node ${process.version}): ${messageOf(err)}. ` +
        'classic-level ships prebuilt binaries for linux x64/arm64/armv6/armv7, macOS and Windows; on other platforms allow its build script ' +
        '(pnpm approve-builds classic-level) so it compiles from source.', { cause: err })
    }
    const db = new mod.ClassicLevel<Uint8Array, Uint8Array>(this.path, {
      keyEncoding: 'view',
      valueEncoding: 'view',
      cacheSize: this.cacheSize,
      writeBufferSize: this.writeBufferSize,
      maxOpenFiles: this.maxOpenFiles
    })
    try {
      await db.open()
    } catch (err) {
      throw this.openError(err)
    }
    try {
      await this.checkFormat(db)
    } catch (err) {
      await db.close().catch(() => {})
      throw err
    }
    try {
      await this.checkLosses(db)
    } catch (err) {
      await db.close().catch(() => {})
      throw this.wrapIo(err, 'open')
    }
    this.db = db
    this.log('opened %s (durability %s)', this.path, this.durability)
  }

  /**
   * LevelDB's recovery report and the manifest of the last clean close against the stored heads
   * (see manifest.ts); then the manifest is removed, so a crash from now on leaves none.
   */
  private async checkLosses (db: Db): Promise<void> {
    const recovery = await recoveryErrors(this.path)
    const manifest = await readManifest(this.path, MANIFEST_MAX_BYTES)
    this.found = []
    if (recovery.length > 0 || !manifest.ok || manifest.manifest !== undefined) {
      this.found = findLosses(recovery, manifest, await this.storedSeqs(db))
    }
    for (const loss of this.found) this.log.warn('%s: %s', this.path, loss.message)
    if (!manifest.ok || manifest.manifest !== undefined) await removeManifest(this.path)
  }

  /** Every document with a head record and its next sequence number (-1: head unreadable). */
  private async storedSeqs (db: Db): Promise<StoredSeqs> {
    const out: StoredSeqs = new Map()
    await scanHeads(db, (id, head) => { if (id !== undefined) out.set(id, head?.nextSeq ?? -1) })
    return out
  }

  losses (): StorageLoss[] {
    return this.found.map(l => ({ ...l, docIds: [...l.docIds] }))
  }

  private openError (err: unknown): StorageError {
    const cause = (err as { cause?: unknown } | null)?.cause ?? err
    const code = errorCode(cause) ?? errorCode(err)
    const detail = messageOf(cause)
    const where = `cannot open LevelDB store at ${this.path}`
    let message: string
    if (code === 'LEVEL_LOCKED') {
      message = `${where}: it is locked (${detail}). Another process, or another open storage instance in this process, is using it. ` +
        'Stop that process or close that instance, or give this node its own path.'
    } else if (code === 'LEVEL_CORRUPTION') {
      message = `${where}: LevelDB reports corruption (${detail}). Run repairLevelStorage(path) to salvage what can be read ` +
        '(peers re-sync whatever is lost), or move the directory away to start empty.'
    } else if (code === 'LEVEL_IO_ERROR' || errorCode(cause)?.startsWith('E') === true) {
      message = `${where}: I/O error (${detail}). Check that the directory can be created and written by this user and that the disk is not full.`
    } else {
      message = `${where}: ${detail}`
    }
    return new StorageError(message, { cause: err })
  }

  private async checkFormat (db: Db): Promise<void> {
    const key = formatKey()
    const raw = await db.get(key)
    if (raw === undefined) {
      const any = await db.keys({ limit: 1 }).all()
      if (any.length > 0) {
        throw new StorageError(`cannot open LevelDB store at ${this.path}: the directory holds a LevelDB database that was not written by @hearsay/leveldb. Give this node its own path.`)
      }
      await db.put(key, seal(key, encodeVersion(FORMAT_VERSION)), { sync: true })
      return
    }
    const body = unseal(key, raw)
    const version = body === undefined ? undefined : decodeVersion(body)
    if (version === undefined) throw new StorageError(`cannot open LevelDB store at ${this.path}: its format record is unreadable (corrupt). Run repairLevelStorage(path) or move the directory away.`)
    if (version > FORMAT_VERSION) {
      throw new StorageError(`cannot open LevelDB store at ${this.path}: it was written in format ${version} by a newer @hearsay/leveldb; this version reads format ${FORMAT_VERSION}. Upgrade @hearsay/leveldb.`)
    }
  }

  async close (): Promise<void> {
    if (this.state === 'opening') await this.opening?.catch(() => {})
    if (this.state === 'closed') return
    if (this.state === 'closing') return await this.closing
    this.state = 'closing'
    this.closing = this.doClose().finally(() => {
      this.state = 'closed'
      this.closing = undefined
    })
    return await this.closing
  }

  private async doClose (): Promise<void> {
    this.toCompact.clear()
    await this.compacting
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight])
    await this.writing
    const db = this.db
    if (db !== undefined) {
      try {
        await writeManifest(this.path, await this.storedSeqs(db))
      } catch (err) {
        this.log.warn('could not write the manifest of %s (losses cannot be named at the next open): %s', this.path, messageOf(err))
      }
    }
    this.db = undefined
    this.docs.clear()
    try {
      await db?.close()
    } catch (err) {
      throw new StorageError(`closing LevelDB store at ${this.path} failed: ${messageOf(err)}`, { cause: err })
    }
    this.log('closed %s', this.path)
  }

  private openDb (): Db {
    if (this.state !== 'open' || this.db === undefined) throw new StorageError(`LevelDB store at ${this.path} is not open`)
    return this.db
  }

  /** Runs a public operation: rejects when not open, and lets close() wait for it. */
  private async run<T> (fn: (db: Db) => Promise<T>): Promise<T> {
    const db = this.openDb()
    const p = fn(db)
    this.inflight.add(p)
    try {
      return await p
    } finally {
      this.inflight.delete(p)
    }
  }

  // ---------------------------------------------------------------- helpers

  private docIdBytes (docId: string): Uint8Array {
    if (typeof docId !== 'string' || docId === '') throw new InvalidDocIdError('document id must be a non-empty string')
    if (LONE_SURROGATE.test(docId)) throw new InvalidDocIdError('document id is not valid UTF-8 (lone surrogate)')
    const b = encodeUtf8(docId)
    if (b.length > MAX_DOC_ID_BYTES) throw new InvalidDocIdError(`document id is ${b.length} bytes; the limit is ${MAX_DOC_ID_BYTES}`)
    return b
  }

  private metaKeyBytes (key: string): Uint8Array {
    if (typeof key !== 'string' || key === '') throw new ConfigError('metadata key must be a non-empty string')
    if (LONE_SURROGATE.test(key)) throw new ConfigError('metadata key is not valid UTF-8 (lone surrogate)')
    return metaKey(encodeUtf8(key))
  }

  private async withLock<T> (docId: string, fn: () => Promise<T>): Promise<T> {
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

  private wrapIo (err: unknown, what: string): Error {
    if (err instanceof StorageError || err instanceof StorageCorruptionError || err instanceof Aborted) return err
    return new StorageError(`${what} in LevelDB store at ${this.path} failed: ${messageOf(err)}`, { cause: err })
  }

  /** Queue a write; concurrent writes are committed together as one atomic batch (FIFO). */
  private async commit (ops: BatchOp[], bytes: number, docIds: string[]): Promise<void> {
    return await new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, bytes, docIds, resolve, reject })
      if (this.writing === undefined) this.writing = this.drain()
    })
  }

  private async drain (): Promise<void> {
    const sync = this.durability === 'power'
    while (this.queue.length > 0) {
      const take: PendingWrite[] = []
      let size = 0
      while (this.queue.length > 0 && (take.length === 0 || size + (this.queue[0] as PendingWrite).bytes <= this.maxCommitBytes)) {
        const w = this.queue.shift() as PendingWrite
        take.push(w)
        size += w.bytes
      }
      const ops = take.length === 1 ? (take[0] as PendingWrite).ops : take.flatMap(w => w.ops)
      try {
        const db = this.db
        if (db === undefined) throw new StorageError(`LevelDB store at ${this.path} is not open`)
        await db.batch(ops, { sync })
        for (const w of take) w.resolve()
      } catch (err) {
        const e = this.wrapIo(err, 'write')
        this.log.error('write of %d operations failed: %s', ops.length, messageOf(err))
        for (const w of take) {
          for (const id of w.docIds) {
            const st = this.docs.get(id)
            if (st !== undefined) st.stale = true
          }
          w.reject(e)
        }
      }
    }
    this.writing = undefined
  }

  /** The cached state of a document, read from its head on first use. Call under the doc lock. */
  private async docState (db: Db, docId: string, id: Uint8Array): Promise<DocState> {
    const cached = this.docs.get(docId)
    if (cached !== undefined && !cached.stale) {
      this.docs.delete(docId) // most recently used last
      this.docs.set(docId, cached)
      return cached
    }
    if (cached !== undefined) await cached.lastWrite
    const st = await this.readHead(db, docId, id)
    if (cached !== undefined) {
      st.lastWrite = cached.lastWrite
      st.pending = cached.pending
    }
    this.docs.set(docId, st)
    return st
  }

  /** Records a queued write of a document; the head cache is trimmed once it settles. */
  private track (docId: string, st: DocState, write: Promise<void>): void {
    st.pending++
    st.lastWrite = write.then(() => {}, () => {}).finally(() => {
      st.pending--
      this.trimCache()
    })
  }

  /** Drops least recently used heads beyond `HEAD_CACHE_ENTRIES` that have no write or lock in flight. */
  private trimCache (): void {
    let excess = this.docs.size - HEAD_CACHE_ENTRIES
    if (excess <= 0) return
    for (const [docId, st] of this.docs) {
      if (excess <= 0) break
      if (st.pending > 0 || this.locks.has(docId)) continue
      this.docs.delete(docId)
      excess--
    }
  }

  private async readHead (db: Db, docId: string, id: Uint8Array): Promise<DocState> {
    const key = headKey(id)
    const raw = await db.get(key)
    const fresh: DocState = { id, exists: false, nextSeq: 0, records: 0, bytes: 0, tailBytes: 0, fingerprint: undefined, lastWrite: Promise.resolve(), pending: 0, stale: false }
    if (raw === undefined) {
      const last = await db.keys({ ...updateRange(id), reverse: true, limit: 1 }).all()
      if (last.length === 0) return fresh
      this.log.warn('document %s has update records but no head record; adopting them', docId)
      return await this.rebuildHead(db, id, fresh)
    }
    const body = unseal(key, raw)
    const head = body === undefined ? undefined : decodeHead(body)
    if (head === undefined) {
      this.log.error('head record of document %s is corrupt; rebuilding its counters from its update records (its fingerprint is unknown until the next write)', docId)
      return await this.rebuildHead(db, id, fresh)
    }
    return { ...fresh, exists: true, ...head }
  }

  private async rebuildHead (db: Db, id: Uint8Array, st: DocState): Promise<DocState> {
    for await (const [k, v] of db.iterator({ ...updateRange(id) })) {
      st.exists = true
      st.nextSeq = seqOf(k) + 1
      st.records++
      st.bytes += Math.max(0, v.length - 4)
    }
    st.tailBytes = st.bytes
    return st
  }

  private async recordKeys (db: Db, id: Uint8Array): Promise<Uint8Array[]> {
    return await db.keys({ ...updateRange(id) }).all()
  }

  private headOps (st: DocState, fingerprint: Uint8Array): BatchOp {
    const key = headKey(st.id)
    return {
      type: 'put',
      key,
      value: seal(key, encodeHead({ nextSeq: st.nextSeq, records: st.records, bytes: st.bytes, tailBytes: st.tailBytes, fingerprint }))
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
        throw this.wrapIo(err, 'list')
      }
      return out
    })
  }

  async load (docId: string): Promise<Uint8Array[]> {
    const id = this.docIdBytes(docId)
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
        throw this.wrapIo(err, 'load')
      } finally {
        await snapshot.close()
      }
    })
  }

  async append (docId: string, updates: Uint8Array[], fingerprint: Uint8Array): Promise<void> {
    const id = this.docIdBytes(docId)
    await this.run(async db => {
      let write: Promise<void> | undefined
      let st: DocState | undefined
      await this.withLock(docId, async () => {
        try {
          st = await this.docState(db, docId, id)
        } catch (err) {
          throw this.wrapIo(err, 'read')
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
        st.exists = true
        st.fingerprint = fingerprint.slice()
        ops.push(this.headOps(st, st.fingerprint))
        write = this.commit(ops, size, [docId])
        this.track(docId, st, write)
      })
      await write
      if (st !== undefined) this.maybeScheduleCompaction(docId, st)
    })
  }

  async replace (docId: string, snapshot: Uint8Array, fingerprint: Uint8Array): Promise<void> {
    await this.rewrite(docId, 'replace', (st, id, ops) => {
      const key = updateKey(id, st.nextSeq++)
      ops.push({ type: 'put', key, value: seal(key, snapshot) })
      Object.assign(st, { exists: true, records: 1, bytes: snapshot.length, tailBytes: 0, fingerprint: fingerprint.slice() })
      ops.push(this.headOps(st, fingerprint))
      return snapshot.length
    })
  }

  async delete (docId: string): Promise<void> {
    await this.rewrite(docId, 'delete', (st, id, ops) => {
      ops.push({ type: 'del', key: headKey(id) })
      Object.assign(st, { exists: false, records: 0, bytes: 0, tailBytes: 0, fingerprint: undefined })
      return 0
    }, () => { this.toCompact.delete(docId) })
  }

  /**
   * Under the document's lock, once its last write is done: drop all its update records, let
   * `build` add the rest of the batch (returning the bytes it writes), and commit it atomically.
   * `after` runs under the lock once the batch is stored.
   */
  private async rewrite (docId: string, what: string, build: (st: DocState, id: Uint8Array, ops: BatchOp[]) => number, after?: () => void): Promise<void> {
    const id = this.docIdBytes(docId)
    await this.run(async db => {
      await this.withLock(docId, async () => {
        try {
          const st = await this.docState(db, docId, id)
          await st.lastWrite
          const ops: BatchOp[] = (await this.recordKeys(db, id)).map(key => ({ type: 'del', key }))
          const write = this.commit(ops, build(st, id, ops), [docId])
          this.track(docId, st, write)
          await write
          after?.()
        } catch (err) {
          throw this.wrapIo(err, what)
        }
      })
    })
  }

  async getMeta (key: string): Promise<Uint8Array | undefined> {
    const k = this.metaKeyBytes(key)
    return await this.run(async db => {
      let raw: Uint8Array | undefined
      try {
        raw = await db.get(k)
      } catch (err) {
        throw this.wrapIo(err, 'read')
      }
      if (raw === undefined) return undefined
      const body = unseal(k, raw)
      if (body === undefined) throw new StorageCorruptionError(undefined, `metadata record "${key}" failed its checksum; write it again with setMeta`)
      return body
    })
  }

  async setMeta (key: string, value: Uint8Array): Promise<void> {
    const k = this.metaKeyBytes(key)
    await this.run(async () => {
      await this.commit([{ type: 'put', key: k, value: seal(k, value) }], value.length, [])
    })
  }

  // ---------------------------------------------------------------- compaction

  private needsCompaction (st: DocState): boolean {
    // bytes: only once the tail outgrows the snapshot too, so each compaction reads at most about
    // twice what was appended since the last one and total work stays linear in what is written
    return st.exists && st.records > 1 && (st.records > this.compactAfterUpdates ||
      (st.tailBytes > this.compactAfterBytes && st.tailBytes > st.bytes - st.tailBytes))
  }

  private maybeScheduleCompaction (docId: string, st: DocState): void {
    if (!this.autoCompact || this.state !== 'open' || !this.needsCompaction(st)) return
    this.toCompact.add(docId)
    if (this.compacting === undefined) {
      this.compacting = this.runCompactions().finally(() => { this.compacting = undefined })
    }
  }

  private async runCompactions (): Promise<void> {
    await nextTick()
    while (this.toCompact.size > 0 && this.state === 'open') {
      const docId = this.toCompact.values().next().value as string
      this.toCompact.delete(docId)
      try {
        const before = this.docs.get(docId)?.bytes ?? 0
        const stats = await this.compactDoc(docId, false)
        // LevelDB keeps the deleted records in its files until its own compaction reaches them:
        // when much was dropped, ask it to rewrite the document's range now
        if (stats !== undefined && before - stats.bytes > this.compactAfterBytes && this.state === 'open' && this.db !== undefined) {
          await this.compactRange(this.db, docId, updateRange(this.docIdBytes(docId)))
        }
      } catch (err) {
        if (err instanceof Aborted) return
        this.log.error('compaction of document %s failed: %s', docId, messageOf(err))
      }
    }
  }

  /** Merges every record of a document into one. Returns the stats afterwards. */
  private async compactDoc (docId: string, force: boolean): Promise<DocStats | undefined> {
    const db = this.openDb()
    const id = this.docIdBytes(docId)
    return await this.withLock(docId, async () => {
      const st = await this.docState(db, docId, id)
      if (!st.exists) return undefined
      if (st.records <= 1 || (!force && !this.needsCompaction(st))) return this.statsOf(st)
      if (st.fingerprint === undefined) {
        this.log.warn('not compacting document %s: its head is being rebuilt and its fingerprint is unknown until the next write', docId)
        return this.statsOf(st)
      }
      await st.lastWrite
      const started = performance.now()
      const keys: Uint8Array[] = []
      const bodies: Uint8Array[] = []
      for await (const [k, v] of db.iterator({ ...updateRange(id) })) {
        const body = unseal(k, v)
        if (body === undefined) throw new StorageCorruptionError(docId, `update record ${seqOf(k)} failed its checksum; not compacting. Delete the document to re-sync it from peers`)
        keys.push(k)
        bodies.push(body)
      }
      if (bodies.length <= 1) return this.statsOf(st)
      const before = bodies.reduce((n, b) => n + b.length, 0)
      let merged: Uint8Array
      try {
        merged = await compactUpdatesAsync(bodies, async () => {
          await nextTick()
          if (this.state !== 'open') throw new Aborted('closing')
        }, { batch: this.mergeBatch })
      } catch (err) {
        if (err instanceof Aborted) throw err
        throw new StorageCorruptionError(docId, `its updates cannot be applied (${messageOf(err)}); not compacting`, { cause: err })
      }
      const ops: BatchOp[] = keys.map(key => ({ type: 'del', key }))
      const key = updateKey(id, st.nextSeq++)
      ops.push({ type: 'put', key, value: seal(key, merged) })
      Object.assign(st, { records: 1, bytes: merged.length, tailBytes: 0 })
      ops.push(this.headOps(st, st.fingerprint))
      const write = this.commit(ops, merged.length, [docId])
      this.track(docId, st, write)
      await write
      this.log('compacted document %s: %d records, %d bytes -> 1 record, %d bytes in %d ms', docId, keys.length, before, merged.length, Math.round(performance.now() - started))
      return this.statsOf(st)
    })
  }

  private statsOf (st: DocState): DocStats {
    return { records: st.records, bytes: st.bytes, tailBytes: st.tailBytes }
  }

  async compact (docId: string): Promise<DocStats | undefined> {
    const id = this.docIdBytes(docId)
    return await this.run(async db => {
      this.toCompact.delete(docId)
      const range = updateRange(id)
      // LevelDB writes its memtable out unchanged, dead versions included, at a level where a
      // manual compaction does not reach it: write the current records out first, so the
      // compaction after the rewrite below merges the rewrite with them and drops the dead ones
      await this.compactRange(db, docId, range)
      let stats: DocStats | undefined
      try {
        stats = await this.compactDoc(docId, true)
      } catch (err) {
        if (err instanceof Aborted) throw new StorageError(`LevelDB store at ${this.path} closed during compaction`)
        throw this.wrapIo(err, 'compaction')
      }
      if (stats !== undefined) await this.compactRange(db, docId, range)
      return stats
    })
  }

  private async compactRange (db: Db, docId: string, range: { gte: Uint8Array, lte: Uint8Array }): Promise<void> {
    await db.compactRange(range.gte, range.lte).catch((err: unknown) => {
      this.log.warn('LevelDB compactRange for %s failed: %s', docId, messageOf(err))
    })
  }

  async stats (docId: string): Promise<DocStats | undefined> {
    const id = this.docIdBytes(docId)
    return await this.run(async db => await this.withLock(docId, async () => {
      const st = await this.docState(db, docId, id)
      return st.exists ? this.statsOf(st) : undefined
    }))
  }

  async idle (): Promise<void> {
    while (this.compacting !== undefined) await this.compacting
  }

  async verify (): Promise<VerifyReport> {
    return await this.run(async db => {
      const snapshot = db.snapshot()
      const corrupt: CorruptionReport[] = []
      const counted = new Map<string, number>()
      const heads = new Map<string, number>()
      let records = 0
      try {
        for await (const [k, v] of db.iterator({ gte: new Uint8Array([TAG_UPDATE]), lt: new Uint8Array([TAG_UPDATE + 1]), snapshot })) {
          records++
          const len = k.length >= 3 ? ((k[1] as number) << 8) | (k[2] as number) : -1
          const docId = len >= 0 && k.length === 3 + len + 8 ? decodeUtf8(k.subarray(3, 3 + len)) : undefined
          if (docId === undefined) {
            corrupt.push({ docId: undefined, message: 'an update record has a malformed key' })
            continue
          }
          counted.set(docId, (counted.get(docId) ?? 0) + 1)
          if (unseal(k, v) === undefined) corrupt.push({ docId, message: `update record ${seqOf(k)} failed its checksum` })
        }
        for await (const [k, v] of db.iterator({ gte: new Uint8Array([TAG_HEAD]), lt: new Uint8Array([TAG_HEAD + 1]), snapshot })) {
          const docId = decodeUtf8(k.subarray(1))
          const body = unseal(k, v)
          const head = body === undefined ? undefined : decodeHead(body)
          if (docId === undefined || head === undefined) {
            corrupt.push({ docId, message: 'head record (fingerprint) is corrupt' })
            if (docId !== undefined) heads.set(docId, -1)
            continue
          }
          heads.set(docId, head.records)
        }
      } catch (err) {
        throw this.wrapIo(err, 'verify')
      } finally {
        await snapshot.close()
      }
      for (const [docId, n] of heads) {
        const found = counted.get(docId) ?? 0
        if (n >= 0 && n !== found) corrupt.push({ docId, message: `head lists ${n} update records but ${found} were found` })
      }
      for (const docId of counted.keys()) {
        if (!heads.has(docId)) corrupt.push({ docId, message: 'update records without a head record' })
      }
      return { documents: [...heads.values()].filter(n => n >= 0).length, records, corrupt }
    })
  }
}

/**
 * A durable `Storage` on LevelDB at `options.path`. Call `open()` before use (a node does it in
 * `start()`); `open()` rejects with `StorageError` when the store cannot be opened.
 */
export function createLevelStorage (options: LevelStorageOptions): LevelStorage {
  return new LevelStorageImpl(options)
}

/**
 * Attempt to salvage a damaged store (LevelDB `RepairDB`): keeps every record that can be read.
 * The store must be closed. Afterwards `verify()` tells which documents are still damaged; delete
 * them and let peers re-sync them.
 */
export async function repairLevelStorage (path: string): Promise<void> {
  const { ClassicLevel } = await import('classic-level')
  try {
    await ClassicLevel.repair(path)
  } catch (err) {
    throw new StorageError(`repair of LevelDB store at ${path} failed: ${messageOf(err)}`, { cause: err })
  }
}

/**
 * Every head record, in batches and decoded in place (start-up on a large store allocates little
 * besides what `visit` keeps): the document id (undefined when it does not decode) and its head
 * (undefined when the record fails its checksum or does not decode).
 */
async function scanHeads (db: Db, visit: (id: string | undefined, head: ReturnType<typeof decodeHead> | undefined) => void): Promise<void> {
  const it = db.iterator({ gte: HEADS_START, lt: HEADS_END })
  try {
    for (;;) {
      const batch = await it.nextv(LIST_BATCH)
      if (batch.length === 0) break
      for (const [k, v] of batch) {
        const body = checked(k, v)
        visit(decodeUtf8(k.subarray(1)), body === undefined ? undefined : decodeHead(body))
      }
    }
  } finally {
    await it.close()
  }
}
