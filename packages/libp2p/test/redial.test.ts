/**
 * Redialling and backoff of the mounted service (libp2p nodes on 127.0.0.1, no createHearsayNode).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { waitFor } from '@hearsay/core/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { allowListGater, createHearsayNode } from '../src/index.js'
import type { HearsayLibp2pNode } from '../src/index.js'
import { memoryLogger, sightingStub, startTransport, syncNode, uniqueServiceTag } from './helpers.js'
import type { SyncNode } from './helpers.js'

const running: Array<{ stop: () => void | Promise<void> }> = []
afterEach(async () => { for (const n of running.splice(0)) await n.stop() })

async function node (...args: Parameters<typeof syncNode>): Promise<SyncNode> {
  const n = await syncNode(...args)
  running.push(n)
  return n
}

describe('a mounted service', () => {
  it('reconnects to an mDNS peer that came back after the service gave up on it', async () => {
    const tag = uniqueServiceTag('redial')
    const logger = memoryLogger()
    const a = await node({ logger, maxRedialAttempts: 2, backoff: { initialMs: 50, maxMs: 200 }, random: () => 0.5 }, { mdns: true, serviceTag: tag })
    const key = await generateKeyPair('Ed25519')
    // B never dials: only A's redialling can bring the link back
    const b1 = await node({ dialOnDiscovery: false }, { mdns: true, serviceTag: tag, privateKey: key })
    const addr = b1.getMultiaddrs()[0]?.toString() as string
    const port = addr.split('/tcp/')[1]?.split('/')[0] as string
    await startTransport(a)
    await startTransport(b1)
    const bId = b1.peerId.toString()
    await waitFor(() => a.services.hearsay.channels().some(c => c.peer === bId), { timeoutMs: 20_000, message: 'first channel by mDNS' })

    // a long outage: B is gone until A has given up on it
    await b1.stop()
    running.splice(running.indexOf(b1), 1)
    await waitFor(() => logger.lines.some(l => l.includes(`giving up on ${bId}`)), { timeoutMs: 15_000, message: 'A gives up' })
    const gaveUp = a.services.hearsay.peers().find(p => p.id === bId)
    expect(gaveUp?.dialFailures).toBeGreaterThanOrEqual(2)
    expect(gaveUp?.nextDialAt).toBeUndefined()

    // B comes back with the same id on the same address: mDNS sees it again
    const b2 = await node({ dialOnDiscovery: false }, { mdns: true, serviceTag: tag, privateKey: key, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    await startTransport(b2)
    expect(b2.peerId.toString()).toBe(bId)
    await waitFor(() => a.services.hearsay.channels().some(c => c.peer === bId), { timeoutMs: 20_000, message: 'A reconnects to B' })
    expect(a.getConnections(b2.peerId).length).toBeGreaterThan(0)
  }, 60_000)
})

/** This node's TCP address on 127.0.0.1 without `/p2p`, the way mDNS reports it. */
function tcpAddr (n: HearsayLibp2pNode): string {
  const a = n.multiaddrs().find(m => m.startsWith('/ip4/127.0.0.1/tcp/')) as string
  return a.split('/p2p/')[0] as string
}

describe('a discovered peer in backoff that is seen again', () => {
  it('is redialled at once when it was unreachable, long before its backoff delay', async () => {
    const kb = await generateKeyPair('Ed25519')
    // B never dials and discovers nobody: only A can bring the link back
    const bOptions = { privateKey: kb, mdns: false as const, sync: { dialOnDiscovery: false } }
    const b1 = await createHearsayNode({ ...bOptions, listen: ['/ip4/127.0.0.1/tcp/0'] })
    running.push(b1)
    const addr = tcpAddr(b1)
    // announces B every 100 ms, as mDNS announces a peer on every query
    const stub = sightingStub(100)
    stub.announce({ id: b1.libp2p.peerId, multiaddrs: [multiaddr(addr)] })
    const aLog = memoryLogger()
    // backoff doubles from 200 ms with no jitter: a few failures push the delay past several seconds
    const a = await createHearsayNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      logger: aLog,
      libp2p: { peerDiscovery: [stub.factory as any] },
      sync: { backoff: { initialMs: 200, maxMs: 60_000 }, random: () => 0.5, maxRedialAttempts: 1_000, discoveryDialDelayMs: 0 }
    })
    running.push(a)
    const bId = b1.peerId
    const channel = (): boolean => a.sync.channels().some(c => c.peer === bId)
    await waitFor(channel, { timeoutMs: 10_000, message: 'first channel from a sighting' })

    // B goes away; A keeps seeing it announced and keeps failing, so its backoff grows
    await b1.stop()
    running.splice(running.indexOf(b1), 1)
    const status = (): ReturnType<typeof a.sync.peers>[number] | undefined => a.sync.peers().find(p => p.id === bId)
    await waitFor(() => {
      const st = status()
      return st?.connected === false && st.nextDialAt !== undefined && st.nextDialAt - Date.now() > 5_000
    }, { timeoutMs: 20_000, message: 'A backs off from B for more than 5 s' })
    expect(status()?.lastFailure).toBe('unreachable')
    expect(status()?.dialFailures).toBeGreaterThanOrEqual(5)

    // B comes back on the same address: the next sighting redials it, without waiting out the delay
    const b2 = await createHearsayNode({ ...bOptions, listen: [`/ip4/127.0.0.1/tcp/${addr.split('/tcp/')[1] as string}`] })
    running.push(b2)
    const back = Date.now()
    const due = status()?.nextDialAt ?? 0
    expect(due - back).toBeGreaterThan(4_000)
    await waitFor(channel, { timeoutMs: 2_000, message: 'A reconnects to B within 2 s' })
    expect(Date.now()).toBeLessThan(due)
    expect(status()?.dialFailures).toBe(0)
    expect(status()?.lastFailure).toBeUndefined()
  }, 40_000)

  it('is redialled as soon as mDNS announces it again', async () => {
    const tag = uniqueServiceTag('sighting')
    const kb = await generateKeyPair('Ed25519')
    const mdnsOpts = { intervalMs: 250, serviceTag: tag }
    // B never dials: only A's dialling can bring the link back
    const bOptions = { privateKey: kb, mdns: mdnsOpts, sync: { dialOnDiscovery: false } }
    const b1 = await createHearsayNode({ ...bOptions, listen: ['/ip4/127.0.0.1/tcp/0'] })
    running.push(b1)
    const port = tcpAddr(b1).split('/tcp/')[1] as string
    const a = await createHearsayNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: mdnsOpts,
      sync: { backoff: { initialMs: 300, maxMs: 60_000 }, random: () => 0.5, maxRedialAttempts: 1_000, discoveryDialDelayMs: 0 }
    })
    running.push(a)
    const bId = b1.peerId
    const channel = (): boolean => a.sync.channels().some(c => c.peer === bId)
    await waitFor(channel, { timeoutMs: 10_000, message: 'first channel by mDNS' })

    // B is gone (and silent) while A's retry delay doubles: 0.3, 0.6, 1.2, 2.4, then 4.8 s
    await b1.stop()
    running.splice(running.indexOf(b1), 1)
    const status = (): ReturnType<typeof a.sync.peers>[number] | undefined => a.sync.peers().find(p => p.id === bId)
    await waitFor(() => {
      const st = status()
      return st?.connected === false && st.nextDialAt !== undefined && st.nextDialAt - Date.now() > 4_000
    }, { timeoutMs: 20_000, message: 'A backs off from B for more than 4 s' })
    expect(status()?.lastFailure).toBe('unreachable')

    const b2 = await createHearsayNode({ ...bOptions, listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    running.push(b2)
    const due = status()?.nextDialAt ?? 0
    expect(due - Date.now()).toBeGreaterThan(3_500)
    await waitFor(channel, { timeoutMs: 2_000, message: 'A reconnects to B within 2 s of it coming back' })
    expect(Date.now()).toBeLessThan(due)
  }, 40_000)

  it('keeps backing off from a peer that refused it, however often it is seen', async () => {
    const [ka, kb] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const members = [peerIdFromPrivateKey(ka).toString(), peerIdFromPrivateKey(kb).toString()]
    const aLog = memoryLogger()
    const a = await createHearsayNode({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, privateKey: ka, allowPeers: members, logger: aLog })
    running.push(a)
    // the outsider sees A announced every 50 ms
    const stub = sightingStub(50)
    stub.announce({ id: a.libp2p.peerId, multiaddrs: [multiaddr(tcpAddr(a))] })
    const outsider = await createHearsayNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      libp2p: { peerDiscovery: [stub.factory as any] },
      sync: { backoff: { initialMs: 100, maxMs: 2_000 }, random: () => 0.5, maxRedialAttempts: 1_000, discoveryDialDelayMs: 0 }
    })
    running.push(outsider)
    // when each failure was counted, polled every 10 ms
    const failures: Array<{ n: number, at: number }> = []
    await waitFor(() => {
      const n = outsider.sync.peers().find(p => p.id === a.peerId)?.dialFailures ?? 0
      if (failures.length === 0 || failures[failures.length - 1]?.n !== n) failures.push({ n, at: Date.now() })
      return n >= 5
    }, { timeoutMs: 20_000, intervalMs: 10, message: 'outsider reaches 5 failures' })
    const st = outsider.sync.peers().find(p => p.id === a.peerId)
    expect(st?.channel).toBe(false)
    expect(st?.lastFailure).toBe('refused')
    // the count only ever grew: no sighting reset it
    const counts = failures.map(f => f.n)
    expect(counts).toEqual([...counts].sort((x, y) => x - y))
    // the retry after the 4th failure waited its backoff (100·2^4 = 1600 ms), though A was seen ~30 times meanwhile
    const fourth = failures.find(f => f.n === 4)
    const fifth = failures.find(f => f.n === 5)
    expect(fourth).toBeDefined()
    expect((fifth?.at ?? 0) - (fourth?.at ?? 0)).toBeGreaterThan(1_200)
    // many sightings, few dials: every dial A saw is one counted failure (plus one in flight)
    const refusals = aLog.lines.filter(l => l.includes(`refused connection from ${outsider.peerId}`))
    expect(stub.sightings()).toBeGreaterThan(40)
    expect(refusals.length).toBeLessThanOrEqual((st?.dialFailures ?? 0) + 1)
    expect(refusals.filter(l => / warn  /.test(l)).length).toBe(1)
  }, 30_000)
})

describe('a peer that refuses us right after the handshake', () => {
  it('is redialled with growing backoff, and the refusing side warns once', async () => {
    const [ka, kb] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const members = [peerIdFromPrivateKey(ka).toString(), peerIdFromPrivateKey(kb).toString()]
    const aLog = memoryLogger()
    const base = { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false as const, sync: { backoff: { initialMs: 100, maxMs: 2000 }, random: () => 0.5 } }
    const a: HearsayLibp2pNode = await createHearsayNode({ ...base, privateKey: ka, allowPeers: members, logger: aLog })
    running.push(a)
    const outsider: HearsayLibp2pNode = await createHearsayNode({ ...base, bootstrap: a.multiaddrs() })
    running.push(outsider)
    // every dial completes (the muxer is negotiated optimistically) and is dropped by A's gater:
    // each drop counts as a failure, so the delay doubles instead of staying at the first step
    await waitFor(() => (outsider.sync.peers().find(p => p.id === a.peerId)?.dialFailures ?? 0) >= 4, { timeoutMs: 20_000, message: 'outsider backs off' })
    const st = outsider.sync.peers().find(p => p.id === a.peerId)
    expect(st?.channel).toBe(false)
    const refusals = aLog.lines.filter(l => l.includes(`refused connection from ${outsider.peerId}`))
    const warnings = refusals.filter(l => / warn  /.test(l))
    expect(warnings.length).toBe(1)
    expect(refusals.length).toBeGreaterThanOrEqual(3)
    // never redialled faster than the failures are counted
    expect(refusals.length).toBeLessThanOrEqual((st?.dialFailures ?? 0) + 2)
  }, 30_000)

  it('the gater warns once per interval per peer and counts the refusals in between', async () => {
    const lines: string[] = []
    const logger = { forComponent: () => Object.assign((m: string) => { lines.push(`debug ${m}`) }, { warn: (m: string) => { lines.push(`warn ${m}`) }, error: () => {}, trace: (m: string) => { lines.push(`trace ${m}`) } }) }
    let t = 1_000_000
    const member = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const outsider = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const gater = allowListGater([member.toString()], { logger, logIntervalMs: 60_000, now: () => t })
    const maConn = { remoteAddr: { toString: () => '/ip4/127.0.0.1/tcp/1' } } as any
    for (let i = 0; i < 3; i++) expect(await gater.denyInboundEncryptedConnection?.(outsider, maConn)).toBe(true)
    expect(await gater.denyInboundEncryptedConnection?.(member, maConn)).toBe(false)
    expect(lines.filter(l => l.startsWith('warn')).length).toBe(1)
    expect(lines.filter(l => l.startsWith('trace')).length).toBe(2)
    t += 60_000
    await gater.denyOutboundEncryptedConnection?.(outsider, maConn)
    const warns = lines.filter(l => l.startsWith('warn'))
    expect(warns.length).toBe(2)
    expect(warns[1]).toMatch(/refused 2 more times since the last warning/)
  })
})

describe('two peers dialling each other at once', () => {
  it('end with exactly one connection on each side, the one carrying the channel', async () => {
    const a = await node()
    const b = await node()
    await startTransport(a)
    await startTransport(b)
    const opened = { a: 0, b: 0 }
    a.addEventListener('connection:open', () => { opened.a++ })
    b.addEventListener('connection:open', () => { opened.b++ })
    await Promise.all([
      a.dial(b.getMultiaddrs(), { signal: AbortSignal.timeout(5000) }),
      b.dial(a.getMultiaddrs(), { signal: AbortSignal.timeout(5000) })
    ])
    // both dials made their own connection (the inbound side may finish its upgrade a moment later)
    await waitFor(() => opened.a === 2 && opened.b === 2, { timeoutMs: 5000, message: 'two connections opened on each side' })
    const one = (n: SyncNode, other: SyncNode): boolean => n.getConnections(other.peerId).filter(c => c.status === 'open').length === 1
    await waitFor(() => one(a, b) && one(b, a) && a.services.hearsay.channels().length === 1 && b.services.hearsay.channels().length === 1,
      { timeoutMs: 10_000, message: 'one connection per side, with the channel' })
    const [conn] = a.getConnections(b.peerId)
    expect(a.services.hearsay.channels()[0]?.remoteAddr).toBe(conn?.remoteAddr.toString())
  })
})
