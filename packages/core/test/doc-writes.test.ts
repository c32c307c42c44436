/** The write path alone, on the virtual clock: batching, flush, retries after a failed append, nothing lost. */
import { describe, expect, it } from 'vitest'
import { createVirtualClock } from '../src/clock.js'
import { WriteQueue } from '../src/doc-writes.js'
import { STORAGE_RETRY_MS } from '../src/constants.js'
import { StorageError } from '../src/errors.js'
import { createMemoryStorage } from '../src/memory-storage.js'
import type { Storage } from '../src/storage.js'

const fp = new Uint8Array(16).fill(7)

async function setup (batchMs = 10): Promise<{ clock: ReturnType<typeof createVirtualClock>, storage: Storage, appends: string[][], stored: Array<[string, number]>, failing: { on: boolean }, q: WriteQueue }> {
  const clock = createVirtualClock(0)
  const storage = createMemoryStorage()
  await storage.open()
  const appends: string[][] = []
  const failing = { on: false }
  const batchIds: string[] = []
  const wrapped: Storage = Object.create(storage) as Storage
  wrapped.append = async (docId, updates, fingerprint) => {
    batchIds.push(docId)
    if (failing.on) throw new StorageError('disk full')
    await storage.append(docId, updates, fingerprint)
  }
  const stored: Array<[string, number]> = []
  const log = Object.assign(() => {}, { error: () => {}, warn: () => {}, trace: () => {} })
  const q = new WriteQueue({
    storage: wrapped,
    timers: clock,
    log,
    batchMs,
    fingerprints: ids => new Map([...ids].map(id => [id, fp])),
    stateVectors: () => new Map(),
    stored: (id, n) => { stored.push([id, n]) },
    batchDone: () => { if (batchIds.length > 0) appends.push(batchIds.splice(0)) }
  })
  return { clock, storage, appends, stored, failing, q }
}

const u = (n: number): Uint8Array => new Uint8Array(n).fill(1)

describe('write queue', () => {
  it('batches the updates of storageBatchMs into one append per document', async () => {
    const { clock, storage, appends, q } = await setup(10)
    q.add('a', u(3))
    q.add('a', u(4))
    q.add('b', u(5))
    expect(q.busy('a')).toBe(true)
    await clock.advance(9)
    expect(appends).toHaveLength(0)
    await clock.advance(1)
    expect(appends).toEqual([['a', 'b']])
    expect((await storage.load('a')).map(x => x.length)).toEqual([3, 4])
    expect(q.busy('a')).toBe(false)
  })

  it('flush writes at once, without waiting for the batch timer', async () => {
    const { storage, appends, stored, q } = await setup(60_000)
    q.add('a', u(3))
    await q.flush()
    expect(appends).toEqual([['a']])
    expect(stored).toEqual([['a', 3]])
    expect(await storage.load('a')).toHaveLength(1)
  })

  it('a failed append keeps its updates queued ahead of newer ones and retries after STORAGE_RETRY_MS', async () => {
    const { clock, storage, failing, q } = await setup(10)
    failing.on = true
    q.add('a', u(1))
    expect(await q.writeNow()).toBeInstanceOf(StorageError)
    q.add('a', u(2))
    expect(q.busy('a')).toBe(true)
    failing.on = false
    await clock.advance(STORAGE_RETRY_MS - 1)
    expect(await storage.load('a')).toHaveLength(0)
    await clock.advance(1)
    expect((await storage.load('a')).map(x => x.length)).toEqual([1, 2])
    expect(q.busy('a')).toBe(false)
  })

  it('flush retries once, and rejects when storage still fails; nothing is dropped', async () => {
    const { storage, failing, q } = await setup(10)
    failing.on = true
    q.add('a', u(1))
    await expect(q.flush()).rejects.toThrow(/disk full/)
    expect(q.queuedDocs).toBe(1)
    failing.on = false
    await q.flush()
    expect(await storage.load('a')).toHaveLength(1)
  })

  it('relieve writes only past its limit of queued documents', async () => {
    const { appends, q } = await setup(60_000)
    q.add('a', u(1))
    q.add('b', u(1))
    expect(await q.relieve(2)).toBe(false)
    expect(appends).toHaveLength(0)
    q.add('c', u(1))
    expect(await q.relieve(2)).toBe(true)
    expect(appends).toEqual([['a', 'b', 'c']])
  })
})
