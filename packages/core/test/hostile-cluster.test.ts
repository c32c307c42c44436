/**
 * Cluster state from a hostile member: invented members by the 100,000, forged and over-limit
 * entries. The victim keeps at most `cluster.maxMembers`, its memory stays bounded, it drops and
 * counts what it cannot check, and what it dropped never reaches the nodes it gossips with.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork, createNode, type HearsayNode } from '../src/index.js'
import { CLUSTER_MAX_CLOCK_SKEW_MS, CLUSTER_MAX_KEYS_PER_MEMBER, CLUSTER_MAX_MEMBERS, CLUSTER_MAX_VALUE_BYTES } from '../src/index.js'
import { encodeGossip, type GossipEntry } from '../src/protocol.js'
import { waitFor } from '../src/testing/index.js'
import { arena, type Arena } from './hostile-arena.js'

/** `n` invented members of one small entry each, in as few bytes as a frame allows. */
function invented (n: number, generation = 1): GossipEntry[] {
  const value = new Uint8Array(0)
  return Array.from({ length: n }, (_, i) => ({ nodeId: i.toString(36), generation, key: 'k', value, version: 1 }))
}

const MiB = 1024 * 1024

describe('hostile cluster state', () => {
  let a: Arena | undefined
  afterEach(async () => { await a?.stop(); a = undefined })

  it('one Gossip frame announcing 100,000 invented members: at most cluster.maxMembers kept, memory bounded, the rest dropped and counted', async () => {
    a = await arena(21, { cluster: { intervalMs: 100 } })
    const evil = await a.evil()
    const frame = encodeGossip({ request: false, answer: false, digest: [], entries: invented(100_000) })
    expect(frame.length).toBeLessThanOrEqual(1024 * 1024)
    const rssBefore = process.memoryUsage().rss
    await evil.send('victim', frame)
    await a.probe(evil)
    const rssGrowth = process.memoryUsage().rss - rssBefore
    // the victim, the honest peer and the hostile one are members too
    const kept = 100_000 - (a.victim.metrics().gossipEntriesRejected)
    expect(kept).toBeLessThanOrEqual(CLUSTER_MAX_MEMBERS)
    expect(a.victim.peers().length).toBeLessThanOrEqual(CLUSTER_MAX_MEMBERS - 1 + 2)
    expect(a.victim.metrics().framesRejected).toBe(0)
    expect(a.lines.join('\n')).toMatch(/dropped \d+ cluster state entries from evil-0: too many members \(\d+\)/)
    // the decoded frame itself (100,000 entries) is most of what is left; the cap holds the rest
    expect(rssGrowth).toBeLessThan(50 * MiB)
    process.stdout.write(`100,000 invented members: kept ${kept}, RSS growth ${(rssGrowth / MiB).toFixed(1)} MiB\n`)
    await a.checkSyncing()
    // what the honest peer learns from the victim is capped the same way
    await waitFor(() => a!.honest.peers().length > 100, { message: 'invented members to reach the honest peer through the victim' })
    expect(a.honest.peers().length).toBeLessThanOrEqual(CLUSTER_MAX_MEMBERS - 1 + 1)
  })

  it('cluster.maxMembers is configurable at run time and caps peers()', async () => {
    a = await arena(22, { cluster: { maxMembers: 50 } })
    const evil = await a.evil()
    await evil.send('victim', encodeGossip({ request: false, answer: false, digest: [], entries: invented(1000) }))
    await a.probe(evil)
    // other members (the cap counts ourselves), and peers connected to us but not yet members
    const connected = (): number => a!.victim.peers().filter(p => p.connected).length
    expect(a.victim.peers().length).toBeLessThanOrEqual(50 - 1 + connected())
    expect(a.victim.peers().length).toBeGreaterThan(40)
    a.victim.configure({ cluster: { maxMembers: 60 } })
    await evil.send('victim', encodeGossip({ request: false, answer: false, digest: [], entries: invented(1000, 2) }))
    await a.probe(evil)
    expect(a.victim.peers().length).toBeLessThanOrEqual(60 - 1 + connected())
    expect(a.victim.peers().length).toBeGreaterThan(55)
    expect(() => a!.victim.configure({ cluster: { maxMembers: 1 } })).toThrow(/maxMembers/)
    await a.checkSyncing()
  })

  it('forged and over-limit entries are dropped, counted, logged, and never relayed; plausible ones travel', async () => {
    a = await arena(23, { cluster: { intervalMs: 50 } })
    const evil = await a.evil()
    const now = Date.now()
    const entry = (nodeId: string, e: Partial<GossipEntry>): GossipEntry => ({ nodeId, generation: now, key: 'app/x', value: new Uint8Array([49]), version: 1, ...e })
    const forged: GossipEntry[] = [
      entry('future', { generation: now + 2 * CLUSTER_MAX_CLOCK_SKEW_MS }),
      entry('counted-too-far', { version: 2 ** 47 }),
      entry('big-value', { value: new Uint8Array(CLUSTER_MAX_VALUE_BYTES + 1) }),
      entry('bad-hb', { key: 'hearsay/hb', value: new TextEncoder().encode('-1e999') }),
      entry('bad-root', { key: 'hearsay/root', value: new Uint8Array(3) }),
      // the honest node's own map at a generation it never ran: it would restart its map for nothing
      entry('honest', { generation: now + 2 * CLUSTER_MAX_CLOCK_SKEW_MS, key: 'hearsay/hb', value: new TextEncoder().encode('1') }),
      ...Array.from({ length: CLUSTER_MAX_KEYS_PER_MEMBER + 5 }, (_, i) => entry('many-keys', { key: `k${i}`, version: i + 1 }))
    ]
    const plausible = [entry('friendly', { value: new TextEncoder().encode('hello') })]
    await evil.send('victim', encodeGossip({ request: false, answer: false, digest: [], entries: [...forged, ...plausible] }))
    await a.probe(evil)
    expect(a.victim.metrics().gossipEntriesRejected).toBe(forged.length - CLUSTER_MAX_KEYS_PER_MEMBER)
    const logged = a.lines.join('\n')
    for (const why of ['generation ahead of our clock', 'could have counted', 'value too large', 'malformed hearsay/hb', 'malformed hearsay/root', 'too many keys for one member']) expect(logged).toContain(why)
    const ids = (n: { peers(): Array<{ id: string }> }): string[] => n.peers().map(p => p.id)
    expect(ids(a.victim)).not.toContain('future')
    expect(ids(a.victim)).not.toContain('big-value')
    expect(a.victim.peers().find(p => p.id === 'many-keys')?.meta).toBeDefined()
    // the plausible one reaches the honest node through gossip; none of the forged ones did
    const honest = a.honest
    await waitFor(() => honest.peers().find(p => p.id === 'friendly')?.meta['app/x'] === 'hello', { message: 'a plausible entry to be relayed' })
    await waitFor(() => honest.peers().find(p => p.id === 'many-keys') !== undefined, { message: 'the keys that fit to be relayed' })
    for (const id of ['future', 'counted-too-far', 'big-value', 'bad-hb', 'bad-root']) expect(ids(honest)).not.toContain(id)
    expect(Object.keys(honest.peers().find(p => p.id === 'many-keys')?.meta ?? {}).length).toBeLessThanOrEqual(CLUSTER_MAX_KEYS_PER_MEMBER)
    expect(honest.metrics().gossipEntriesRejected).toBe(0)
    expect(a.victim.metrics().sessionFaults + a.victim.metrics().timerFaults).toBe(0)
    await a.checkSyncing()
  })

  it('a version that jumps further than its owner could have counted since last heard is dropped', async () => {
    a = await arena(24)
    const evil = await a.evil()
    const now = Date.now()
    const e = (version: number): GossipEntry => ({ nodeId: 'member', generation: now - 1000, key: 'app/x', value: new Uint8Array([49]), version })
    await evil.send('victim', encodeGossip({ request: false, answer: false, digest: [], entries: [e(10)] }))
    await evil.send('victim', encodeGossip({ request: false, answer: false, digest: [], entries: [e(11)] }))
    await evil.send('victim', encodeGossip({ request: false, answer: false, digest: [], entries: [e(10_000_000)] }))
    await a.probe(evil)
    expect(a.victim.metrics().gossipEntriesRejected).toBe(1)
    expect(a.lines.join('\n')).toContain('version jumped further than its owner could have counted')
    await a.checkSyncing()
  })

  it('a node whose clock is days behind still takes its peers\' own state, and only that', async () => {
    const net = createMemoryNetwork({ seed: 25 })
    const behind = 3 * 24 * 3600_000
    const slowTimers = { setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => { clearTimeout(h as NodeJS.Timeout) }, now: () => Date.now() - behind }
    const nodes: HearsayNode[] = [
      createNode({ id: 'right', transport: net.transport('right'), cluster: { intervalMs: 50 } }),
      createNode({ id: 'slow', transport: net.transport('slow'), cluster: { intervalMs: 50 }, timers: slowTimers })
    ]
    try {
      for (const n of nodes) await n.start()
      const [right, slow] = nodes as [HearsayNode, HearsayNode]
      right.setMeta('app/name', 'right')
      await waitFor(() => slow.peers().find(p => p.id === 'right')?.meta['app/name'] === 'right', { message: 'the slow node to take its peer\'s own state' })
      expect(slow.metrics().gossipEntriesRejected).toBe(0)
      expect(right.peers().find(p => p.id === 'slow')?.state).toBe('alive')
    } finally {
      for (const n of nodes) await n.stop()
    }
  })
})
