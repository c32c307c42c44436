/**
 * The swarm-key refusal log: a protected connection is a refusal only when it closed before the
 * encrypter secured it, however long a member's connection lived.
 */
import { waitFor } from '@hearsay/core/testing'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createHearsayNode, generateSwarmKey, swarmDiagnosis, swarmGuard } from './exports.js'
import type { HearsayLibp2pNode } from './exports.js'
import { memoryLogger } from './helpers.js'
import { SWARM_MISMATCH_LOG_INTERVAL_MS } from '../src/constants.js'

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

  it('names a swarm key mismatch once per peer or host, and counts every attempt', () => {
    vi.useFakeTimers()
    const { log, warnings } = recordingLog()
    const guard = swarmGuard(generateSwarmKey(), log)
    for (let port = 4001; port < 4036; port++) {
      const s = fakeStream('inbound')
      guard.watch(s, 'inbound', `/ip4/10.0.0.7/tcp/${port}`)
      s.dispatchEvent(new Event('close'))
    }
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/^swarm key mismatch: refused connection from \/ip4\/10\.0\.0\.7\/tcp\/4001: .*not in this private swarm/)

    // the side without a key: its dials fail in the security negotiation
    const open = recordingLog()
    const d = swarmDiagnosis(false, open.log)
    const garbled = (message: string): Error => Object.assign(new Error('dial failed'), { cause: Object.assign(new Error(message), { name: 'EncryptionFailedError' }) })
    for (let i = 0; i < 5; i++) d.dialFailed('12D3KooWPeer', garbled(i % 2 === 0 ? 'Missing newline' : 'Message length length too long - 3 > 2'))
    d.dialFailed('12D3KooWOther', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
    expect(open.warnings).toHaveLength(1)
    expect(open.warnings[0]).toMatch(/^swarm key mismatch: dial to 12D3KooWPeer failed .*runs a private swarm .* this node has none/)
    expect(d.mismatches()).toEqual([expect.objectContaining({ peer: '12D3KooWPeer', count: 5 })])
    // warned again after the interval, with the attempts in between
    vi.advanceTimersByTime(SWARM_MISMATCH_LOG_INTERVAL_MS)
    d.dialFailed('12D3KooWPeer', garbled('Missing newline'))
    expect(open.warnings[1]).toMatch(/\(4 more attempts since the last warning\)$/)
    // a keyed node leaves that diagnosis to its guard
    const keyed = recordingLog()
    swarmDiagnosis(true, keyed.log).dialFailed('12D3KooWPeer', garbled('Missing newline'))
    expect(keyed.warnings).toEqual([])
  })
})
