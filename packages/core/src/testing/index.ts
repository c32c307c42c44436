export { runTransportTests } from './transport-suite.js'
export type { TransportPair } from './transport-suite.js'
export { runStorageTests } from './storage-suite.js'
export type { StorageSetup } from './storage-suite.js'
export { waitFor } from './wait.js'
export { createHostilePeer, seal, reseal } from './hostile.js'
export type { HostilePeer, HostileLink } from './hostile.js'
/** The wire protocol's encoders and decoder, for hostile peers that build frames on any transport. */
export * as wire from '../protocol.js'
