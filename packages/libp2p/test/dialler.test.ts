/**
 * The dialler alone, on the virtual clock: backoff growth and cap, jitter, sightings, failure
 * kinds, giving up, bootstrap retries and stopping. The network is a stub whose peers are
 * reachable, unreachable, refusing or silent as each test says; minutes of backoff take no time.
 */
import { createRandom, createVirtualClock } from '@hearsay/core'
import type { VirtualClock } from '@hearsay/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { beforeAll, describe, expect, it } from 'vitest'
import { Backoff, Dialler, STABLE_LINK_MS } from './exports.js'
import type { DiallerInit } from './exports.js'
import { memoryLogger } from './helpers.js'

/** How a stub peer answers a dial. */
type Answer = 'accept' | 'unreachable' | 'refuse' | 'silent'

const named = (name: string, extra: Record<string, unknown> = {}): Error => Object.assign(new Error(name), { name, ...extra })

interface Scene {
  clock: VirtualClock
  dialler: Dialler
  lines: string[]
  /** Dials made, by peer id, at virtual time. */
  dials: Array<{ id: string, at: number }>
  forgotten: string[]
  failures: Array<{ peer: string, err: unknown }>
  answer: Map<string, Answer>
  connected: Set<string>
  dialsTo: (id: string) => number[]
}

const peerOf = (target: PeerId | Multiaddr | Multiaddr[]): string => {
  const addr = Array.isArray(target) ? target[0] : target
  if (addr !== undefined && 'getComponents' in addr) return addr.getComponents().findLast(c => c.name === 'p2p')?.value ?? ''
  return String(addr)
}

function scene (init: Partial<Omit<DiallerInit, 'network' | 'timers' | 'log'>> = {}): Scene {
  const clock = createVirtualClock(1_000_000)
  const logger = memoryLogger()
  const dials: Scene['dials'] = []
  const forgotten: string[] = []
  const failures: Scene['failures'] = []
  const answer = new Map<string, Answer>()
  const connected = new Set<string>()
  const dialler = new Dialler({
    network: {
      dial: async (target, signal) => {
        const id = peerOf(target)
        dials.push({ id, at: clock.now() })
        const how = answer.get(id) ?? 'unreachable'
        if (how === 'unreachable') throw named('Error', { code: 'ECONNREFUSED' })
        if (how === 'refuse') throw named('EncryptionFailedError')
        if (how === 'silent') {
          return await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }) })
        }
        connected.add(id)
        return { remotePeer: peerIdFromString(id) }
      },
      connected: (peer) => connected.has(peer.toString()),
      forget: async (peer) => { forgotten.push(peer.toString()) }
    },
    timers: clock,
    log: logger.forComponent('test:dialler'),
    backoff: new Backoff(100, 1_000, 0, () => 0.5),
    initiates: () => true,
    bootstrap: [],
    dialTimeoutMs: 5_000,
    maxRedialAttempts: 1_000,
    discoveryDialDelayMs: 1_000,
    sightingDialIntervalMs: 500,
    onDialFailure: (peer, err) => { failures.push({ peer, err }) },
    ...init
  })
  const dialsTo = (id: string): number[] => dials.filter(d => d.id === id).map(d => d.at - 1_000_000)
  return { clock, dialler, lines: logger.lines, dials, forgotten, failures, answer, connected, dialsTo }
}

let peers: PeerId[] = []
beforeAll(async () => {
  peers = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
})
const info = (peer: PeerId): { id: PeerId, multiaddrs: Multiaddr[] } => ({ id: peer, multiaddrs: [multiaddr('/ip4/10.0.0.2/tcp/4001')] })

describe('backoff', () => {
  it('doubles from initialMs per attempt up to maxMs', () => {
    const b = new Backoff(100, 1_000, 0, () => 0.5)
    expect([1, 2, 3, 4, 5, 6, 20].map(n => b.delay(n))).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000])
  })

  it('keeps the jitter within ±jitter of the delay, and replays from a seed', () => {
    const run = (seed: number): number[] => {
      const rng = createRandom(seed)
      const b = new Backoff(100, 1_000, 0.3, () => rng.next())
      return Array.from({ length: 200 }, (_, i) => b.delay(1 + (i % 6)))
    }
    const delays = run(7)
    delays.forEach((d, i) => {
      const base = Math.min(1_000, 100 * 2 ** (i % 6))
      expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.7))
      expect(d).toBeLessThanOrEqual(Math.ceil(base * 1.3))
    })
    expect(run(7)).toEqual(delays)
    expect(run(8)).not.toEqual(delays)
    // it is really spread, not stuck at one end
    const firsts = delays.filter((_, i) => i % 6 === 0)
    expect(Math.max(...firsts) - Math.min(...firsts)).toBeGreaterThan(30)
    // the pair delay is only ever stretched
    const b = new Backoff(100, 1_000, 0.3, () => 0.999)
    expect(b.stretch(1_000)).toBeGreaterThan(1_000)
    expect(b.stretch(1_000)).toBeLessThan(1_300)
    expect(new Backoff(100, 1_000, 0.3, () => 0).stretch(1_000)).toBe(1_000)
  })
})

describe('the dialler on a virtual clock', () => {
  it('retries an unreachable peer with growing delays, capped at maxMs', async () => {
    const s = scene()
    const [p] = peers as [PeerId]
    s.dialler.start()
    s.dialler.sighted(info(p))
    await s.clock.advance(5_000)
    // after failure n the next dial waits min(1000, 100·2^n)
    const at = s.dialsTo(p.toString())
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number))
    expect(at[0]).toBe(0)
    expect(gaps.slice(0, 6)).toEqual([200, 400, 800, 1_000, 1_000, 1_000])
    const st = s.dialler.get(p.toString())
    expect(st?.failures).toBe(at.length)
    expect(st?.lastFailure).toBe('unreachable')
    expect(st?.nextDialAt).toBe(1_000_000 + (at[at.length - 1] as number) + 1_000)
    // each failed dial is reported, with the peer id
    expect(s.failures.length).toBe(at.length)
    expect(s.failures.every(f => f.peer === p.toString())).toBe(true)
  })

  it('times out a dial that never answers after dialTimeoutMs, and counts it as unreachable', async () => {
    const s = scene()
    const [p] = peers as [PeerId]
    s.answer.set(p.toString(), 'silent')
    s.dialler.start()
    s.dialler.sighted(info(p))
    await s.clock.advance(4_999)
    expect(s.dialler.get(p.toString())?.failures).toBe(0)
    await s.clock.advance(1)
    expect(s.dialler.get(p.toString())?.failures).toBe(1)
    expect(s.dialler.get(p.toString())?.lastFailure).toBe('unreachable')
    expect((s.failures[0]?.err as Error).name).toBe('TimeoutError')
  })

  it('redials an unreachable peer at once when it is seen again, and a channel resets its backoff', async () => {
    const s = scene({ backoff: new Backoff(200, 60_000, 0, () => 0.5) })
    const [p] = peers as [PeerId]
    const id = p.toString()
    s.dialler.start()
    s.dialler.sighted(info(p))
    // dials at 0, 0.4, 1.2, 2.8 and 6 s; the next is due at 12.4 s
    await s.clock.advance(6_500)
    const st = s.dialler.get(id)
    expect(st?.failures).toBeGreaterThanOrEqual(5)
    const due = st?.nextDialAt as number
    expect(due - s.clock.now()).toBeGreaterThan(4_000)

    // it comes back; a burst of sightings dials it once, now, not after the delay
    s.answer.set(id, 'accept')
    const before = s.dials.length
    for (let i = 0; i < 5; i++) s.dialler.sighted(info(p))
    await s.clock.advance(0)
    expect(s.dials.length).toBe(before + 1)
    expect(s.dials[s.dials.length - 1]?.at).toBeLessThan(due)
    // the service reports the link and then the channel
    s.dialler.linkUp(id)
    expect(s.dialler.get(id)?.nextDialAt).toBeUndefined()
    expect(s.dialler.get(id)?.failures).toBeGreaterThanOrEqual(5)
    s.dialler.reached(id)
    expect(s.dialler.get(id)?.failures).toBe(0)
    expect(s.dialler.get(id)?.lastFailure).toBeUndefined()

    // the link drops after staying up: the next retry starts from the first step again
    s.connected.delete(id)
    const now = s.clock.now()
    s.dialler.linkDown(id, now - STABLE_LINK_MS, now - STABLE_LINK_MS)
    expect((s.dialler.get(id)?.nextDialAt as number) - now).toBe(200)
  })

  it('spaces dials caused by sightings by sightingDialIntervalMs', async () => {
    const s = scene({ backoff: new Backoff(10_000, 60_000, 0, () => 0.5) })
    const [p] = peers as [PeerId]
    s.dialler.start()
    // announced every 50 ms for 2 s; every dial fails as unreachable
    for (let t = 0; t < 2_000; t += 50) {
      s.dialler.sighted(info(p))
      await s.clock.advance(50)
    }
    const at = s.dialsTo(p.toString())
    expect(at.length).toBeGreaterThanOrEqual(4)
    at.slice(1).forEach((t, i) => { expect(t - (at[i] as number)).toBeGreaterThanOrEqual(500) })
  })

  it('delays the dial of the higher peer id by discoveryDialDelayMs, stretched by the jitter', async () => {
    const s = scene({ initiates: () => false, backoff: new Backoff(100, 1_000, 0.3, () => 0.5) })
    const [p] = peers as [PeerId]
    s.dialler.start()
    s.dialler.sighted(info(p))
    expect((s.dialler.get(p.toString())?.nextDialAt as number) - s.clock.now()).toBe(1_150)
    await s.clock.advance(1_149)
    expect(s.dials.length).toBe(0)
    await s.clock.advance(1)
    expect(s.dialsTo(p.toString())).toEqual([1_150])
  })

  it('keeps backing off from a peer that refused it, however often it is seen', async () => {
    const s = scene()
    const [p] = peers as [PeerId]
    const id = p.toString()
    s.answer.set(id, 'refuse')
    s.dialler.start()
    const counts: Array<{ n: number, at: number }> = []
    for (let t = 0; t < 6_000; t += 50) {
      s.dialler.sighted(info(p))
      await s.clock.advance(50)
      const n = s.dialler.get(id)?.failures ?? 0
      if (counts[counts.length - 1]?.n !== n) counts.push({ n, at: s.clock.now() })
    }
    expect(s.dialler.get(id)?.lastFailure).toBe('refused')
    // the count only grew, one per dial, and each retry waited its full backoff
    expect(counts.map(c => c.n)).toEqual(counts.map((_, i) => i + 1))
    const at = s.dialsTo(id)
    expect(at.length).toBe(s.dialler.get(id)?.failures)
    expect(at.slice(1, 5).map((t, i) => t - (at[i] as number))).toEqual([200, 400, 800, 1_000])
  })

  it('counts a link that dropped before a channel opened as a refusal, and a stable one as a success', async () => {
    const s = scene({ backoff: new Backoff(1_000, 10_000, 0, () => 0.5) })
    const [p] = peers as [PeerId]
    const id = p.toString()
    s.answer.set(id, 'accept')
    s.dialler.start()
    s.dialler.sighted(info(p))
    await s.clock.advance(0)
    s.dialler.linkUp(id)
    const opened = s.clock.now()
    await s.clock.advance(300)
    s.connected.delete(id)
    s.dialler.linkDown(id, opened, undefined)
    expect(s.dialler.get(id)).toMatchObject({ failures: 1, lastFailure: 'refused' })
    expect(s.lines.some(l => l.includes(`link to ${id} dropped after 300 ms before a channel opened (failure 1)`))).toBe(true)
    // a refused peer seen again keeps its pending retry (an unreachable one would be dialled in 200 ms)
    const due = s.dialler.get(id)?.nextDialAt
    expect((due as number) - s.clock.now()).toBe(2_000)
    s.dialler.sighted(info(p))
    expect(s.dialler.get(id)?.nextDialAt).toBe(due)

    // a link that carried a channel is not a failure
    await s.clock.advance(1_000)
    s.dialler.linkUp(id)
    const second = s.clock.now()
    s.dialler.linkDown(id, second, second + 10)
    expect(s.dialler.get(id)?.failures).toBe(1)
    // one that stayed up STABLE_LINK_MS forgives the earlier failures
    s.dialler.linkDown(id, s.clock.now() - STABLE_LINK_MS, undefined)
    expect(s.dialler.get(id)).toMatchObject({ failures: 0 })
    expect(s.dialler.get(id)?.lastFailure).toBeUndefined()
  })

  it('gives up on a discovered peer after maxRedialAttempts, forgets it, and dials it at once when seen again', async () => {
    const s = scene({ maxRedialAttempts: 3 })
    const [p] = peers as [PeerId]
    const id = p.toString()
    s.dialler.start()
    s.dialler.sighted(info(p))
    await s.clock.advance(10_000)
    expect(s.dialsTo(id).length).toBe(3)
    expect(s.dialler.get(id)?.nextDialAt).toBeUndefined()
    expect(s.forgotten).toEqual([id])
    expect(s.lines.filter(l => l.includes(`giving up on ${id} after 3 failed dials`)).length).toBe(1)
    s.answer.set(id, 'accept')
    s.dialler.sighted(info(p))
    await s.clock.advance(0)
    expect(s.dialsTo(id).length).toBe(4)
    expect(s.connected.has(id)).toBe(true)
  })

  it('retries a bootstrap address for as long as it runs, and redials it when its link drops', async () => {
    const [p] = peers as [PeerId]
    const id = p.toString()
    const addr = multiaddr(`/ip4/10.0.0.2/tcp/4001/p2p/${id}`)
    const s = scene({ bootstrap: [addr], maxRedialAttempts: 2 })
    s.dialler.start()
    await s.clock.advance(4_000)
    // past maxRedialAttempts, and still retried at the capped delay
    const at = s.dialsTo(id)
    expect(at.slice(0, 6)).toEqual([0, 200, 600, 1_400, 2_400, 3_400])
    expect(s.forgotten).toEqual([])
    expect(s.failures.every(f => f.peer === id)).toBe(true)

    s.answer.set(id, 'accept')
    await s.clock.advance(1_000)
    const st = s.dialler.get(id)
    expect(st).toMatchObject({ source: 'bootstrap', persistent: true })
    expect(st?.addrs?.map(a => a.toString())).toEqual([addr.toString()])
    // the channel opened: the bootstrap target's failures are forgiven too
    s.dialler.linkUp(id)
    s.dialler.reached(id)

    s.connected.delete(id)
    const down = s.clock.now()
    s.dialler.linkDown(id, down - 100, down - 90)
    // redialled from the first step, its failures forgiven when the channel opened
    const dialsBefore = s.dials.length
    await s.clock.advance(100)
    expect(s.dials.length).toBe(dialsBefore + 1)
    expect(s.dials[s.dials.length - 1]?.at).toBe(down + 100)
    expect(s.connected.has(id)).toBe(true)
  })

  it('stop cancels every pending dial and forgets every peer', async () => {
    const [p, q, r] = peers as [PeerId, PeerId, PeerId]
    const s = scene({ bootstrap: [multiaddr(`/ip4/10.0.0.3/tcp/4001/p2p/${r.toString()}`)] })
    s.answer.set(q.toString(), 'silent')
    s.dialler.start()
    s.dialler.sighted(info(p))
    s.dialler.sighted(info(q))
    await s.clock.advance(1_000)
    const made = s.dials.length
    expect(made).toBeGreaterThanOrEqual(4)
    expect(s.dialler.get(p.toString())?.nextDialAt).toBeDefined()
    s.dialler.stop()
    expect(s.dialler.list()).toEqual([])
    // the silent dial's timeout still fires; nothing is re-armed after it
    await s.clock.advance(60_000)
    expect(s.dials.length).toBe(made)
    expect(s.clock.nextAt()).toBeUndefined()
    // sightings while stopped are ignored
    s.dialler.sighted(info(p))
    await s.clock.advance(1_000)
    expect(s.dials.length).toBe(made)
    expect(s.dialler.list()).toEqual([])
  })
})
