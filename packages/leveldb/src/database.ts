/**
 * Opening and closing the LevelDB database itself: loading the native module, the format record,
 * the loss check against the manifest of the last clean close (manifest.ts) on the way in, and
 * the manifest on the way out. Also `repairLevelStorage`.
 */
import { StorageError } from '@hearsay/core'
import type { Log, StorageLoss } from '@hearsay/core'
import type { ClassicLevel } from 'classic-level'
import { FORMAT_VERSION, MANIFEST_MAX_BYTES } from './constants.js'
import { messageOf, openError, wrapIo } from './io-errors.js'
import { findLosses, readManifest, recoveryErrors, removeManifest, writeManifest } from './manifest.js'
import type { StoredSeqs } from './manifest.js'
import type { Head } from './layout.js'
import { HEADS_END, HEADS_START, checked, decodeHead, decodeUtf8, decodeVersion, encodeVersion, formatKey, seal, unseal } from './layout.js'
import type { LevelSettings } from './options.js'

export type Db = ClassicLevel<Uint8Array, Uint8Array>
export type BatchOp = { type: 'put', key: Uint8Array, value: Uint8Array } | { type: 'del', key: Uint8Array }

/** Head records read per step of a scan. */
const SCAN_BATCH = 1000

/** An open database and what the open found lost. */
export interface Opened {
  db: Db
  losses: StorageLoss[]
}

/** Opens the database at `settings.path`, checks its format and looks for losses. */
export async function openDatabase (settings: LevelSettings, log: Log): Promise<Opened> {
  const { path } = settings
  let mod: typeof import('classic-level')
  try {
    mod = await import('classic-level')
  } catch (err) {
    throw new StorageError(`cannot load the LevelDB native module for ${process.platform}-${process.arch} (node ${process.version}): ${messageOf(err)}. ` +
      'classic-level ships prebuilt binaries for linux x64/arm64/armv6/armv7, macOS and Windows; on other platforms allow its build script ' +
      '(pnpm approve-builds classic-level) so it compiles from source.', { cause: err })
  }
  const db = new mod.ClassicLevel<Uint8Array, Uint8Array>(path, {
    keyEncoding: 'view',
    valueEncoding: 'view',
    cacheSize: settings.cacheSizeBytes,
    writeBufferSize: settings.writeBufferBytes,
    maxOpenFiles: settings.maxOpenFiles
  })
  try {
    await db.open()
  } catch (err) {
    throw openError(path, err)
  }
  try {
    await checkFormat(path, db)
  } catch (err) {
    await db.close().catch(() => {})
    throw err
  }
  let losses: StorageLoss[]
  try {
    losses = await checkLosses(path, db, log)
  } catch (err) {
    await db.close().catch(() => {})
    throw wrapIo(path, err, 'open')
  }
  log('opened %s (durability %s)', path, settings.durability)
  return { db, losses }
}

/** Writes the manifest of this clean close, then closes the database. */
export async function closeDatabase (path: string, db: Db, log: Log): Promise<void> {
  try {
    await writeManifest(path, await storedSeqs(db))
  } catch (err) {
    log.warn('could not write the manifest of %s (losses cannot be named at the next open): %s', path, messageOf(err))
  }
  try {
    await db.close()
  } catch (err) {
    throw new StorageError(`closing LevelDB store at ${path} failed: ${messageOf(err)}`, { cause: err })
  }
  log('closed %s', path)
}

/** A new store gets the format record; an existing one must be ours and not from a newer version. */
async function checkFormat (path: string, db: Db): Promise<void> {
  const key = formatKey()
  const raw = await db.get(key)
  if (raw === undefined) {
    const any = await db.keys({ limit: 1 }).all()
    if (any.length > 0) {
      throw new StorageError(`cannot open LevelDB store at ${path}: the directory holds a LevelDB database that was not written by @hearsay/leveldb. Give this node its own path.`)
    }
    await db.put(key, seal(key, encodeVersion(FORMAT_VERSION)), { sync: true })
    return
  }
  const body = unseal(key, raw)
  const version = body === undefined ? undefined : decodeVersion(body)
  if (version === undefined) throw new StorageError(`cannot open LevelDB store at ${path}: its format record is unreadable (corrupt). Run repairLevelStorage(path) or move the directory away.`)
  if (version > FORMAT_VERSION) {
    throw new StorageError(`cannot open LevelDB store at ${path}: it was written in format ${version} by a newer @hearsay/leveldb; this version reads format ${FORMAT_VERSION}. Upgrade @hearsay/leveldb.`)
  }
}

/**
 * LevelDB's recovery report and the manifest of the last clean close against the stored heads
 * (see manifest.ts); then the manifest is removed, so a crash from now on leaves none.
 */
async function checkLosses (path: string, db: Db, log: Log): Promise<StorageLoss[]> {
  const recovery = await recoveryErrors(path)
  const manifest = await readManifest(path, MANIFEST_MAX_BYTES)
  let found: StorageLoss[] = []
  if (recovery.length > 0 || !manifest.ok || manifest.manifest !== undefined) {
    found = findLosses(recovery, manifest, await storedSeqs(db))
  }
  for (const loss of found) log.warn('%s: %s', path, loss.message)
  if (!manifest.ok || manifest.manifest !== undefined) await removeManifest(path)
  return found
}

/** Every document with a head record and its next sequence number (-1: head unreadable). */
async function storedSeqs (db: Db): Promise<StoredSeqs> {
  const out: StoredSeqs = new Map()
  await scanHeads(db, (id, head) => { if (id !== undefined) out.set(id, head?.nextSeq ?? -1) })
  return out
}

/**
 * Every head record, in batches and decoded in place (start-up on a large store allocates little
 * besides what `visit` keeps): the document id (undefined when it does not decode) and its head
 * (undefined when the record fails its checksum or does not decode).
 */
export async function scanHeads (db: Db, visit: (id: string | undefined, head: Head | undefined) => void): Promise<void> {
  const it = db.iterator({ gte: HEADS_START, lt: HEADS_END })
  try {
    for (;;) {
      const batch = await it.nextv(SCAN_BATCH)
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

/** Asks LevelDB to rewrite a key range now (reclaiming deleted records); a failure is only logged. */
export async function compactRange (db: Db, range: { gte: Uint8Array, lte: Uint8Array }, what: string, log: Log): Promise<void> {
  await db.compactRange(range.gte, range.lte).catch((err: unknown) => {
    log.warn('LevelDB compactRange for %s failed: %s', what, messageOf(err))
  })
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
