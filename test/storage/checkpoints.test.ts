/**
 * Per-peer sync checkpoints on LevelDB: a node knows after a restart which peers it had synced
 * with and whether it still agrees with them, and peers whose digests already agree skip the
 * exchange on connect.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import type { HearsayNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createLevelStorage } from '@hearsay/leveldb'
import { afterAll, describe, expect, it } from 'vitest'

const dirs: string[] = []
const running: HearsayNode[] = []
afterAll(async () => {
  for (const n of running) await n.stop()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
async function dir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hearsay-checkpoints-'))
  dirs.push(d)
  return d
}
// on-connect exchanges on, periodic rounds out of the way
const onConnectOnly = { intervalMs: 3_600_000 }

function node (net: ReturnType<typeof createMemoryNetwork>, id: string, path: string): HearsayNode {
  const n = createNode({ id, transport: net.transport(id), storage: createLevelStorage({ path, durability: 'process' }), antiEntropy: onConnectOnly, seed: 1 })
  running.push(n)
  return n
}

async function connected (net: ReturnType<typeof createMemoryNetwork>, a: HearsayNode, b: HearsayNode): Promise<void> {
  net.connect(a.id, b.id)
  await waitFor(() => a.peers().some(p => p.id === b.id && p.connected) && b.peers().some(p => p.id === a.id && p.connected), { message: 'session open on both sides' })
}

describe('per-peer sync checkpoints', () => {
  it('are kept across a restart: peers seen before are listed, disconnected, with whether we still agree', async () => {
    const [pa, pb] = [await dir(), await dir()]
    const net = createMemoryNetwork({ seed: 11, autoConnect: false })
    let a = node(net, 'a', pa)
    const b = node(net, 'b', pb)
    await a.start()
    await b.start()
    const doc = await b.open('notes/1')
    doc.getText('t').insert(0, 'hello')
    await b.flush()
    await connected(net, a, b)
    await a.syncWith('b')
    expect(a.docs()).toEqual(['notes/1'])
    await waitFor(() => a.peers().find(p => p.id === 'b')?.inSync === true, { message: 'a hears b agrees' })
    await a.stop()

    const alone = createMemoryNetwork({ seed: 12, autoConnect: false })
    a = node(alone, 'a', pa)
    await a.start()
    const seen = a.peers().find(p => p.id === 'b')
    expect(seen).toMatchObject({ connected: false, inSync: true, docCount: 1 })
    expect(seen?.lastSync).toBeGreaterThan(0)

    // after a local change we no longer agree with what b had
    const mine = await a.open('notes/2')
    mine.getText('t').insert(0, 'x')
    await a.flush()
    expect(a.peers().find(p => p.id === 'b')?.inSync).toBe(false)
  })

  it('peers whose hello carries our digest root skip the exchange on connect; others run it', async () => {
    const [pa, pb] = [await dir(), await dir()]
    const net = createMemoryNetwork({ seed: 13, autoConnect: false })
    const a = node(net, 'a', pa)
    const b = node(net, 'b', pb)
    await a.start()
    await b.start()
    for (const n of [a, b]) {
      const d = await n.open('same')
      d.getMap('m').set('k', 'v') // different client ids: different content
    }
    await a.flush()
    await b.flush()
    await connected(net, a, b)
    // different digests: the side with the lower id starts an exchange as the session opens
    expect(a.metrics().exchangesStarted).toBe(1)
    await waitFor(() => a.metrics().exchangesCompleted === 1, { message: 'on-connect exchange' })
    await waitFor(() => equal(a.digest().root, b.digest().root), { message: 'equal digests' })

    net.disconnect('a', 'b')
    await waitFor(() => a.metrics().sessions === 0 && b.metrics().sessions === 0, { message: 'disconnected' })
    await connected(net, a, b)
    // equal digests in both hellos: no exchange on reconnect
    expect(a.metrics().exchangesStarted).toBe(1)
    expect(b.metrics().exchangesStarted).toBe(0)
  })

  it('after a sync into LevelDB, the receiver announces its final root at once, so a link dropped right after leaves a checkpoint that agrees', async () => {
    const [pa, pb] = [await dir(), await dir()]
    const net = createMemoryNetwork({ seed: 14, autoConnect: false })
    // a Status throttled by statusIntervalMs would not go out before the link drops
    const storeOfA = createLevelStorage({ path: pa, durability: 'process' })
    const slow = (id: string, path: string): HearsayNode => {
      const n = createNode({ id, transport: net.transport(id), storage: id === 'a' ? storeOfA : createLevelStorage({ path, durability: 'process' }), antiEntropy: { enabled: false, onConnect: false }, statusIntervalMs: 600_000, seed: 2 })
      running.push(n)
      return n
    }
    let a = slow('a', pa)
    const b = slow('b', pb)
    await a.start()
    await b.start()
    for (let i = 0; i < 300; i++) (await a.open(`notes/${i}`)).getText('t').insert(0, `note ${i} `.repeat(10))
    await a.flush()
    await connected(net, a, b)
    await b.syncWith('a')
    expect(b.docs().length).toBe(300)
    await waitFor(() => a.peers().find(p => p.id === 'b')?.inSync === true, { timeoutMs: 3000, message: 'a hears b\'s final root' })
    expect(b.peers().find(p => p.id === 'a')?.inSync).toBe(true)
    // what a crash right now would leave: a's stored checkpoint of b already holds the final root
    const rootHex = Buffer.from(a.digest().root).toString('hex')
    await waitFor(async () => {
      const raw = await storeOfA.getMeta('hearsay/peers')
      return raw !== undefined && (JSON.parse(new TextDecoder().decode(raw)) as Record<string, { root: string }>).b?.root === rootHex
    }, { timeoutMs: 3000, message: "a's stored checkpoint of b holds the final root" })
    net.disconnect('a', 'b')
    await waitFor(() => a.metrics().sessions === 0, { message: 'disconnected' })
    await a.stop()

    const alone = createMemoryNetwork({ seed: 15, autoConnect: false })
    a = createNode({ id: 'a', transport: alone.transport('a'), storage: createLevelStorage({ path: pa, durability: 'process' }), antiEntropy: { enabled: false, onConnect: false }, seed: 3 })
    running.push(a)
    await a.start()
    expect(a.peers().find(p => p.id === 'b')).toMatchObject({ connected: false, inSync: true })
  })
})

function equal (x: Uint8Array, y: Uint8Array): boolean {
  return x.length === y.length && x.every((v, i) => v === y[i])
}
