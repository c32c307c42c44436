/**
 * Private swarms with a refusal that says so. `@libp2p/pnet` only fails the handshake: a peer
 * with a different swarm key gets through the nonce exchange, then the Noise handshake over the
 * garbled stream fails. The guard wraps pnet and the connection encrypter: a protected stream
 * that closes before the encrypter finished its handshake on it was refused, one that finished
 * is a member's connection however long it lived. The mark is on the stream itself, so there is
 * no timer and no confusion between connections from the same address.
 */
import type { Log } from '@hearsay/core'
import type { ConnectionEncrypter, ConnectionProtector, MessageStream } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import { PNET_TIMEOUT_MS } from './constants.js'

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

export function swarmGuard (psk: Uint8Array, log: Log): SwarmGuard {
  const secured = new WeakSet<object>()
  const refusal = (direction: 'inbound' | 'outbound', remote: string): string =>
    `refused connection ${direction === 'inbound' ? 'from' : 'to'} ${remote}`
  const watch = (stream: MessageStream, direction: 'inbound' | 'outbound', remote: string): void => {
    stream.addEventListener('close', () => {
      if (secured.has(stream)) return
      log.warn(`${refusal(direction, remote)}: handshake failed after the swarm key exchange — the peer is not in this private swarm (different or no swarm key)`)
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
            log.warn(`${refusal(conn.direction, remote)}: swarm key exchange failed (${(err as Error).message})`)
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
