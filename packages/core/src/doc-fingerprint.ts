/**
 * A loaded document's fingerprint, kept cheap as the document grows.
 *
 * `docFingerprint` hashes the state vector with the document's delete set, and Yjs builds that
 * delete set by visiting every struct of the document: the cost grows with the document, and the
 * write queue asks for the fingerprint at every storage batch (every 10 ms while someone types).
 * On a text of a million items that is 11–15 ms a batch (`pnpm bench fingerprint`). Here the
 * deleted ranges are kept as the document changes instead: read from the struct store once, then
 * every transaction adds its delete set and any struct it added that was deleted already (a GC
 * struct from a peer, an item whose parent was gone). A fingerprint then costs the state vector
 * and the deleted ranges, not the items.
 *
 * The bytes hashed are those `docFingerprint` hashes (tested against it). While the document
 * holds pending structs or deletes (an update whose dependencies have not arrived), Yjs adds
 * them to the encoding, so the fingerprint is then `docFingerprint` itself.
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { DOC_FINGERPRINT_MAX_ADDED } from './constants.js'
import { writeDeleteSet } from './doc-changes.js'
import { docFingerprint, fingerprintOf } from './fingerprint.js'

/** A range of deleted clocks of one client. */
interface Range { clock: number, len: number }

export class DocFingerprint {
  /** Per client, the deleted ranges sorted by clock, none touching another. */
  private readonly merged = new Map<number, Range[]>()
  /** Ranges added since the last merge, in any order, possibly overlapping. */
  private readonly added = new Map<number, Range[]>()
  private addedCount = 0
  private readonly committed: (tr: Y.Transaction) => void

  constructor (private readonly doc: Y.Doc) {
    for (const [client, items] of Y.createDeleteSetFromStructStore(doc.store).clients) {
      for (const item of items) this.add(client, item.clock, item.len)
    }
    this.merge()
    this.committed = tr => { this.transaction(tr) }
    doc.on('afterTransactionCleanup', this.committed)
  }

  /** The document's fingerprint now (`docFingerprint(doc)`). */
  value (): Uint8Array {
    const store = this.doc.store
    if (store.pendingStructs !== null || store.pendingDs !== null) return docFingerprint(this.doc)
    this.merge()
    // what `encodeStateAsUpdate(doc, stateVector)` writes: no structs, then the delete set (V1)
    const out = encoding.createEncoder()
    encoding.writeVarUint(out, 0)
    writeDeleteSet(out, this.merged)
    return fingerprintOf(Y.encodeStateVector(this.doc), encoding.toUint8Array(out))
  }

  /** Stop following the document. */
  stop (): void {
    this.doc.off('afterTransactionCleanup', this.committed)
  }

  private transaction (tr: Y.Transaction): void {
    for (const [client, items] of tr.deleteSet.clients) {
      for (const item of items) this.add(client, item.clock, item.len)
    }
    // structs this transaction added that were deleted when they arrived are in no delete set
    for (const [client, after] of tr.afterState) {
      const before = tr.beforeState.get(client) ?? 0
      if (after <= before) continue
      const structs = this.doc.store.clients.get(client) as Array<Y.Item | Y.GC>
      for (let i = Y.findIndexSS(structs, before); i < structs.length; i++) {
        const s = structs[i] as Y.Item | Y.GC
        if (s.id.clock >= after) break
        if (s.deleted) this.add(client, s.id.clock, s.length)
      }
    }
    if (this.addedCount > DOC_FINGERPRINT_MAX_ADDED) this.merge()
  }

  /** Notes a deleted range (a range object of its own: merging extends ranges in place). */
  private add (client: number, clock: number, len: number): void {
    const list = this.added.get(client)
    if (list === undefined) this.added.set(client, [{ clock, len }])
    else list.push({ clock, len })
    this.addedCount++
  }

  /** Fold the added ranges into the merged ones. */
  private merge (): void {
    for (const [client, list] of this.added) {
      list.sort((a, b) => a.clock - b.clock)
      const old = this.merged.get(client) ?? []
      const next: Range[] = []
      let i = 0
      let j = 0
      while (i < old.length || j < list.length) {
        const r = (j >= list.length || (i < old.length && (old[i] as Range).clock <= (list[j] as Range).clock) ? old[i++] : list[j++]) as Range
        const last = next[next.length - 1]
        if (last !== undefined && r.clock <= last.clock + last.len) last.len = Math.max(last.len, r.clock + r.len - last.clock)
        else next.push(r)
      }
      this.merged.set(client, next)
    }
    this.added.clear()
    this.addedCount = 0
  }
}
