/**
 * Ed25519 keys for trust tests on the memory network, where node ids are plain names: a keyring
 * that gives each name a key (`signer('a')`) and a `TrustCrypto` that verifies against the
 * keyring, or against ids of the form `k:<hex public key>` (the keys it generates for invites).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto'
import { TrustError } from '../errors.js'
import type { Signer, TrustCrypto } from '../statements.js'

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export interface TestKeyring {
  crypto: TrustCrypto
  /** The key of the device named `id` (made on first use). */
  signer(id: string): Signer
}

function fromSeed (seed: Uint8Array): { priv: KeyObject, pub: KeyObject, raw: Uint8Array } {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(seed)]), format: 'der', type: 'pkcs8' })
  const pub = createPublicKey(priv)
  const raw = new Uint8Array(pub.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length))
  return { priv, pub, raw }
}

export function createTestKeyring (): TestKeyring {
  const keys = new Map<string, { priv: KeyObject, pub: KeyObject }>()
  const signerOf = (id: string, priv: KeyObject): Signer => ({ id, sign: data => new Uint8Array(sign(null, data, priv)) })
  const publicOf = (id: string): KeyObject | undefined => {
    const k = keys.get(id)
    if (k !== undefined) return k.pub
    if (!/^k:[0-9a-f]{64}$/.test(id)) return undefined
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(id.slice(2), 'hex')]), format: 'der', type: 'spki' })
  }
  const fromSecret = (secret: Uint8Array): Signer => {
    if (secret.length !== 32) throw new TrustError('an invite secret is 32 bytes')
    const { priv, raw } = fromSeed(secret)
    return signerOf(`k:${Buffer.from(raw).toString('hex')}`, priv)
  }
  return {
    signer (id) {
      let k = keys.get(id)
      if (k === undefined) {
        const pair = generateKeyPairSync('ed25519')
        k = { priv: pair.privateKey, pub: pair.publicKey }
        keys.set(id, k)
      }
      return signerOf(id, k.priv)
    },
    crypto: {
      verify (signerId, data, signature) {
        const pub = publicOf(signerId)
        if (pub === undefined || signature.length !== 64) return false
        try {
          return verify(null, data, pub, signature)
        } catch {
          return false
        }
      },
      generate () {
        const seed = new Uint8Array(randomBytes(32))
        return { signer: fromSecret(seed), secret: seed }
      },
      fromSecret
    }
  }
}
