import { describe, expect, it } from 'vitest'
import type { HearsayNode } from '../src/index.js'
import { RumorMill, updateId } from '../src/rumor.js'
import { createRandom } from '../src/random.js'
import { waitFor } from '../src/testing/index.js'
import { cluster, content } from './helpers.js'

const text = async (n: HearsayNode, id: string): Promise<string> => (await content(n, id) as { t: string }).t

/** Start `ids` fully connected (so they know each other), then keep only the links of a line. */
async function line (ids: string[], options = {}): Promise<Awaited<ReturnType<typeof cluster>>> {
  const c = await cluster(ids, { antiEntropy: { enabled: false }, ...options })
  await waitFor(() => c.nodes.every(n => n.peers().filter(p => p.connected).length === ids.length - 1))
  for (let i = 0; i < ids.length; i++) {
    for (let j = i + 2; j < ids.length; j++) c.net.disconnect(ids[i] as string, ids[j] as string)
  }
  await waitFor(() => c.nodes.every(n => n.peers().filter(p => p.connected).length <= 2))
  return c
}

describe('rumor mongering', () => {
  it('on a partial mesh an edit travels hop by hop to nodes its author cannot reach', async () => {
    const ids = ['a', 'b', 'c', 'd', 'e']
    const c = await line(ids)
    const [a, , , , e] = c.nodes as [HearsayNode, HearsayNode, HearsayNode, HearsayNode, HearsayNode]
    ;(await a.open('n')).getText('t').insert(0, 'far')
    await waitFor(async () => await text(e, 'n') === 'far', { message: 'rumor reached the far end' })
    for (const n of c.nodes) expect(await text(n, 'n')).toBe('far')
    expect(a.metrics().liveUpdatesSent).toBe(0)
    expect(a.metrics().rumorUpdatesSent).toBe(1)
    expect(e.metrics().rumorUpdatesReceived).toBe(1)
    expect(a.metrics().exchangesStarted + e.metrics().exchangesStarted).toBe(0)
    await c.stop()
  })

  it('stops after maxHops: anti-entropy is left to reach the rest', async () => {
    const c = await line(['a', 'b', 'c', 'd'], { propagation: { maxHops: 2 } })
    const [a, b, cc, d] = c.nodes as [HearsayNode, HearsayNode, HearsayNode, HearsayNode]
    ;(await a.open('n')).getText('t').insert(0, 'x')
    await waitFor(async () => await text(cc, 'n') === 'x')
    await c.net.settled()
    expect(await text(b, 'n')).toBe('x')
    expect(d.docs()).toEqual([])
    expect(cc.metrics().rumorUpdatesSent).toBe(0)
    await c.stop()
  })

  it('a node passes a rumor on only on its first receipt', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `n${i}`)
    const c = await cluster(ids, { antiEntropy: { enabled: false }, propagation: { mode: 'rumor', fanout: 3 } })
    await waitFor(() => c.nodes.every(n => n.peers().filter(p => p.connected).length === 7))
    const first = c.nodes[0] as HearsayNode
    ;(await first.open('n')).getText('t').insert(0, 'once')
    await waitFor(async () => {
      for (const n of c.nodes) if (n.docs().length === 0) return false
      return true
    }, { message: 'everyone heard the rumor' })
    await c.net.settled()
    const sent = c.nodes.reduce((s, n) => s + n.metrics().rumorUpdatesSent, 0)
    // the author sends to 3, every other node passes it on at most once to 3 peers
    expect(sent).toBeLessThanOrEqual(3 * ids.length)
    for (const n of c.nodes) expect(n.metrics().rumorUpdatesSent).toBeLessThanOrEqual(3)
    expect(c.nodes.reduce((s, n) => s + n.metrics().liveUpdatesSent, 0)).toBe(0)
    await c.stop()
  })

  it('while every known peer is connected, auto mode sends direct mail', async () => {
    const c = await cluster(['a', 'b', 'c'], { antiEntropy: { enabled: false } })
    const [a, b] = c.nodes as [HearsayNode, HearsayNode, HearsayNode]
    await waitFor(() => a.peers().filter(p => p.connected).length === 2)
    ;(await a.open('n')).getText('t').insert(0, 'hi')
    await waitFor(async () => await text(b, 'n') === 'hi')
    expect(a.metrics().liveUpdatesSent).toBe(2)
    expect(a.metrics().rumorUpdatesSent).toBe(0)
    await c.stop()
  })

  it('remembers a bounded number of update ids, forgetting the oldest', () => {
    const mill = new RumorMill({ fanout: 2, maxHops: 3, seenIds: 2 }, createRandom(1))
    const e = (s: string): { docId: string, update: Uint8Array } => ({ docId: 'd', update: new TextEncoder().encode(s) })
    expect(mill.fresh([e('1'), e('2'), e('1')])).toHaveLength(2)
    expect(mill.fresh([e('3')])).toHaveLength(1)
    expect(mill.seenCount).toBe(2)
    expect(mill.fresh([e('1')])).toHaveLength(1)
    expect(mill.fresh([e('3')])).toHaveLength(0)
    expect(updateId(e('x'))).toBe(updateId(e('x')))
    expect(updateId({ docId: 'a', update: new Uint8Array([1]) })).not.toBe(updateId({ docId: 'b', update: new Uint8Array([1]) }))
    expect(mill.forwards(2)).toBe(true)
    expect(mill.forwards(3)).toBe(false)
    expect(mill.targets([1, 2, 3, 4])).toHaveLength(2)
  })
})
