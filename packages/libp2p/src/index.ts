/**
 * @hearsay/libp2p: Hearsay's libp2p transport. TCP + Noise + yamux, mDNS discovery, private
 * swarms (pre-shared swarm key, peer allow-list), a stable identity kept on disk, and circuit
 * relays with DCUtR hole punching for members at other sites.
 *
 *     const node = await createHearsayNode({ dataDir: './.hearsay' })
 *     const doc = await node.open('notes/1')
 *
 * Or mount Hearsay on a libp2p node you already have: `services: { hearsay: hearsaySync() }`,
 * then `createNode({ id: libp2p.peerId.toString(), transport: libp2p.services.hearsay.transport })`.
 */
import './polyfill.js' // must stay first: libp2p needs Promise.withResolvers (Node 20)

export * from './constants.js'
export { SwarmKeyError, IdentityError, InvalidPeerIdError } from './errors.js'
export { hearsaySync, parsePeerId } from './service.js'
export type { HearsaySync, HearsaySyncInit, HearsaySyncComponents, BackoffOptions, PeerStatus, ChannelStatus, FailureKind } from './service.js'
export { forwardSightings } from './sightings.js'
export type { ForwardSightingsOptions } from './sightings.js'
export { createHearsayNode } from './node.js'
export type { HearsayNodeOptions, HearsayLibp2pNode, HearsayLibp2pOptions, HearsayNodeStatus, HearsayServices, MdnsOptions, RelayStatus } from './node.js'
export { relayServer, parseRelayAddress } from './relay.js'
export type { RelayServerOptions } from './relay.js'
export type { PathKind } from './paths.js'
export { swarmDiagnosis } from './pnet.js'
export type { SwarmMismatch, SwarmDiagnosis } from './pnet.js'
export { generateSwarmKey, encodeSwarmKey, parseSwarmKey, swarmKeySecret } from './swarm-key.js'
export { loadOrCreatePrivateKey, readPeerId } from './identity.js'
export { allowListGater } from './gater.js'
export type { AllowListGaterOptions } from './gater.js'
export { probeMulticast, lanInterfaces } from './discovery.js'
export type { DiscoveryStatus, MdnsState, ProbeOptions } from './discovery.js'
export { FrameDecoder, encodeFrame } from './framing.js'
export { trustCrypto, libp2pSigner } from './trust-crypto.js'
