export { createLevelStorage, repairLevelStorage } from './level-storage.js'
export type { LevelStorage, LevelStorageOptions, DocStats, VerifyReport, CorruptionReport } from './level-storage.js'
export * from './constants.js'
