/**
 * A node on LevelDB with damaged or large stored data: one corrupt document never cuts a peer
 * off from the others, a document the store cannot list is an error rather than an empty
 * document, and serving an exchange from a large store stays within the memory budget.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { STORED_MERGE_MAX_RECORDS, StorageError, createMemoryNetwork, createNode, docFingerprint, writerLogger } from '@hearsay/core'
import type { HearsayNode, Logger, NodeOptions, Storage } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createLevelStorage } from '@hearsay/leveldb'
import { afterAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { isHeadOf, isUpdateOf, tamper } from '../../packages/leveldb/test/helpers.js'
import { docIdOf, populate } from './populate.js'

const dirs: string[] = []
const nodes: HearsayNode[] = []
afterAll(async () => {
  for (const n of nodes) await n.stop()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
async function dir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hearsay-problems-'))
  dirs.push(d)
  return d
}
const quiet = { enabled: false, onConnect: false }
/** A store written through a node: each document holds its name as text. */
async function writeDocs (path: string, ids: string[]): Promise<void> {
  const n = createNode({ id: 'w', transport: createMemoryNetwork({ seed: 9 }).transport('w'), storage: createLevelStorage({ path, durability: 'process' }), antiEntropy: quiet })
  await n.start()
  for (const id of ids) {
    const doc = await n.open(id)
    // two writes, two update records (edits of one turn would be one)
    doc.getText('t').insert(0, `text of ${id}`)
    await n.flush()
    doc.getText('t').insert(0, '> ')
  }
  await n.flush()
  await n.stop()
}

function capture (): { logger: Logger, lines: string[] } {
  const lines: string[] = []
  return { lines, logger: writerLogger({ level: 'warn', write: line => { lines.push(line) } }) }
}

async function pair (pa: string, extraA: Partial<NodeOptions> = {}, extraB: Partial<NodeOptions> = {}): Promise<[HearsayNode, HearsayNode, ReturnType<typeof createMemoryNetwork>]> {
  const net = createMemoryNetwork({ seed: 4 })
  const a = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path: pa, durability: 'process' }), antiEntropy: quiet, ...extraA })
  const b = createNode({ id: 'b', transport: net.transport('b'), antiEntropy: quiet, ...extraB })
  nodes.push(a, b)
  await a.start()
  await b.start()
  net.connect('a', 'b')
  await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
  return [a, b, net]
}

describe('a corrupt document', () => {
  it('is quarantined: peers still get every other document, live updates keep flowing, opening it names it', async () => {
    const path = await dir()
    await writeDocs(path, ['good/1', 'bad', 'good/2'])
    expect(await tamper(path, isUpdateOf('bad'), v => { v[v.length - 1] = (v[v.length - 1] as number) ^ 0x44; return v })).toBe(2)
    const { logger, lines } = capture()
    const [a, b] = await pair(path, { logger })

    const report = await b.syncWith('a')
    expect(report.docsReceived).toBe(2)
    expect(b.docs().sort()).toEqual(['good/1', 'good/2'])
    expect((await b.open('good/2')).getText('t').toString()).toBe('> text of good/2')
    expect(a.problems()).toEqual([expect.objectContaining({ docId: 'bad', error: 'StorageCorruptionError' })])
    expect(a.metrics().docsQuarantined).toBe(1)

    // b edits its own "bad" and a good one: a drops the first, applies the second, keeps the session
    const mine = await b.open('bad')
    mine.getText('t').insert(0, 'from b')
    const g = await b.open('good/1')
    g.getText('t').insert(0, '!')
    await b.flush()
    await waitFor(async () => (await a.open('good/1')).getText('t').toString() === '!> text of good/1', { message: 'live update to a good document' })
    a.close('good/1')
    expect(a.metrics().sessions).toBe(1)

    // every later exchange, both ways, skips it and completes
    await b.syncWith('a', { mode: 'push-pull' })
    await a.syncWith('b', { mode: 'push-pull' })
    expect(a.metrics().exchangesFailed + b.metrics().exchangesFailed).toBe(0)
    expect(a.metrics().sessions).toBe(1)

    const err = await a.open('bad').then(() => undefined, (e: unknown) => e as Error & { docId?: string })
    expect(err?.name).toBe('StorageCorruptionError')
    expect(err?.docId).toBe('bad')
    expect(err?.message).toContain('"bad"')
    expect(lines.filter(l => l.includes('warn') && l.includes('bad') && l.includes('quarantined')).length).toBe(1)
  })

  it('is not sent again by a peer that holds the same state of it', async () => {
    const [pa, pb] = [await dir(), await dir()]
    await writeDocs(pa, ['good/1', 'bad', 'good/2'])
    await cp(pa, pb, { recursive: true })
    expect(await tamper(pa, isUpdateOf('bad'), v => { v[v.length - 1] = (v[v.length - 1] as number) ^ 0x44; return v })).toBe(2)
    const net = createMemoryNetwork({ seed: 14, autoConnect: false })
    const a = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path: pa, durability: 'process' }), antiEntropy: quiet })
    const b = createNode({ id: 'b', transport: net.transport('b'), storage: createLevelStorage({ path: pb, durability: 'process' }), antiEntropy: quiet, live: false })
    nodes.push(a, b)
    await a.start()
    await b.start()
    net.connect('a', 'b')
    await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
    // b edits a good document (not sent live), so the exchange walks down to the lists
    const g = await b.open('good/1')
    g.getText('t').insert(0, '!')
    await b.flush()
    await expect(a.open('bad')).rejects.toMatchObject({ name: 'StorageCorruptionError' })
    // b asks: a answers with the list of its documents, the quarantined one included
    const report = await b.syncWith('a', { mode: 'push-pull' })
    // only the edited document travelled, not b's copy of the quarantined one
    expect(report.docsSent).toBe(1)
    expect((await a.open('good/1')).getText('t').toString()).toBe('!> text of good/1')
    expect(a.metrics().sessions).toBe(1)
  })

  it('a missing or corrupt head is an error naming the document, not an empty document', async () => {
    const path = await dir()
    await writeDocs(path, ['ok', 'headbad', 'headless'])
    expect(await tamper(path, isHeadOf('headbad'), v => { v[6] = (v[6] as number) ^ 1; return v })).toBe(1)
    expect(await tamper(path, isHeadOf('headless'), () => undefined)).toBe(1)
    const [a, b] = await pair(path)
    expect(a.docs()).toEqual(['ok'])
    for (const id of ['headbad', 'headless']) {
      await expect(a.open(id)).rejects.toMatchObject({ name: 'StorageCorruptionError', docId: id, message: expect.stringContaining('head record') })
    }
    expect(a.problems().map(p => p.docId).sort()).toEqual(['headbad', 'headless'])
    expect((await a.open('ok')).getText('t').toString()).toBe('> text of ok')
    // a peer's copy of such a document is dropped, the rest of the exchange goes on
    const theirs = await b.open('headbad')
    theirs.getText('t').insert(0, 'b')
    await b.flush()
    await a.syncWith('b')
    expect(b.docs().sort()).toEqual(['headbad', 'ok'])
    expect(a.metrics().sessions).toBe(1)
  })
})

describe('serving an exchange from a large store', () => {
  it('answers a pull of stored documents from their records without loading any', async () => {
    const path = await dir()
    const N = 300
    const store = createLevelStorage({ path, durability: 'process' })
    await store.open()
    await populate(store, N, 3, docFingerprint)
    await store.close()
    // b edits without live updates, so its edit reaches a by the exchange below
    const [a, b] = await pair(path, { maxLoadedDocs: 10 }, { live: false })
    const report = await b.syncWith('a', { mode: 'pull' })
    expect(report.docsReceived).toBe(N)
    expect(a.metrics().docsLoaded).toBe(0)
    expect(a.metrics().docsInMemory).toBe(0)
    expect(a.metrics().docsReadStored).toBeGreaterThanOrEqual(N)
    expect(b.digest().root).toEqual(a.digest().root)
    for (const i of [0, 137, N - 1]) {
      expect((await b.open(docIdOf(i))).getText('t').toString()).toBe((await a.open(docIdOf(i))).getText('t').toString())
    }
    // and the other way: a diff against a peer that holds part of a document
    const d = await b.open(docIdOf(5))
    d.getText('t').insert(0, 'b was here ')
    await b.flush()
    a.close(docIdOf(0)); a.close(docIdOf(137)); a.close(docIdOf(N - 1))
    const back = await a.syncWith('b', { mode: 'push-pull' })
    expect(back.docsReceived).toBe(1)
    expect(a.digest().root).toEqual(b.digest().root)
  })

  it('a peer pulling many documents into its own store keeps to its maxLoadedDocs as it goes', async () => {
    const [pa, pb] = [await dir(), await dir()]
    const N = 400
    const store = createLevelStorage({ path: pa, durability: 'process' })
    await store.open()
    await populate(store, N, 2, docFingerprint)
    await store.close()
    const net = createMemoryNetwork({ seed: 8, autoConnect: false })
    const a = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path: pa, durability: 'process' }), antiEntropy: quiet })
    const b = createNode({ id: 'b', transport: net.transport('b'), storage: createLevelStorage({ path: pb }), antiEntropy: quiet, maxLoadedDocs: 20 })
    nodes.push(a, b)
    await a.start()
    await b.start()
    net.connect('a', 'b')
    await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
    let peak = 0
    let sampling = true
    const sample = (): void => {
      peak = Math.max(peak, b.metrics().docsInMemory)
      if (sampling) setImmediate(sample)
    }
    sample()
    const report = await b.syncWith('a', { mode: 'pull' })
    sampling = false
    expect(report.docsReceived).toBe(N)
    // documents with unwritten updates cannot be evicted: the exchange waits for their writes
    expect(peak).toBeLessThanOrEqual(3 * 20)
    await b.flush()
    expect(b.digest().root).toEqual(a.digest().root)
  })

  it(`keeps documents of more than ${STORED_MERGE_MAX_RECORDS} records loaded only while it encodes them (maxLoadedDocs)`, async () => {
    const path = await dir()
    const N = 40
    const store = createLevelStorage({ path, durability: 'process', autoCompact: false })
    await store.open()
    await populate(store, N, STORED_MERGE_MAX_RECORDS + 2, docFingerprint)
    await store.close()
    const [a, b] = await pair(path, { maxLoadedDocs: 4 })
    let peak = 0
    let sampling = true
    const sample = (): void => {
      peak = Math.max(peak, a.metrics().docsInMemory)
      if (sampling) setImmediate(sample)
    }
    sample()
    const report = await b.syncWith('a', { mode: 'pull' })
    sampling = false
    expect(report.docsReceived).toBe(N)
    expect(a.metrics().docsLoaded).toBe(N)
    expect(peak).toBeLessThanOrEqual(4 + 2)
    const want = new Y.Doc()
    for (const u of await (async () => { const s = createLevelStorage({ path: await dir() }); await s.open(); await populate(s, 1, STORED_MERGE_MAX_RECORDS + 2); const r = await s.load(docIdOf(0)); await s.close(); return r })()) Y.applyUpdate(want, u)
    expect((await b.open(docIdOf(0))).getText('t').toString()).toBe(want.getText('t').toString())
  })
})

describe('a failed write', () => {
  /** LevelDB storage whose next `failures` appends reject. */
  function flaky (path: string): { storage: Storage, fail: (n: number, gate?: Promise<void>) => void, failed: () => number, calls: () => number } {
    const inner = createLevelStorage({ path, durability: 'process' })
    let failures = 0
    let failed = 0
    let calls = 0
    let gate: Promise<void> | undefined
    const storage: Storage = {

      open: async () => { await inner.open() },
      close: async () => { await inner.close() },
      list: async () => await inner.list(),
      load: async id => await inner.load(id),
      replace: async (id, s, f) => { await inner.replace(id, s, f) },
      delete: async id => { await inner.delete(id) },
      getMeta: async k => await inner.getMeta(k),
      setMeta: async (k, v) => { await inner.setMeta(k, v) },
      async append (id, updates, fp) {
        calls++
        if (failures > 0) {
          await gate
          failures--
          failed++
          throw new StorageError('disk full (injected)')
        }
        await inner.append(id, updates, fp)
      }
    }
    return { storage, fail: (n, g) => { failures = n; gate = g }, failed: () => failed, calls: () => calls }
  }
  const textStored = async (path: string, docId: string): Promise<string> => {
    const s = createLevelStorage({ path })
    await s.open()
    const doc = new Y.Doc()
    for (const u of await s.load(docId)) Y.applyUpdate(doc, u)
    await s.close()
    return doc.getText('t').toString()
  }

  it('is retried on its own, without waiting for another edit or flush()', async () => {
    const path = await dir()
    const f = flaky(path)
    const a = createNode({ id: 'a', transport: createMemoryNetwork({ seed: 5 }).transport('a'), storage: f.storage, antiEntropy: quiet })
    await a.start()
    f.fail(1)
    const doc = await a.open('d')
    doc.getText('t').insert(0, 'kept')
    await waitFor(() => f.failed() === 1, { message: 'the batched write fails' })
    // nothing else happens on the node: only a retry of its own can store the edit
    const stored = async (): Promise<boolean> => (await f.storage.load('d')).length === 1
    await waitFor(stored, { message: 'the updates are stored by a retry', timeoutMs: 5000 })
    await a.stop()
    expect(await textStored(path, 'd')).toBe('kept')
  })

  it('of a background batch still being written is retried by flush(), which resolves once both batches are stored', async () => {
    const path = await dir()
    const f = flaky(path)
    const a = createNode({ id: 'a', transport: createMemoryNetwork({ seed: 6 }).transport('a'), storage: f.storage, antiEntropy: quiet })
    await a.start()
    let release!: () => void
    f.fail(1, new Promise(resolve => { release = resolve }))
    const d1 = await a.open('d1')
    d1.getText('t').insert(0, 'first')
    await waitFor(() => f.calls() === 1, { message: 'the background batch is being written' })
    const d2 = await a.open('d2')
    d2.getText('t').insert(0, 'second')
    const flushed = a.flush()
    release()
    await flushed
    expect(f.failed()).toBe(1)
    expect((await f.storage.load('d1')).length).toBe(1)
    await a.stop()
    expect(await textStored(path, 'd1')).toBe('first')
    expect(await textStored(path, 'd2')).toBe('second')
  })

  it('while a peer sends many documents does not retry on every one of them; all are stored once storage recovers', async () => {
    const [pa, pb] = [await dir(), await dir()]
    const N = 60
    const store = createLevelStorage({ path: pa, durability: 'process' })
    await store.open()
    await populate(store, N, 1, docFingerprint)
    await store.close()
    const f = flaky(pb)
    const net = createMemoryNetwork({ seed: 10, autoConnect: false })
    const a = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path: pa, durability: 'process' }), antiEntropy: quiet })
    const b = createNode({ id: 'b', transport: net.transport('b'), storage: f.storage, antiEntropy: quiet, maxLoadedDocs: 4, storageBatchMs: 60_000 })
    nodes.push(a, b)
    await a.start()
    await b.start()
    net.connect('a', 'b')
    await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
    f.fail(Number.MAX_SAFE_INTEGER)
    const report = await b.syncWith('a', { mode: 'pull' })
    expect(report.docsReceived).toBe(N)
    // each attempt writes every queued document: retried per received document, that is ~N²/2
    expect(f.calls()).toBeLessThan(3 * N)
    f.fail(0)
    await b.flush()
    expect((await f.storage.load(docIdOf(N - 1))).length).toBe(1)
  })

  it('makes flush() reject while it keeps failing', async () => {
    const path = await dir()
    const f = flaky(path)
    const a = createNode({ id: 'a', transport: createMemoryNetwork({ seed: 7 }).transport('a'), storage: f.storage, antiEntropy: quiet, storageBatchMs: 60_000 })
    await a.start()
    f.fail(2)
    const d = await a.open('d')
    d.getText('t').insert(0, 'x')
    await expect(a.flush()).rejects.toMatchObject({ name: 'StorageError' })
    await a.flush()
    await a.stop()
    expect(await textStored(path, 'd')).toBe('x')
  })
})
