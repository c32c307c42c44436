// What the unit tests reach for, from the package entry plus internals.
export * from '../src/index.js'
export { mdnsQuery as mdnsQueryForTest } from '../src/discovery.js'
export { swarmGuard } from '../src/pnet.js'
export { StreamChannel } from '../src/channel.js'
export { failureKind } from '../src/service.js'
export { Backoff, Dialler } from '../src/dialler.js'
export type { DiallerInit } from '../src/dialler.js'
export { ChannelTable } from '../src/channels.js'
