/**
 * Checking Yjs updates before they touch a document: every update from a peer or a local client is
 * parsed in full here first, so a malformed one is refused whole with `InvalidUpdateError`.
 */
import * as Y from 'yjs'
import { InvalidUpdateError } from './errors.js'

/**
 * Parse an update fully (every struct and the delete set) without applying it; throws
 * `InvalidUpdateError` when it is not a well-formed Yjs update.
 */
export function validateUpdate (docId: string, update: Uint8Array): void {
  if (update.length < 2) throw new InvalidUpdateError(docId, `${update.length} bytes is too short to be an update`)
  try {
    // decodeUpdate reads the delete set too (parseUpdateMeta stops after the structs), so an update
    // whose structs are fine but whose delete set is broken never reaches applyUpdate, which would
    // integrate the structs before failing on it
    const { structs, ds } = Y.decodeUpdate(update)
    for (const s of structs) {
      if (!Number.isSafeInteger(s.id.client) || !Number.isSafeInteger(s.id.clock) || !(s.length >= 0)) throw new Error('structs with a bad client or clock')
    }
    for (const [client, items] of ds.clients) {
      if (!Number.isSafeInteger(client)) throw new Error('a delete set with a bad client')
      for (const d of items) if (!Number.isSafeInteger(d.clock) || !Number.isSafeInteger(d.len) || d.len < 0) throw new Error('a delete set with a bad range')
    }
  } catch (err) {
    throw new InvalidUpdateError(docId, err instanceof Error ? err.message : 'could not be decoded', { cause: err })
  }
}
