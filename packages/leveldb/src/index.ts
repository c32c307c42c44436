export { createLevelStorage } from './level-storage.js'
export type { LevelStorage } from './level-storage.js'
export type { LevelStorageOptions } from './options.js'
export type { DocStats } from './heads.js'
export type { VerifyReport, CorruptionReport } from './verify.js'
export { repairLevelStorage } from './database.js'
export * from './constants.js'
/** Longest document id accepted, in UTF-8 bytes: the engine's limit, which this store enforces. */
export { MAX_DOC_ID_BYTES } from '@hearsay/core'
