/** The peer table alone, on the virtual clock: sessions, checkpoints, forgetting, the peers() view. */
import { describe, expect, it } from 'vitest'
import { ClusterState } from '../src/cluster.js'
import { createMemoryStorage } from '../src/memory-storage.js'
import { PeerTable } from '../src/peers.js'
import type { Session } from '../src/session.js'
import { FakeSession, scene } from './subsystem-fakes.js'

const root = (n: number): Uint8Array => new Uint8Array(16).fill(n)

describe('peer table', () => {
  it('emits open and closed for the current session only: a replaced one closes silently', () => {
    const sc = scene()
    const events: string[] = []
    sc.peers.on('open', e => { events.push(`open ${e.peer.id}`) })
    sc.peers.on('closed', e => { events.push(`closed ${e.peer.id} ${e.reason}`) })
    const first = new FakeSession('a') as unknown as Session
    sc.peers.attach(first, root(0))
    sc.peers.opened(first)
    const second = new FakeSession('a') as unknown as Session
    sc.peers.attach(second, root(0))
    expect(sc.peers.closed(first, 'replaced')).toBeUndefined()
    sc.peers.opened(second)
    expect(sc.peers.closed(second, 'gone')?.id).toBe('a')
    expect(events).toEqual(['open a', 'open a', 'closed a gone'])
    expect(sc.peers.get('a')?.session).toBeUndefined()
  })

  it('checkpoints survive a restart: roots, counts and times of the most recently seen peers', async () => {
    const sc = scene()
    const storage = createMemoryStorage()
    await storage.open()
    const table = new PeerTable('self', sc.clock, storage, sc.log)
    table.status('a', root(1), 3)
    await sc.clock.advance(500)
    table.status('b', root(2), 4)
    table.ensure('b').lastSync = 123
    table.ensure('no-root')
    await table.saveCheckpoints()
    expect(table.checkpointDiffers(table.get('a')!, root(1))).toBe(false)
    expect(table.checkpointDiffers(table.get('a')!, root(9))).toBe(true)

    const again = new PeerTable('self', sc.clock, storage, sc.log)
    expect((await again.loadCheckpoints()).sort()).toEqual(['a', 'b'])
    expect(again.get('a')).toMatchObject({ root: root(1), docCount: 3, lastSeen: 10_000 })
    expect(again.get('b')).toMatchObject({ root: root(2), docCount: 4, lastSeen: 10_500, lastSync: 123 })
  })

  it('ignores an unreadable checkpoint record', async () => {
    const sc = scene()
    const storage = createMemoryStorage()
    await storage.open()
    await storage.setMeta('hearsay/peers', new TextEncoder().encode('{not json'))
    const table = new PeerTable('self', sc.clock, storage, sc.log)
    expect(await table.loadCheckpoints()).toEqual([])
    expect(sc.lines.some(l => l.includes('ignoring unreadable peer checkpoints'))).toBe(true)
  })

  it('forgets only quiet peers with no session that gossip does not know, and says so', async () => {
    const sc = scene()
    const forgot: string[] = []
    sc.peers.on('forgot', e => { forgot.push(e.peerId) })
    sc.peers.touch('quiet')
    sc.peers.touch('gossiped')
    sc.connect('connected')
    await sc.clock.advance(1000)
    sc.peers.forgetQuiet(1000, pid => pid === 'gossiped')
    expect(forgot).toEqual(['quiet'])
    expect([...sc.peers.ids()].sort()).toEqual(['connected', 'gossiped'])
  })

  it('the view lists peers and gossiped members, with in-sync, counts and meta from the freshest source', () => {
    const sc = scene()
    sc.connect('a')
    sc.peers.status('a', root(1), 5)
    const members = new ClusterState('self', sc.settings.cluster, () => sc.clock.now(), sc.clock.now())
    const m = new ClusterState('m', sc.settings.cluster, () => sc.clock.now(), sc.clock.now())
    m.set('hearsay/root', root(1))
    m.set('hearsay/docs', new TextEncoder().encode('7'))
    m.set('hearsay/bytes', new TextEncoder().encode('2048'))
    m.set('name', new TextEncoder().encode('kitchen'))
    members.apply(m.deltasFor([]), 'a')
    const view = sc.peers.view(() => root(1), true, () => undefined, members, c => c ? 'alive' : 'suspect')
    expect(view.find(p => p.id === 'a')).toMatchObject({ connected: true, state: 'alive', inSync: true, docCount: 5 })
    expect(view.find(p => p.id === 'm')).toMatchObject({ connected: false, state: 'suspect', inSync: true, docCount: 7, bytes: 2048, meta: { name: 'kitchen' } })
  })
})
