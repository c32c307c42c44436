/**
 * Hearsay nodes on real libp2p (TCP on 127.0.0.1), with the core engine on top.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRandom } from '@hearsay/core'
import type { Random } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type * as Y from 'yjs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createHearsayNode, generateSwarmKey } from '../src/index.js'
import type { HearsayLibp2pNode, HearsayNodeOptions } from '../src/index.js'
import { memoryLogger, syncNode, uniqueServiceTag } from './helpers.js'

const running: HearsayLibp2pNode[] = []
const dirs: string[] = []
afterEach(async () => { for (const n of running.splice(0)) await n.stop() })
afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

async function node (options: HearsayNodeOptions = {}): Promise<HearsayLibp2pNode & { lines: string[] }> {
  const logger = memoryLogger()
  const n = await createHearsayNode({
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    logger,
    antiEntropy: { intervalMs: 300 },
    sync: { backoff: { initialMs: 100, maxMs: 2000 }, discoveryDialDelayMs: 200 },
    ...options
  })
  running.push(n)
  return Object.assign(n, { lines: logger.lines })
}

function scribble (doc: Y.Doc, rng: Random, who: string): void {
  const t = doc.getText('t')
  t.insert(rng.int(t.length + 1), `${who}${rng.int(1000)} `)
  doc.getMap('m').set(who, rng.int(1_000_000))
}

async function snapshot (n: HearsayLibp2pNode, ids: string[]): Promise<string> {
  const out: unknown[] = []
  for (const id of ids) {
    const d = await n.open(id)
    const m = d.getMap('m').toJSON() as Record<string, unknown>
    out.push({ t: d.getText('t').toString(), m: Object.keys(m).sort().map(k => [k, m[k]]) })
  }
  return JSON.stringify(out)
}

const sameRoot = (nodes: HearsayLibp2pNode[], count: number): boolean => {
  const ds = nodes.map(n => n.digest())
  return ds.every(d => d.count === count && Buffer.compare(d.root, ds[0]?.root as Uint8Array) === 0)
}

describe('three nodes on 127.0.0.1 with mDNS', () => {
  it('discover each other, converge on 200 docs edited everywhere, and a restarted node keeps its id and catches up', async () => {
    const tag = uniqueServiceTag('three')
    const base = await mkdtemp(join(tmpdir(), 'hs-three-')); dirs.push(base)
    const mdns = { serviceTag: tag, intervalMs: 1000 }
    const nodes = [
      await node({ mdns, dataDir: join(base, 'a') }),
      await node({ mdns, dataDir: join(base, 'b') }),
      await node({ mdns, dataDir: join(base, 'c') })
    ]
    for (const n of nodes) expect(n.discovery().mdns).toBe('ok')
    // no dial, no bootstrap: mDNS only
    await waitFor(() => nodes.every(n => n.sync.channels().length === 2), { timeoutMs: 20_000, message: 'mDNS mesh' })
    // exactly one channel per pair, on both sides
    for (const n of nodes) expect(new Set(n.sync.channels().map(c => c.peer)).size).toBe(2)

    const rng = createRandom(42)
    const ids = Array.from({ length: 200 }, (_, i) => `doc/${i}`)
    for (const id of ids) {
      for (const [i, n] of nodes.entries()) scribble(await n.open(id), rng, 'abc'[i] as string)
    }
    await waitFor(() => sameRoot(nodes, 200), { timeoutMs: 30_000, message: 'convergence of 200 docs' })
    const expected = await snapshot(nodes[0] as HearsayLibp2pNode, ids)
    expect(await snapshot(nodes[1] as HearsayLibp2pNode, ids)).toBe(expected)
    expect(await snapshot(nodes[2] as HearsayLibp2pNode, ids)).toBe(expected)
    expect(expected).toContain('["a",')

    // stop C, edit on A and B, start C again from the same dataDir
    const c = nodes[2] as HearsayLibp2pNode
    const cId = c.peerId
    await c.stop()
    running.splice(running.indexOf(c), 1)
    await waitFor(() => (nodes[0] as HearsayLibp2pNode).sync.channels().length === 1, { message: 'A sees C gone' })
    for (const id of ids.slice(0, 20)) {
      scribble(await (nodes[0] as HearsayLibp2pNode).open(id), rng, 'a')
      scribble(await (nodes[1] as HearsayLibp2pNode).open(id), rng, 'b')
    }
    const c2 = await node({ mdns, dataDir: join(base, 'c') })
    expect(c2.peerId).toBe(cId)
    const live = [nodes[0] as HearsayLibp2pNode, nodes[1] as HearsayLibp2pNode, c2]
    await waitFor(() => sameRoot(live, 200), { timeoutMs: 30_000, message: 'restarted node catches up' })
    expect(await snapshot(c2, ids)).toBe(await snapshot(nodes[0] as HearsayLibp2pNode, ids))
  })
})

describe('private swarms', () => {
  it('a node with the wrong swarm key never gets a connection or a document', async () => {
    const key = generateSwarmKey()
    const a = await node({ swarmKey: key })
    const b = await node({ swarmKey: new TextDecoder().decode(key), bootstrap: a.multiaddrs() })
    const outsider = await node({ swarmKey: generateSwarmKey(), bootstrap: a.multiaddrs() })
    const opened: string[] = []
    outsider.libp2p.addEventListener('connection:open', (e) => { opened.push(e.detail.remotePeer.toString()) })
    const doc = await a.open('secret')
    doc.getText('t').insert(0, 'for members only')
    await waitFor(async () => (await b.open('secret')).getText('t').toString() === 'for members only', { timeoutMs: 15_000, message: 'member sync' })
    await expect(outsider.libp2p.dial(a.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(3000) })).rejects.toThrow()
    // the outsider's own bootstrap dialling has failed (and retried) by now
    await waitFor(() => outsider.sync.peers().some(p => p.dialFailures > 0) || outsider.lines.some(l => l.includes('bootstrap')), { message: 'outsider dial attempts' })
    expect(opened).toEqual([])
    expect(outsider.libp2p.getConnections().map(c => `${c.remotePeer.toString()} ${c.status}`)).toEqual([])
    expect(outsider.docs()).toEqual([])
    await waitFor(() => a.lines.some(l => /refused connection from .*swarm/.test(l)), { message: 'refusal logged on the refusing side' })
  })

  it('a node not on the allow-list never gets a connection or a document', async () => {
    const [ka, kb] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const members = [peerIdFromPrivateKey(ka).toString(), peerIdFromPrivateKey(kb).toString()]
    const a = await node({ privateKey: ka, allowPeers: members })
    const b = await node({ privateKey: kb, allowPeers: members, bootstrap: a.multiaddrs() })
    const outsider = await node({ bootstrap: a.multiaddrs() })
    ;(await a.open('members')).getText('t').insert(0, 'hello members')
    await waitFor(async () => (await b.open('members')).getText('t').toString() === 'hello members', { timeoutMs: 15_000, message: 'member sync' })
    // The outsider's side may see its dial complete for a moment (libp2p negotiates the muxer
    // optimistically) before A's gater, which runs once Noise proved the outsider's id, drops it.
    try { await outsider.libp2p.dial(a.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(3000) }) } catch {}
    await waitFor(() => a.lines.some(l => l.includes(`refused connection from ${outsider.peerId}`) && l.includes('not in allowPeers')), { message: 'refusal logged' })
    await waitFor(() => outsider.libp2p.getConnections().length === 0, { message: 'outsider dropped' })
    expect(outsider.sync.channels()).toEqual([])
    expect(outsider.peers()).toEqual([])
    expect(outsider.docs()).toEqual([])
    expect(a.peers().map(p => p.id)).not.toContain(outsider.peerId)
    expect(a.libp2p.getConnections().map(c => c.remotePeer.toString())).not.toContain(outsider.peerId)
  })
})

describe('misbehaving peers', () => {
  it('a peer sending an oversized or a malformed frame is disconnected with a reason; the others keep syncing', async () => {
    const victim = await node({ sync: { closeCooldownMs: 100, backoff: { initialMs: 50, maxMs: 500 } } })
    const friend = await node({ bootstrap: victim.multiaddrs() })
    const attacker = await syncNode()
    const channels: any[] = []
    const closes: Array<string | undefined> = []
    await attacker.services.hearsay.transport.start({
      onChannel: (c) => { channels.push(c); return { onFrame: () => {}, onClose: (r) => { closes.push(r) } } }
    })
    await attacker.dial(victim.libp2p.getMultiaddrs())
    await attacker.services.hearsay.transport.connect?.(victim.peerId)
    await waitFor(() => channels.length === 1, { message: 'attacker channel' })

    // 1. a length prefix announcing ~268 MB: refused from the prefix, the channel is reset
    channels[0].stream.send(Uint8Array.of(0xff, 0xff, 0xff, 0x7f))
    await waitFor(() => closes.length === 1, { message: 'attacker disconnected after an oversized frame' })
    expect(victim.lines.some(l => l.includes(attacker.peerId.toString().slice(-8)) || l.includes(attacker.peerId.toString()))).toBe(true)
    expect(victim.lines.some(l => /bad frame from peer: frame of \d+ bytes exceeds the limit/.test(l))).toBe(true)

    // 2. after the cool-down the attacker gets a channel again and sends garbage in a well-formed frame
    const attackerId = attacker.peerId.toString()
    await waitFor(() => victim.sync.peers().find(p => p.id === attackerId)?.refusedUntil === undefined, { message: 'cool-down over' })
    // a fresh channel may still be reset by the victim's refusal in flight: retry until a send lands
    const linesBefore = victim.lines.length
    const garbage = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff)
    await waitFor(async () => {
      const ch = channels.at(-1)
      if (ch?.isOpen !== true) {
        await attacker.services.hearsay.transport.connect?.(victim.peerId, { signal: AbortSignal.timeout(2000) }).catch(() => {})
        return false
      }
      try { await ch.send(garbage); return true } catch { return false }
    }, { timeoutMs: 15_000, intervalMs: 50, message: 'garbage frame sent on a fresh channel' })
    const reasonLine = new RegExp(`closed the channel to ${attackerId}: .*(checksum|version|frame)`)
    await waitFor(() => victim.lines.slice(linesBefore).some(l => reasonLine.test(l)), { message: 'victim closes the channel with the reason' })
    await waitFor(() => channels.at(-1)?.isOpen === false, { message: 'attacker disconnected after a malformed frame' })

    // the friend still syncs both ways
    ;(await friend.open('after-attack')).getText('t').insert(0, 'still here')
    await waitFor(async () => (await victim.open('after-attack')).getText('t').toString() === 'still here', { message: 'friend -> victim' })
    ;(await victim.open('after-attack-2')).getText('t').insert(0, 'and back')
    await waitFor(async () => (await friend.open('after-attack-2')).getText('t').toString() === 'and back', { message: 'victim -> friend' })
    expect(victim.sync.channels().map(c => c.peer)).toContain(friend.peerId)
    await attacker.stop()
  })
})
