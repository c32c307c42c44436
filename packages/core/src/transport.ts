/**
 * The transport contract. A transport connects this node to peers and carries whole frames
 * (byte arrays the engine encodes) over one ordered, reliable channel per peer.
 *
 * Implementations: `createMemoryNetwork().transport(id)` (in-process, for tests and the
 * simulator) and `@hearsay/libp2p` (TCP + Noise + yamux). Both pass `runTransportTests`.
 */

/** One ordered, reliable, bidirectional frame channel to one peer. */
export interface Channel {
  /** The authenticated id of the remote peer (a libp2p peer id string for libp2p). */
  readonly remoteId: string
  /**
   * Queue a frame. Resolves once the transport accepted it (backpressure: await before sending
   * more). Rejects with `PeerUnavailableError` when the channel is closed.
   */
  send(frame: Uint8Array): Promise<void>
  /** Close the channel. `reason` is logged on this side; the remote sees the channel close. */
  close(reason?: string): void
}

/** What the engine gives the transport to report channel events. */
export interface TransportHandler {
  /**
   * A channel to a peer opened (either side dialled). A transport opens at most one channel per
   * remote peer at a time: duplicates (both sides dialled at once) are resolved inside the transport.
   * Returns the callbacks that receive the channel's frames and its closing.
   */
  onChannel(channel: Channel): ChannelHandler
}

export interface ChannelHandler {
  /** A whole frame arrived, in order. Frames larger than the transport's limit never get here. */
  onFrame(frame: Uint8Array): void
  /** The channel closed, from either side or because the link went down. Called once. */
  onClose(reason?: string): void
}

export interface Transport {
  /** The local peer id. The engine uses it as the node id. */
  readonly localId: string
  /** Start accepting and opening channels; `handler` receives them. Idempotent. */
  start(handler: TransportHandler): Promise<void>
  /** Close every channel and stop. Idempotent. */
  stop(): Promise<void>
  /**
   * Open (or return the open) channel to a peer now. Optional: transports that discover peers by
   * themselves open channels on their own and report them through `onChannel`.
   */
  connect?(peerId: string, options?: { signal?: AbortSignal }): Promise<void>
}
