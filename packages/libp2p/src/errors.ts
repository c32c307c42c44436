/**
 * Typed errors of the libp2p transport, and how any error reads in a log line. Callers branch on
 * `err.name`. They extend core's classes so `err instanceof HearsayError` holds for every error
 * Hearsay throws.
 */
import { ConfigError, HearsayError } from '@hearsay/core'

/** A swarm key is malformed: wrong header, unsupported encoding, wrong length or not hex. */
export class SwarmKeyError extends ConfigError {
  static override readonly code: string = 'SwarmKeyError'
}

/** The key file in `dataDir` exists but cannot be read or decoded. It is never overwritten. */
export class IdentityError extends HearsayError {
  static override readonly code: string = 'IdentityError'
  constructor (readonly path: string, message: string, options?: { cause?: unknown }) {
    super(`peer key ${path}: ${message}`, options)
  }
}

/** A peer id string does not parse. */
export class InvalidPeerIdError extends ConfigError {
  static override readonly code: string = 'InvalidPeerIdError'
}

/** `Name: message (CODE)` for a log line; libp2p's dial errors carry the socket error's code. */
export function describeError (err: unknown): string {
  const e = err as { name?: string, message?: string, code?: string }
  const text = `${e.name ?? 'Error'}: ${e.message ?? String(err)}`
  return e.code !== undefined && !text.includes(e.code) ? `${text} (${e.code})` : text
}
