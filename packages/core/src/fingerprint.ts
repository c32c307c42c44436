/**
 * Document fingerprints and document keys.
 *
 * A Yjs document's state is fully determined by the set of items it holds, identified by
 * (client, clock), and by its delete set. The state vector names the items (every item below
 * each client's clock); the delete set names the deleted ones. So the fingerprint hashes the
 * state vector together with the encoded delete set (which `encodeStateAsUpdate(doc, sv)`
 * returns on its own, along with any pending structs): two replicas with equal fingerprints hold
 * equal documents, and any change, deletion-only transactions included, changes it.
 */
import * as Y from 'yjs'
import { MAX_DOC_ID_BYTES } from './constants.js'
import { InvalidDocIdError } from './errors.js'
import { FINGERPRINT_BYTES } from './protocol.js'
import { sha256 } from './sha256.js'

const utf8 = new TextEncoder()

function hash16 (parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length + 4
  const buf = new Uint8Array(n)
  const view = new DataView(buf.buffer)
  let off = 0
  for (const p of parts) {
    view.setUint32(off, p.length)
    buf.set(p, off + 4)
    off += p.length + 4
  }
  return sha256(buf, FINGERPRINT_BYTES)
}

/** 16-byte fingerprint of a document's whole state (for a loaded document, `DocFingerprint` is cheaper). */
export function docFingerprint (doc: Y.Doc): Uint8Array {
  const sv = Y.encodeStateVector(doc)
  return fingerprintOf(sv, Y.encodeStateAsUpdate(doc, sv))
}

/** The fingerprint from a document's encoded state vector and `encodeStateAsUpdate(doc, sv)`. */
export function fingerprintOf (stateVector: Uint8Array, rest: Uint8Array): Uint8Array {
  return hash16([stateVector, rest])
}

/** 8-byte position of a document in the digest tree. */
export function docKey (docId: string): Uint8Array {
  return sha256(utf8.encode(docId), 8)
}

/** A document's contribution to its digest ranges: binds the id to the fingerprint. */
export function leafHash (docId: string, fingerprint: Uint8Array): Uint8Array {
  return hash16([utf8.encode(docId), fingerprint])
}

/**
 * Check a document id: non-empty, well-formed Unicode (so it round-trips through UTF-8), at most
 * `MAX_DOC_ID_BYTES` bytes. Throws `InvalidDocIdError` saying what is wrong.
 */
export function validateDocId (docId: unknown): asserts docId is string {
  if (typeof docId !== 'string') throw new InvalidDocIdError(`document id must be a string, got ${typeof docId}`)
  if (docId.length === 0) throw new InvalidDocIdError('document id must not be empty')
  if (!docId.isWellFormed()) throw new InvalidDocIdError('document id is not well-formed Unicode (it has a lone surrogate)')
  const bytes = utf8.encode(docId).length
  if (bytes > MAX_DOC_ID_BYTES) throw new InvalidDocIdError(`document id is ${bytes} bytes of UTF-8; the limit is ${MAX_DOC_ID_BYTES}`)
}
