/**
 * Quiet when idle (idle.ts) on the memory network and a virtual clock: an idle pair backs off to
 * about one gossip exchange a minute (not one per node), an edit reaches the peer at once and brings the intervals
 * back, and failure detection keeps its bounds: on a line a – b – c, where a relies on c's
 * heartbeats, a finds c suspect and dead within suspectMs and deadMs (plus a round) of its crash.
 */
import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, createNode, createVirtualClock } from '../src/index.js'
import type { HearsayNode } from '../src/index.js'

const MIN = 60_000

describe('quiet when idle', () => {
  it('an idle pair backs off to about a round trip a minute; an edit resets it at once', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ seed: 7, timers: clock, latency: () => 1 })
    const [a, b] = ['a', 'b'].map((id, i) => createNode({ id, transport: net.transport(id), timers: clock, seed: i + 1 })) as [HearsayNode, HearsayNode]
    await a.start()
    await b.start()
    net.connect('a', 'b')
    await clock.advance(5 * MIN)
    const f0 = net.stats.framesDelivered
    await clock.advance(10 * MIN)
    const perMinute = (net.stats.framesDelivered - f0) / 10
    // fixed timers: a gossip round trip and an anti-entropy exchange per node every second; backed
    // off, one exchange a minute (request, answer, the requester's heartbeat): the node whose round
    // comes second in an interval stays silent (Trickle's suppression)
    expect(perMinute).toBeLessThanOrEqual(4)
    expect(perMinute).toBeGreaterThan(0) // still alive: gossip continues, slowly

    const doc = await a.open('n')
    doc.getText('t').insert(0, 'after a quiet spell')
    await clock.advance(5)
    expect((await b.open('n')).getText('t').toString()).toBe('after a quiet spell')
    // back to base intervals: gossip rounds every second for a while
    const f1 = net.stats.framesDelivered
    await clock.advance(3000)
    expect(net.stats.framesDelivered - f1).toBeGreaterThanOrEqual(4)
    await a.stop()
    await b.stop()
  })

  it('with the backoff off (idleMaxMs 0) every node gossips every round: no suppression', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ seed: 5, timers: clock, latency: () => 1 })
    const [a, b] = ['a', 'b'].map((id, i) => createNode({ id, transport: net.transport(id), timers: clock, seed: i + 1, cluster: { idleMaxMs: 0 } })) as [HearsayNode, HearsayNode]
    await a.start()
    await b.start()
    net.connect('a', 'b')
    await clock.advance(2 * MIN)
    const f0 = net.stats.framesDelivered
    await clock.advance(MIN)
    // two nodes, a round each per second, three frames a round
    expect(net.stats.framesDelivered - f0).toBeGreaterThanOrEqual(2 * 60 * 3 * 0.7)
    await a.stop()
    await b.stop()
  })

  it('a node that relies on heartbeats does not back off: failure detection keeps its bounds on a line', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ seed: 3, timers: clock, latency: () => 1 })
    const scopes = ['a', 'b', 'c'].map(() => clock.scope())
    const cluster = { intervalMs: 1000, suspectMs: 5000, deadMs: 30_000 }
    const [a, b, c] = ['a', 'b', 'c'].map((id, i) => createNode({ id, transport: net.transport(id), timers: scopes[i], seed: i + 1, cluster })) as [HearsayNode, HearsayNode, HearsayNode]
    for (const n of [a, b, c]) await n.start()
    net.connect('a', 'b')
    net.connect('b', 'c')
    await clock.advance(10 * MIN)
    expect(a.peers().find(p => p.id === 'c')?.state).toBe('alive')
    scopes[2]?.dispose()
    net.crash('c')
    const crashed = clock.now()
    while (a.peers().find(p => p.id === 'c')?.state === 'alive') await clock.advance(100)
    expect(clock.now() - crashed).toBeLessThanOrEqual(cluster.suspectMs + 2 * cluster.intervalMs)
    while (a.peers().find(p => p.id === 'c')?.state !== 'dead') await clock.advance(500)
    expect(clock.now() - crashed).toBeLessThanOrEqual(cluster.deadMs + 2 * cluster.intervalMs)
    await a.stop()
    await b.stop()
  })
})
