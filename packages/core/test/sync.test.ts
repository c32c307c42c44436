import { describe, expect, it } from 'vitest'
import type { AntiEntropyMode, HearsayNode } from '../src/index.js'
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
      // merged documents hold both sides' edits: one direction got the other's concurrent edit
      const target = mode === 'pull' ? afterA : afterB
      const source = mode === 'pull' ? beforeB : beforeA
      for (let i = 0; i < 50; i++) {
        const text = (target.get(`doc/${i}`) as { t: string }).t
        const fromSource = (source.get(`doc/${i}`) as { t: string }).t
        expect(text.length).toBeGreaterThanOrEqual(Math.min(fromSource.length, 1))
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
    c.net.connect('a', 'b')
    await waitOpen(a, 'b')
    const report = await a.syncWith('b')
    expect(report.docsSent).toBe(10)
    expect(report.docsReceived).toBe(0)
    // digest overhead stays small: well under 8 KB beyond the diffs themselves
    expect(report.bytesSent + report.bytesReceived).toBeLessThan(12 * 1024)
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
  const { waitFor } = await import('../src/testing/index.js')
  await waitFor(() => n.peers().some(p => p.id === peer && p.connected), { message: `session ${n.id}→${peer}` })
}
