import { describe, expect, it } from 'vitest'
import { ClusterState } from '../src/cluster.js'
import { createMemoryNetwork, createMemoryStorage, createNode, createVirtualClock, type HearsayNode } from '../src/index.js'
import type { GossipEntry } from '../src/protocol.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const settings = { maxMessageBytes: 16 * 1024, suspectMs: 5000, deadMs: 30_000 }

describe('Scuttlebutt reconciliation', () => {
  it('answers a digest with exactly the newer entries', () => {
    const a = new ClusterState('a', settings, () => 0)
    a.set('x', bytes('1'))
    a.set('y', bytes('2'))
    a.set('x', bytes('3'))
    const b = new ClusterState('b', settings, () => 0)
    expect(a.deltasFor(b.digest()).map(e => [e.key, e.version])).toEqual([['y', 2], ['x', 3]])
    b.apply(a.deltasFor(b.digest()))
    expect(b.digest()).toContainEqual({ nodeId: 'a', generation: 0, version: 3 })
    expect(a.deltasFor(b.digest())).toEqual([])
    a.set('z', bytes('4'))
    expect(a.deltasFor(b.digest()).map(e => e.key)).toEqual(['z'])
  })

  it('under a size limit: deepest owner first, in version order, never skipping a version', () => {
    const src = new ClusterState('src', { ...settings, maxMessageBytes: 200 }, () => 0)
    const entries: GossipEntry[] = []
    for (let v = 1; v <= 6; v++) entries.push({ nodeId: 'deep', generation: 1, key: `k${v}`, value: new Uint8Array(30), version: v })
    entries.push({ nodeId: 'shallow', generation: 1, key: 'k', value: new Uint8Array(30), version: 1 })
    src.apply(entries)
    const out = src.deltasFor([])
    expect(out[0]?.nodeId).toBe('deep')
    const deep = out.filter(e => e.nodeId === 'deep').map(e => e.version)
    expect(deep).toEqual(deep.map((_, i) => i + 1))
    expect(deep.length).toBeLessThan(6)
    // the receiver's digest stays truthful, and the next answer continues where this one stopped
    const dst = new ClusterState('dst', settings, () => 0)
    dst.apply(out)
    const next = src.deltasFor(dst.digest()).filter(e => e.nodeId === 'deep')
    expect(next[0]?.version).toBe(deep.length + 1)
  })

  it("a restarted owner's new generation replaces its whole map, however far its counter got", () => {
    const old = new ClusterState('a', settings, () => 0, 100)
    for (let i = 0; i < 5; i++) old.set('k', bytes(`old${i}`))
    old.set('gone', bytes('x'))
    const b = new ClusterState('b', settings, () => 0)
    const c = new ClusterState('c', settings, () => 0)
    b.apply(old.deltasFor([]))
    c.apply(old.deltasFor([]))
    const fresh = new ClusterState('a', settings, () => 0, 200)
    fresh.set('k', bytes('new'))
    for (let i = 0; i < 20; i++) fresh.set('hb', bytes(String(i)))
    expect(fresh.version).toBeGreaterThan(old.version)
    // b holds an older generation: it lacks every current entry, the first one written included
    expect(fresh.deltasFor(b.digest()).map(e => e.key)).toEqual(['k', 'hb'])
    b.apply(fresh.deltasFor(b.digest()))
    expect([...b.entries('a').keys()].sort()).toEqual(['hb', 'k'])
    expect(new TextDecoder().decode(b.get('a', 'k'))).toBe('new')
    // the old generation still travelling from c changes nothing, and b sends c the new one
    expect(c.deltasFor(b.digest())).toEqual([])
    b.apply(old.deltasFor([]))
    expect(new TextDecoder().decode(b.get('a', 'k'))).toBe('new')
    c.apply(b.deltasFor(c.digest()))
    expect(c.entries('a')).toEqual(b.entries('a'))
    expect(fresh.deltasFor(c.digest())).toEqual([])
  })

  it('an entry larger than maxMessageBytes goes alone instead of blocking its owner', () => {
    const a = new ClusterState('a', { ...settings, maxMessageBytes: 256 }, () => 0)
    a.set('big', new Uint8Array(1024))
    a.set('small', bytes('1'))
    const b = new ClusterState('b', settings, () => 0)
    expect(a.deltasFor(b.digest()).map(e => e.key)).toEqual(['big'])
    b.apply(a.deltasFor(b.digest()))
    expect(a.deltasFor(b.digest()).map(e => e.key)).toEqual(['small'])
    // never past what the frame can carry
    expect(a.deltasFor([], 512)).toEqual([])
  })

  it('a member first heard of through gossip is suspect until its versions rise', () => {
    let t = 1_000_000
    const gone = new ClusterState('gone', settings, () => 0, 1)
    gone.set('hb', bytes('1'))
    const b = new ClusterState('b', settings, () => t)
    b.apply(gone.deltasFor([]))
    expect(b.state('gone')).toBe('suspect')
    expect(b.unconfirmed('gone')).toBe(true)
    t += settings.deadMs - settings.suspectMs
    expect(b.state('gone')).toBe('dead')
    gone.set('hb', bytes('2'))
    b.apply(gone.deltasFor(b.digest()))
    expect(b.state('gone')).toBe('alive')
    expect(b.unconfirmed('gone')).toBe(false)
    expect(b.lastHeard('gone')).toBe(t)
  })

  it('forgets a member silent for 10 × deadMs, refuses stale copies of it, and takes it back when it speaks', () => {
    let t = 0
    const x = new ClusterState('x', settings, () => 0, 1)
    x.set('role', bytes('db'))
    x.set('hb', bytes('1'))
    const b = new ClusterState('b', settings, () => t)
    const c = new ClusterState('c', settings, () => t)
    c.apply(x.deltasFor([]))
    b.apply(c.deltasFor(b.digest()))
    x.set('hb', bytes('2'))
    b.apply(x.deltasFor(b.digest()))
    expect(b.state('x')).toBe('alive')
    t = 10 * settings.deadMs - 1
    expect(b.forget()).toEqual([])
    t = 10 * settings.deadMs
    expect(b.forget()).toEqual(['x'])
    expect(b.others()).toEqual([])
    // c still holds the old state: it does not come back
    b.apply(c.deltasFor(b.digest()))
    expect(b.others()).toEqual([])
    // newer state of its own does, whole
    x.set('hb', bytes('3'))
    c.apply(x.deltasFor(c.digest()))
    b.apply(c.deltasFor(b.digest()))
    expect(b.others()).toEqual(['x'])
    expect([...b.entries('x').keys()].sort()).toEqual(['hb', 'role'])
  })

  it('an owner that hears of its own generation from another run moves past it', () => {
    const old = new ClusterState('a', settings, () => 0, 100)
    for (let i = 0; i < 5; i++) old.set('k', bytes(`old${i}`))
    const b = new ClusterState('b', settings, () => 0)
    b.apply(old.deltasFor([]))
    // restarted within the same millisecond
    const fresh = new ClusterState('a', settings, () => 0, 100)
    fresh.set('k', bytes('new'))
    expect(fresh.apply(b.deltasFor(fresh.digest()))).toBe(true)
    expect(fresh.generation).toBe(101)
    expect(fresh.apply(b.deltasFor(fresh.digest()))).toBe(false)
    b.apply(fresh.deltasFor(b.digest()))
    expect(new TextDecoder().decode(b.get('a', 'k'))).toBe('new')
  })
})

describe('cluster membership between nodes', () => {
  it('members learn of each other through a middle node, with metadata, roots and liveness; rumors only while all are up', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5, autoConnect: false })
    const scopes = ['a', 'b', 'c'].map(() => clock.scope())
    const nodes = ['a', 'b', 'c'].map((id, i) => createNode({
      id,
      transport: net.transport(id),
      timers: scopes[i],
      seed: i + 1,
      antiEntropy: { enabled: false },
      cluster: { intervalMs: 500, suspectMs: 2000, deadMs: 6000 }
    }))
    const [a, b, c] = nodes as [HearsayNode, HearsayNode, HearsayNode]
    for (const n of nodes) await n.start()
    net.connect('a', 'b')
    net.connect('b', 'c')
    c.setMeta('role', 'gateway')
    await clock.advance(5000)
    const seen = a.peers().find(p => p.id === 'c')
    expect(seen).toMatchObject({ id: 'c', connected: false, state: 'alive', inSync: true, docCount: 0, meta: { role: 'gateway' } })
    expect(a.peers().find(p => p.id === 'b')).toMatchObject({ connected: true, state: 'alive' })

    // a never met c, yet knows it is out there: its edit goes out as a rumor and b passes it on
    ;(await a.open('n')).getText('t').insert(0, 'via b')
    await clock.advance(1000)
    expect(c.docs()).toEqual(['n'])
    expect(a.metrics().rumorUpdatesSent).toBe(1)
    await clock.advance(2000)
    expect(a.peers().find(p => p.id === 'c')).toMatchObject({ inSync: true, docCount: 1 })

    // c crashes: suspect, then dead
    scopes[2]?.dispose()
    net.crash('c')
    await clock.advance(3000)
    expect(a.peers().find(p => p.id === 'c')?.state).toBe('suspect')
    await clock.advance(5000)
    expect(a.peers().find(p => p.id === 'c')?.state).toBe('dead')
    expect(b.peers().find(p => p.id === 'c')).toMatchObject({ connected: false, state: 'dead' })
    expect(a.peers().find(p => p.id === 'b')?.state).toBe('alive')
    // a member that is down does not hold a in rumor mode: every live member is connected again
    const before = a.metrics()
    ;(await a.open('n')).getText('t').insert(0, 'direct ')
    await clock.advance(100)
    expect(a.metrics().liveUpdatesSent).toBe(before.liveUpdatesSent + 1)
    expect(a.metrics().rumorUpdatesSent).toBe(before.rumorUpdatesSent)
    await a.stop()
    await b.stop()
  })

  it('after a crash and restart, members see the new run only: entries written early, none of the old keys', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5, autoConnect: false })
    const storage = createMemoryStorage()
    const opts = { timers: clock, cluster: { intervalMs: 500, suspectMs: 2000, deadMs: 6000 } }
    const scopeA = clock.scope()
    const a = createNode({ id: 'a', transport: net.transport('a'), storage, seed: 1, ...opts, timers: scopeA })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, ...opts })
    const c = createNode({ id: 'c', transport: net.transport('c'), seed: 3, ...opts })
    for (const n of [a, b, c]) await n.start()
    net.connect('a', 'b')
    net.connect('b', 'c')
    a.setMeta('role', 'old')
    a.setMeta('gone', 'x')
    await clock.advance(5000)
    expect(c.peers().find(p => p.id === 'a')).toMatchObject({ state: 'alive', docCount: 0, meta: { role: 'old', gone: 'x' } })

    scopeA.dispose()
    net.crash('a')
    await clock.advance(1000)
    const a2 = createNode({ id: 'a', transport: net.transport('a'), storage, seed: 4, ...opts })
    await a2.start()
    a2.setMeta('role', 'new')
    ;(await a2.open('n')).getText('t').insert(0, 'written while alone')
    // alone for a while: its heartbeat counts past every version of the old run
    await clock.advance(20_000)
    net.connect('a', 'b')
    await clock.advance(5000)
    for (const n of [b, c]) {
      expect(n.docs()).toEqual(['n'])
      expect(n.peers().find(p => p.id === 'a')).toMatchObject({ state: 'alive', inSync: true, docCount: 1, meta: { role: 'new' } })
    }
    for (const n of [a2, b, c]) await n.stop()
  })

  it('with a message limit below the largest meta value, the value still reaches every member', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5, autoConnect: false })
    const nodes = ['a', 'b', 'c'].map((id, i) => createNode({
      id, transport: net.transport(id), timers: clock, seed: i + 1, cluster: { intervalMs: 500, maxMessageBytes: 256 }
    }))
    const [a, , c] = nodes as [HearsayNode, HearsayNode, HearsayNode]
    for (const n of nodes) await n.start()
    net.connect('a', 'b')
    net.connect('b', 'c')
    a.setMeta('avatar', 'x'.repeat(1024))
    a.setMeta('role', 'gateway')
    await clock.advance(10_000)
    expect(c.peers().find(p => p.id === 'a')?.meta).toEqual({ avatar: 'x'.repeat(1024), role: 'gateway' })
    for (const n of nodes) await n.stop()
  })

  it('a crashed member is forgotten after 10 × deadMs', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5 })
    const scopes = ['a', 'b', 'c'].map(() => clock.scope())
    const nodes = ['a', 'b', 'c'].map((id, i) => createNode({
      id, transport: net.transport(id), timers: scopes[i], seed: i + 1, cluster: { intervalMs: 200, suspectMs: 500, deadMs: 1000 }
    }))
    const [a, b] = nodes as [HearsayNode, HearsayNode, HearsayNode]
    for (const n of nodes) await n.start()
    await clock.advance(2000)
    scopes[2]?.dispose()
    net.crash('c')
    await clock.advance(5000)
    expect(a.peers().find(p => p.id === 'c')?.state).toBe('dead')
    await clock.advance(6000)
    expect(a.peers().map(p => p.id)).toEqual(['b'])
    expect(b.peers().map(p => p.id)).toEqual(['a'])
    await a.stop()
    await b.stop()
  })

  it('setMeta refuses reserved or oversized keys and values', async () => {
    const net = createMemoryNetwork()
    const a = createNode({ id: 'a', transport: net.transport('a') })
    expect(() => { a.setMeta('hearsay/root', 'x') }).toThrowError(expect.objectContaining({ name: 'ConfigError' }))
    expect(() => { a.setMeta('k'.repeat(65), 'x') }).toThrowError(/meta key/)
    expect(() => { a.setMeta('k', 'x'.repeat(2000)) }).toThrowError(/meta value/)
    expect(() => createNode({ id: 'b', transport: net.transport('b'), cluster: { suspectMs: 10, deadMs: 5 } })).toThrowError(/deadMs/)
  })
})

describe('configure on a running node', () => {
  async function pair (): Promise<{ clock: ReturnType<typeof createVirtualClock>, net: ReturnType<typeof createMemoryNetwork>, a: HearsayNode, b: HearsayNode }> {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5 })
    const [a, b] = ['a', 'b'].map((id, i) => createNode({
      id,
      transport: net.transport(id),
      timers: clock,
      seed: i + 1,
      antiEntropy: { enabled: false },
      propagation: { mode: 'direct' },
      cluster: { intervalMs: 60_000, suspectMs: 5000, deadMs: 30_000 }
    })) as [HearsayNode, HearsayNode]
    await a.start()
    await b.start()
    await clock.advance(100)
    return { clock, net, a, b }
  }

  it('changes propagation and the gossip interval at once', async () => {
    const { clock, a, b } = await pair()
    ;(await a.open('n')).getText('t').insert(0, 'x')
    await clock.advance(100)
    expect(a.metrics()).toMatchObject({ liveUpdatesSent: 1, rumorUpdatesSent: 0 })
    a.configure({ propagation: { mode: 'rumor' } })
    ;(await a.open('n')).getText('t').insert(0, 'y')
    await clock.advance(100)
    expect(a.metrics()).toMatchObject({ liveUpdatesSent: 1, rumorUpdatesSent: 1 })
    expect(b.docs()).toEqual(['n'])

    // the pending round 60 s away is rescheduled: a now gossips about every 200 ms
    const sent = a.metrics().messagesSent
    a.configure({ cluster: { intervalMs: 200 } })
    await clock.advance(2000)
    expect(a.metrics().messagesSent - sent).toBeGreaterThanOrEqual(7)
    await a.stop()
    await b.stop()
  })

  it('a shorter suspectMs applies to members already quiet; invalid settings throw and change nothing', async () => {
    const { clock, net, a } = await pair()
    net.crash('b')
    await clock.advance(2000)
    expect(a.peers().find(p => p.id === 'b')?.state).toBe('alive')
    expect(() => { a.configure({ propagation: { mode: 'rumor' }, cluster: { suspectMs: 40_000 } }) }).toThrowError(expect.objectContaining({ name: 'ConfigError' }))
    expect(() => { a.configure({ cluster: { suspectMs: 1000, intervalMs: -1 } }) }).toThrowError(/intervalMs/)
    expect(() => { a.configure({ flowControl: { minWindow: 1e9 } }) }).toThrowError(/maxWindow/)
    expect(() => { a.configure({ live: 'yes' as unknown as boolean }) }).toThrowError(/live/)
    expect(a.peers().find(p => p.id === 'b')?.state).toBe('alive')
    a.configure({ cluster: { suspectMs: 1000 } })
    expect(a.peers().find(p => p.id === 'b')?.state).toBe('suspect')
    a.configure({ cluster: { deadMs: 1500 } })
    expect(a.peers().find(p => p.id === 'b')?.state).toBe('dead')
    await a.stop()
  })
})
