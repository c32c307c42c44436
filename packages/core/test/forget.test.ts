/**
 * `node.forget(docId)`: the document leaves the node's memory, digest and store; an open one is
 * refused; a peer that holds it brings it back whole.
 */
import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, createMemoryStorage, createNode } from '../src/index.js'
import { waitFor } from '../src/testing/index.js'
import { content } from './helpers.js'

describe('forget', () => {
  it('drops a document from memory, digest and store; a peer brings it back whole', async () => {
    const net = createMemoryNetwork({ seed: 21, autoConnect: false })
    const storage = createMemoryStorage()
    const a = createNode({ id: 'a', transport: net.transport('a'), storage })
    const b = createNode({ id: 'b', transport: net.transport('b') })
    await a.start()
    await b.start()
    try {
      const doc = await a.open('old')
      doc.getText('t').insert(0, 'kept elsewhere')
      await expect(a.forget('old')).rejects.toMatchObject({ name: 'ConfigError' })
      a.close('old')
      const keep = await a.open('keep')
      keep.getText('t').insert(0, 'stays')
      a.close('keep')
      await a.flush()
      const before = a.digest()
      net.connect('a', 'b')
      await waitFor(async () => b.docs().includes('old') && (await content(b, 'old') as { t: string }).t === 'kept elsewhere')
      net.disconnect('a', 'b')
      await waitFor(() => !a.peers().some(p => p.connected))
      await a.forget('old')
      expect(a.docs()).toEqual(['keep'])
      expect((await storage.list()).map(d => d.id)).toEqual(['keep'])
      expect(a.digest().count).toBe(before.count - 1)
      // the peer still has it, and brings it back in the next exchange
      net.connect('a', 'b')
      await waitFor(() => a.docs().includes('old'))
      await waitFor(async () => (await content(a, 'old') as { t: string }).t === 'kept elsewhere')
      await a.flush()
      expect((await storage.list()).map(d => d.id).sort()).toEqual(['keep', 'old'])
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
