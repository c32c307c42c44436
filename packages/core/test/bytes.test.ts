import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, createMemoryStorage, createNode, createRandom, type HearsayNode } from '../src/index.js'
import { waitFor } from '../src/testing/index.js'
import { scribble } from './helpers.js'

const DOCS = 40

async function populate (node: HearsayNode, n: number): Promise<void> {
  const rng = createRandom(7)
  for (let i = 0; i < n; i++) {
    const doc = await node.open(`doc-${i}`)
    scribble(doc, rng, 6)
    node.close(`doc-${i}`)
  }
  await node.flush()
}

describe('collection size in bytes', () => {
  it('a node counts the bytes it stores, and reports them again after a restart from what the store lists', async () => {
    const net = createMemoryNetwork({ autoConnect: false })
    const storage = createMemoryStorage()
    const a = createNode({ id: 'a', transport: net.transport('a'), storage, seed: 1 })
    await a.start()
    expect(a.metrics().storedBytes).toBe(0)
    await populate(a, DOCS)
    const stored = a.metrics().storedBytes
    const listed = (await storage.list()).reduce((n, d) => n + (d.bytes ?? 0), 0)
    expect(stored).toBeGreaterThan(0)
    expect(stored).toBe(listed)
    await a.stop()

    const again = createNode({ id: 'a', transport: createMemoryNetwork({ autoConnect: false }).transport('a'), storage, seed: 2 })
    await again.start()
    expect(again.metrics().storedBytes).toBe(stored)
    await again.stop()
  })

  it('an empty node learns a peer\'s size through cluster state and stores a comparable amount once synced', async () => {
    const net = createMemoryNetwork({ autoConnect: false })
    const opts = { antiEntropy: { enabled: false }, cluster: { intervalMs: 50 }, statusIntervalMs: 20 }
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, ...opts })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, ...opts })
    try {
      await a.start()
      await b.start()
      await populate(a, DOCS)
      const size = a.metrics().storedBytes
      expect(size).toBeGreaterThan(0)
      net.connect('a', 'b')
      // before any exchange: the size is known, nothing is stored yet
      await waitFor(() => b.peers().find(p => p.id === 'a')?.bytes === size, { timeoutMs: 5000, message: 'b to hear of a\'s size' })
      expect(b.metrics().storedBytes).toBe(0)
      expect(a.peers().find(p => p.id === 'b')?.bytes).toBe(0)

      await b.syncWith('a', { mode: 'pull' })
      await b.flush()
      expect(b.docs().length).toBe(DOCS)
      const received = b.metrics().storedBytes
      // replicas differ in size (b stores one merged update per document), but not wildly
      expect(received).toBeGreaterThan(size * 0.25)
      expect(received).toBeLessThan(size * 2)
      // and b announces its own new size in turn
      await waitFor(() => a.peers().find(p => p.id === 'b')?.bytes === received, { timeoutMs: 5000, message: 'a to hear of b\'s size' })
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
