/**
 * Circuit relay on loopback, real libp2p: two members with no address of their own (like hosts
 * behind NAT) reach each other only through a Hearsay relay. Covers the relayed path and its
 * status, a relay learned from the swarm's cluster state, an outsider refused by the relay, and a
 * relay restart. The two-site test with NAT in network namespaces is test/relay.
 */
import { parseGrant } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { generateKeyPair } from '@libp2p/crypto/keys'
import * as Y from 'yjs'
import { afterEach, describe, expect, it } from 'vitest'
import { generateSwarmKey } from '../src/index.js'
import type { HearsayLibp2pNode, HearsayNodeOptions } from '../src/index.js'
import { Pacer, fitAddresses, parseAnnounced, pathOf, worthDialling } from './exports.js'
import { loopbackNode } from './helpers.js'
import { multiaddr } from '@multiformats/multiaddr'
import { BlockList } from 'node:net'

const running: HearsayLibp2pNode[] = []
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map(async n => { await n.stop() }))
})

const text = async (n: HearsayLibp2pNode, id: string): Promise<string> => (await n.open(id)).getText('t').toString()
const peerPath = (n: HearsayLibp2pNode, id: string): string | undefined => n.status().peers.find(p => p.id === id)?.path

type Node = HearsayLibp2pNode & { lines: string[] }

/**
 * A swarm with a relay on loopback, and `member()`: a node with no listen address of its own (as
 * behind a NAT: nobody can dial it directly) that knows the relay.
 */
async function relayedSwarm (relayOptions: HearsayNodeOptions = {}): Promise<{ swarmKey: Uint8Array, relay: Node, relayAddr: string, member: (o?: HearsayNodeOptions) => Promise<Node> }> {
  const swarmKey = generateSwarmKey()
  const relay = await loopbackNode({ swarmKey, relay: true, ...relayOptions }, running)
  const relayAddr = relay.multiaddrs()[0]!
  const member = async (o: HearsayNodeOptions = {}): Promise<Node> => await loopbackNode({ swarmKey, listen: [], relays: [relayAddr], ...o }, running)
  return { swarmKey, relay, relayAddr, member }
}

describe('relay', () => {
  it('members without an address of their own sync through a relay; the status says relayed; the relay serves no outsider', async () => {
    const { relay, relayAddr, member } = await relayedSwarm()
    const a = await member()
    const b = await member()

    await waitFor(() => a.status().relay.relays[0]?.reserved === true && b.status().relay.relays[0]?.reserved === true, { timeoutMs: 15_000, message: 'reservations' })
    expect(relay.status().relay).toMatchObject({ serving: true, reservationsServed: 2 })
    expect(a.status().relay.addresses[0]).toContain(`/p2p/${relay.peerId}/p2p-circuit/p2p/${a.peerId}`)

    await waitFor(() => peerPath(a, b.peerId) === 'relayed' && peerPath(b, a.peerId) === 'relayed', { timeoutMs: 15_000, message: 'relayed channel' })
    expect(peerPath(a, relay.peerId)).toBe('lan')
    const before = b.status().relay.bytesReceived
    const da = await a.open('notes/1')
    da.getText('t').insert(0, 'across sites')
    await waitFor(async () => await text(b, 'notes/1') === 'across sites', { timeoutMs: 20_000, message: 'b has the edit' })
    // the edit went over the relayed channel (the relay is a member too, so it may also bring it)
    await waitFor(() => b.status().relay.bytesReceived > before && a.status().relay.bytesReceived > 0, { timeoutMs: 10_000, message: 'bytes through the relay' })

    // an outsider (another swarm key) pointed at the relay gets no connection, so no reservation
    const outsider = await loopbackNode({ swarmKey: generateSwarmKey(), listen: [], relays: [relayAddr] }, running)
    // a pnet mismatch may hang until the dial timeout (5 s) before it fails
    await waitFor(() => outsider.lines.some(l => l.includes(`dial to bootstrap ${relayAddr} failed`)), { timeoutMs: 20_000, message: 'outsider refused' })
    expect(outsider.status().relay.relays).toEqual([{ id: relay.peerId, connected: false, reserved: false }])
    expect(relay.status().relay.reservationsServed).toBe(2)
    expect(a.status().peers.some(p => p.id === outsider.peerId)).toBe(false)
  }, 60_000)

  it('in a managed swarm a relay with no grant carries the members\' sync and holds no document', async () => {
    const { relay, member } = await relayedSwarm()
    const a = await member()
    const genesis = await a.trust.createSwarm()
    const b = await member({ trust: { genesis } })
    await a.trust.grant(b.peerId, [parseGrant('notes/:write')])
    await waitFor(() => relay.trust.managed && b.trust.managed, { timeoutMs: 15_000, message: 'the relay adopted the roster' })
    await waitFor(() => peerPath(a, b.peerId) === 'relayed', { timeoutMs: 20_000, message: 'a and b through the relay' })
    const da = await a.open('notes/secret')
    da.getText('t').insert(0, 'not for the relay')
    await waitFor(async () => await text(b, 'notes/secret') === 'not for the relay', { timeoutMs: 20_000, message: 'b has the note' })
    await a.repairPass()
    expect(relay.docs()).toEqual([])
    expect(a.peers().find(p => p.id === relay.peerId)?.connected).toBe(true)
  }, 60_000)

  it('a member that knows the relay only from the cluster state reserves on it too', async () => {
    const { relay, relayAddr, member } = await relayedSwarm()
    const a = await member()
    // c has the relay only as a bootstrap peer: it learns that it is a relay from its announcement
    const c = await member({ relays: [], bootstrap: [relayAddr] })
    await waitFor(() => c.status().relay.relays.some(r => r.id === relay.peerId && r.reserved), { timeoutMs: 20_000, message: 'c reserved on the learned relay' })
    const dc = await c.open('notes/2')
    dc.getText('t').insert(0, 'learned')
    await waitFor(async () => await text(a, 'notes/2') === 'learned', { timeoutMs: 20_000, message: 'a has c\'s edit' })
    await waitFor(() => peerPath(a, c.peerId) === 'relayed', { timeoutMs: 20_000, message: 'a reached c through the relay' })
  }, 60_000)

  it('when the relay goes, members keep their data; when it comes back on the same address, they converge', async () => {
    const relayKey = await generateKeyPair('Ed25519')
    const swarm = await relayedSwarm({ privateKey: relayKey })
    let relay = swarm.relay
    const { swarmKey, relayAddr } = swarm
    const port = relayAddr.split('/')[4]!
    const a = await swarm.member()
    const b = await swarm.member()
    const da = await a.open('notes/3')
    da.getText('t').insert(0, 'one')
    await waitFor(async () => await text(b, 'notes/3') === 'one', { timeoutMs: 20_000, message: 'first edit' })

    await relay.stop()
    await waitFor(() => a.status().peers.every(p => !p.channel), { timeoutMs: 20_000, message: 'a lost every channel' })
    da.getText('t').insert(3, ' two')
    relay = await loopbackNode({ swarmKey, relay: true, privateKey: relayKey, listen: [`/ip4/127.0.0.1/tcp/${port}`] }, running)
    expect(await text(b, 'notes/3')).toBe('one')
    await waitFor(async () => await text(b, 'notes/3') === 'one two', { timeoutMs: 45_000, message: 'edit made while the relay was down' })
    await waitFor(() => peerPath(b, a.peerId) === 'relayed', { timeoutMs: 30_000, message: 'a and b reconnected through the relay' })
  }, 90_000)
})

describe('announced addresses', () => {
  const id = '12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'
  it('takes only well-formed addresses of the member itself, from at most 1 KiB', () => {
    const own = `/ip4/1.2.3.4/tcp/1/p2p/${id}`
    const other = '/ip4/1.2.3.4/tcp/1/p2p/12D3KooWCmfH4rDqGgZwdGhp2ry3MQ9yV6yCPEhhBT5pZDvR3t6t'
    const got = parseAnnounced([own, other, 'garbage', '/ip4/999.1.1.1/tcp/1', ...Array(40).fill(own)].join(' '), id)
    // the value is cut at 1 KiB (13 entries here), then the member's own addresses are kept
    expect(got.length).toBe(12)
    expect(got.every(a => a.toString() === own)).toBe(true)
    expect(parseAnnounced(undefined, id)).toEqual([])
  })

  it('fits the addresses into one cluster value', () => {
    const fitted = fitAddresses(Array(100).fill(`/ip4/10.0.0.1/tcp/4001/p2p/${id}`))
    expect(fitted.length).toBeLessThanOrEqual(1024)
    expect(fitted.split(' ').length).toBe(Math.floor(1025 / (`/ip4/10.0.0.1/tcp/4001/p2p/${id}`.length + 1)))
  })

  it('dials relayed, public and own-subnet addresses, not another site\'s private ones; names the path', () => {
    const subnets = new BlockList()
    subnets.addSubnet('10.1.0.0', 24, 'ipv4')
    const ma = (s: string): ReturnType<typeof multiaddr> => multiaddr(s)
    expect(worthDialling(ma('/ip4/10.1.0.7/tcp/1'), subnets)).toBe(true)
    expect(worthDialling(ma('/ip4/10.2.0.7/tcp/1'), subnets)).toBe(false)
    expect(worthDialling(ma('/ip4/64.77.0.1/tcp/1'), subnets)).toBe(true)
    expect(worthDialling(ma(`/ip4/10.9.0.1/tcp/1/p2p/${id}/p2p-circuit`), subnets)).toBe(true)
    expect(pathOf(ma('/ip4/10.1.0.7/tcp/1'), subnets)).toBe('lan')
    expect(pathOf(ma('/ip4/64.77.0.1/tcp/1'), subnets)).toBe('direct')
    expect(pathOf(ma(`/ip4/64.77.0.1/tcp/1/p2p/${id}/p2p-circuit`), subnets)).toBe('relayed')
  })
})

describe('relay pacing', () => {
  it('lets a burst through, then paces to the rate', () => {
    let now = 0
    const pacer = new Pacer(1000, 500, () => now) // 1000 B/s, burst 500
    expect(pacer.take(400)).toBe(0)
    expect(pacer.take(400)).toBe(0) // the bucket had 100 left: the frame goes, the bucket owes 300
    const wait = pacer.take(10)
    expect(wait).toBe(301) // 300 owed + 1 byte, at 1 byte/ms
    now += wait
    expect(pacer.take(10)).toBe(0)
    now += 10_000 // a long quiet spell refills only up to the burst
    expect(pacer.take(500)).toBe(0)
    expect(pacer.take(1)).toBeGreaterThan(0)
    expect(new Pacer(Infinity, 0, () => now).take(1 << 30)).toBe(0)
  })
})
