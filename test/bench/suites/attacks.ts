/**
 * Attacks by a member holding the swarm key, at full size: each runs against a fresh victim node
 * with an honest peer on the memory network, and reports the bound that holds it, the victim's
 * peak memory growth during the attack (heap plus array buffers, sampled every 10 ms), what the
 * attack left behind, and whether the victim stayed up and kept syncing with the honest peer.
 * `packages/core/test/hostile-*.test.ts` run the same attacks at smaller sizes as tests.
 */
import * as Y from 'yjs'
import { createMemoryNetwork, createNode, type HearsayNode, type NodeOptions } from '@hearsay/core'
import { createHostilePeer, waitFor, wire, type HostilePeer } from '@hearsay/core/testing'
import type { Table } from '../run.js'

const MiB = 1024 * 1024
const { ItemKind, encodeGossip, encodeLive, encodeSync } = wire

interface Outcome { peakMiB: number, left: string, ok: boolean }

function used (): number {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

function text (s: string): Uint8Array {
  const d = new Y.Doc()
  d.getText('t').insert(0, s)
  const u = Y.encodeStateAsUpdate(d)
  d.destroy()
  return u
}

async function attack (seed: number, options: Partial<NodeOptions>, act: (evil: HostilePeer, victim: HearsayNode) => Promise<string>): Promise<Outcome> {
  const net = createMemoryNetwork({ seed, autoConnect: false })
  const victim = createNode({ id: 'victim', transport: net.transport('victim'), seed, ...options })
  const honest = createNode({ id: 'honest', transport: net.transport('honest'), seed: seed + 1 })
  await victim.start()
  await honest.start()
  net.connect('victim', 'honest')
  const mine = (await honest.open('shared')).getText('t')
  mine.insert(0, 'start')
  const theirs = (await victim.open('shared')).getText('t')
  await waitFor(() => theirs.toString() === 'start', { timeoutMs: 30_000 })
  const evil = await createHostilePeer(net.transport('evil'))
  await evil.link('victim')
  global.gc?.()
  const base = used()
  let peak = base
  const sampler = setInterval(() => { peak = Math.max(peak, used()) }, 10)
  let left = ''
  let ok = false
  try {
    left = await act(evil, victim)
    peak = Math.max(peak, used())
    mine.insert(mine.length, ' after')
    await waitFor(() => theirs.toString() === 'start after', { timeoutMs: 30_000, message: 'an honest edit to cross' })
    ok = true
  } catch (err) {
    left = `${left} (${(err as Error).message})`
  } finally {
    clearInterval(sampler)
    await evil.stop()
    await honest.stop()
    await victim.stop()
  }
  return { peakMiB: (peak - base) / MiB, left, ok }
}

function push (exchangeId: number, items: wire.SyncItem[], more = true): Uint8Array {
  return encodeSync({ exchangeId, fromInitiator: true, more, mode: 'push', items })
}

export async function run (): Promise<Table[]> {
  const rows: Array<[string, string, Outcome]> = []
  rows.push(['half-sent chunks for 500 documents in one exchange (500 × 1 MB)', 'one document chunked at a time', await attack(1, {}, async evil => {
    const part = new Uint8Array(1_000_000).fill(1)
    for (let i = 0; i < 500 && evil.messages('victim').every(m => m.type !== wire.MessageType.Close); i++) {
      await evil.send('victim', push(1, [{ kind: ItemKind.DocUpdate, docId: `flood/${i}`, update: part, partial: true }])).catch(() => {})
      // at line rate, not all at once: what the victim holds is measured, not frames in flight
      await new Promise(resolve => setImmediate(resolve))
    }
    return `session closed: ${(await evil.waitClosed('victim', 60_000)) ?? ''}`.slice(0, 90)
  })])
  rows.push(['8 concurrent exchanges each half-sending 60 MB (1 MB frames)', 'receiveBufferBytes 96 MiB, node-wide', await attack(2, {}, async (evil, victim) => {
    const part = new Uint8Array(1_000_000).fill(2)
    for (let n = 0; n < 60; n++) {
      for (let x = 1; x <= 8; x++) await evil.send('victim', push(x, [{ kind: ItemKind.DocUpdate, docId: `big/${x}`, update: part, partial: true }]))
      await new Promise(resolve => setImmediate(resolve))
    }
    await waitFor(() => victim.metrics().receiveAborts >= 1, { timeoutMs: 60_000 })
    return `${victim.metrics().receiveAborts} exchanges aborted`
  })])
  rows.push(['50,000 new documents in live frames', 'quota (set to 10,000 at once, 1,000 a minute)', await attack(3, { quota: { docsBurst: 10_000, docsPerMinute: 1_000 } }, async (evil, victim) => {
    const update = text('spam')
    for (let f = 0; f < 100; f++) {
      const entries = []
      for (let i = 0; i < 500; i++) entries.push({ docId: `spam/${f}/${i}`, update })
      await evil.send('victim', encodeLive(entries))
    }
    await waitFor(() => victim.metrics().docsRefused >= 39_000, { timeoutMs: 120_000 })
    return `${victim.docs().length} documents held, ${victim.metrics().docsRefused} refused`
  })])
  rows.push(['Gossip frames announcing 100,000 invented members', 'cluster.maxMembers 2048', await attack(4, {}, async (evil, victim) => {
    const now = Date.now()
    for (let f = 0; f < 50; f++) {
      const entries = []
      for (let i = 0; i < 2_000; i++) entries.push({ nodeId: `ghost-${f * 2_000 + i}`, generation: now, key: 'hearsay/hb', value: new TextEncoder().encode('1'), version: 1 })
      await evil.send('victim', encodeGossip({ request: false, answer: true, digest: [], entries }))
    }
    await waitFor(() => victim.metrics().gossipEntriesRejected >= 90_000, { timeoutMs: 60_000 })
    return `${victim.peers().length} members listed, ${victim.metrics().gossipEntriesRejected} entries dropped`
  })])
  rows.push(['Gossip entry with version 2^53 − 1', 'versions ≤ 2^48 on decode', await attack(5, {}, async (evil, victim) => {
    const entries = [{ nodeId: 'victim', generation: Number.MAX_SAFE_INTEGER, key: 'hearsay/hb', value: new TextEncoder().encode('1'), version: Number.MAX_SAFE_INTEGER }]
    await evil.send('victim', encodeGossip({ request: false, answer: true, digest: [], entries }))
    await evil.waitClosed('victim', 30_000)
    return `session closed, framesRejected ${victim.metrics().framesRejected}`
  })])
  const d = new Y.Doc()
  d.getText('t').insert(0, 'x'.repeat(60_000_000))
  const update = Y.encodeStateAsUpdate(d)
  d.destroy()
  rows.push(['one 60 MB update in 1 MB chunks', 'MAX_UPDATE_BYTES 64 MiB', await attack(6, {}, async (evil, victim) => {
    for (let off = 0; off < update.length; off += 1_000_000) {
      const end = Math.min(update.length, off + 1_000_000)
      await evil.send('victim', push(1, [{ kind: ItemKind.DocUpdate, docId: 'huge', update: update.subarray(off, end), partial: end < update.length }], end < update.length))
    }
    await waitFor(() => victim.docs().includes('huge'), { timeoutMs: 60_000 })
    return 'applied whole'
  })])
  return [{
    title: 'Attacks by a member (memory network, one victim, one honest peer)',
    columns: ['attack', 'bound', 'peak growth (MiB)', 'left behind', 'victim up and syncing'],
    rows: rows.map(([a, b, o]) => [a, b, Number(o.peakMiB.toFixed(1)), o.left, o.ok ? 'yes' : 'NO']),
    notes: [
      'peak growth: heap plus array buffers of the bench process above its level before the attack, sampled every 10 ms (the attacker runs in the same process, so its frames in flight count too)',
      'a 60 MB update that is allowed costs the victim its chunks, their reassembly and the loaded document: about 3 to 5 times its size while it is applied',
      'the same attacks, smaller, are tests: packages/core/test/hostile-*.test.ts'
    ]
  }]
}
