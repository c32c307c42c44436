/**
 * Discovery sightings. libp2p reports a peer with `peer:discovery` only when it enters the peer
 * store, and with `peer:update` only when its addresses change, so a peer the sync service is
 * backing off from stays invisible while mDNS keeps announcing it. `forwardSightings()` wraps a
 * peer discovery factory so every `'peer'` event it emits also reaches the Hearsay service
 * (`peerDiscovered()`), which redials a peer that was unreachable as soon as it is seen again.
 */
import type { PeerDiscovery, PeerDiscoveryEvents, PeerInfo, TypedEventTarget } from '@libp2p/interface'

export interface ForwardSightingsOptions {
  /** Name the Hearsay service is mounted under in libp2p's `services`. @default 'hearsay' */
  service?: string
}

type Discovery = PeerDiscovery & TypedEventTarget<PeerDiscoveryEvents>

/**
 * Wrap a libp2p peer discovery factory (`mdns()`, `bootstrap()`, your own): each peer it reports
 * is also passed to the Hearsay service mounted on the same node. Use it in `peerDiscovery`:
 * `peerDiscovery: [forwardSightings(mdns())]`. A node without the service ignores the sightings.
 */
export function forwardSightings<C, D extends Discovery> (factory: (components: C) => D, options: ForwardSightingsOptions = {}): (components: C) => D {
  const name = options.service ?? 'hearsay'
  return (components) => {
    const discovery = factory(components)
    discovery.addEventListener('peer', (evt) => {
      serviceOf(components, name)?.peerDiscovered(evt.detail)
    })
    return discovery
  }
}

/** The service mounted as `name`, looked up when a sighting arrives (services are created after discovery). */
function serviceOf (components: unknown, name: string): { peerDiscovered: (info: PeerInfo) => void } | undefined {
  let service: unknown
  try {
    // libp2p's components object throws for a service that is not mounted
    service = (components as Record<string, unknown>)[name]
  } catch {
    return undefined
  }
  const s = service as { peerDiscovered?: unknown } | undefined
  return typeof s?.peerDiscovered === 'function' ? (s as { peerDiscovered: (info: PeerInfo) => void }) : undefined
}
