/**
 * A member that floods: half-sent updates across many documents and exchanges, frames of an
 * exchange faster than the node applies them, new documents by the thousand, one very large
 * update, and Yjs updates built to be awkward. Each case checks that the victim stays up, keeps
 * syncing with an honest peer, holds at most what its limits allow, and says why.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ItemKind, MessageType, encodeLive, encodeSync, type SyncItem } from '../src/protocol.js'
import { arena, validUpdate, type Arena } from './hostile-arena.js'
import { gatedStorage } from './helpers.js'

let live: Arena | undefined
afterEach(async () => {
  await live?.stop()
  live = undefined
})

const MiB = 1024 * 1024

/** One frame of an exchange the hostile peer started (it is the initiator). */
function pushFrame (exchangeId: number, items: SyncItem[], more: boolean): Uint8Array {
  return encodeSync({ exchangeId, fromInitiator: true, more, mode: 'push', items })
}

function chunk (docId: string, bytes: number, partial: boolean, fill = 7): SyncItem {
  return { kind: ItemKind.DocUpdate, docId, update: new Uint8Array(bytes).fill(fill), partial }
}

function heapMiB (): number {
  return process.memoryUsage().heapUsed / MiB
}

describe('a member that floods', () => {
  it('half-sent updates for many documents in one exchange: refused at the second document, nothing held', async () => {
    live = await arena(301)
    const evil = await live.evil()
    const before = heapMiB()
    // an honest sender finishes one document's chunks before it starts the next
    await evil.send('victim', pushFrame(1, [chunk('flood/0', 200_000, true)], true))
    await live.probe(evil)
    for (let i = 1; i < 300; i++) void evil.send('victim', pushFrame(1, [chunk(`flood/${i}`, 200_000, true)], true)).catch(() => {})
    const reason = await evil.waitClosed('victim')
    expect(reason ?? '').toMatch(/began while "flood\/0" was half sent/)
    expect(live.lines.some(l => l.includes('evil-0') && l.includes('half sent'))).toBe(true)
    expect(heapMiB() - before).toBeLessThan(64)
    expect(live.victim.docs().some(id => id.startsWith('flood/'))).toBe(false)
    await live.checkSyncing()
  })

  it('half-sent updates across concurrent exchanges stop at receiveBufferBytes: the exchanges are aborted, the session stays', async () => {
    live = await arena(302, { receiveBufferBytes: 2 * MiB })
    const evil = await live.evil()
    // eight exchanges at once, each holding a document half sent: 8 × 600 KB > 2 MiB
    for (let x = 1; x <= 8; x++) await evil.send('victim', pushFrame(x, [chunk(`big/${x}`, 600_000, true)], true))
    await evil.waitMessage('victim', m => m.type === MessageType.Sync && m.items.some(i => i.kind === ItemKind.Abort && /receiveBufferBytes/.test(i.reason)))
    expect(live.victim.metrics().receiveAborts).toBeGreaterThan(0)
    expect(live.lines.some(l => /aborting exchange \d+ with evil-0: .*receiveBufferBytes/.test(l))).toBe(true)
    // the member is still connected: its next frames are handled
    await live.probe(evil)
    expect(live.victim.docs().some(id => id.startsWith('big/'))).toBe(false)
    await live.checkSyncing()
  })

  it('new documents by the thousand stop at the creation quota, named in the log, and the rest keep syncing', async () => {
    live = await arena(303, { quota: { docsBurst: 500, docsPerMinute: 0 } })
    const evil = await live.evil()
    const update = validUpdate('spam')
    for (let f = 0; f < 20; f++) {
      const entries = []
      for (let i = 0; i < 250; i++) entries.push({ docId: `spam/${f}/${i}`, update })
      await evil.send('victim', encodeLive(entries))
    }
    const { waitFor } = await import('../src/testing/index.js')
    await waitFor(() => live!.victim.metrics().docsRefused >= 4_500, { message: 'the quota to refuse the rest' })
    expect(live.victim.docs().filter(id => id.startsWith('spam/')).length).toBe(500)
    expect(live.lines.some(l => /refusing new documents from evil-0 past its creation quota/.test(l))).toBe(true)
    // documents that exist still take the member's updates
    await live.checkSyncing()
  })

  it('an honest initial sync larger than the burst arrives through later exchanges as the quota refills', async () => {
    const { createMemoryNetwork, createNode } = await import('../src/index.js')
    const { waitFor } = await import('../src/testing/index.js')
    const net = createMemoryNetwork({ seed: 304 })
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, live: false, antiEntropy: { intervalMs: 100 } })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, live: false, antiEntropy: { intervalMs: 100 }, quota: { docsBurst: 300, docsPerMinute: 120_000 } })
    try {
      await a.start()
      for (let i = 0; i < 1_000; i++) (await a.open(`bulk/${i}`)).getText('t').insert(0, `doc ${i}`)
      await a.flush()
      await b.start()
      await waitFor(() => b.docs().length === 1_000, { timeoutMs: 20_000, message: 'every document to arrive' })
      expect(b.metrics().docsRefused).toBeGreaterThan(0)
      expect((await b.open('bulk/999')).getText('t').toString()).toBe('doc 999')
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('the default quota lets an honest initial sync of thousands of documents through at once', async () => {
    const { createMemoryNetwork, createNode } = await import('../src/index.js')
    const { waitFor } = await import('../src/testing/index.js')
    const net = createMemoryNetwork({ seed: 305 })
    const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, live: false })
    const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, live: false })
    try {
      await a.start()
      for (let i = 0; i < 5_000; i++) (await a.open(`bulk/${i}`)).getText('t').insert(0, `doc ${i}`)
      await a.flush()
      await b.start()
      await waitFor(() => b.docs().length === 5_000, { timeoutMs: 30_000, message: 'every document to arrive' })
      expect(b.metrics().docsRefused).toBe(0)
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('frames of an exchange arriving faster than the node applies them stop at receiveBufferBytes: the exchange is aborted', async () => {
    // the victim's store answers its first load of "slow" only when the gate opens: its inbox backs up
    const { storage: slow, open } = gatedStorage('slow')
    live = await arena(306, { storage: slow, receiveBufferBytes: 1 * MiB })
    const evil = await live.evil()
    await evil.send('victim', encodeLive([{ docId: 'slow', update: validUpdate('wait') }]))
    const before = heapMiB()
    // 40 frames of 200 KB of one exchange: far past the 1 MiB buffer
    for (let i = 0; i < 40; i++) await evil.send('victim', pushFrame(1, [{ kind: ItemKind.RangeList, prefix: { depth: 0, bits: new Uint8Array(8) }, docs: [{ docId: `q/${i}`, fingerprint: new Uint8Array(16), stateVector: new Uint8Array(200_000) }] }], true))
    await evil.waitMessage('victim', m => m.type === MessageType.Sync && m.items.some(i => i.kind === ItemKind.Abort && /receiveBufferBytes/.test(i.reason)))
    expect(live.victim.metrics().receiveAborts).toBe(1)
    expect(heapMiB() - before).toBeLessThan(32)
    open()
    await live.probe(evil)
    await live.checkSyncing()
  })

  it('one 50 MB update in chunks is taken whole, and one past MAX_UPDATE_BYTES closes only that session', async () => {
    live = await arena(307)
    const evil = await live.evil()
    const d = new Y.Doc()
    d.getText('t').insert(0, 'x'.repeat(50 * 1000 * 1000))
    const update = Y.encodeStateAsUpdate(d)
    d.destroy()
    const step = 1_000_000
    for (let off = 0, n = 0; off < update.length; off += step, n++) {
      const end = Math.min(update.length, off + step)
      await evil.send('victim', pushFrame(1, [{ kind: ItemKind.DocUpdate, docId: 'huge', update: update.subarray(off, end), partial: end < update.length }], end < update.length))
    }
    const { waitFor } = await import('../src/testing/index.js')
    await waitFor(() => live!.victim.docs().includes('huge'), { timeoutMs: 30_000, message: 'the 50 MB update to be applied' })
    expect(live.victim.metrics().receiveAborts).toBe(0)
    expect((await live.victim.open('huge')).getText('t').length).toBe(50 * 1000 * 1000)
    live.victim.close('huge')
    // 65 chunks of 1 MB: past the 64 MiB a reassembled update may take
    for (let i = 0; i < 70 && evil.messages('victim').every(m => m.type !== MessageType.Close); i++) {
      await evil.send('victim', pushFrame(2, [chunk('too-big', step, true)], true))
      if (i % 8 === 7) await live.probe(evil)
    }
    const reason = await evil.waitClosed('victim', 30_000)
    expect(reason ?? '').toMatch(/exceeds 67108864 bytes/)
    expect(live.victim.docs()).not.toContain('too-big')
    await live.checkSyncing()
  }, 60_000)

  it('deeply nested and clientID-colliding updates change nothing they should not, and crash nothing', async () => {
    live = await arena(308)
    const evil = await live.evil()
    // 2,000 levels of maps inside maps
    const nested = new Y.Doc()
    let m = nested.getMap('root')
    nested.transact(() => {
      for (let i = 0; i < 2_000; i++) {
        const inner = new Y.Map()
        m.set('k', inner)
        m = inner
      }
      m.set('leaf', 'bottom')
    })
    await evil.send('victim', encodeLive([{ docId: 'nested', update: Y.encodeStateAsUpdate(nested) }]))
    // two different updates under one client id and clock: the first wins, the second is a no-op
    const one = new Y.Doc()
    one.clientID = 4242
    one.getText('t').insert(0, 'first')
    const two = new Y.Doc()
    two.clientID = 4242
    two.getText('t').insert(0, 'other')
    await evil.send('victim', encodeLive([{ docId: 'collide', update: Y.encodeStateAsUpdate(one) }]))
    await evil.send('victim', encodeLive([{ docId: 'collide', update: Y.encodeStateAsUpdate(two) }]))
    await live.probe(evil)
    const collide = await live.victim.open('collide')
    expect(collide.getText('t').toString()).toBe('first')
    const got = await live.victim.open('nested')
    let depth = 0
    let at: Y.Map<unknown> | undefined = got.getMap('root')
    while (at !== undefined) {
      const next = at.get('k')
      if (!(next instanceof Y.Map)) break
      at = next
      depth++
    }
    expect(depth).toBe(2_000)
    await live.checkSyncing()
  })
})

describe('a member that stops reading', () => {
  it('is hung up on once its backlog passes the stall bound, and the node keeps its memory', async () => {
    const { createNode, writerLogger } = await import('../src/index.js')
    const { waitFor } = await import('../src/testing/index.js')
    const { encodeGossip, encodeHello } = await import('../src/protocol.js')
    // a transport whose one peer never takes a frame: every send stays pending, as on a TCP
    // connection whose reader stopped
    let deliver!: (frame: Uint8Array) => void
    let closedWith: string | undefined
    const lines: string[] = []
    const transport = {
      localId: 'victim',
      async start (handler: { onChannel: (c: unknown) => { onFrame: (f: Uint8Array) => void, onClose: (r?: string) => void } }) {
        const h = handler.onChannel({ remoteId: 'sloth', send: async () => await new Promise<void>(() => {}), close: (reason?: string) => { closedWith = reason ?? '' } })
        deliver = f => { h.onFrame(f) }
      },
      async stop () {}
    }
    const victim = createNode({ id: 'victim', transport, seed: 9, sendQueueBytes: 64 * 1024, maxFrameBytes: 64 * 1024, logger: writerLogger({ level: 'warn', write: l => { lines.push(l) } }) })
    try {
      await victim.start()
      deliver(encodeHello({ nodeId: 'sloth', maxFrameBytes: 64 * 1024, root: new Uint8Array(16), docCount: 0 }))
      await victim.setMeta('pad', 'x'.repeat(900))
      // ask for cluster state again and again: each answer waits behind the unread ones
      for (let i = 0; i < 2_000 && closedWith === undefined; i++) {
        deliver(encodeGossip({ request: true, answer: false, digest: [], entries: [] }))
        await new Promise(resolve => setImmediate(resolve))
      }
      await waitFor(() => closedWith !== undefined, { message: 'the session to be closed' })
      expect(closedWith).toMatch(/peer stopped reading/)
      expect(victim.metrics().stalledSessions).toBe(1)
      expect(lines.some(l => /closing session with sloth: it stopped reading/.test(l))).toBe(true)
      // bounded by 2 × sendQueueBytes + 17 frames
      expect(victim.metrics().bytesSent).toBeLessThan(2 * 64 * 1024 + 17 * 64 * 1024 + 64 * 1024)
    } finally {
      await victim.stop()
    }
  })
})
