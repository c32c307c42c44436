/**
 * Connection gaters for private swarms: an allow-list of peer ids, checked once the remote peer
 * has proven its id (Noise handshake), in both directions. A refused peer gets no connection, so
 * it gets no stream and no document. The refusing side logs one line per refusal.
 */
import { silentLogger } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import { parsePeerId } from './service.js'

export interface AllowListGaterOptions {
  /** Logger for refusals (component `hearsay:libp2p:gater`). @default silentLogger() */
  logger?: Logger
  /** A gater to consult as well (e.g. the app's own); a connection must pass both. */
  inner?: ConnectionGater
}

/** A connection gater that refuses every peer whose id is not in `allowPeers`. */
export function allowListGater (allowPeers: string[], options: AllowListGaterOptions = {}): ConnectionGater {
  const allowed = new Set(allowPeers.map(p => parsePeerId(p, 'allowPeers').toString()))
  const log = (options.logger ?? silentLogger()).forComponent('hearsay:libp2p:gater')
  const inner = options.inner ?? {}
  const deny = (peer: PeerId, what: string, maConn?: MultiaddrConnection): boolean => {
    if (allowed.has(peer.toString())) return false
    log.warn(`refused ${what} ${peer.toString()}${maConn !== undefined ? ` at ${maConn.remoteAddr.toString()}` : ''}: not in allowPeers`)
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
