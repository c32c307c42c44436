/**
 * Redialling and backoff of the mounted service (libp2p nodes on 127.0.0.1, no createHearsayNode).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { waitFor } from '@hearsay/core/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryLogger, startTransport, syncNode, uniqueServiceTag } from './helpers.js'
import type { SyncNode } from './helpers.js'

const running: SyncNode[] = []
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
