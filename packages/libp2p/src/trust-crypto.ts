/**
 * Roster signatures for libp2p identities: a statement's issuer is a libp2p peer id, and an
 * Ed25519 peer id carries its public key, so any device checks any signature offline. Invite keys
 * are Ed25519 keys named by the peer id they would have. Signing and verifying use Node's own
 * Ed25519 (synchronous); public keys are kept per id in a small bounded cache.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto'
import { TrustError } from '@hearsay/core'
import type { Signer, TrustCrypto } from '@hearsay/core'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
/** Public keys kept in the cache; past it, the oldest goes. */
const KEY_CACHE_MAX = 4096

function signerFromSeed (seed: Uint8Array): Signer {
  if (seed.length !== 32) throw new TrustError('an Ed25519 secret is 32 bytes')
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(seed)]), format: 'der', type: 'pkcs8' })
  const raw = new Uint8Array(createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length))
  const id = peerIdFromPublicKey(publicKeyFromRaw(raw)).toString()
  return { id, sign: data => new Uint8Array(sign(null, data, priv)) }
}

/** This device's signer, from its libp2p private key (Ed25519 only). Throws `TrustError` for other key types. */
export function libp2pSigner (key: PrivateKey): Signer {
  if (key.type !== 'Ed25519') throw new TrustError(`roster statements need an Ed25519 identity, this node has a ${key.type} key`)
  return signerFromSeed(key.raw.subarray(0, 32))
}

/** The `TrustCrypto` for libp2p peer ids (`createHearsayNode` passes it to the engine). */
export function trustCrypto (): TrustCrypto {
  const keys = new Map<string, KeyObject | null>()
  const publicOf = (id: string): KeyObject | null => {
    let k = keys.get(id)
    if (k !== undefined) return k
    try {
      const pub = peerIdFromString(id).publicKey
      k = pub?.type === 'Ed25519' ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(pub.raw)]), format: 'der', type: 'spki' }) : null
    } catch {
      k = null
    }
    if (keys.size >= KEY_CACHE_MAX) keys.delete(keys.keys().next().value as string)
    keys.set(id, k)
    return k
  }
  return {
    verify (signerId, data, signature) {
      const pub = publicOf(signerId)
      if (pub === null || signature.length !== 64) return false
      try {
        return verify(null, data, pub, signature)
      } catch {
        return false
      }
    },
    generate () {
      const secret = new Uint8Array(randomBytes(32))
      return { signer: signerFromSeed(secret), secret }
    },
    fromSecret: signerFromSeed
  }
}
