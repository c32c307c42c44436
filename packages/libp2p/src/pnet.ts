/**
 * Private swarms with a refusal that says so, and the diagnosis of a swarm key mismatch on both
 * sides. `@libp2p/pnet` only fails the handshake: a peer
 * with a different swarm key gets through the nonce exchange, then the Noise handshake over the
 * garbled stream fails. The guard wraps pnet and the connection encrypter: a protected stream
 * that closes before the encrypter finished its handshake on it was refused, one that finished
 * is a member's connection however long it lived. The mark is on the stream itself, so there is
 * no timer and no confusion between connections from the same address.
 *
 * A node without a swarm key cannot see the key exchange: its dials to a private swarm fail in
 * the security negotiation with the other side's nonce as garbage (`EncryptionFailedError`:
 * "Missing newline", "Message length … too long", or a reset). `SwarmDiagnosis` names both cases
 * "swarm key mismatch", warns once per peer (per host for inbound connections, whose peer id is
 * unknown before the handshake) per `SWARM_MISMATCH_LOG_INTERVAL_MS`, and lists them for status.
 */
import type { Log } from '@hearsay/core'
import type { ConnectionEncrypter, ConnectionProtector, MessageStream } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import { PNET_TIMEOUT_MS, SWARM_MISMATCH_LOG_INTERVAL_MS, SWARM_MISMATCH_MAX_PEERS } from './constants.js'

type Factory<T> = (components: any) => T

export interface SwarmGuard {
  /** The connection protector (pnet with `psk`) to pass as libp2p's `connectionProtector`. */
  protector: Factory<ConnectionProtector>
  /** Wrap a connection encrypter factory (e.g. `noise()`) so it marks the streams it secured. */
  encrypter: (factory: Factory<ConnectionEncrypter>) => Factory<ConnectionEncrypter>
  /** Watch a protected stream: when it closes before it was secured, log the refusal. */
  watch: (stream: MessageStream, direction: 'inbound' | 'outbound', remote: string) => void
  /** Whether the encrypter completed its handshake on this protected stream. */
  secured: (stream: MessageStream) => boolean
}

/** A peer (or host) whose connections failed because it does not share our swarm key. */
export interface SwarmMismatch {
  /** The peer id when known (our dials), else the remote host (`/ip4/192.168.1.7`). */
  peer: string
  /** Failed connections since the first. */
  count: number
  firstAt: number
  lastAt: number
}

const NOT_MEMBER = 'the peer is not in this private swarm (different or no swarm key). Give it this swarm\'s swarm.key, or ignore this if it is not one of yours'
const NO_KEY = 'the peer runs a private swarm (it has a swarm key) and this node has none. To join it, copy its swarm.key into this node\'s data directory and restart; to keep this node apart, ignore this'

/** Security-negotiation failures that mean the other side spoke pnet while we did not. */
const GARBLED = /missing newline|message length|too long|ECONNRESET|unexpected end|invalid/i

/** The peer id of a multiaddr that has one, else its host (`/ip4/…`, `/ip6/…`). */
function peerOrHost (remote: string): string {
  const p2p = /\/p2p\/([^/]+)/.exec(remote)
  if (p2p !== null) return p2p[1]!
  const host = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+/.exec(remote)
  return host !== null ? host[0] : remote.slice(0, 100)
}

/** Whether an error (or one it wraps) is a failed security negotiation that looks like pnet garbage. */
function garbledHandshake (err: unknown, depth = 0): boolean {
  if (err === null || typeof err !== 'object' || depth > 4) return false
  const e = err as { name?: string, message?: string, code?: string, cause?: unknown, errors?: unknown[] }
  if (e.name === 'EncryptionFailedError' && GARBLED.test(`${e.message ?? ''} ${e.code ?? ''}`)) return true
  return [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])].some(inner => garbledHandshake(inner, depth + 1))
}

export interface SwarmDiagnosis {
  /**
   * A protected connection closed before it was secured, or (`noExchange`) the other side never
   * took part in the swarm key exchange (private swarm side).
   */
  refused: (remote: string, direction: 'inbound' | 'outbound', noExchange?: string) => void
  /** A dial failed; on a node without a swarm key, recognise a private swarm at the other end. */
  dialFailed: (peer: string, err: unknown) => void
  /** Peers and hosts with a mismatch, most recent first. */
  mismatches: () => SwarmMismatch[]
}

export function swarmDiagnosis (privateSwarm: boolean, log: Log, now: () => number = Date.now): SwarmDiagnosis {
  const seen = new Map<string, SwarmMismatch & { warnedAt: number, since: number }>()
  const note = (peer: string, line: string): void => {
    const t = now()
    let m = seen.get(peer)
    if (m === undefined) {
      if (seen.size >= SWARM_MISMATCH_MAX_PEERS) {
        const oldest = [...seen.values()].reduce((a, b) => a.lastAt <= b.lastAt ? a : b)
        seen.delete(oldest.peer)
      }
      m = { peer, count: 0, firstAt: t, lastAt: t, warnedAt: -Infinity, since: 0 }
      seen.set(peer, m)
    }
    m.count++
    m.lastAt = t
    if (t - m.warnedAt < SWARM_MISMATCH_LOG_INTERVAL_MS) {
      m.since++
      log.trace(`swarm key mismatch: ${line}`)
      return
    }
    const more = m.since > 0 ? ` (${m.since} more attempts since the last warning)` : ''
    m.warnedAt = t
    m.since = 0
    log.warn(`swarm key mismatch: ${line}${more}`)
  }
  return {
    refused: (remote, direction, noExchange) => {
      const what = noExchange === undefined
        ? `handshake failed after the swarm key exchange — ${NOT_MEMBER}`
        : `swarm key exchange failed (${noExchange.slice(0, 120)}) — the peer has no swarm key (an open swarm) or is not a Hearsay node`
      note(peerOrHost(remote), `refused connection ${direction === 'inbound' ? 'from' : 'to'} ${remote}: ${what}`)
    },
    dialFailed: (peer, err) => {
      if (privateSwarm || !garbledHandshake(err)) return
      note(peerOrHost(peer), `dial to ${peer} failed in the security handshake (${(err as Error).message.slice(0, 120)}) — ${NO_KEY}`)
    },
    mismatches: () => [...seen.values()].sort((a, b) => b.lastAt - a.lastAt).map(({ peer, count, firstAt, lastAt }) => ({ peer, count, firstAt, lastAt }))
  }
}

export function swarmGuard (psk: Uint8Array, log: Log, diagnosis: SwarmDiagnosis = swarmDiagnosis(true, log)): SwarmGuard {
  const secured = new WeakSet<object>()
  const watch = (stream: MessageStream, direction: 'inbound' | 'outbound', remote: string): void => {
    stream.addEventListener('close', () => {
      if (secured.has(stream)) return
      diagnosis.refused(remote, direction)
    }, { once: true })
  }
  return {
    protector: () => {
      const inner = preSharedKey({ psk, timeout: PNET_TIMEOUT_MS })()
      return {
        async protect (conn: MessageStream, options?: { signal?: AbortSignal }): Promise<MessageStream> {
          const remote = String((conn as unknown as { remoteAddr?: unknown }).remoteAddr ?? 'unknown address')
          let boxed: MessageStream
          try {
            boxed = await inner.protect(conn, options)
          } catch (err) {
            diagnosis.refused(remote, conn.direction, (err as Error).message)
            throw err
          }
          watch(boxed, conn.direction, remote)
          return boxed
        }
      }
    },
    encrypter: (factory) => (components) => {
      const inner = factory(components)
      const wrapped: ConnectionEncrypter = Object.create(inner)
      wrapped.secureInbound = async (conn, options) => {
        const result = await inner.secureInbound(conn, options)
        secured.add(conn)
        return result
      }
      wrapped.secureOutbound = async (conn, options) => {
        const result = await inner.secureOutbound(conn, options)
        secured.add(conn)
        return result
      }
      return wrapped
    },
    watch,
    secured: (stream) => secured.has(stream)
  }
}
