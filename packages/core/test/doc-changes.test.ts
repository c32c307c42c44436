import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { realTimers } from '../src/clock.js'
import { CHANGE_RUN_MAX_TRANSACTIONS } from '../src/constants.js'
import { DocChanges } from '../src/doc-changes.js'
import { Documents } from '../src/documents.js'
import { docFingerprint } from '../src/fingerprint.js'
import { silentLogger } from '../src/logger.js'
import { createMemoryStorage } from '../src/memory-storage.js'
import { createRandom } from '../src/random.js'
import { edit } from './random-edits.js'

const SKIP = Symbol('skip')
const PEER = 'peer'

interface Taken { update: Uint8Array, origin: unknown }

function watch (doc: Y.Doc): { changes: DocChanges, taken: Taken[], perTransaction: Taken[], waits: number[] } {
  const taken: Taken[] = []
  const perTransaction: Taken[] = []
  const waits: number[] = []
  // Yjs's own per-transaction updates, the reference
  doc.on('update', (update: Uint8Array, origin: unknown) => { if (origin !== SKIP) perTransaction.push({ update, origin }) })
  const changes = new DocChanges(doc, {
    deliver: (update, origin) => { taken.push({ update, origin }) },
    waiting: () => { waits.push(taken.length) },
    skip: origin => origin === SKIP
  })
  return { changes, taken, perTransaction, waits }
}

function copy (doc: Y.Doc): Y.Doc {
  const d = new Y.Doc()
  Y.applyUpdate(d, Y.encodeStateAsUpdate(doc))
  return d
}

/** The same state: state vector, delete set and content. */
function expectSame (a: Y.Doc, b: Y.Doc): void {
  expect(Y.encodeStateVector(a)).toEqual(Y.encodeStateVector(b))
  expect(Y.equalDeleteSets(Y.createDeleteSetFromStructStore(a.store), Y.createDeleteSetFromStructStore(b.store))).toBe(true)
  expect(a.getText('t').toDelta()).toEqual(b.getText('t').toDelta())
  expect(a.getMap('m').toJSON()).toEqual(b.getMap('m').toJSON())
  expect(a.getArray('a').toJSON()).toEqual(b.getArray('a').toJSON())
}

describe('document changes, one update per run of transactions', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`takes the same changes as Yjs's per-transaction updates, run by run (seed ${seed})`, async () => {
      const rng = createRandom(seed)
      const doc = new Y.Doc()
      const remote = new Y.Doc()
      const w = watch(doc)
      // an app that answers some of a peer's edits with one of its own, from an observer
      let answers = 0
      doc.getArray('a').observe(e => { if (e.transaction.origin === PEER) doc.getMap('m').set('answer', ++answers) })
      // what the receiving side holds after each take, and what Yjs's updates would have given it
      let base = new Y.Doc()
      let takenSoFar = 0
      let perTxSoFar = 0
      for (let step = 0; step < 400; step++) {
        const r = rng.int(10)
        if (r < 5) edit(doc, rng, undefined)
        else if (r < 7) {
          // a peer's edit arrives
          const before = Y.encodeStateVector(doc)
          edit(remote, rng, undefined)
          Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote, before), PEER)
        } else if (r < 8) Y.applyUpdate(remote, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(remote)))
        else if (r < 9) await Promise.resolve()
        else w.changes.take()
        if (rng.int(20) === 0 || step === 399) {
          w.changes.take()
          expect(w.changes.pending).toBe(false)
          const ours = copy(base)
          for (const t of w.taken.slice(takenSoFar)) Y.applyUpdate(ours, t.update)
          const theirs = copy(base)
          for (const t of w.perTransaction.slice(perTxSoFar)) Y.applyUpdate(theirs, t.update)
          expectSame(ours, theirs)
          expectSame(ours, doc)
          base = ours
          takenSoFar = w.taken.length
          perTxSoFar = w.perTransaction.length
        }
      }
      // the origins come in the order the transactions did, each update holding one origin's
      const runs = (list: Taken[]): unknown[] => list.map(t => t.origin).filter((o, i, all) => i === 0 || all[i - 1] !== o)
      expect(runs(w.taken)).toEqual(runs(w.perTransaction))
      expect(w.taken.length).toBeLessThan(w.perTransaction.length)
      expect(answers).toBeGreaterThan(0)
    })
  }

  it('an edit made by an observer of a peer\'s edit is a run of its own', () => {
    const doc = new Y.Doc()
    const w = watch(doc)
    doc.getText('t').observe(e => { if (e.transaction.origin === PEER) doc.getMap('m').set('seen', doc.getText('t').length) })
    const other = new Y.Doc()
    other.getText('t').insert(0, 'hello')
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(other), PEER)
    w.changes.take()
    expect(w.taken.map(x => x.origin)).toEqual([PEER, null])
    const peers = new Y.Doc()
    Y.applyUpdate(peers, w.taken[0]?.update as Uint8Array)
    expect(peers.getText('t').toString()).toBe('hello')
    expect(peers.getMap('m').size).toBe(0)
    const ours = Y.decodeUpdate(w.taken[1]?.update as Uint8Array)
    expect(ours.structs.every(st => st.id.client === doc.clientID)).toBe(true)
    expect(doc.getMap('m').get('seen')).toBe(5)
  })

  it('a run ends when a transaction with another origin begins, and replays are not delivered', () => {
    const doc = new Y.Doc()
    const w = watch(doc)
    const t = doc.getText('t')
    t.insert(0, 'ab')
    t.insert(2, 'cd')
    const other = new Y.Doc()
    other.getText('t').insert(0, 'zz')
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(other), PEER)
    t.delete(0, 1)
    const replayed = new Y.Doc()
    replayed.getMap('m').set('x', 1)
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(replayed), SKIP)
    t.insert(0, 'q')
    w.changes.take()
    expect(w.taken.map(x => x.origin)).toEqual([null, PEER, null, null])
    // only the local run's content in the first update, only the peer's in the second
    const first = new Y.Doc()
    Y.applyUpdate(first, w.taken[0]?.update as Uint8Array)
    expect(first.getText('t').toString()).toBe('abcd')
    const second = new Y.Doc()
    Y.applyUpdate(second, w.taken[1]?.update as Uint8Array)
    expect(second.getText('t').toString()).toBe('zz')
    // the replayed map entry travels in no update
    const all = new Y.Doc()
    for (const x of w.taken) Y.applyUpdate(all, x.update)
    expect(all.getMap('m').size).toBe(0)
    expect(all.getText('t').toString()).toBe(doc.getText('t').toString())
    // a transaction that changes nothing delivers nothing
    doc.transact(() => {})
    w.changes.take()
    expect(w.taken).toHaveLength(4)
  })

  it('a long run is taken as it fills, within the same turn', () => {
    const doc = new Y.Doc()
    const w = watch(doc)
    const n = 2 * CHANGE_RUN_MAX_TRANSACTIONS + 5
    for (let i = 0; i < n; i++) doc.getText('t').insert(0, 'x')
    expect(w.taken).toHaveLength(2)
    // the owner is told of every transaction that changed something
    expect(w.waits).toHaveLength(n)
    w.changes.take()
    expect(w.taken).toHaveLength(3)
    const all = new Y.Doc()
    for (const x of w.taken) Y.applyUpdate(all, x.update)
    expect(all.getText('t').length).toBe(n)
  })

  it('stop drops what waits and stops listening', () => {
    const doc = new Y.Doc()
    const w = watch(doc)
    doc.getText('t').insert(0, 'x')
    w.changes.stop()
    doc.getText('t').insert(0, 'y')
    w.changes.take()
    expect(w.taken).toHaveLength(0)
    expect(w.changes.pending).toBe(false)
  })

  it('a document\'s fingerprint follows every transaction, also one made after a refresh in the same run', async () => {
    const storage = createMemoryStorage()
    const taken: Uint8Array[] = []
    const docs = new Documents({
      storage, log: silentLogger().forComponent('test'), maxLoadedDocs: 10, storageBatchMs: 0, timers: realTimers, onChange: (_id, update) => { taken.push(update) }
    })
    await storage.open()
    await docs.init()
    const doc = await docs.get('d')
    doc.getText('t').insert(0, 'one')
    expect(docs.fingerprint('d')).toEqual(docFingerprint(doc))
    // the same run: nothing taken yet
    doc.getText('t').insert(0, 'two')
    expect(taken).toHaveLength(0)
    expect(docs.fingerprint('d')).toEqual(docFingerprint(doc))
    await docs.flush()
    expect(taken).toHaveLength(1)
    const stored = new Y.Doc()
    for (const u of await storage.load('d')) Y.applyUpdate(stored, u)
    expect(stored.getText('t').toString()).toBe('twoone')
    await docs.close()
  })
})
