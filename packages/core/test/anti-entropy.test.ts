/** Anti-entropy alone, on the virtual clock: round scheduling, repair priority, connect rules. */
import { describe, expect, it } from 'vitest'
import { AntiEntropy } from '../src/anti-entropy.js'
import { ClusterState } from '../src/cluster.js'
import type { NodeOptions } from '../src/options.js'
import { createRandom } from '../src/random.js'
import type { Transport } from '../src/transport.js'
import { scene, type Scene } from './subsystem-fakes.js'

function antiEntropy (sc: Scene, selfId = 'self'): AntiEntropy {
  const members = new ClusterState(selfId, sc.settings.cluster, () => sc.clock.now(), sc.clock.now())
  const transport = { localId: selfId } as unknown as Transport
  return new AntiEntropy({ selfId, peers: sc.peers, members, transport, settings: sc.settings, timers: sc.clock, log: sc.log, rng: createRandom(5), guard: (_w, fn) => { fn() }, idle: () => false, interval: base => base })
}

const opts = (ae: NodeOptions['antiEntropy']): Partial<NodeOptions> => ({ antiEntropy: ae })

describe('anti-entropy', () => {
  it('runs one round per interval (± jitter), each reconciling with fanout peers in the configured mode', async () => {
    const sc = scene(opts({ intervalMs: 1000, jitter: 0.25, fanout: 1, mode: 'push' }))
    const sessions = ['a', 'b', 'c'].map(id => sc.connect(id))
    const ae = antiEntropy(sc)
    ae.start()
    await sc.clock.advance(749)
    expect(sessions.flatMap(s => s.exchanges)).toHaveLength(0)
    await sc.clock.advance(10_000 - 749)
    const modes = sessions.flatMap(s => s.exchanges)
    // 10 s of rounds 750–1250 ms apart
    expect(modes.length).toBeGreaterThanOrEqual(8)
    expect(modes.length).toBeLessThanOrEqual(13)
    expect(new Set(modes)).toEqual(new Set(['push']))
    ae.stop()
    const before = modes.length
    await sc.clock.advance(10_000)
    expect(sessions.flatMap(s => s.exchanges)).toHaveLength(before)
  })

  it('runs no rounds while disabled, and schedules them when enabled again', async () => {
    const sc = scene(opts({ enabled: false, intervalMs: 100 }))
    const a = sc.connect('a')
    const ae = antiEntropy(sc)
    ae.start()
    await sc.clock.advance(1000)
    expect(a.exchanges).toHaveLength(0)
    sc.settings.ae.enabled = true
    ae.schedule()
    await sc.clock.advance(1000)
    expect(a.exchanges.length).toBeGreaterThan(0)
  })

  it('a peer whose updates were lost is reconciled at once, push-pull whatever the mode; one exchange at a time', async () => {
    const sc = scene(opts({ mode: 'pull', intervalMs: 60_000 }))
    const a = sc.connect('a')
    const ae = antiEntropy(sc)
    ae.reconcile('a', 'lost')
    expect(a.exchanges).toEqual(['push-pull'])
    expect(ae.needsRepair('a')).toBe(false)
    a.activeInitiated = 1
    ae.reconcile('a', 'lost')
    expect(a.exchanges).toEqual(['push-pull'])
    // still owed: the next chance repairs it
    expect(ae.needsRepair('a')).toBe(true)
  })

  it('peers owed an exchange (lost while away, failed, restored) go first in the next round', async () => {
    const sc = scene(opts({ mode: 'push', intervalMs: 1000, fanout: 1 }))
    const sessions = ['a', 'b', 'c', 'd'].map(id => sc.connect(id))
    const ae = antiEntropy(sc)
    sc.disconnect('c')
    ae.reconcile('c', 'lost')
    ae.start()
    const c = sc.connect('c')
    await sc.clock.advance(1250)
    expect(c.exchanges).toEqual(['push-pull'])
    expect(sessions.filter(s => s.remoteId !== 'c').flatMap(s => s.exchanges)).toHaveLength(0)
    // a failed exchange leaves its peer owed one: next round picks it again, push-pull
    const d = sessions[3]!
    d.failExchanges = true
    ae.reconcile('d', 'lost')
    await sc.clock.settle()
    expect(ae.needsRepair('d')).toBe(true)
    d.failExchanges = false
    await sc.clock.advance(1250)
    expect(d.exchanges).toEqual(['push-pull', 'push-pull'])
    expect(ae.needsRepair('d')).toBe(false)
    ae.stop()
  })

  it('on connect: nothing when the roots already match, else only the lower id starts a push-pull exchange', async () => {
    const sc = scene(opts({ intervalMs: 60_000 }))
    const lower = sc.connect('b')
    const higher = sc.connect('0')
    const ae = antiEntropy(sc, 'a')
    ae.connected('b', false)
    ae.connected('0', false)
    expect(lower.exchanges).toEqual(['push-pull'])
    expect(higher.exchanges).toEqual([])
    // a peer owed an exchange is repaired on connect whichever id is lower, unless its root already matches ours
    ae.reconcile('0', 'restored')
    ae.connected('0', true)
    expect(ae.needsRepair('0')).toBe(false)
    expect(higher.exchanges).toEqual([])
    ae.reconcile('0', 'restored')
    ae.connected('0', false)
    expect(higher.exchanges).toEqual(['push-pull'])
  })

  it('ring selection reconciles with each replica in turn, owed peers first', async () => {
    const sc = scene(opts({ selection: 'ring', intervalMs: 1000, jitter: 0, mode: 'push' }))
    const sessions = ['b', 'c', 'd'].map(id => sc.connect(id))
    const ae = antiEntropy(sc, 'a')
    ae.start()
    const order = (): string[] => sessions.flatMap(s => s.exchanges.map(() => s.remoteId))
    await sc.clock.advance(3000)
    expect(order().sort()).toEqual(['b', 'c', 'd'])
    ae.reconcile('b', 'failed')
    await sc.clock.advance(1000)
    expect(sessions[0]!.exchanges.at(-1)).toBe('push-pull')
    ae.stop()
  })
})
