/**
 * The options of the sync service (`hearsaySync(init)`, `createHearsayNode({ sync })`) and their
 * checks. Defaults live in constants.ts; each option names its own with `@default`.
 */
import { ConfigError, MIN_FRAME_BYTES, checkFraction, checkNumber, checkObject } from '@hearsay/core'
import type { Logger, Timers } from '@hearsay/core'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface BackoffOptions {
  /** First retry delay, in ms. @default BACKOFF_INITIAL_MS (500) */
  initialMs?: number
  /** Longest retry delay, in ms. @default BACKOFF_MAX_MS (30 000) */
  maxMs?: number
  /** Relative jitter in [0, 1). @default BACKOFF_JITTER (0.3) */
  jitter?: number
}

export interface HearsaySyncInit {
  /** Told of every failed dial (to diagnose it, e.g. a swarm key mismatch); the peer id, or the bootstrap address. */
  onDialFailure?: (peer: string, err: unknown) => void
  /** Protocol id. @default PROTOCOL_ID ('/hearsay/sync/1.0.0') */
  protocol?: string
  /**
   * Largest frame accepted from a peer (checked on the length prefix, before the body is read);
   * a larger one closes that peer's channel. Match the engine's `maxFrameBytes`.
   * @default MAX_FRAME_BYTES (1 MiB)
   */
  maxFrameBytes?: number
  /** Where log lines go; components `hearsay:libp2p*`. @default silentLogger() */
  logger?: Logger
  /** Dial peers reported by peer discovery (mDNS). @default true */
  dialOnDiscovery?: boolean
  /** Multiaddrs dialled on start and redialled whenever their link drops (with `/p2p/<id>` or without). @default [] */
  bootstrap?: Array<string | Multiaddr>
  /**
   * Only these peer ids get a channel; streams from others are refused. Pair it with the
   * connection gater of `allowListGater()` to refuse their connections too. @default everyone
   */
  allowPeers?: string[]
  /** Longest a dial may take, in ms. @default DIAL_TIMEOUT_MS (5 000) */
  dialTimeoutMs?: number
  /** Longest opening the stream may take, in ms. @default STREAM_OPEN_TIMEOUT_MS (5 000) */
  streamOpenTimeoutMs?: number
  /** How long `transport.connect()` waits for the channel, in ms. @default CONNECT_TIMEOUT_MS (10 000) */
  connectTimeoutMs?: number
  /** Retry delays for dials and stream re-opens. */
  backoff?: BackoffOptions
  /**
   * Failed dials (or links that dropped before a channel opened) to a discovered peer before it is
   * forgotten: it is removed from the peer store, so the next discovery sighting reports it as new
   * and it is dialled again at once. @default MAX_REDIAL_ATTEMPTS (10)
   */
  maxRedialAttempts?: number
  /** Delay before the higher peer id dials a newly discovered peer, in ms. @default DISCOVERY_DIAL_DELAY_MS (1 000) */
  discoveryDialDelayMs?: number
  /**
   * Shortest time between two dials to one peer caused by discovery sightings (`peerDiscovered()`),
   * in ms. Only peers whose last failure was "unreachable" are redialled by a sighting.
   * @default SIGHTING_DIAL_INTERVAL_MS (500)
   */
  sightingDialIntervalMs?: number
  /** Refusal period after this node closed a peer's channel, in ms (doubles per repeat). @default CLOSE_COOLDOWN_MS (1 000) */
  closeCooldownMs?: number
  /**
   * Bytes a second this node sends over all its relayed channels together (a token bucket with a
   * burst of `RELAY_PACE_BURST_BYTES`); `Infinity` turns pacing off.
   * @default RELAY_PACE_BYTES_PER_SEC (1 MiB/s)
   */
  relayPaceBytesPerSec?: number
  /**
   * Shortest silence of a channel before its connection is pinged to check it is alive
   * (liveness.ts: longer for a channel that is usually quiet, up to `LIVENESS_MAX_SILENCE_MS`); no
   * answer closes the connection. `false` turns liveness checks off (use libp2p's connection
   * monitor instead). @default PING_INTERVAL_MS (10 000)
   */
  livenessMinSilenceMs?: number | false
  /** Source of randomness for jitter (seed it in tests). @default Math.random */
  random?: () => number
  /** Clock and timers of every dial, retry and cool-down (a virtual clock in tests). @default realTimers */
  timers?: Timers
}

/** Every option checked before anything starts: a bad value throws `ConfigError` naming it. */
export function checkSyncInit (init: HearsaySyncInit): void {
  const positive = { min: 0, exclusive: true }
  // zero or less reads as "must be a positive number", a small positive value names the floor
  checkNumber('maxFrameBytes', init.maxFrameBytes, positive)
  checkNumber('maxFrameBytes', init.maxFrameBytes, MIN_FRAME_BYTES)
  checkNumber('dialTimeoutMs', init.dialTimeoutMs, positive)
  checkNumber('streamOpenTimeoutMs', init.streamOpenTimeoutMs, positive)
  checkNumber('connectTimeoutMs', init.connectTimeoutMs, positive)
  checkObject('backoff', init.backoff)
  checkNumber('backoff.initialMs', init.backoff?.initialMs, positive)
  checkNumber('backoff.maxMs', init.backoff?.maxMs, positive)
  checkFraction('backoff.jitter', init.backoff?.jitter)
  checkNumber('maxRedialAttempts', init.maxRedialAttempts, positive)
  checkNumber('discoveryDialDelayMs', init.discoveryDialDelayMs, 0)
  checkNumber('sightingDialIntervalMs', init.sightingDialIntervalMs, 0)
  checkNumber('closeCooldownMs', init.closeCooldownMs, 0)
  if (init.livenessMinSilenceMs !== false) checkNumber('livenessMinSilenceMs', init.livenessMinSilenceMs, positive)
  if (init.relayPaceBytesPerSec !== Infinity) checkNumber('relayPaceBytesPerSec', init.relayPaceBytesPerSec, positive)
  checkObject('timers', init.timers)
}

/** A bootstrap address as a multiaddr; a malformed one is a `ConfigError` quoting it. */
export function parseBootstrap (a: string | Multiaddr): Multiaddr {
  try {
    return typeof a === 'string' ? multiaddr(a) : a
  } catch (err) {
    throw new ConfigError(`bootstrap address "${String(a)}" is not a valid multiaddr`, { cause: err })
  }
}
