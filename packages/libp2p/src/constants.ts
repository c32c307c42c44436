/**
 * Every default of the libp2p transport, in one place. Each option that takes one of these
 * documents it with `@default`. Engine-wide defaults (protocol id, frame limit) live in
 * `@hearsay/core`'s constants.
 */

/** Longest a single dial (TCP connect + pnet + Noise + yamux) may take before it is abandoned, in ms. */
export const DIAL_TIMEOUT_MS = 5_000

/** Longest opening the Hearsay stream on an open connection may take, in ms. */
export const STREAM_OPEN_TIMEOUT_MS = 5_000

/** How long `transport.connect()` waits for the channel when the remote side opens it, in ms. */
export const CONNECT_TIMEOUT_MS = 10_000

/** First retry delay after a failed dial or a lost link, in ms. Doubles on every failure. */
export const BACKOFF_INITIAL_MS = 500

/** Longest retry delay, in ms. */
export const BACKOFF_MAX_MS = 30_000

/** Each retry waits `delay * (1 ± jitter)` so peers that lost a link together do not retry in lock-step. */
export const BACKOFF_JITTER = 0.3

/**
 * Failed dials to a peer found by discovery (mDNS) before it is forgotten: the service removes it
 * from libp2p's peer store, so the next mDNS sighting reports it as a new peer and it is dialled
 * again at once. Bootstrap peers and peers named in `connect()` are retried for as long as the
 * node runs.
 */
export const MAX_REDIAL_ATTEMPTS = 10

/**
 * Shortest time between two dials to one peer started by discovery sightings, in ms. A peer in
 * backoff whose last failure was "unreachable" (dial error or timeout) is redialled as soon as a
 * discovery service (mDNS) sees it again instead of waiting out its retry delay, but no more often
 * than this, however often it is announced. A peer whose last failure was a refusal (the link
 * dropped before a channel opened, or the handshake was refused) keeps its backoff: sightings do
 * not dial it earlier.
 */
export const SIGHTING_DIAL_INTERVAL_MS = BACKOFF_INITIAL_MS

/**
 * When both peers find each other by mDNS at once, the one with the lower peer id dials at once
 * and the other waits this long first, so a pair usually ends up with one connection, in ms.
 */
export const DISCOVERY_DIAL_DELAY_MS = 1_000

/**
 * After this node closes a peer's channel (bad frame, engine request), the peer is refused for
 * this long (doubling on every repeat, capped by `BACKOFF_MAX_MS`), in ms.
 */
export const CLOSE_COOLDOWN_MS = 1_000

/** A channel that stayed open this long resets its peer's backoff, in ms. */
export const STABLE_CHANNEL_MS = 60_000

/**
 * A connection that stayed open this long counts as a successful dial even if no Hearsay channel
 * opened on it (resets the peer's backoff). A shorter one that never carried a channel counts as a
 * failed dial, so a peer that accepts the handshake and then drops us (an allow-list) is backed
 * off like an unreachable one, in ms.
 */
export const STABLE_LINK_MS = 10_000

/**
 * The connection gater warns about a refused peer at most once per this interval; the refusals in
 * between are logged at trace level and counted in the next warning, in ms.
 */
export const REFUSAL_LOG_INTERVAL_MS = 60_000

/** Most peers whose refusals the gater tracks for rate-limiting its log (oldest forgotten first). */
export const REFUSAL_LOG_MAX_PEERS = 1_024

/** Interval of libp2p's connection monitor pings, which close dead connections, in ms (libp2p's default). */
export const PING_INTERVAL_MS = 10_000

/** Inbound Hearsay streams allowed at once per connection (one in use, one replacing it). */
export const MAX_INBOUND_STREAMS = 2

/** Outbound Hearsay streams allowed at once per connection. */
export const MAX_OUTBOUND_STREAMS = 2

/** Default listen address: every IPv4 interface, a port chosen by the OS. */
export const LISTEN_ADDRESSES = ['/ip4/0.0.0.0/tcp/0']

/** File inside `dataDir` that keeps the node's private key (libp2p protobuf encoding, mode 0600). */
export const PEER_KEY_FILE = 'peer-key'

/** mDNS query interval, in ms (`@libp2p/mdns` `interval`). */
export const MDNS_INTERVAL_MS = 10_000

/** mDNS service tag peers announce and look for. */
export const MDNS_SERVICE_TAG = '_p2p._udp.local'

/** mDNS multicast group and port. */
export const MDNS_ADDRESS = '224.0.0.251'
export const MDNS_PORT = 5353

/** How often the node re-checks that mDNS can send (a link or route may come and go), in ms. */
export const DISCOVERY_PROBE_INTERVAL_MS = 30_000

/** Header of a version 1 swarm key file (the format of go-ipfs and `@libp2p/pnet`). */
export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'

/** The only swarm key encoding accepted. */
export const SWARM_KEY_ENCODING = '/base16/'

/** Length of the secret inside a swarm key, in bytes. */
export const SWARM_KEY_BYTES = 32

/** Time allowed for the pre-shared-key nonce exchange on a new connection, in ms. */
export const PNET_TIMEOUT_MS = 5_000

/**
 * A swarm key mismatch with the same peer (or, for inbound connections, the same host) is warned
 * about once per this interval; the attempts in between are logged at trace level and counted,
 * in ms.
 */
export const SWARM_MISMATCH_LOG_INTERVAL_MS = 10 * 60_000

/** Most peers or hosts remembered with a swarm key mismatch (oldest forgotten first). */
export const SWARM_MISMATCH_MAX_PEERS = 256

/**
 * Most reservations a Hearsay relay (`relay: true`) holds at once, one per member using it. A
 * member past this gets RESERVATION_REFUSED and stays reachable on its LAN only (libp2p's own
 * default is 15).
 */
export const RELAY_MAX_RESERVATIONS = 256

/** How long a reservation on a Hearsay relay lasts before the member must renew it, in ms (libp2p renews it itself). */
export const RELAY_RESERVATION_TTL_MS = 2 * 60 * 60_000

/** Relayed connections one member may have open through a Hearsay relay at once (hop streams). */
export const RELAY_MAX_HOP_STREAMS = 64

/** Most relays a node keeps a reservation on (configured ones first, then ones learned from members). */
export const RELAY_MAX_CLIENT_RESERVATIONS = 4

/**
 * Bytes a second this node sends over all its relayed channels together. A bulk sync through a
 * relay is paced to this so that one member's backlog does not take the relay's uplink from the
 * others; live edits are small and pass within the burst. `Infinity` turns pacing off.
 */
export const RELAY_PACE_BYTES_PER_SEC = 1024 * 1024

/** Bytes a relayed channel may send at once above the pace (a burst after a quiet spell). */
export const RELAY_PACE_BURST_BYTES = 256 * 1024

/** How often a node reads its members' announced addresses (cluster state) and dials members it lacks, in ms. */
export const ADDRESS_SCAN_INTERVAL_MS = 2_000

/** Cluster-state key under which a node announces the addresses members may dial it at. */
export const ADDRS_META_KEY = 'libp2p/addrs'

/** Cluster-state key under which a relay announces the addresses members reserve on. */
export const RELAY_META_KEY = 'libp2p/relay'

/** Most addresses taken from one member's announcement. */
export const MAX_ANNOUNCED_ADDRS = 16

/** How often channels are checked for a silence long enough to probe (liveness.ts), in ms. */
export const LIVENESS_CHECK_MS = 5_000

/** The longest silence a channel may keep before it is probed, however quiet it usually is, in ms. */
export const LIVENESS_MAX_SILENCE_MS = 150_000

/** A probe (libp2p ping) not answered within this closes the connection, in ms. */
export const LIVENESS_PING_TIMEOUT_MS = 10_000

/** Gaps between a channel's arrivals remembered to judge how quiet it usually is. */
export const LIVENESS_RECENT_GAPS = 8
