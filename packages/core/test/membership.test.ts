/** Membership alone, on the virtual clock: member states, the gossip loop, status announcements. */
import { describe, expect, it } from 'vitest'
import { ClusterState } from '../src/cluster.js'
import { Membership } from '../src/membership.js'
import { createRandom } from '../src/random.js'
import { scene, type Scene } from './subsystem-fakes.js'

function membership (sc: Scene, root = { value: new Uint8Array(16) }): Membership {
  return new Membership({
    selfId: 'self', peers: sc.peers, settings: sc.settings, timers: sc.clock, log: sc.log, counters: sc.counters, rng: createRandom(3),
    digest: () => ({ root: root.value, count: 1 }), digestFor: () => ({ root: root.value, count: 1 }), storedBytes: () => 100, guard: (_w, fn) => { fn() }, interval: base => base
  })
}

const cluster = { cluster: { intervalMs: 1000, suspectMs: 5000, deadMs: 30_000 } }

describe('membership', () => {
  it('a peer is alive while connected or heard from within suspectMs, then suspect, then dead after deadMs', async () => {
    const sc = scene(cluster)
    const m = membership(sc)
    const t0 = sc.clock.now()
    expect(m.stateOf(true, t0 - 1_000_000)).toBe('alive')
    expect(m.stateOf(false, t0)).toBe('alive')
    await sc.clock.advance(4999)
    expect(m.stateOf(false, t0)).toBe('alive')
    await sc.clock.advance(1)
    expect(m.stateOf(false, t0)).toBe('suspect')
    await sc.clock.advance(25_000)
    expect(m.stateOf(false, t0)).toBe('dead')
  })

  it('a member heard of only by gossip is suspect until its heartbeat rises, then alive, suspect, dead, and forgotten after 10 × deadMs', async () => {
    const sc = scene(cluster)
    const m = membership(sc)
    m.on('round', () => { sc.peers.forgetQuiet(sc.settings.cluster.deadMs * 10, pid => m.members.lastHeard(pid) !== undefined) })
    m.start()
    m.startGossip()
    // a connected peer tells us of member x: not seen rising yet, so suspect
    const x = new ClusterState('x', sc.settings.cluster, () => sc.clock.now(), sc.clock.now())
    x.set('hearsay/hb', new TextEncoder().encode('1'))
    m.members.apply(x.deltasFor([]), 'a')
    const view = (): string | undefined => sc.peers.view(() => new Uint8Array(16), true, () => undefined, m.members, (c, l) => m.stateOf(c, l)).find(p => p.id === 'x')?.state
    expect(view()).toBe('suspect')
    // its heartbeat rises: alive; then it falls silent
    const digest = m.members.digest()
    x.set('hearsay/hb', new TextEncoder().encode('2'))
    m.members.apply(x.deltasFor(digest), 'a')
    expect(view()).toBe('alive')
    await sc.clock.advance(5000)
    expect(view()).toBe('suspect')
    await sc.clock.advance(25_000)
    expect(view()).toBe('dead')
    await sc.clock.advance(300_000)
    expect(view()).toBeUndefined()
    m.stop()
  })

  it('each gossip round bumps the heartbeat and sends our digest to one connected peer', async () => {
    const sc = scene(cluster)
    const sessions = ['a', 'b'].map(id => sc.connect(id))
    const m = membership(sc)
    const rounds: number[] = []
    m.on('round', e => { rounds.push(e.now) })
    m.start()
    m.startGossip()
    await sc.clock.advance(10_000)
    expect(rounds.length).toBeGreaterThanOrEqual(8)
    const sent = sessions.flatMap(s => s.gossip)
    expect(sent).toHaveLength(rounds.length)
    expect(sent.every(g => g.request && g.digest.length > 0)).toBe(true)
    expect(Number(new TextDecoder().decode(m.members.get('self', 'hearsay/hb')))).toBe(rounds.length)
    m.stop()
    await sc.clock.advance(10_000)
    expect(sessions.flatMap(s => s.gossip)).toHaveLength(sent.length)
  })

  it('announces a changed root to every session after statusIntervalMs, once, and at once on announceNow', async () => {
    const sc = scene({ statusIntervalMs: 200 })
    const sessions = ['a', 'b'].map(id => sc.connect(id))
    const root = { value: new Uint8Array(16).fill(1) }
    const m = membership(sc, root)
    m.start()
    m.scheduleStatus()
    m.scheduleStatus()
    await sc.clock.advance(199)
    expect(sessions[0]!.statuses).toHaveLength(0)
    await sc.clock.advance(1)
    expect(sessions.map(s => s.statuses.length)).toEqual([1, 1])
    // an unchanged root is not announced again
    m.scheduleStatus()
    await sc.clock.advance(200)
    expect(sessions.map(s => s.statuses.length)).toEqual([1, 1])
    root.value = new Uint8Array(16).fill(2)
    m.announceNow()
    expect(sessions.map(s => s.statuses.length)).toEqual([2, 2])
    expect(m.members.get('self', 'hearsay/root')).toEqual(root.value)
  })

  it('counts and logs refused gossip entries, once per interval per session', async () => {
    const sc = scene(cluster)
    const a = sc.connect('a')
    const m = membership(sc)
    m.start()
    const forged = { owner: 'y', generation: sc.clock.now() + 10 * 86_400_000, version: 1, key: 'hearsay/hb', value: new TextEncoder().encode('1') }
    const session = sc.peers.get('a')!.session!
    m.received(session, { type: 5, request: false, answer: false, digest: [], entries: [forged] } as never)
    m.received(session, { type: 5, request: false, answer: false, digest: [], entries: [forged] } as never)
    expect(sc.counters.gossipEntriesRejected).toBe(2)
    expect(sc.lines.filter(l => l.includes('dropped')).length).toBe(1)
    expect(a.gossip).toHaveLength(0)
  })
})
