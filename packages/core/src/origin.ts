/**
 * Transaction origins: how the node tells a change that came from a peer from a local one.
 *
 * Updates applied from a peer (live, rumor or exchange) carry that peer's `PeerOrigin`; any other
 * origin (an app's own, a provider's, none) is a local change, which the node propagates.
 */
export class PeerOrigin {
  constructor (readonly peerId: string) {}
}

/** The peer a change came from, or undefined for a local change. */
export function peerOf (origin: unknown): string | undefined {
  return origin instanceof PeerOrigin ? origin.peerId : undefined
}
