import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { DOC_FINGERPRINT_MAX_ADDED } from '../src/constants.js'
import { DocFingerprint } from '../src/doc-fingerprint.js'
import { docFingerprint } from '../src/fingerprint.js'
import { createRandom } from '../src/random.js'
import { edit } from './random-edits.js'

const PEER = 'peer'

describe('a loaded document\'s fingerprint, kept as it changes', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`is docFingerprint after every change: local edits, a peer's, GC structs, pending updates (seed ${seed})`, () => {
      const rng = createRandom(seed)
      // a document with history (deletes, formatting, nested types) before it is followed
      const doc = new Y.Doc()
      for (let i = 0; i < 40; i++) edit(doc, rng, null)
      const fp = new DocFingerprint(doc)
      expect(fp.value()).toEqual(docFingerprint(doc))
      // a peer with a history of its own, which it garbage-collects
      const peer = new Y.Doc()
      Y.applyUpdate(peer, Y.encodeStateAsUpdate(doc))
      let sentTo = Y.encodeStateVector(peer)
      let held: Uint8Array | undefined
      let pendingSeen = 0
      for (let step = 0; step < 300; step++) {
        switch (rng.int(6)) {
          case 0: case 1: edit(doc, rng, null); break
          case 2: edit(peer, rng, null); break
          case 3: {
            // what the peer did since the last delivery: its deleted content arrives as GC structs
            const update = Y.encodeStateAsUpdate(peer, sentTo)
            sentTo = Y.encodeStateVector(peer)
            if (held === undefined && rng.int(3) === 0) {
              // held back, then delivered after the next one: that one waits as pending structs
              held = update
            } else {
              Y.applyUpdate(doc, update, PEER)
              if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null) pendingSeen++
            }
            break
          }
          case 4:
            if (held !== undefined) {
              Y.applyUpdate(doc, held, PEER)
              held = undefined
            }
            break
          case 5: Y.applyUpdate(peer, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(peer))); break
        }
        expect(fp.value(), `step ${step}`).toEqual(docFingerprint(doc))
      }
      if (held !== undefined) Y.applyUpdate(doc, held, PEER)
      expect(fp.value()).toEqual(docFingerprint(doc))
      // the histories exercised what they are meant to
      expect(pendingSeen).toBeGreaterThan(0)
      expect(Y.createDeleteSetFromStructStore(doc.store).clients.size).toBeGreaterThan(1)
    })
  }

  it('counts structs that arrive deleted: the content of a peer\'s deleted nested type, as GC structs', () => {
    const peer = new Y.Doc()
    const nested = new Y.Map<number>()
    peer.getArray('a').insert(0, [nested])
    for (let i = 0; i < 5; i++) nested.set(`k${i}`, i)
    peer.getArray('a').delete(0, 1)
    const doc = new Y.Doc()
    const fp = new DocFingerprint(doc)
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(peer))
    // the nested map's entries came as GC structs, which no transaction of `doc` deleted
    expect(doc.store.clients.get(peer.clientID)?.some(s => s instanceof Y.GC)).toBe(true)
    expect(fp.value()).toEqual(docFingerprint(doc))
    expect(fp.value()).toEqual(docFingerprint(peer))
  })

  it('folds many small deletes in as they come, and stops following the document when stopped', () => {
    const doc = new Y.Doc()
    const t = doc.getText('t')
    t.insert(0, 'x'.repeat(4 * DOC_FINGERPRINT_MAX_ADDED))
    const fp = new DocFingerprint(doc)
    // every other character deleted, one transaction each: ranges that never touch
    for (let i = 0; i < DOC_FINGERPRINT_MAX_ADDED + 10; i++) t.delete(i + 1, 1)
    expect(fp.value()).toEqual(docFingerprint(doc))
    const before = fp.value()
    fp.stop()
    t.delete(0, 1)
    expect(fp.value()).toEqual(before)
    expect(fp.value()).not.toEqual(docFingerprint(doc))
  })
})
