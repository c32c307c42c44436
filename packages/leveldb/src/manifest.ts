/**
 * Loss detection at open. LevelDB recovers its write-ahead log (`*.log`) at open and, when a
 * record in it fails its checksum, drops it and carries on without an error: the documents
 * written in it are simply gone. Two independent checks catch that:
 *
 * - the recovery report: LevelDB writes what it dropped to the `LOG` file of the directory
 *   (`dropping N bytes; Corruption: ...`); it is read right after open (a few KB, ~0.1 ms);
 * - the manifest: on close, the id and next sequence number of every stored document are written
 *   to `HEARSAY-MANIFEST` beside the data (crc32-checked, written to a temporary file, fsynced and
 *   renamed). At the next open they are checked against the stored heads (one scan): a document
 *   that is gone, or whose sequence number went back (its latest writes were dropped), is
 *   reported. The manifest is then removed, so after a crash there is none and nothing is
 *   reported falsely; a document deleted or created while the store is open is never compared
 *   against a stale list.
 */
import { crc32 } from '@hearsay/core'
import type { StorageLoss } from '@hearsay/core'
import { open as openFile, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { MANIFEST_MAX_IDS, RECOVERY_LOG_MAX_BYTES } from './constants.js'

export const MANIFEST_FILE = 'HEARSAY-MANIFEST'
const MAGIC = 'hearsay-manifest 1'

export interface Manifest {
  /** Documents stored at the last clean close. */
  count: number
  /** Their ids, unless there were more than `MANIFEST_MAX_IDS`. */
  ids: string[] | undefined
  /** The next sequence number of each (same order), with `ids`. */
  seqs: number[] | undefined
}

/** What the store holds per document: its next sequence number (-1: head unreadable). */
export type StoredSeqs = Map<string, number>

export type ManifestRead = { ok: true, manifest: Manifest | undefined } | { ok: false, reason: string }

const hex = (n: number): string => (n >>> 0).toString(16).padStart(8, '0')

/** Writes the manifest durably (temporary file, fsync, rename, fsync of the directory). */
export async function writeManifest (dir: string, stored: StoredSeqs): Promise<void> {
  const small = stored.size <= MANIFEST_MAX_IDS
  const body = JSON.stringify({ count: stored.size, ids: small ? [...stored.keys()] : undefined, seqs: small ? [...stored.values()] : undefined })
  const text = `${MAGIC}\n${hex(crc32(new TextEncoder().encode(body)))}\n${body}`
  const tmp = join(dir, `${MANIFEST_FILE}.tmp`)
  const f = await openFile(tmp, 'w')
  try {
    await f.writeFile(text)
    await f.sync()
  } finally {
    await f.close()
  }
  await rename(tmp, join(dir, MANIFEST_FILE))
  await syncDir(dir)
}

/** Reads and checks the manifest; `manifest: undefined` when there is none. Never throws. */
export async function readManifest (dir: string, maxBytes: number): Promise<ManifestRead> {
  const path = join(dir, MANIFEST_FILE)
  try {
    const st = await stat(path).catch(() => undefined)
    if (st === undefined) return { ok: true, manifest: undefined }
    if (st.size > maxBytes) return { ok: false, reason: `the manifest is ${st.size} bytes, more than the ${maxBytes} expected` }
    const text = await readFile(path, 'utf8')
    const first = text.indexOf('\n')
    const second = text.indexOf('\n', first + 1)
    if (first < 0 || second < 0 || text.slice(0, first) !== MAGIC) return { ok: false, reason: 'the manifest has no valid header' }
    const body = text.slice(second + 1)
    if (text.slice(first + 1, second) !== hex(crc32(new TextEncoder().encode(body)))) return { ok: false, reason: 'the manifest failed its checksum' }
    const parsed = JSON.parse(body) as { count?: unknown, ids?: unknown, seqs?: unknown }
    const count = parsed.count
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) return { ok: false, reason: 'the manifest has no valid count' }
    let ids: string[] | undefined
    if (parsed.ids !== undefined) {
      if (!Array.isArray(parsed.ids) || parsed.ids.length !== count || parsed.ids.length > MANIFEST_MAX_IDS || !parsed.ids.every(id => typeof id === 'string')) {
        return { ok: false, reason: 'the manifest has an invalid id list' }
      }
      ids = parsed.ids as string[]
      if (!Array.isArray(parsed.seqs) || parsed.seqs.length !== count || !parsed.seqs.every(n => Number.isSafeInteger(n) && n >= -1)) {
        return { ok: false, reason: 'the manifest has an invalid sequence list' }
      }
    }
    return { ok: true, manifest: { count, ids, seqs: ids === undefined ? undefined : parsed.seqs as number[] } }
  } catch (err) {
    return { ok: false, reason: `the manifest cannot be read (${err instanceof Error ? err.message : String(err)})` }
  }
}

/** Removes the manifest durably (the store is open: a crash from now on leaves none). */
export async function removeManifest (dir: string): Promise<void> {
  await rm(join(dir, MANIFEST_FILE), { force: true })
  await syncDir(dir)
}

async function syncDir (dir: string): Promise<void> {
  const d = await openFile(dir, 'r')
  try {
    await d.sync()
  } catch {
    // some filesystems cannot fsync a directory; the rename is as durable as they allow
  } finally {
    await d.close()
  }
}

/**
 * What LevelDB dropped while recovering its write-ahead log at the open that just happened (its
 * `LOG` file is started afresh at every open). Lines, at most a few; `[]` when nothing.
 */
export async function recoveryErrors (dir: string): Promise<string[]> {
  let text: string
  try {
    const f = await openFile(join(dir, 'LOG'), 'r')
    try {
      const buf = new Uint8Array(RECOVERY_LOG_MAX_BYTES)
      const { bytesRead } = await f.read(buf, 0, buf.length, 0)
      text = new TextDecoder().decode(buf.subarray(0, bytesRead))
    } finally {
      await f.close()
    }
  } catch {
    return []
  }
  const lines: string[] = []
  for (const line of text.split('\n')) {
    if (/dropping \d+ bytes|Corruption:/.test(line)) lines.push(line.replace(/^\S+ \S+ /, '').slice(0, 300))
    if (lines.length >= 10) break
  }
  return lines
}

/**
 * The losses to report, from the recovery report and the manifest checked against what the store
 * holds now.
 */
export function findLosses (recovery: string[], manifest: ManifestRead, stored: StoredSeqs): StorageLoss[] {
  const losses: StorageLoss[] = []
  if (!manifest.ok) losses.push({ message: `cannot tell whether documents were lost: ${manifest.reason}`, docIds: [], missing: 0 })
  const dropped = recovery.length > 0 ? ' (LevelDB dropped damaged write-ahead log records)' : ''
  let named = false
  if (manifest.ok && manifest.manifest !== undefined) {
    const m = manifest.manifest
    if (m.ids !== undefined && m.seqs !== undefined) {
      const gone: string[] = []
      const older: string[] = []
      m.ids.forEach((id, i) => {
        const now = stored.get(id)
        if (now === undefined) gone.push(id)
        else if (now >= 0 && now < (m.seqs as number[])[i]!) older.push(id)
      })
      if (gone.length > 0) losses.push({ message: `it is gone: ${gone.length} of the ${m.count} documents stored at the last close are${dropped}`, docIds: gone, missing: 0 })
      if (older.length > 0) losses.push({ message: `its latest writes are gone: ${older.length} documents are older than at the last close${dropped}`, docIds: older, missing: 0 })
      named = gone.length + older.length > 0
    } else if (stored.size < m.count) {
      named = true
      losses.push({ message: `${m.count - stored.size} fewer documents than the ${m.count} stored at the last close${dropped}`, docIds: [], missing: m.count - stored.size })
    }
  }
  if (recovery.length > 0 && !named) {
    losses.push({ message: `LevelDB dropped damaged records of its write-ahead log while opening: ${recovery.join('; ')}`, docIds: [], missing: 0 })
  }
  return losses
}
