/**
 * Compaction keeps only live content: a value overwritten 40 times and deleted text leave about
 * one copy of what is live on disk, in memory storage, and in what a peer is sent, whether the
 * peer is answered from a compacted snapshot or from the stored records directly.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryNetwork, createMemoryStorage, createNode, docFingerprint } from '@hearsay/core'
import type { Storage } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createLevelStorage } from '@hearsay/leveldb'
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'

const VALUE_BYTES = 100 * 1024
const OVERWRITES = 40
const DOC = 'notes/big'
const quiet = { enabled: false, onConnect: false }

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})
async function dir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hs-compaction-'))
  dirs.push(d)
  return d
}

/** A deterministic value of `n` bytes that differs per round (no compression games). */
const value = (round: number, n = VALUE_BYTES): string => {
  let s = ''
  let x = 0x9e3779b9 ^ round
  while (s.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    s += (x >>> 8).toString(36)
  }
  return s.slice(0, n)
}

/** Overwrites map key `k` OVERWRITES times and inserts-then-deletes text; one update per edit. */
function edit (doc: Y.Doc, onUpdate: (u: Uint8Array) => Promise<void> | void): Promise<void> {
  const pending: Array<Promise<void> | void> = []
  const listener = (u: Uint8Array): void => { pending.push(onUpdate(u)) }
  doc.on('update', listener)
  for (let i = 0; i < OVERWRITES; i++) doc.getMap('m').set('k', value(i))
  doc.getText('t').insert(0, value(1000))
  doc.getText('t').delete(10, VALUE_BYTES - 20)
  doc.off('update', listener)
  return Promise.all(pending).then(() => undefined)
}

const contentOf = (doc: Y.Doc): unknown => ({ m: doc.getMap('m').toJSON(), t: doc.getText('t').toString() })
const liveBytes = (doc: Y.Doc): number => Y.encodeStateAsUpdate(doc).length

async function storedBytes (store: Storage, docId: string): Promise<number> {
  const info = (await store.list()).find(d => d.id === docId)
  return info?.bytes ?? 0
}

async function reload (store: Storage, docId: string): Promise<Y.Doc> {
  const doc = new Y.Doc()
  for (const u of await store.load(docId)) Y.applyUpdate(doc, u)
  return doc
}

describe('compaction drops deleted content', () => {
  for (const kind of ['memory', 'leveldb'] as const) {
    it(`${kind}: ${OVERWRITES} overwrites of a ${VALUE_BYTES / 1024} KB value are stored in at most 2 x the live bytes, content unchanged`, async () => {
      const store = kind === 'memory'
        ? createMemoryStorage()
        : createLevelStorage({ path: await dir(), durability: 'process', autoCompact: false })
      await store.open()
      try {
        const doc = new Y.Doc()
        await edit(doc, async u => { await store.append(DOC, [u], docFingerprint(doc)) })
        const live = liveBytes(doc)
        expect(live).toBeLessThan(VALUE_BYTES * 1.3)
        if (kind === 'leveldb') {
          // nothing compacted yet: every overwritten value is still on disk
          expect(await storedBytes(store, DOC)).toBeGreaterThan(OVERWRITES * VALUE_BYTES)
          const stats = await (store as ReturnType<typeof createLevelStorage>).compact(DOC)
          expect(stats?.records).toBe(1)
        }
        const stored = await storedBytes(store, DOC)
        expect(stored).toBeLessThanOrEqual(2 * live)
        const again = await reload(store, DOC)
        expect(contentOf(again)).toEqual(contentOf(doc))
        expect(Y.encodeStateVector(again)).toEqual(Y.encodeStateVector(doc))
        // eslint-disable-next-line no-console -- test report
        console.log(`${kind}: ${OVERWRITES} overwrites of ${VALUE_BYTES} bytes: live ${live} bytes, stored ${stored} bytes after compaction`)
      } finally {
        await store.close()
      }
    })
  }

  for (const compacted of [false, true]) {
    it(`a peer syncing from ${compacted ? 'a compacted snapshot' : 'stored records (not compacted, document not loaded)'} receives at most 2 x the live bytes`, async () => {
      const path = await dir()
      const store = createLevelStorage({ path, durability: 'process', autoCompact: false })
      await store.open()
      const source = new Y.Doc()
      await edit(source, async u => { await store.append(DOC, [u], docFingerprint(source)) })
      if (compacted) await store.compact(DOC)
      else expect((await store.stats(DOC))?.records).toBeGreaterThan(OVERWRITES)
      await store.close()

      const net = createMemoryNetwork({ seed: 7 })
      const a = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path, autoCompact: false }), antiEntropy: quiet })
      const b = createNode({ id: 'b', transport: net.transport('b'), antiEntropy: quiet })
      await a.start()
      await b.start()
      try {
        net.connect('a', 'b')
        await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
        const report = await b.syncWith('a')
        expect(report.docsReceived).toBe(1)
        expect(a.metrics().docsLoaded).toBe(0)
        const live = liveBytes(source)
        expect(report.bytesReceived).toBeLessThanOrEqual(2 * live)
        const copy = await b.open(DOC)
        expect(contentOf(copy)).toEqual(contentOf(source))
      } finally {
        await a.stop()
        await b.stop()
      }
    })
  }

  for (const kind of ['memory', 'leveldb'] as const) {
    it(`${kind}: a document read back as a single record holds nothing it deleted (a single record is sent to peers as it is)`, async () => {
      const store = kind === 'memory' ? createMemoryStorage() : createLevelStorage({ path: await dir(), durability: 'process' })
      await store.open()
      try {
        const doc = new Y.Doc()
        const writes: Array<Promise<void>> = []
        doc.on('update', (u: Uint8Array) => { writes.push(store.append(DOC, [u], docFingerprint(doc))) })
        const text = doc.getText('t')
        text.insert(0, 'the secret is swordfish')
        text.delete(14, 9)
        text.insert(14, 'kept')
        for (let i = 0; i < 20; i++) text.insert(text.length, '.')
        await Promise.all(writes)
        const records = await store.load(DOC)
        const secret = new TextEncoder().encode('swordfish')
        const holds = (r: Uint8Array): boolean => r.some((_, i) => secret.every((b, j) => r[i + j] === b))
        if (records.length === 1) expect(holds(records[0] as Uint8Array)).toBe(false)
        expect(contentOf(await reload(store, DOC))).toEqual(contentOf(doc))
      } finally {
        await store.close()
      }
    })
  }

  it('memory storage packs small appends, merges them when read, does not rewrite a large snapshot for them, and drops what deletions deleted', async () => {
    const store = createMemoryStorage()
    await store.open()
    const doc = new Y.Doc()
    const records = async (): Promise<Uint8Array[]> => await store.load(DOC)
    let appended = 0
    doc.on('update', (u: Uint8Array) => { appended++; void store.append(DOC, [u], docFingerprint(doc)) })
    doc.getText('t').insert(0, value(1, 200 * 1024))
    doc.getText('t').insert(0, 'x') // past 64 KiB after no snapshot: compacted into one
    const snapshot = (await records())[0] as Uint8Array
    expect(await records()).toHaveLength(1)
    for (let i = 0; i < 1200; i++) doc.getText('t').insert(i, 'x')
    // 1,200 small records against a 200 KB snapshot: read back as the snapshot, as it was, and one merged record
    const after = await records()
    expect(after[0]).toBe(snapshot)
    expect(after).toHaveLength(2)
    for (let i = 0; i < 3000; i++) doc.getText('t').delete(0, 1)
    expect((await records()).length).toBeLessThan(appended / 2)
    expect(await storedBytes(store, DOC)).toBeLessThanOrEqual(2 * liveBytes(doc))
    expect(contentOf(await reload(store, DOC))).toEqual(contentOf(doc))

    // deleting a whole 20 KB text character by character adds few bytes: the record count
    // triggers a compaction, and what was deleted is gone
    const small = new Y.Doc()
    small.on('update', (u: Uint8Array) => { void store.append('small', [u], docFingerprint(small)) })
    small.getText('t').insert(0, value(2, 20 * 1024))
    while (small.getText('t').length > 0) small.getText('t').delete(0, 1)
    // the snapshot no longer holds the text; what follows it is at most ~500 small records
    expect(((await store.load('small'))[0] as Uint8Array).length).toBeLessThan(1024)
    expect(await storedBytes(store, 'small')).toBeLessThan(10 * 1024)
    expect(contentOf(await reload(store, 'small'))).toEqual(contentOf(small))
    await store.close()
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => createMemoryStorage({ compactAfterBytes: bad })).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    }
  })

  it("a node's stored-bytes estimate drops to what the store holds once the document is read again", async () => {
    const path = await dir()
    const storage = createLevelStorage({ path, durability: 'process' })
    const net = createMemoryNetwork({ seed: 8, autoConnect: false })
    const a = createNode({ id: 'a', transport: net.transport('a'), storage, antiEntropy: quiet, maxLoadedDocs: 0 })
    const b = createNode({ id: 'b', transport: net.transport('b'), antiEntropy: quiet })
    await a.start()
    await b.start()
    try {
      const doc = await a.open(DOC)
      for (let i = 0; i < 20; i++) {
        doc.getMap('m').set('k', value(i))
        await a.flush()
      }
      const written = a.metrics().storedBytes
      a.close(DOC)
      await storage.idle()
      expect(written).toBeGreaterThan(19 * VALUE_BYTES)
      await waitFor(() => a.metrics().docsInMemory === 0, { message: 'evicted' })
      net.connect('a', 'b')
      await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
      await b.syncWith('a')
      expect(a.metrics().docsReadStored).toBe(1)
      // what the store holds now (compacted, plus what was appended since its last compaction)
      const held = await storedBytes(storage, DOC)
      expect(held).toBeLessThan(written / 2)
      expect(a.metrics().storedBytes).toBe(held)
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
