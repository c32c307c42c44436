import { describe, expect, it } from 'vitest'
import { ConfigError, createMemoryNetwork, createNode, createVirtualClock, writerLogger, type AntiEntropyOptions, type HearsayNode, type Logger } from '../src/index.js'

const N = 24

/**
 * `N` nodes on a ring-shaped mesh: each connected only to its two neighbours (diameter N / 2).
 * Cluster gossip runs long enough for every node to know every member; live mail and the exchange
 * on connect are off, so an update travels by periodic rounds only.
 */
async function ringMesh (seed: number, antiEntropy: AntiEntropyOptions, logger?: Logger): Promise<{ nodes: HearsayNode[], clock: ReturnType<typeof createVirtualClock>, net: ReturnType<typeof createMemoryNetwork> }> {
  const clock = createVirtualClock()
  const net = createMemoryNetwork({ seed, timers: clock, latency: () => 1, autoConnect: false })
  let clientId = 1
  const nodes = Array.from({ length: N }, (_, i) => createNode({
    id: `m${String(i).padStart(2, '0')}`,
    transport: net.transport(`m${String(i).padStart(2, '0')}`),
    timers: clock,
    seed: seed * 100 + i,
    live: false,
    newClientId: () => clientId++,
    // rounds start only once membership is known
    antiEntropy: { ...antiEntropy, enabled: false, jitter: 0, onConnect: false },
    cluster: { intervalMs: 200 },
    logger
  }))
  for (const node of nodes) await node.start()
  for (let i = 0; i < N; i++) net.connect(nodes[i]!.id, nodes[(i + 1) % N]!.id)
  let waited = 0
  while (!nodes.every(node => node.peers().filter(p => p.state === 'alive').length === N - 1)) {
    waited += 200
    await clock.advanceTo(waited)
    if (waited > 60_000) throw new Error('membership did not spread over the ring')
  }
  for (const node of nodes) node.configure({ antiEntropy: { enabled: true } })
  // the update appears half way to the first round
  await clock.advanceTo(clock.now() + 500)
  return { nodes, clock, net }
}

function openLinks (net: ReturnType<typeof createMemoryNetwork>, nodes: HearsayNode[]): number {
  let links = 0
  for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) if (net.connected(nodes[i]!.id, nodes[j]!.id)) links++
  return links
}

async function spread (seed: number, antiEntropy: AntiEntropyOptions, maxRounds: number): Promise<{ rounds: number, informed: number, links: number }> {
  const { nodes, clock, net } = await ringMesh(seed, antiEntropy)
  const origin = nodes[seed % N]!
  ;(await origin.open('news')).getText('t').insert(0, 'hello')
  await origin.flush()
  const start = clock.now()
  let rounds = 0
  const informed = (): number => nodes.filter(node => node.digest().count > 0).length
  while (informed() < N && rounds < maxRounds) {
    rounds++
    await clock.advanceTo(start + rounds * 1000)
  }
  const result = { rounds, informed: informed(), links: openLinks(net, nodes) }
  for (const node of nodes) await node.stop()
  return result
}

describe('anti-entropy reach', () => {
  it("with reach 'members' an update crosses a sparse ring mesh in far fewer rounds than its diameter, over sessions it dials", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await spread(seed, { reach: 'members' }, 40)
      expect(r.informed).toBe(N)
      // the diameter is N / 2 = 12 hops; random members make it logarithmic
      expect(r.rounds).toBeLessThanOrEqual(8)
      expect(r.links).toBeGreaterThan(N)
    }
  })

  it("with reach 'connected' rounds stay on the mesh: no new sessions, and the update only moves hop by hop", async () => {
    const r = await spread(1, {}, 8)
    expect(r.links).toBe(N)
    expect(r.informed).toBeLessThan(N)
    // at most two new nodes a round, one each way round the ring
    expect(r.informed).toBeLessThanOrEqual(1 + 2 * 8)
  })

  it("ring selection and fanout 3 work over members too", async () => {
    const ring = await spread(4, { reach: 'members', selection: 'ring' }, 40)
    expect(ring.informed).toBe(N)
    expect(ring.links).toBeGreaterThan(N)
    const wide = await spread(5, { reach: 'members', fanout: 3 }, 40)
    expect(wide.informed).toBe(N)
    expect(wide.rounds).toBeLessThanOrEqual(5)
  })

  it('reach is checked and can change at runtime', async () => {
    const net = createMemoryNetwork({ seed: 1 })
    expect(() => createNode({ id: 'a', transport: net.transport('a'), antiEntropy: { reach: 'everyone' as 'members' } })).toThrow(ConfigError)
    const node = createNode({ id: 'b', transport: net.transport('b') })
    expect(() => node.configure({ antiEntropy: { reach: 'all' as 'members' } })).toThrow(/antiEntropy.reach/)
    node.configure({ antiEntropy: { reach: 'members' } })
  })

  it('a member that cannot be dialled is skipped until it turns suspect, and the rounds go on', async () => {
    const lines: string[] = []
    const logger = writerLogger({ level: 'debug', write: line => { lines.push(line) }, components: ['hearsay:node'] })
    const { nodes, clock, net } = await ringMesh(7, { reach: 'members', timeoutMs: 300 }, logger)
    // m12 drops off the network; the others still count it alive until cluster.suspectMs (5 s)
    const ids = nodes.map(n => n.id)
    net.partition([ids.filter(pid => pid !== 'm12'), ['m12']])
    // the ring is cut there: the rest stays connected as a line
    const origin = nodes[0]!
    ;(await origin.open('news')).getText('t').insert(0, 'hello')
    await origin.flush()
    const failed = (): number => lines.filter(l => l.includes('could not reach m12')).length
    const start = clock.now()
    await clock.advanceTo(start + 7000)
    expect(failed()).toBeGreaterThan(0)
    expect(nodes.filter(n => n.id !== 'm12').every(n => n.digest().count > 0)).toBe(true)
    expect(nodes.find(n => n.id === 'm12')!.digest().count).toBe(0)
    // suspect now: rounds no longer pick it
    const before = failed()
    await clock.advanceTo(start + 15_000)
    expect(failed()).toBe(before)
    for (const node of nodes) await node.stop()
  })
})
