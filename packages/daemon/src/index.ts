/**
 * @hearsay/daemon: run a Hearsay node as a daemon with a local endpoint that speaks the
 * y-websocket protocol, so any Yjs web app syncs with the devices of the LAN through it.
 *
 *     const daemon = await startDaemon({ node, port: 4410 })
 *     // new WebsocketProvider('ws://127.0.0.1:4410', 'notes/1', doc)
 */
export * from './constants.js'
export { startDaemon, VERSION } from './daemon.js'
export type { Daemon, DaemonOptions } from './daemon.js'
export { loadConfig, defaultConfig, parseField, endpointUrl, CONFIG_FIELDS } from './config.js'
export type { DaemonConfig, LoadConfigOptions, LoadedConfig, ConfigSource, Durability } from './config.js'
export { main, usage } from './commands.js'
export { startFromConfig, serve } from './serve.js'
export type { CliIO } from './commands.js'
export { createDaemonNode, initIdentity } from './network.js'
export { buildStatus, formatStatus } from './status.js'
export type { DaemonStatus, DaemonNode, PeerReport, PeerState, SyncProgress } from './status.js'
export { docToJSON, parseValue } from './content.js'
export { DocHandles } from './handles.js'
export { YWebsocketRooms } from './ywebsocket.js'
export { readRuntime, writeRuntime, removeRuntime, RuntimeFileError } from './runtime.js'
export type { RuntimeInfo } from './runtime.js'
export { resolveTarget, verifyTarget, WrongDaemonError } from './client.js'
export type { Target } from './client.js'
