/**
 * Durable acknowledgements and sync state on the memory network: `replicated()` resolves only once
 * the peers hold (or store) the version of the call, never before the peer's storage write
 * completed, also with frames lost and delivered out of order; it rejects naming who is missing.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, createMemoryStorage, createNode, createVirtualClock, type DocSyncState, type HearsayNode, type Storage } from '../src/index.js'
import { waitFor } from '../src/testing/index.js'
import { cluster, createRandom, scribble } from './helpers.js'

/**
 * A memory store that records, for each document, the state vector of what its appends have
 * stored (updated only once an append completed), and whose appends can be held back.
 */
function journalStorage (): { storage: Storage, storedVector: (docId: string) => Map<number, number>, hold: () => void, release: () => void, appends: () => number } {
  const inner = createMemoryStorage()
  const mirrors = new Map<string, Y.Doc>()
  let gate: Promise<void> | undefined
  let open: (() => void) | undefined
  let appends = 0
  const mirror = (id: string): Y.Doc => {
    let d = mirrors.get(id)
    if (d === undefined) mirrors.set(id, d = new Y.Doc())
    return d
  }
  const storage: Storage = {
    open: async () => { await inner.open() },
    close: async () => { await inner.close() },
    list: async () => await inner.list(),
    load: async id => await inner.load(id),
    append: async (id, updates, fp) => {
      appends++
      if (gate !== undefined) await gate
      await inner.append(id, updates, fp)
      for (const u of updates) Y.applyUpdate(mirror(id), u)
    },
    replace: async (id, snapshot, fp) => {
      await inner.replace(id, snapshot, fp)
      Y.applyUpdate(mirror(id), snapshot)
    },
    delete: async id => { await inner.delete(id) },
    getMeta: async key => await inner.getMeta(key),
    setMeta: async (key, value) => { await inner.setMeta(key, value) }
  }
  return {
    storage,
    storedVector: id => Y.decodeStateVector(Y.encodeStateVector(mirror(id))),
    hold: () => { gate = new Promise(resolve => { open = resolve }) },
    release: () => { gate = undefined; open?.() },
    appends: () => appends
  }
}

const covers = (sv: Map<number, number>, target: Map<number, number>): boolean => [...target].every(([c, k]) => (sv.get(c) ?? 0) >= k)

describe('durable acknowledgements', () => {
  it('resolves `durable` only after the peer stored the edit, and in-memory before that', async () => {
    const net = createMemoryNetwork({ seed: 3 })
    const jb = journalStorage()
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1 })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, storage: jb.storage })
    await a.start()
    await b.start()
    try {
      await waitFor(() => a.peers().some(p => p.connected))
      const doc = await a.open('n')
      jb.hold()
      doc.getText('t').insert(0, 'reading 1')
      const target = Y.decodeStateVector(Y.encodeStateVector(doc))
      let durableDone = false
      const durable = a.replicated('n', { peers: ['b'], durable: true, timeoutMs: 20_000 }).then(r => {
        durableDone = true
        // the moment it resolves, b's store holds the edit
        expect(covers(jb.storedVector('n'), target)).toBe(true)
        return r
      })
      // in memory: b applied it, its write is held back
      await expect(a.replicated('n', { peers: ['b'] })).resolves.toEqual({ docId: 'n', peers: ['b'] })
      await waitFor(() => jb.appends() > 0)
      expect(durableDone).toBe(false)
      expect(a.syncState('n').peers).toMatchObject([{ peerId: 'b', state: 'synced', durable: false }])
      jb.release()
      await expect(durable).resolves.toEqual({ docId: 'n', peers: ['b'] })
      await waitFor(() => a.syncState('n').peers[0]?.durable === true)
    } finally {
      jb.release()
      await a.stop()
      await b.stop()
    }
  })

  it('never resolves before the store holds the version, with 20% of frames lost and frames reordered', async () => {
    const clock = createVirtualClock()
    const rng = createRandom(11)
    const net = createMemoryNetwork({ seed: 11, loss: 0.2, timers: clock, latency: () => 1 + rng.int(20) })
    const journals = ['b', 'c'].map(() => journalStorage())
    const opts = { antiEntropy: { intervalMs: 200, timeoutMs: 2000 }, timers: clock }
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, ...opts })
    const others = ['b', 'c'].map((id, i) => createNode({ id, transport: net.transport(id), seed: 2 + i, storage: journals[i]?.storage, ...opts }))
    const all = [a, ...others]
    await Promise.all(all.map(async n => { await n.start() }))
    try {
      const doc = await a.open('n')
      let checked = 0
      for (let round = 0; round < 20; round++) {
        scribble(doc, rng, 5)
        const target = Y.decodeStateVector(Y.encodeStateVector(doc))
        const p = a.replicated('n', { peers: 2, durable: true, timeoutMs: 60_000 }).then(r => {
          // whichever peers it names hold the version in their store as it resolves
          for (const id of r.peers) expect(covers(journals[id === 'b' ? 0 : 1]?.storedVector('n') ?? new Map(), target)).toBe(true)
          checked++
          return r
        })
        let done = false
        void p.finally(() => { done = true })
        for (let t = 0; t < 60_000 && !done; t += 50) await clock.advance(50)
        expect((await p).peers.sort()).toEqual(['b', 'c'])
      }
      expect(checked).toBe(20)
      expect(net.stats.framesLost).toBeGreaterThan(0)
    } finally {
      for (const n of all) {
        const stopping = n.stop()
        await clock.advance(10_000)
        await stopping
      }
    }
  })

  it('rejects with ReplicationTimeoutError naming the peers that did not confirm', async () => {
    const c = await cluster(['a', 'b', 'c'], {}, 5)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode, HearsayNode]
    try {
      await waitFor(() => a.peers().filter(p => p.connected).length === 2)
      c.net.disconnect('a', 'c')
      await waitFor(() => a.peers().filter(p => p.connected).length === 1)
      const doc = await a.open('x')
      doc.getText('t').insert(0, 'hello')
      const err = await a.replicated('x', { peers: ['b', 'c'], timeoutMs: 1500 }).catch((e: unknown) => e) as Error & { missing: string[], confirmed: string[] }
      expect(err.name).toBe('ReplicationTimeoutError')
      expect(err.missing).toEqual(['c'])
      expect(err.confirmed).toEqual(['b'])
      expect(err.message).toContain('missing: c')
      await expect(a.replicated('x', { peers: 0 })).rejects.toMatchObject({ name: 'ConfigError' })
      expect(b.metrics().acksSent).toBeGreaterThan(0)
    } finally {
      await c.stop()
    }
  })

  it('syncState follows a document: unknown, then synced and durable, behind while a peer lacks an edit', async () => {
    const c = await cluster(['a', 'b'], { antiEntropy: { enabled: false } }, 7)
    const [a] = c.nodes as [HearsayNode, HearsayNode]
    try {
      await waitFor(() => a.peers().some(p => p.connected))
      const doc = await a.open('s')
      doc.getText('t').insert(0, 'one')
      await a.flush()
      const events: DocSyncState[] = []
      a.on('doc:sync', s => { events.push(s) })
      expect(a.syncState('s').peers).toMatchObject([{ peerId: 'b', state: 'unknown', durable: false, connected: true }])
      await waitFor(() => a.syncState('s').peers[0]?.durable === true)
      expect(a.syncState('s').peers[0]?.state).toBe('synced')
      expect(events.at(-1)?.peers[0]).toMatchObject({ state: 'synced', durable: true })
      // b goes away, a edits: b is not known to hold it
      c.net.disconnect('a', 'b')
      await waitFor(() => a.syncState('s').peers[0]?.connected === false)
      doc.getText('t').insert(3, ' two')
      await waitFor(() => a.syncState('s').peers[0]?.state === 'unknown')
      expect(a.syncState('s').peers[0]?.durable).toBe(false)
      c.net.connect('a', 'b')
      await waitFor(() => a.syncState('s').peers[0]?.state === 'synced' && a.syncState('s').peers[0]?.durable === true)
      // nothing is sent while nobody follows a document
      expect(a.metrics().acksReceived).toBeGreaterThan(0)
    } finally {
      await c.stop()
    }
  })

  it('sends no acknowledgements while nobody waits', async () => {
    const c = await cluster(['a', 'b'], {}, 9)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    try {
      await waitFor(() => a.peers().some(p => p.connected))
      const doc = await a.open('q')
      for (let i = 0; i < 100; i++) doc.getText('t').insert(0, 'x')
      await waitFor(async () => (await b.open('q')).getText('t').length === 100)
      b.close('q')
      await a.flush()
      await b.flush()
      expect(a.metrics().acksSent + b.metrics().acksSent + a.metrics().acksReceived + b.metrics().acksReceived).toBe(0)
    } finally {
      await c.stop()
    }
  })
})
