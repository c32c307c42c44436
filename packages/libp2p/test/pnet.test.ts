/**
 * The swarm-key refusal log: a protected connection is a refusal only when it closed before the
 * encrypter secured it, however long a member's connection lived.
 */
import { waitFor } from '@hearsay/core/testing'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createHearsayNode, generateSwarmKey, swarmGuard } from './exports.js'
import type { HearsayLibp2pNode } from './exports.js'
import { memoryLogger } from './helpers.js'

function fakeStream (direction: 'inbound' | 'outbound'): any {
  return Object.assign(new EventTarget(), { direction })
}

function recordingLog (): { log: any, warnings: string[] } {
  const warnings: string[] = []
  const log = Object.assign(() => {}, { warn: (m: string) => { warnings.push(m) }, error: () => {}, trace: () => {} })
  return { log, warnings }
}

describe('swarm key refusals', () => {
  afterEach(() => { vi.useRealTimers() })

  it('a member connection closing after any time is not a refusal; one closing before the handshake is', async () => {
    vi.useFakeTimers()
    const { log, warnings } = recordingLog()
    const guard = swarmGuard(generateSwarmKey(), log)
    const encrypter = guard.encrypter(() => ({
      protocol: '/fake',
      secureInbound: async () => ({ connection: fakeStream('inbound'), remotePeer: {} }),
      secureOutbound: async () => ({ connection: fakeStream('outbound'), remotePeer: {} })
    }) as any)({})
    expect(encrypter.protocol).toBe('/fake')

    const member = fakeStream('inbound')
    guard.watch(member, 'inbound', '/ip4/127.0.0.1/tcp/4001')
    await encrypter.secureInbound(member)
    const dialled = fakeStream('outbound')
    guard.watch(dialled, 'outbound', '/ip4/127.0.0.1/tcp/4001')
    await encrypter.secureOutbound(dialled)
    expect(guard.secured(member)).toBe(true)
    // long-lived connections from and to the same address
    vi.advanceTimersByTime(10 * 60_000)
    member.dispatchEvent(new Event('close'))
    dialled.dispatchEvent(new Event('close'))
    expect(warnings).toEqual([])

    // the same address again, but the handshake never completes: a refusal
    const outsider = fakeStream('inbound')
    guard.watch(outsider, 'inbound', '/ip4/127.0.0.1/tcp/4001')
    outsider.dispatchEvent(new Event('close'))
    expect(guard.secured(outsider)).toBe(false)
    expect(warnings.length).toBe(1)
    expect(warnings[0]).toMatch(/refused connection from \/ip4\/127\.0\.0\.1\/tcp\/4001: .*not in this private swarm/)
  })

  it('real members hanging up log no refusal', async () => {
    const key = generateSwarmKey()
    const nodes: HearsayLibp2pNode[] = []
    try {
      const la = memoryLogger()
      const lb = memoryLogger()
      const base = { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false as const, swarmKey: key }
      const a = await createHearsayNode({ ...base, logger: la })
      nodes.push(a)
      const b = await createHearsayNode({ ...base, logger: lb })
      nodes.push(b)
      await b.libp2p.dial(a.libp2p.getMultiaddrs(), { signal: AbortSignal.timeout(5000) })
      await waitFor(() => a.libp2p.getConnections(b.libp2p.peerId).length > 0, { message: 'members connected' })
      await b.libp2p.hangUp(a.libp2p.peerId)
      await waitFor(() => a.libp2p.getConnections(b.libp2p.peerId).length === 0, { message: 'hang-up seen' })
      expect([...la.lines, ...lb.lines].filter(l => l.includes('refused connection'))).toEqual([])
    } finally {
      for (const n of nodes) await n.stop()
    }
  })
})
