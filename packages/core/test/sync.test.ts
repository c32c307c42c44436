import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { createMemoryNetwork, createNode, createVirtualClock, type AntiEntropyMode, type HearsayNode } from '../src/index.js'
import { waitFor } from '../src/testing/index.js'
import { cluster, content, createRandom, scribble } from './helpers.js'

/** Fill `node` with docs `from..to-1`, random content from `seed`. */
async function fill (node: HearsayNode, from: number, to: number, seed: number): Promise<void> {
  const rng = createRandom(seed)
  for (let i = from; i < to; i++) {
    scribble(await node.open(`doc/${i}`), rng, 2)
    node.close(`doc/${i}`)
  }
  await node.flush()
}

async function expectEqual (a: HearsayNode, b: HearsayNode): Promise<void> {
  const ids = a.docs().sort()
  expect(b.docs().sort()).toEqual(ids)
  for (const id of ids) expect(await content(b, id), id).toEqual(await content(a, id))
  expect(a.digest().root).toEqual(b.digest().root)
}

// nodes are populated while disconnected and keep no retry queue, so only the exchange under test moves data
const offline = { antiEntropy: { enabled: false }, retryQueueBytes: 0 }

describe('anti-entropy exchange', () => {
  it('one syncWith makes 1,000 partially overlapping docs equal on both sides', async () => {
    const c = await cluster(['a', 'b'], offline, 7, false)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    await fill(a, 0, 1000, 1) // a: 0..999
    await fill(b, 500, 1500, 2) // b: 500..1499, different content on the overlap
    c.net.connect('a', 'b')
    await waitOpen(a, 'b')
    const report = await a.syncWith('b')
    await expectEqual(a, b)
    expect(a.docs().length).toBe(1500)
    // a sent its 1,000 docs (500 new to b, 500 merged), b its 1,000 likewise
    expect(report.docsSent).toBe(1000)
    expect(report.docsReceived).toBe(1000)
    await c.stop()
  })

  for (const mode of ['push', 'pull', 'push-pull'] as AntiEntropyMode[]) {
    it(`${mode}: concurrent edits to the same documents move in the mode's direction`, async () => {
      const c = await cluster(['a', 'b'], offline, 11, false)
      const [a, b] = c.nodes as [HearsayNode, HearsayNode]
      await fill(a, 0, 100, 3)
      await fill(b, 0, 100, 3) // identical base content...
      c.net.connect('a', 'b')
      await waitOpen(a, 'b')
      await a.syncWith('b', { mode: 'push-pull' })
      await expectEqual(a, b)
      c.net.disconnect('a', 'b')
      // ...then concurrent edits on both sides, to the same 50 docs, plus new docs on each
      const ra = createRandom(5)
      const rb = createRandom(6)
      for (let i = 0; i < 50; i++) {
        scribble(await a.open(`doc/${i}`), ra)
        scribble(await b.open(`doc/${i}`), rb)
      }
      await a.flush()
      await b.flush()
      await fill(a, 1000, 1010, 8)
      await fill(b, 2000, 2010, 9)
      const beforeA = await snapshot(a)
      const beforeB = await snapshot(b)
      const source = mode === 'pull' ? b : a
      const target = mode === 'pull' ? a : b
      const sourceVectors = new Map<string, Map<number, number>>()
      for (let i = 0; i < 50; i++) sourceVectors.set(`doc/${i}`, Y.decodeStateVector(Y.encodeStateVector(await source.open(`doc/${i}`))))
      c.net.connect('a', 'b')
      await waitOpen(a, 'b')
      const report = await a.syncWith('b', { mode })
      const afterA = await snapshot(a)
      const afterB = await snapshot(b)
      if (mode === 'push') {
        expect(afterA).toEqual(beforeA) // a received nothing
        expect(report.docsReceived).toBe(0)
        expect(report.docsSent).toBe(60)
        expect(afterB.size).toBe(120)
        for (let i = 1000; i < 1010; i++) expect(afterB.get(`doc/${i}`)).toEqual(afterA.get(`doc/${i}`))
      } else if (mode === 'pull') {
        expect(afterB).toEqual(beforeB) // b received nothing
        expect(report.docsSent).toBe(0)
        expect(report.docsReceived).toBe(60)
        expect(afterA.size).toBe(120)
        for (let i = 2000; i < 2010; i++) expect(afterA.get(`doc/${i}`)).toEqual(afterB.get(`doc/${i}`))
      } else {
        expect(report.docsSent).toBe(60)
        expect(report.docsReceived).toBe(60)
        await expectEqual(a, b)
        expect(afterA.size).toBe(120)
      }
      // merged documents hold every edit the source had: the target's state covers the source's
      for (const [docId, sv] of sourceVectors) {
        const got = Y.decodeStateVector(Y.encodeStateVector(await target.open(docId)))
        for (const [client, clock] of sv) expect(got.get(client) ?? 0, `${docId} client ${client}`).toBeGreaterThanOrEqual(clock)
      }
      await c.stop()
    })
  }

  it('an idle exchange costs the same few bytes for 100 and 10,000 documents', async () => {
    const costs: number[] = []
    for (const n of [100, 10_000]) {
      const c = await cluster(['a', 'b'], offline, 3, false)
      const [a, b] = c.nodes as [HearsayNode, HearsayNode]
      await fill(a, 0, n, 4)
      c.net.connect('a', 'b')
      await waitOpen(a, 'b')
      await a.syncWith('b')
      expect(b.docs().length).toBe(n)
      const idle = await a.syncWith('b')
      const back = await b.syncWith('a')
      for (const r of [idle, back]) {
        expect(r.bytesSent + r.bytesReceived).toBeLessThan(64)
        expect(r.roundTrips).toBe(1)
        expect(r.docsSent + r.docsReceived).toBe(0)
      }
      costs.push(idle.bytesSent + idle.bytesReceived)
      await c.stop()
    }
    // the same bound holds at 100 and 10,000 (one varint of the count grows by a byte)
    expect(Math.abs((costs[0] as number) - (costs[1] as number))).toBeLessThanOrEqual(2)
  }, 120_000)

  it('10 documents changed out of 10,000: only those 10 travel', async () => {
    const c = await cluster(['a', 'b'], offline, 5, false)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    await fill(a, 0, 10_000, 4)
    c.net.connect('a', 'b')
    await waitOpen(a, 'b')
    await a.syncWith('b')
    c.net.disconnect('a', 'b')
    const rng = createRandom(12)
    const changed = new Set<string>()
    while (changed.size < 10) changed.add(`doc/${rng.int(10_000)}`)
    for (const id of changed) scribble(await a.open(id), rng)
    await a.flush()
    // what the diffs alone weigh: each changed document against what b holds
    let payload = 0
    for (const id of changed) payload += Y.encodeStateAsUpdate(await a.open(id), Y.encodeStateVector(await b.open(id))).length
    c.net.connect('a', 'b')
    await waitOpen(a, 'b')
    const report = await a.syncWith('b')
    expect(report.docsSent).toBe(10)
    expect(report.docsReceived).toBe(0)
    // digest overhead stays small: at most 8 KB beyond the diffs themselves
    expect(report.bytesSent + report.bytesReceived).toBeLessThanOrEqual(payload + 8 * 1024)
    for (const id of changed) expect(await content(b, id)).toEqual(await content(a, id))
    expect(a.digest().root).toEqual(b.digest().root)
    await c.stop()
  }, 120_000)

  it('brings a large document over in chunks when it exceeds the frame limit', async () => {
    const c = await cluster(['a', 'b'], { ...offline, maxFrameBytes: 16 * 1024 }, 5, false)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    const doc = await a.open('big')
    doc.getText('t').insert(0, 'x'.repeat(200_000))
    await a.flush()
    c.net.connect('a', 'b')
    await waitOpen(a, 'b')
    const report = await a.syncWith('b')
    expect(report.docsSent).toBe(1)
    expect((await content(b, 'big') as { t: string }).t.length).toBe(200_000)
    await c.stop()
  })

  it('syncWith right after start waits for the session being set up (the README example)', async () => {
    const c = await cluster(['a', 'b'], { live: false, antiEntropy: { enabled: false } })
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    const doc = await a.open('notes/1')
    doc.getText('t').insert(0, 'hello')
    const report = await a.syncWith('b')
    expect(report).toMatchObject({ docsSent: 1, docsReceived: 0, roundTrips: expect.any(Number) })
    expect(await content(b, 'notes/1')).toEqual(await content(a, 'notes/1'))
    await c.stop()
  })

  it('syncWith dials a peer the transport can reach but is not connected to', async () => {
    const c = await cluster(['a', 'b'], offline, 2, false)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    ;(await b.open('x')).getText('t').insert(0, 'from b')
    await b.flush()
    expect(a.peers()).toEqual([])
    const report = await a.syncWith('b')
    expect(report.docsReceived).toBe(1)
    expect(await content(a, 'x')).toEqual(await content(b, 'x'))
    await c.stop()
  })

  it('the exchange on connect goes in the configured mode: a pushing node pulls nothing', async () => {
    const net = createMemoryNetwork({ seed: 3, autoConnect: false })
    const quiet = { live: false, antiEntropy: { intervalMs: 600_000 } }
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, ...quiet, antiEntropy: { ...quiet.antiEntropy, mode: 'push' } })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, ...quiet })
    await a.start()
    await b.start()
    ;(await a.open('from-a')).getText('t').insert(0, 'a')
    ;(await b.open('from-b')).getText('t').insert(0, 'b')
    net.connect('a', 'b')
    await waitFor(() => a.metrics().exchangesCompleted === 1, { message: 'the exchange a starts on connect' })
    // a (lower id) pushed; b (push-pull, higher id) leaves the exchange on connect to a
    expect(b.docs().sort()).toEqual(['from-a', 'from-b'])
    expect(a.docs()).toEqual(['from-a'])
    expect(b.metrics().exchangesStarted).toBe(0)
    await a.stop()
    await b.stop()
  })

  it('a document id starting with a byte order mark keeps it on the other side', async () => {
    const c = await cluster(['a', 'b'], offline, 4, false)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    const id = '\uFEFFnotes'
    ;(await a.open(id)).getText('t').insert(0, 'bom')
    await a.flush()
    c.net.connect('a', 'b')
    await waitOpen(a, 'b')
    expect((await a.syncWith('b')).docsSent).toBe(1)
    expect(b.docs()).toEqual([id])
    expect((await a.syncWith('b')).docsSent).toBe(0)
    await c.stop()
  })

  it('a side that gives up an exchange tells the peer, and ignores the frames still on the way', async () => {
    const clock = createVirtualClock()
    // a → b carries 50 bytes per ms: a 200 KB document in 16 KiB chunks takes about 4 s
    const net = createMemoryNetwork({ seed: 9, timers: clock, latency: () => 1, bandwidth: from => from === 'a' ? 50 : undefined })
    const opts = { timers: clock, live: false, maxFrameBytes: 16 * 1024 }
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, ...opts, antiEntropy: { enabled: false, timeoutMs: 600_000 } })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, ...opts, antiEntropy: { enabled: false, timeoutMs: 1000 } })
    await a.start()
    await b.start()
    ;(await a.open('big')).getText('t').insert(0, 'x'.repeat(200_000))
    /** Advance the virtual clock until `p` settles. */
    const run = async <T>(p: Promise<T>): Promise<T> => {
      let done = false
      const settled = p.then(value => ({ value }), (error: unknown) => ({ error }))
      void settled.then(() => { done = true })
      for (let i = 0; i < 1000 && !done; i++) await clock.advance(50)
      const r = await settled
      if ('error' in r) throw r.error
      return r.value
    }
    await run(a.flush())
    // b, the responder, gives up after its own 1 s
    await expect(run(a.syncWith('b', { mode: 'push' }))).rejects.toMatchObject({ name: 'ProtocolError', message: expect.stringMatching(/aborted.*did not finish in 1000 ms/) })
    for (let i = 0; i < 200; i++) await clock.advance(50) // the rest of the chunks arrive at b
    for (const n of [a, b]) {
      expect(n.metrics().framesRejected).toBe(0)
      expect(n.peers()[0]?.connected).toBe(true)
    }
    expect(b.docs()).toEqual([])
    b.configure({ antiEntropy: { timeoutMs: 600_000 } })
    expect((await run(a.syncWith('b', { mode: 'push' }))).docsSent).toBe(1)
    expect(((await run(content(b, 'big'))) as { t: string }).t.length).toBe(200_000)
    await run(a.stop())
    await run(b.stop())
  })

  it('syncWith an unknown peer rejects with PeerUnavailableError', async () => {
    const c = await cluster(['a'], offline)
    await expect(c.nodes[0]?.syncWith('nobody')).rejects.toMatchObject({ name: 'PeerUnavailableError' })
    await c.stop()
  })
})

async function snapshot (n: HearsayNode): Promise<Map<string, unknown>> {
  const m = new Map<string, unknown>()
  for (const id of n.docs().sort()) m.set(id, await content(n, id))
  return m
}

async function waitOpen (n: HearsayNode, peer: string): Promise<void> {
  await waitFor(() => n.peers().some(p => p.id === peer && p.connected), { message: `session ${n.id}→${peer}` })
}
