/** The live propagator alone, on the virtual clock: batching, retry queues, flow control and loss reports. */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { ClusterState } from '../src/cluster.js'
import { LivePropagator, type LossReason } from '../src/live.js'
import { createRandom } from '../src/random.js'
import type { Session } from '../src/session.js'
import { scene, type Scene } from './subsystem-fakes.js'

function update (text: string): Uint8Array {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

function propagator (sc: Scene, owed = new Set<string>()): { live: LivePropagator, lost: Array<[string, LossReason]> } {
  const members = new ClusterState('self', sc.settings.cluster, () => sc.clock.now(), sc.clock.now())
  const live = new LivePropagator({ peers: sc.peers, members, settings: sc.settings, timers: sc.clock, log: sc.log, counters: sc.counters, rng: createRandom(1), owed: pid => owed.has(pid) })
  const lost: Array<[string, LossReason]> = []
  live.on('lost', e => { lost.push([e.peerId, e.reason]) })
  return { live, lost }
}

describe('live propagator', () => {
  it('batches local updates for liveBatchMs, then sends one frame per peer with one merged update per document', async () => {
    const sc = scene({ liveBatchMs: 20, propagation: { mode: 'direct' } })
    const a = sc.connect('a')
    const b = sc.connect('b')
    const { live } = propagator(sc)
    live.local({ docId: 'x', update: update('1') })
    live.local({ docId: 'x', update: update('2') })
    live.local({ docId: 'y', update: update('3') })
    await sc.clock.advance(19)
    expect(a.live).toHaveLength(0)
    await sc.clock.advance(1)
    for (const s of [a, b]) {
      expect(s.live).toHaveLength(1)
      expect(s.live[0]!.map(e => e.docId)).toEqual(['x', 'y'])
    }
    const merged = new Y.Doc()
    Y.applyUpdate(merged, a.live[0]![0]!.update)
    expect(merged.getText('t').toString()).toHaveLength(2)
  })

  it('sends nothing while live propagation is off', async () => {
    const sc = scene({ live: false })
    const a = sc.connect('a')
    const { live } = propagator(sc)
    live.local({ docId: 'x', update: update('1') })
    await sc.clock.advance(1000)
    expect(a.live).toHaveLength(0)
  })

  it('keeps updates for a peer that is away and sends them when its session opens', async () => {
    const sc = scene({ propagation: { mode: 'direct' } })
    sc.connect('a')
    sc.disconnect('a')
    const { live } = propagator(sc)
    live.local({ docId: 'x', update: update('1') })
    await sc.clock.advance(1)
    const back = sc.connect('a')
    live.opened(back as unknown as Session)
    expect(back.live.flat().map(e => e.docId)).toEqual(['x'])
  })

  it('reports a retry queue that overflowed as lost, counts it, and queues nothing more for a peer anti-entropy owes an exchange', async () => {
    const owed = new Set<string>()
    const sc = scene({ retryQueueBytes: 200, propagation: { mode: 'direct' } })
    sc.connect('a')
    sc.disconnect('a')
    const { live, lost } = propagator(sc, owed)
    // as the node wires it: a loss makes anti-entropy owe the peer an exchange
    live.on('lost', e => { owed.add(e.peerId) })
    for (let i = 0; i < 10; i++) {
      live.local({ docId: `d${i}`, update: update('some text') })
      live.flush()
    }
    expect(lost).toEqual([['a', 'retry-overflow']])
    expect(sc.counters.retryQueueOverflows).toBeGreaterThan(0)
    live.local({ docId: 'late', update: update('late') })
    live.flush()
    const back = sc.connect('a')
    live.opened(back as unknown as Session)
    expect(back.live).toHaveLength(0)
  })

  it('reports a shed frame and an update too large for any frame as lost', async () => {
    const sc = scene({ propagation: { mode: 'direct' }, flowControl: { enabled: false } })
    const a = sc.connect('a')
    const { live, lost } = propagator(sc)
    a.accept = false
    live.local({ docId: 'x', update: update('1') })
    live.flush()
    expect(lost).toEqual([['a', 'shed']])
    a.accept = true
    a.frameLimit = 100
    live.local({ docId: 'big', update: update('y'.repeat(500)) })
    live.flush()
    expect(lost).toEqual([['a', 'shed'], ['a', 'shed']])
    expect(a.live).toHaveLength(0)
  })

  it('holds updates while the backlog is past the window, releases them as the channel drains, and reports an outbox overflow as lost', async () => {
    const sc = scene({ propagation: { mode: 'direct' }, flowControl: { initialWindow: 16 * 1024, minWindow: 16 * 1024, outboxBytes: 4096 } })
    const a = sc.connect('a')
    const { live, lost } = propagator(sc)
    a.backlog = 32 * 1024
    live.local({ docId: 'x', update: update('held') })
    live.flush()
    expect(a.live).toHaveLength(0)
    expect(live.heldBytes).toBeGreaterThan(0)
    a.backlog = 0
    live.drained(a as unknown as Session, 1024, 1)
    expect(a.live.flat().map(e => e.docId)).toEqual(['x'])
    expect(live.heldBytes).toBe(0)
    a.backlog = 32 * 1024
    for (let i = 0; i < 20; i++) live.local({ docId: `d${i}`, update: update('z'.repeat(300)) })
    live.flush()
    expect(lost).toEqual([['a', 'outbox-overflow']])
    expect(sc.counters.flowOutboxOverflows).toBe(1)
  })

  it('in rumor mode sends a fresh update to fanout peers once, and passes a received rumor on one hop further, never back', async () => {
    const sc = scene({ propagation: { mode: 'rumor', fanout: 2 } })
    const sessions = ['a', 'b', 'c', 'd'].map(id => sc.connect(id))
    const { live } = propagator(sc)
    const entry = { docId: 'x', update: update('r') }
    live.local(entry)
    live.flush()
    expect(sessions.filter(s => s.rumors.length === 1).length).toBe(2)
    expect(sessions.every(s => s.live.length === 0)).toBe(true)
    // the same update arriving as a rumor is not passed on again
    live.relay(sessions[0] as unknown as Session, 1, [entry])
    expect(sessions.reduce((n, s) => n + s.rumors.length, 0)).toBe(2)
    const other = { docId: 'y', update: update('s') }
    live.relay(sessions[0] as unknown as Session, 3, [other])
    const passed = sessions.filter(s => s.rumors.some(r => r.entries[0]!.docId === 'y'))
    expect(passed).toHaveLength(2)
    expect(passed).not.toContain(sessions[0])
    expect(passed.every(s => s.rumors.find(r => r.entries[0]!.docId === 'y')!.hops === 4)).toBe(true)
  })
})
