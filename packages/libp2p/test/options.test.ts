/**
 * `createHearsayNode({ libp2p })`: extra libp2p options are merged without dropping the Hearsay
 * service, the allow-list gater or mDNS.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { createMemoryNetwork, createNode, createVirtualClock } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { createHearsayNode } from './exports.js'
import type { HearsayLibp2pNode, HearsayNodeOptions } from './exports.js'
import { memoryLogger } from './helpers.js'

const running: HearsayLibp2pNode[] = []
afterEach(async () => { for (const n of running.splice(0)) await n.stop() })

async function node (options: HearsayNodeOptions): Promise<HearsayLibp2pNode & { lines: string[] }> {
  const logger = memoryLogger()
  const n = await createHearsayNode({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, logger, sync: { backoff: { initialMs: 100, maxMs: 1000 } }, ...options })
  running.push(n)
  return Object.assign(n, { lines: logger.lines })
}

describe('options.libp2p', () => {
  it('adds services next to the Hearsay service and composes a gater with the allow-list', async () => {
    const [ka, kb, kc] = [await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519')]
    const [ida, idb, idc] = [ka, kb, kc].map(k => peerIdFromPrivateKey(k).toString()) as [string, string, string]
    const asked: string[] = []
    const a = await node({
      privateKey: ka,
      allowPeers: [ida, idb, idc],
      libp2p: {
        services: { marker: () => ({ name: 'marker' }) },
        // the app's own rule: C is on the allow-list but this gater refuses it
        connectionGater: {
          denyInboundEncryptedConnection: async (peer: PeerId) => { asked.push(peer.toString()); return peer.toString() === idc }
        },
        connectionMonitor: { enabled: true }
      }
    })
    expect((a.libp2p.services as Record<string, unknown>).marker).toEqual({ name: 'marker' })
    expect(a.libp2p.services.hearsay).toBe(a.sync)
    expect(a.libp2p.services.identify).toBeDefined()

    const b = await node({ privateKey: kb, bootstrap: a.multiaddrs() })
    ;(await a.open('d')).getText('t').insert(0, 'hi')
    await waitFor(async () => (await b.open('d')).getText('t').toString() === 'hi', { timeoutMs: 15_000, message: 'B syncs through both gaters' })
    expect(asked).toContain(idb)

    // refused by the app's gater
    const c = await node({ privateKey: kc })
    await c.libp2p.dial(a.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(3000) }).catch(() => {})
    await waitFor(() => asked.includes(idc), { message: "the app's gater is asked about C" })
    await waitFor(() => c.libp2p.getConnections().length === 0, { message: 'C dropped' })
    // refused by the allow-list before the app's gater is asked
    const outsider = await node({})
    await outsider.libp2p.dial(a.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(3000) }).catch(() => {})
    await waitFor(() => a.lines.some(l => l.includes(`refused connection from ${outsider.peerId}`)), { message: 'allow-list refusal' })
    expect(asked).not.toContain(outsider.peerId)
    expect(a.sync.channels().map(ch => ch.peer)).toEqual([idb])
  })

  it('refuses a second hearsay service', async () => {
    await expect(createHearsayNode({ mdns: false, listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: { services: { hearsay: () => ({}) } } }))
      .rejects.toMatchObject({ name: 'ConfigError', message: expect.stringMatching(/services.hearsay is reserved/) })
  })
})

describe('discovery status', () => {
  it("is 'unknown' until the first probe, then the probe's result", async () => {
    const n = await node({ start: false, mdns: { serviceTag: '_hs-unknown._udp.local' } })
    expect(n.discovery()).toMatchObject({ mdns: 'unknown', checkedAt: 0 })
    expect(n.status().discovery.mdns).toBe('unknown')
    await n.start()
    expect(n.discovery().mdns).not.toBe('unknown')
    expect(n.discovery().checkedAt).toBeGreaterThan(0)
    expect((await node({ mdns: false })).discovery().mdns).toBe('disabled')
  })

  it("probes again every probeIntervalMs on the node's clock, and not after stop", async () => {
    const clock = createVirtualClock(1_000_000)
    const n = await node({ start: false, timers: clock, mdns: { serviceTag: '_hs-probe._udp.local', probeIntervalMs: 60_000 } })
    await n.start()
    expect(n.discovery().checkedAt).toBe(1_000_000)
    await clock.advance(59_999)
    expect(n.discovery().checkedAt).toBe(1_000_000)
    await clock.advance(1)
    await waitFor(() => n.discovery().checkedAt === 1_060_000, { message: 'the second probe' })
    await n.stop()
    expect(clock.nextAt()).toBeUndefined()
  })
})

describe('the engine API', () => {
  /** Every method of an engine node, found on it and its prototypes. */
  const methodsOf = (o: object): string[] => {
    const names = new Set<string>()
    for (let p: object | null = o; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      for (const k of Object.getOwnPropertyNames(p)) if (k !== 'constructor' && typeof (o as Record<string, unknown>)[k] === 'function') names.add(k)
    }
    return [...names].sort()
  }

  it('is forwarded whole, calls reach the engine, and start/stop run libp2p too', async () => {
    const engine = createNode({ id: 'probe', transport: createMemoryNetwork().transport('probe') })
    const n = await node({ start: false })
    const missing = methodsOf(engine).filter(k => typeof (n as unknown as Record<string, unknown>)[k] !== 'function')
    expect(missing).toEqual([])
    expect(methodsOf(engine).length).toBeGreaterThanOrEqual(15)
    expect(n.id).toBe(n.peerId)

    await n.start()
    expect(n.libp2p.status).toBe('started')
    expect(n.status().started).toBe(true)
    const seen: string[] = []
    const off = n.on('doc:update', (e) => { seen.push(e.docId) })
    ;(await n.open('forwarded')).getText('t').insert(0, 'x')
    await n.flush()
    expect(n.docs()).toContain('forwarded')
    expect(n.digest().count).toBe(1)
    expect(seen).toContain('forwarded')
    off()
    n.setMeta('role', 'probe')
    expect(n.problems()).toEqual([])
    await n.stop()
    expect(n.libp2p.status).toBe('stopped')
    expect(n.status().started).toBe(false)
  })
})
