/**
 * How LevelDB's failures become the engine's typed errors: `StorageError` for I/O, with a message
 * that says what to do; corruption is reported by the callers as `StorageCorruptionError`.
 */
import { StorageCorruptionError, StorageError } from '@hearsay/core'

/** A compaction stopped because the store is closing; never reaches a caller of `Storage`. */
export class Aborted extends Error {
  override name = 'Aborted'
}

/** LevelDB's (or the system's) error code, such as `LEVEL_CORRUPTION` or `ENOENT`. */
export function errorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

export function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** `err` as a `StorageError` saying what failed where; typed errors pass through unchanged. */
export function wrapIo (path: string, err: unknown, what: string): Error {
  if (err instanceof StorageError || err instanceof StorageCorruptionError || err instanceof Aborted) return err
  return new StorageError(`${what} in LevelDB store at ${path} failed: ${messageOf(err)}`, { cause: err })
}

/** Why LevelDB would not open, and what the user can do about it. */
export function openError (path: string, err: unknown): StorageError {
  const cause = (err as { cause?: unknown } | null)?.cause ?? err
  const code = errorCode(cause) ?? errorCode(err)
  const detail = messageOf(cause)
  const where = `cannot open LevelDB store at ${path}`
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
