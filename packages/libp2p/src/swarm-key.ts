/**
 * Swarm keys: the pre-shared key of a private libp2p network (`@libp2p/pnet`). Peers without
 * the same key cannot complete a connection. File format (version 1, as go-ipfs writes it):
 *
 *     /key/swarm/psk/1.0.0/
 *     /base16/
 *     <64 hex digits>
 */
import { SWARM_KEY_BYTES, SWARM_KEY_ENCODING, SWARM_KEY_HEADER } from './constants.js'
import { SwarmKeyError } from './errors.js'

const HEX = /^[0-9a-fA-F]+$/

/** A new random swarm key, encoded as a swarm key file (write it to a file, share it privately). */
export function generateSwarmKey (): Uint8Array {
  return encodeSwarmKey(crypto.getRandomValues(new Uint8Array(SWARM_KEY_BYTES)))
}

/** Encode a 32-byte secret as a swarm key file. */
export function encodeSwarmKey (secret: Uint8Array): Uint8Array {
  if (!(secret instanceof Uint8Array) || secret.length !== SWARM_KEY_BYTES) {
    throw new SwarmKeyError(`a swarm key secret is ${SWARM_KEY_BYTES} bytes, got ${secret instanceof Uint8Array ? `${secret.length} bytes` : typeof secret}`)
  }
  let hex = ''
  for (const b of secret) hex += b.toString(16).padStart(2, '0')
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n${SWARM_KEY_ENCODING}\n${hex}`)
}

/**
 * Check a swarm key (file contents as bytes or text) and return it in canonical form, ready for
 * `preSharedKey({ psk })`. Throws `SwarmKeyError` saying what is wrong. Surrounding white space,
 * CRLF line ends and a trailing new line are accepted.
 */
export function parseSwarmKey (key: Uint8Array | string): Uint8Array {
  return encodeSwarmKey(swarmKeySecret(key))
}

/** The 32-byte secret inside a swarm key. Throws `SwarmKeyError`. */
export function swarmKeySecret (key: Uint8Array | string): Uint8Array {
  let text: string
  if (typeof key === 'string') {
    text = key
  } else if (key instanceof Uint8Array) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(key)
    } catch {
      throw new SwarmKeyError('swarm key is not text: expected a swarm key file (see generateSwarmKey())')
    }
  } else {
    throw new SwarmKeyError(`swarm key must be a string or Uint8Array, got ${typeof key}`)
  }
  const lines = text.trim().split(/\r\n|\r|\n/).map(l => l.trim())
  if (lines.length !== 3) {
    throw new SwarmKeyError(`swarm key must have 3 lines (${SWARM_KEY_HEADER}, ${SWARM_KEY_ENCODING}, the key), got ${lines.length}`)
  }
  const [header, encoding, hex] = lines as [string, string, string]
  if (header !== SWARM_KEY_HEADER) throw new SwarmKeyError(`swarm key must start with "${SWARM_KEY_HEADER}", got "${header.slice(0, 40)}"`)
  if (encoding !== SWARM_KEY_ENCODING) throw new SwarmKeyError(`unsupported swarm key encoding "${encoding.slice(0, 40)}": only ${SWARM_KEY_ENCODING} is supported`)
  if (!HEX.test(hex)) throw new SwarmKeyError('swarm key is not hexadecimal')
  if (hex.length !== SWARM_KEY_BYTES * 2) throw new SwarmKeyError(`swarm key must be ${SWARM_KEY_BYTES * 2} hex digits (${SWARM_KEY_BYTES} bytes), got ${hex.length}`)
  const out = new Uint8Array(SWARM_KEY_BYTES)
  for (let i = 0; i < SWARM_KEY_BYTES; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16)
  return out
}
