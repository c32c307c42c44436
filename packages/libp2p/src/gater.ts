/**
 * Connection gaters for private swarms: an allow-list of peer ids, checked once the remote peer
 * has proven its id (Noise handshake), in both directions. A refused peer gets no connection, so
 * it gets no stream and no document. The refusing side warns once per peer per
 * `REFUSAL_LOG_INTERVAL_MS` (a refused peer that keeps redialling does not flood the log); the
 * refusals in between are logged at trace level and counted in the next warning.
 */
import { silentLogger } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import { REFUSAL_LOG_INTERVAL_MS, REFUSAL_LOG_MAX_PEERS } from './constants.js'
import { parsePeerId } from './service.js'

export interface AllowListGaterOptions {
  /** Logger for refusals (component `hearsay:libp2p:gater`). @default silentLogger() */
  logger?: Logger
  /** A gater to consult as well (e.g. the app's own); a connection must pass both. */
  inner?: ConnectionGater
  /** Shortest time between two warnings about the same refused peer, in ms. @default REFUSAL_LOG_INTERVAL_MS (60 000) */
  logIntervalMs?: number
  /** Clock, in ms since epoch (for tests). @default Date.now */
  now?: () => number
}

/** A connection gater that refuses every peer whose id is not in `allowPeers`. */
export function allowListGater (allowPeers: string[], options: AllowListGaterOptions = {}): ConnectionGater {
  const allowed = new Set(allowPeers.map(p => parsePeerId(p, 'allowPeers').toString()))
  const log = (options.logger ?? silentLogger()).forComponent('hearsay:libp2p:gater')
  const inner = options.inner ?? {}
  const interval = options.logIntervalMs ?? REFUSAL_LOG_INTERVAL_MS
  const now = options.now ?? Date.now
  // per refused peer: when it was last warned about, and refusals since then
  const warned = new Map<string, { at: number, since: number }>()
  const deny = (peer: PeerId, what: string, maConn?: MultiaddrConnection): boolean => {
    const id = peer.toString()
    if (allowed.has(id)) return false
    const line = `refused ${what} ${id}${maConn !== undefined ? ` at ${maConn.remoteAddr.toString()}` : ''}: not in allowPeers`
    const t = now()
    const last = warned.get(id)
    if (last !== undefined && t - last.at < interval) {
      last.since++
      log.trace(line)
      return true
    }
    warned.delete(id)
    if (warned.size >= REFUSAL_LOG_MAX_PEERS) {
      const oldest = warned.keys().next().value
      if (oldest !== undefined) warned.delete(oldest)
    }
    warned.set(id, { at: t, since: 0 })
    const more = last !== undefined && last.since > 0 ? ` (refused ${last.since} more times since the last warning)` : ''
    log.warn(line + more)
    return true
  }
  return {
    ...inner,
    denyDialPeer: async (peer) => {
      if (!allowed.has(peer.toString())) return true // quietly: discovery finds outsiders all the time
      return await inner.denyDialPeer?.(peer) ?? false
    },
    denyInboundEncryptedConnection: async (peer, maConn) =>
      deny(peer, 'connection from', maConn) || (await inner.denyInboundEncryptedConnection?.(peer, maConn) ?? false),
    denyOutboundEncryptedConnection: async (peer, maConn) =>
      deny(peer, 'connection to', maConn) || (await inner.denyOutboundEncryptedConnection?.(peer, maConn) ?? false)
  }
}
