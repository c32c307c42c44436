import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { CHANGE_RUN_MAX_TRANSACTIONS, createMemoryStorage, createMemoryNetwork, createNode, type HearsayNode } from '../src/index.js'
import { waitFor } from '../src/testing/index.js'
import { cluster, content, createRandom, gatedStorage, scribble } from './helpers.js'

const text = async (n: HearsayNode, id: string): Promise<string> => (await content(n, id) as { t: string }).t

describe('live propagation', () => {
  it('a local edit reaches every connected peer without anti-entropy, and is not echoed back', async () => {
    const c = await cluster(['a', 'b', 'c'], { antiEntropy: { enabled: false } })
    const [a, b, cc] = c.nodes as [HearsayNode, HearsayNode, HearsayNode]
    await waitFor(() => a.peers().filter(p => p.connected).length === 2)
    const doc = await a.open('n')
    for (let i = 0; i < 50; i++) doc.getText('t').insert(i, 'x')
    await waitFor(async () => await text(b, 'n') === 'x'.repeat(50) && await text(cc, 'n') === 'x'.repeat(50))
    await c.net.settled()
    expect(a.metrics().exchangesStarted).toBe(0)
    // 50 edits in one tick travel as one batch per peer
    expect(a.metrics().liveUpdatesSent).toBe(2)
    // b and c applied it with a remote origin and sent nothing live back
    expect(b.metrics().liveUpdatesSent).toBe(0)
    expect(cc.metrics().liveUpdatesSent).toBe(0)
    await c.stop()
  })

  it('a burst typed in one turn goes out as bounded updates, one per run of transactions', async () => {
    const c = await cluster(['a', 'b'], { antiEntropy: { enabled: false } })
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    await waitFor(() => a.peers().some(p => p.connected))
    const doc = await a.open('n')
    const updates: number[] = []
    const off = a.on('doc:update', e => { if (e.peerId === undefined) updates.push(e.update.length) })
    const n = 3 * CHANGE_RUN_MAX_TRANSACTIONS + 10
    for (let i = 0; i < n; i++) doc.getText('t').insert(0, 'y')
    // still in the same turn: three full runs were taken as they filled, the rest waits for a microtask
    expect(updates.length).toBe(3)
    await waitFor(async () => (await text(b, 'n')).length === n)
    expect(updates.length).toBe(4)
    // one live batch carried them, merged into one update
    expect(a.metrics().liveUpdatesSent).toBe(1)
    off()
    await c.stop()
  })

  it('a doc:update listener that throws loses nothing: the edit is stored and reaches the peer', async () => {
    const storage = createMemoryStorage()
    const c = await cluster(['a', 'b'], { antiEntropy: { enabled: false } })
    const a = createNode({ id: 'a2', transport: c.net.transport('a2'), storage, antiEntropy: { enabled: false } })
    await a.start()
    const b = c.nodes[1] as HearsayNode
    await waitFor(() => a.peers().some(p => p.id === 'b' && p.connected))
    a.on('doc:update', () => { throw new Error('listener failed') })
    const doc = await a.open('n')
    doc.getText('t').insert(0, 'kept')
    doc.getText('t').insert(4, '!')
    await waitFor(async () => await text(b, 'n') === 'kept!')
    await a.flush()
    const stored = new Y.Doc()
    for (const u of await storage.load('n')) Y.applyUpdate(stored, u)
    expect(stored.getText('t').toString()).toBe('kept!')
    await a.stop()
    await c.stop()
  })

  it('a peer that was away gets queued updates on reconnect', async () => {
    const c = await cluster(['a', 'b'], { antiEntropy: { enabled: false } })
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    await waitFor(() => a.peers().some(p => p.connected))
    const doc = await a.open('n')
    doc.getText('t').insert(0, 'one ')
    await waitFor(async () => await text(b, 'n') === 'one ')
    c.net.disconnect('a', 'b')
    await waitFor(() => !a.peers().some(p => p.connected))
    doc.getText('t').insert(4, 'two ')
    await a.flush()
    c.net.connect('a', 'b')
    await waitFor(async () => await text(b, 'n') === 'one two ')
    expect(a.metrics().exchangesStarted).toBe(0)
    expect(a.metrics().retryQueueOverflows).toBe(0)
    await c.stop()
  })

  it('when the retry queue overflows, an exchange on reconnect repairs the rest', async () => {
    // no routine exchange on connect and no periodic round in time: only the overflow brings the repair
    const c = await cluster(['a', 'b'], { retryQueueBytes: 1000, antiEntropy: { intervalMs: 60_000, onConnect: false } })
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    await waitFor(() => a.peers().some(p => p.connected))
    c.net.disconnect('a', 'b')
    await waitFor(() => !a.peers().some(p => p.connected))
    const rng = createRandom(3)
    for (let i = 0; i < 40; i++) {
      scribble(await a.open(`d${i}`), rng, 10)
      await a.flush()
    }
    expect(a.metrics().retryQueueOverflows).toBeGreaterThan(0)
    c.net.connect('a', 'b')
    await waitFor(() => b.docs().length === 40, { message: 'repair after overflow' })
    for (let i = 0; i < 40; i++) expect(await content(b, `d${i}`)).toEqual(await content(a, `d${i}`))
    expect(a.metrics().exchangesStarted).toBeGreaterThan(0)
    await c.stop()
  })

  it('a receiver that applies slowly drops live frames past receiveQueueBytes, and an exchange brings them', async () => {
    // b's store answers its first load of "slow" only when the gate opens: b's inbox backs up behind it
    const { storage: slow, open } = gatedStorage('slow')
    const net = createMemoryNetwork({ seed: 5 })
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, antiEntropy: { intervalMs: 600_000, onConnect: false } })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, storage: slow, receiveQueueBytes: 4096, antiEntropy: { intervalMs: 600_000, onConnect: false } })
    await a.start()
    await b.start()
    await waitFor(() => a.peers().some(p => p.connected) && b.peers().some(p => p.connected))
    const text = (await a.open('slow')).getText('t')
    for (let i = 0; i < 100; i++) {
      text.insert(text.length, `line ${i} `.padEnd(100, '.'))
      await a.flush() // one live frame per edit
    }
    await waitFor(() => a.metrics().liveUpdatesSent === 100)
    await waitFor(() => b.metrics().liveFramesDropped > 0, { message: 'frames dropped past 4 KiB' })
    expect(b.metrics().liveUpdatesReceived).toBe(0)
    open()
    await waitFor(async () => (await content(b, 'slow') as { t: string }).t === text.toString(), { message: 'repaired' })
    expect(b.metrics().exchangesStarted).toBeGreaterThan(0)
    expect(b.metrics().liveUpdatesReceived).toBeLessThan(100)
    expect(b.metrics().framesRejected).toBe(0)
    await a.stop()
    await b.stop()
  })

  it('peers() reports inSync once both sides hold the same documents', async () => {
    const c = await cluster(['a', 'b'], { statusIntervalMs: 5, antiEntropy: { enabled: false } })
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    await waitFor(() => a.peers().some(p => p.connected))
    ;(await a.open('x')).getText('t').insert(0, 'hi')
    await waitFor(() => a.peers()[0]?.inSync === true && b.peers()[0]?.inSync === true, { message: 'in sync' })
    c.net.disconnect('a', 'b')
    await waitFor(() => a.peers()[0]?.connected === false)
    ;(await a.open('x')).getText('t').insert(0, 'ho')
    expect(a.peers()[0]).toMatchObject({ id: 'b', connected: false, inSync: false })
    await c.stop()
  })
})

describe('convergence', () => {
  it('five nodes with periodic anti-entropy and random edits converge once edits stop', async () => {
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5']
    // no live mail: only anti-entropy moves edits
    const c = await cluster(ids, { live: false, antiEntropy: { intervalMs: 20 }, statusIntervalMs: 10 }, 21)
    const rng = createRandom(21)
    for (let round = 0; round < 30; round++) {
      const node = rng.pick(c.nodes)
      scribble(await node.open(`doc/${rng.int(20)}`), rng)
      // links fail and come back while edits go on
      if (round % 7 === 3) c.net.disconnect(rng.pick(ids), rng.pick(ids))
      if (round % 7 === 5) c.net.heal()
    }
    c.net.heal()
    const first = c.nodes[0] as HearsayNode
    await waitFor(() => c.nodes.every(n => Buffer.from(n.digest().root).equals(Buffer.from(first.digest().root))), { timeoutMs: 20_000, message: 'equal roots' })
    for (const id of first.docs()) {
      const want = await content(first, id)
      for (const n of c.nodes) expect(await content(n, id)).toEqual(want)
    }
    await waitFor(() => c.nodes.every(n => n.peers().every(p => p.inSync)), { timeoutMs: 10_000, message: 'every peer in sync' })
    for (const n of c.nodes) expect(n.metrics().liveUpdatesSent).toBe(0)
    expect(c.nodes.reduce((sum, n) => sum + n.metrics().exchangesCompleted, 0)).toBeGreaterThan(0)
    await c.stop()
  })
})

describe('options', () => {
  it('bad options get a ConfigError naming the field', async () => {
    const { createNode, createMemoryNetwork } = await import('../src/index.js')
    const net = createMemoryNetwork()
    expect(() => createNode({ id: 'a', transport: net.transport('a'), antiEntropy: { mode: 'sideways' as 'push' } })).toThrowError(/antiEntropy.mode/)
    expect(() => createNode({ id: 'b', transport: net.transport('b'), maxFrameBytes: 10 })).toThrowError(/maxFrameBytes/)
    expect(() => createNode({ id: 'x', transport: net.transport('c') })).toThrowError(expect.objectContaining({ name: 'ConfigError' }))
  })

  it('invalid document ids are refused with InvalidDocIdError', async () => {
    const c = await cluster(['a'])
    const a = c.nodes[0] as HearsayNode
    for (const bad of ['', 'x'.repeat(600), 'a\uD800b']) await expect(a.open(bad)).rejects.toMatchObject({ name: 'InvalidDocIdError' })
    await c.stop()
  })
})
