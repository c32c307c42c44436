import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, createNode, createVirtualClock, type HearsayNode, type RepairReport } from '../src/index.js'
import { nextInRing, passSequence, ringOrder } from '../src/ring.js'

describe('ring order', () => {
  it('starts after the node itself and wraps around', () => {
    expect(ringOrder('c', ['e', 'a', 'd', 'b', 'c'])).toEqual(['d', 'e', 'a', 'b'])
    expect(ringOrder('z', ['b', 'a'])).toEqual(['a', 'b'])
    const order = ['d', 'e', 'a', 'b']
    expect(nextInRing(order, undefined, 1, () => true)).toEqual(['d'])
    expect(nextInRing(order, 'e', 2, () => true)).toEqual(['a', 'b'])
    expect(nextInRing(order, 'b', 1, () => true)).toEqual(['d'])
    expect(nextInRing(order, 'd', 1, id => id !== 'e')).toEqual(['a'])
    expect(nextInRing(order, 'gone', 1, () => true)).toEqual(['d'])
    expect(passSequence(['x', 'y', 'z'])).toEqual(['x', 'y', 'z', 'x', 'y'])
  })
})

async function ringCluster (n: number, seed: number, options: Parameters<typeof createNode>[0]['antiEntropy']): Promise<{ nodes: HearsayNode[], clock: ReturnType<typeof createVirtualClock>, net: ReturnType<typeof createMemoryNetwork> }> {
  const clock = createVirtualClock()
  const net = createMemoryNetwork({ seed, timers: clock, latency: () => 1 })
  let clientId = 1
  const nodes = Array.from({ length: n }, (_, i) => createNode({
    id: `r${i}`,
    transport: net.transport(`r${i}`),
    timers: clock,
    seed: seed * 100 + i,
    live: false,
    newClientId: () => clientId++,
    antiEntropy: { jitter: 0, onConnect: false, ...options }
  }))
  for (const node of nodes) await node.start()
  await clock.advanceTo(500)
  return { nodes, clock, net }
}

describe('closed-loop repair', () => {
  it('ring rounds bring an update to all n nodes within n − 1 rounds, whatever the seed', async () => {
    const n = 12
    for (let seed = 1; seed <= 5; seed++) {
      const { nodes, clock } = await ringCluster(n, seed, { selection: 'ring' })
      const origin = nodes[seed % n] as HearsayNode
      ;(await origin.open('x')).getText('t').insert(0, 'ring')
      await origin.flush()
      let rounds = 0
      while (!nodes.every(node => node.docs().length === 1)) {
        rounds++
        await clock.advanceTo(rounds * 1000 + 500)
      }
      expect(rounds).toBeLessThanOrEqual(n - 1)
      for (const node of nodes) await node.stop()
    }
  })

  it('one repair pass leaves every connected replica with everything any of them had', async () => {
    const { nodes, clock } = await ringCluster(6, 9, { enabled: false })
    for (const [i, node] of nodes.entries()) {
      ;(await node.open(`doc/${i}`)).getText('t').insert(0, `from ${i}`)
      await node.flush()
    }
    let report: RepairReport | undefined
    void (nodes[2] as HearsayNode).repairPass().then(r => { report = r })
    while (report === undefined) await clock.advance(10)
    expect(report).toMatchObject({ exchanges: 9, failed: [], unreachable: [] })
    const roots = nodes.map(node => Buffer.from(node.digest().root).toString('hex'))
    expect(new Set(roots).size).toBe(1)
    for (const node of nodes) expect(node.docs()).toHaveLength(6)
    for (const node of nodes) await node.stop()
  })

  it('a repair pass names the known members it could not reach', async () => {
    const { nodes, clock, net } = await ringCluster(5, 3, { enabled: false })
    await clock.advance(3000)
    net.disconnect('r2', 'r4')
    net.partition([['r0', 'r1', 'r2', 'r4'], ['r3']])
    await clock.advance(100)
    expect((nodes[2] as HearsayNode).peers().filter(p => p.connected).map(p => p.id).sort()).toEqual(['r0', 'r1'])
    let report: RepairReport | undefined
    void (nodes[2] as HearsayNode).repairPass().then(r => { report = r })
    while (report === undefined) await clock.advance(10)
    expect(report).toMatchObject({ exchanges: 3, failed: [], unreachable: ['r3', 'r4'] })
    for (const node of nodes) await node.stop()
  })
})
