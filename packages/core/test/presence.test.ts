/**
 * Presence in the engine, on the memory network: y-protocols Awareness shared over sessions and
 * never stored; new peers get states at once; a closed session takes its states away; a partial
 * mesh passes them on; what a peer sends is bounded, and a malformed frame closes only its session.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from 'y-protocols/awareness'
import { createMemoryNetwork, createMemoryStorage, createNode, type HearsayNode } from '../src/index.js'
import { MessageType, encodePresence } from '../src/protocol.js'
import { PRESENCE_MAX_CLIENTS_PER_DOC, PRESENCE_STATES_BURST } from '../src/constants.js'
import { countingStorage, createHostilePeer, seal, waitFor } from '../src/testing/index.js'
import { cluster } from './helpers.js'

const names = (n: HearsayNode, docId: string): string[] =>
  [...n.awareness(docId).getStates().values()].map(s => (s as { user?: { name?: string } }).user?.name).filter((x): x is string => x !== undefined).sort()

describe('presence', () => {
  it('reaches connected peers at once, is never stored, and reaches a peer that connects later', async () => {
    const net = createMemoryNetwork({ seed: 2, autoConnect: false })
    const stores = ['a', 'b', 'c'].map(() => countingStorage(createMemoryStorage()))
    const nodes = ['a', 'b', 'c'].map((id, i) => createNode({ id, transport: net.transport(id), seed: i + 1, storage: stores[i]?.storage }))
    const [a, b, c] = nodes as [HearsayNode, HearsayNode, HearsayNode]
    for (const n of nodes) await n.start()
    try {
      net.connect('a', 'b')
      await waitFor(() => a.peers().some(p => p.connected))
      const before = stores.map(s => s.writes())
      const doc = await a.open('notes/1')
      a.awareness('notes/1').setLocalStateField('user', { name: 'Ada' })
      await waitFor(() => names(b, 'notes/1').includes('Ada'))
      for (let i = 0; i < 50; i++) a.awareness('notes/1').setLocalStateField('cursor', { index: i })
      await waitFor(() => (b.awareness('notes/1').getStates().get(doc.clientID) as { cursor?: { index: number } } | undefined)?.cursor?.index === 49)
      // the Awareness shares the open document's client id
      expect(a.awareness('notes/1').clientID).toBe(doc.clientID)
      await a.flush()
      await b.flush()
      expect(stores.map(s => s.writes())).toEqual(before)
      expect(a.docs()).toEqual([])
      expect(b.docs()).toEqual([])
      // a newcomer gets what is known at once, from either peer
      net.connect('b', 'c')
      await waitFor(() => names(c, 'notes/1').includes('Ada'))
      expect(c.metrics().presenceReceived).toBeGreaterThan(0)
    } finally {
      for (const n of nodes) await n.stop()
    }
  })

  it('an app that asks for presence after a peer shared some gets an Awareness of its own', async () => {
    const c = await cluster(['a', 'b'], {}, 15)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    try {
      await waitFor(() => a.peers().some(p => p.connected))
      a.awareness('late').setLocalStateField('user', { name: 'Ada' })
      await waitFor(() => b.metrics().presenceReceived > 0)
      // b held that document's presence for its peers only; now its app joins
      const doc = await b.open('late')
      const mine = b.awareness('late')
      expect(mine.clientID).toBe(doc.clientID)
      mine.setLocalStateField('user', { name: 'Bo' })
      await waitFor(() => names(a, 'late').join() === 'Ada,Bo')
      expect(names(b, 'late')).toEqual(['Ada', 'Bo'])
    } finally {
      await c.stop()
    }
  })

  it('removes the states a peer brought when its session closes, and the removal of a client that left reaches everyone', async () => {
    const c = await cluster(['a', 'b', 'c'], {}, 4)
    const [a, b, cc] = c.nodes as [HearsayNode, HearsayNode, HearsayNode]
    try {
      await waitFor(() => b.peers().filter(p => p.connected).length === 2)
      a.awareness('d').setLocalStateField('user', { name: 'Ada' })
      cc.awareness('d').setLocalStateField('user', { name: 'Cy' })
      await waitFor(() => names(b, 'd').join() === 'Ada,Cy')
      c.net.disconnect('a', 'b')
      await waitFor(() => names(b, 'd').join() === 'Cy')
      expect(names(cc, 'd')).toEqual(['Ada', 'Cy'])
      // Cy leaves for real: its own removal goes to its peers
      cc.awareness('d').setLocalState(null)
      await waitFor(() => names(b, 'd').length === 0 && names(a, 'd').join() === 'Ada')
    } finally {
      await c.stop()
    }
  })

  it('splits many clients across entries a peer accepts; past its per-document cap they are dropped, the session stays', async () => {
    const c = await cluster(['a', 'b'], {}, 12)
    const [a, b] = c.nodes as [HearsayNode, HearsayNode]
    try {
      await waitFor(() => a.peers().some(p => p.connected))
      const many = new Awareness(new Y.Doc())
      for (let i = 0; i < 300; i++) {
        many.clientID = 10_000 + i
        many.setLocalState({})
        many.setLocalState({ user: { name: `u${i}` } }) // clock 1: y-protocols ignores a client's clock 0
      }
      // as a daemon applies its clients' states
      applyAwarenessUpdate(a.awareness('big'), encodeAwarenessUpdate(many, [...many.getStates().keys()]), 'clients')
      await waitFor(() => b.awareness('big').getStates().size >= PRESENCE_MAX_CLIENTS_PER_DOC)
      await waitFor(() => b.metrics().presenceDropped > 0)
      expect(b.awareness('big').getStates().size).toBeLessThanOrEqual(PRESENCE_MAX_CLIENTS_PER_DOC + 1)
      expect(b.metrics().framesRejected).toBe(0)
      expect(a.peers().some(p => p.connected)).toBe(true)
      many.destroy()
    } finally {
      await c.stop()
    }
  })

  it('on a full mesh, a state told by a third peer stays with the session of the node it comes from', async () => {
    const net = createMemoryNetwork({ seed: 13, autoConnect: false })
    const nodes = ['a', 'b', 'c'].map((id, i) => createNode({ id, transport: net.transport(id), seed: i + 1 }))
    const [a, b, c] = nodes as [HearsayNode, HearsayNode, HearsayNode]
    for (const n of nodes) await n.start()
    try {
      net.connect('a', 'b')
      a.awareness('m').setLocalStateField('user', { name: 'Ada' })
      await waitFor(() => names(b, 'm').includes('Ada'))
      // c joins: b tells it of Ada (passed on), a tells it too (its own client)
      net.connect('b', 'c')
      await waitFor(() => names(c, 'm').includes('Ada'))
      net.connect('a', 'c')
      await waitFor(() => c.peers().filter(p => p.connected).length === 2)
      await waitFor(() => a.metrics().presenceSent >= 2)
      // b goes away from c: Ada is still here, she is a's
      net.disconnect('b', 'c')
      await waitFor(() => !c.peers().some(p => p.id === 'b' && p.connected))
      expect(names(c, 'm')).toEqual(['Ada'])
      net.disconnect('a', 'c')
      await waitFor(() => names(c, 'm').length === 0)
    } finally {
      for (const n of nodes) await n.stop()
    }
  })

  // in a line a – b – c: with rumors on, or by default once the origin knows of a member it cannot reach
  for (const [how, opts] of [['with propagation mode rumor', { propagation: { mode: 'rumor' as const } }], ['by default, through cluster gossip', { cluster: { intervalMs: 50 } }]] as const) {
    it(`passes presence on in a partial mesh, ${how}`, async () => {
      const net = createMemoryNetwork({ seed: 14, autoConnect: false })
      const nodes = ['a', 'b', 'c'].map((id, i) => createNode({ id, transport: net.transport(id), seed: i + 1, ...opts }))
      const [a, , c] = nodes as [HearsayNode, HearsayNode, HearsayNode]
      for (const n of nodes) await n.start()
      try {
        net.connect('a', 'b')
        net.connect('b', 'c')
        await waitFor(() => a.peers().some(p => p.id === 'c' && p.state === 'alive') && c.peers().some(p => p.id === 'a' && p.state === 'alive'))
        a.awareness('line').setLocalStateField('user', { name: 'Ada' })
        await waitFor(() => names(c, 'line').includes('Ada'))
        c.awareness('line').setLocalStateField('user', { name: 'Cy' })
        await waitFor(() => names(a, 'line').includes('Cy'))
      } finally {
        for (const n of nodes) await n.stop()
      }
    })
  }

  it('bounds what a member sends: malformed frames close its session, floods are dropped and counted', async () => {
    const net = createMemoryNetwork({ seed: 6 })
    const victim = createNode({ id: 'v', transport: net.transport('v'), seed: 1 })
    const honest = createNode({ id: 'h', transport: net.transport('h'), seed: 2 })
    await victim.start()
    await honest.start()
    const evil = await createHostilePeer(net.transport('evil'))
    try {
      await evil.link('v')
      const state = (clientID: number, s: string): { clientID: number, clock: number, state: string } => ({ clientID, clock: 1, state: s })
      // too many clients for one document in one frame: the decoder refuses it
      const many = Array.from({ length: PRESENCE_MAX_CLIENTS_PER_DOC + 1 }, (_, i) => state(i + 1, '{}'))
      await evil.send('v', encodePresence(1, false, [{ docId: 'x', states: many }]))
      await waitFor(() => victim.metrics().framesRejected === 1)
      expect(await evil.waitClosed('v')).toBeDefined()
      // not JSON of an object
      await evil.link('v')
      const payload = new TextEncoder().encode('notjson')
      const bad = new Uint8Array([1, 0, 1, 1, 0x78, 1, 1, 1, 7, ...payload])
      await evil.send('v', seal(MessageType.Presence, bad))
      await waitFor(() => victim.metrics().framesRejected === 2)
      // a flood past the rate: dropped and counted, the session stays open
      await evil.link('v')
      for (let f = 0; f < 20; f++) {
        const states = Array.from({ length: 200 }, (_, i) => state(1000 + f * 200 + i, `{"n":${i}}`))
        await evil.send('v', encodePresence(1, false, [{ docId: `flood/${f % 4}`, states }]))
      }
      await waitFor(() => victim.metrics().presenceDropped > 0)
      expect(victim.metrics().presenceReceived).toBeLessThanOrEqual(PRESENCE_STATES_BURST + 4 * PRESENCE_MAX_CLIENTS_PER_DOC)
      expect(victim.peers().some(p => p.id === 'evil' && p.connected)).toBe(true)
      // an honest peer's presence still gets through
      await waitFor(() => honest.peers().some(p => p.id === 'v' && p.connected))
      honest.awareness('ok').setLocalStateField('user', { name: 'Hal' })
      await waitFor(() => names(victim, 'ok').includes('Hal'))
    } finally {
      await evil.stop()
      await victim.stop()
      await honest.stop()
    }
  })
})
