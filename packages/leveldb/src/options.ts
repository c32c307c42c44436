/**
 * The options of a LevelDB store, their defaults (constants.ts) and their checks, with core's
 * option checkers.
 */
import { ConfigError, checkBoolean, checkNumber, checkObject, checkOneOf, silentLogger, stripUndefined } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import {
  CACHE_SIZE_BYTES,
  COMPACT_AFTER_BYTES,
  COMPACT_AFTER_UPDATES,
  COMPACTION_MERGE_BATCH,
  DURABILITY,
  MAX_COMMIT_BYTES,
  MAX_OPEN_FILES,
  WRITE_BUFFER_BYTES
} from './constants.js'
import type { Durability } from './constants.js'

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

/** The options with every default filled in, checked. */
export interface LevelSettings {
  path: string
  logger: Logger
  durability: Durability
  compactAfterUpdates: number
  compactAfterBytes: number
  autoCompact: boolean
  compactionMergeBatch: number
  maxCommitBytes: number
  cacheSizeBytes: number
  writeBufferBytes: number
  maxOpenFiles: number
}

/** The default of every option but `path` and `logger` (constants.ts). */
const DEFAULTS = {
  durability: DURABILITY,
  compactAfterUpdates: COMPACT_AFTER_UPDATES,
  compactAfterBytes: COMPACT_AFTER_BYTES,
  autoCompact: true,
  compactionMergeBatch: COMPACTION_MERGE_BATCH,
  maxCommitBytes: MAX_COMMIT_BYTES,
  cacheSizeBytes: CACHE_SIZE_BYTES,
  writeBufferBytes: WRITE_BUFFER_BYTES,
  maxOpenFiles: MAX_OPEN_FILES
} satisfies Omit<LevelSettings, 'path' | 'logger'>

/** Smallest value of each numeric option. */
const MINIMUM = {
  compactAfterUpdates: 1,
  compactAfterBytes: 1,
  compactionMergeBatch: 2,
  maxCommitBytes: 1,
  cacheSizeBytes: 0,
  writeBufferBytes: 1,
  maxOpenFiles: 16
} as const

/** Checks `options` and fills in the defaults. Throws `ConfigError` naming the bad option. */
export function resolveLevelOptions (options: LevelStorageOptions): LevelSettings {
  checkObject('createLevelStorage options', options)
  if (typeof options?.path !== 'string' || options.path === '') throw new ConfigError('createLevelStorage: `path` must be a non-empty string')
  checkOneOf('durability', options.durability, ['process', 'power'])
  checkBoolean('autoCompact', options.autoCompact)
  for (const [name, min] of Object.entries(MINIMUM)) checkNumber(name, options[name as keyof typeof MINIMUM], { min, integer: true })
  const { path, logger, ...chosen } = options
  return { ...DEFAULTS, ...stripUndefined(chosen), path, logger: logger ?? silentLogger() }
}
