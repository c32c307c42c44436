/**
 * The channel table alone, on the virtual clock, over fake connections and streams: who opens,
 * replacing an inbound stream, the cool-down after this node closes a channel (doubling), retries
 * of a failed stream open, a peer without the protocol, and stopping.
 */
import { createVirtualClock } from '@hearsay/core'
import type { Channel, VirtualClock } from '@hearsay/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { beforeAll, describe, expect, it } from 'vitest'
import { Backoff, ChannelTable, Pacer } from './exports.js'
import { memoryLogger } from './helpers.js'

class FakeStream extends EventTarget {
  status = 'open'
  writeStatus = 'writable'
  writableNeedsDrain = false
  aborted: string | undefined
  constructor (readonly direction: 'inbound' | 'outbound') { super() }
  send (): boolean { return true }
  async close (): Promise<void> { this.status = 'closed' }
  abort (err: Error): void { this.status = 'aborted'; this.aborted = err.message }
}

/** A connection whose `newStream()` answers as the test says. */
class FakeConnection {
  static next = 0
  readonly id = `conn-${FakeConnection.next++}`
  readonly remoteAddr = multiaddr('/ip4/10.0.0.2/tcp/4001')
  readonly direction = 'outbound'
  closed = false
  opens: number[] = []
  answer: 'stream' | 'fail' | 'unsupported' = 'stream'
  constructor (readonly remotePeer: PeerId, private readonly clock: VirtualClock) {}
  async newStream (): Promise<FakeStream> {
    this.opens.push(this.clock.now())
    if (this.answer === 'fail') throw Object.assign(new Error('stream reset'), { name: 'StreamResetError' })
    if (this.answer === 'unsupported') throw Object.assign(new Error('protocol selection failed'), { name: 'UnsupportedProtocolError' })
    return new FakeStream('outbound')
  }

  async close (): Promise<void> { this.closed = true }
  abort (): void { this.closed = true }
}

let low: PeerId
let high: PeerId
beforeAll(async () => {
  const ids = await Promise.all([1, 2].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
  ids.sort((a, b) => (a.toString() < b.toString() ? -1 : 1))
  ;[low, high] = ids as [PeerId, PeerId]
})

function scene (local: PeerId): { clock: VirtualClock, table: ChannelTable, conns: FakeConnection[], opened: string[], channels: Channel[], lines: string[] } {
  const clock = createVirtualClock(0)
  const logger = memoryLogger()
  const conns: FakeConnection[] = []
  const opened: string[] = []
  const channels: Channel[] = []
  const table = new ChannelTable({
    localId: local.toString(),
    protocol: '/hearsay/sync/1.0.0',
    maxFrameBytes: 1 << 20,
    streamOpenTimeoutMs: 5_000,
    closeTimeoutMs: 5_000,
    relayPacer: new Pacer(Infinity, 0, () => clock.now()),
    closeCooldownMs: 1_000,
    backoff: new Backoff(100, 30_000, 0, () => 0.5),
    timers: clock,
    log: logger.forComponent('test:channels'),
    connections: (peer) => conns.filter(c => !c.closed && c.remotePeer.equals(peer)) as any,
    onOpened: (id) => { opened.push(id) }
  })
  table.start({ onChannel: (ch) => { channels.push(ch); return { onFrame: () => {}, onClose: () => {} } } })
  return { clock, table, conns, opened, channels, lines: logger.lines }
}

describe('the channel table on a virtual clock', () => {
  it('opens the channel when it is the lower id, and refuses the peer for a doubling cool-down after closing it', async () => {
    const s = scene(low)
    const conn = new FakeConnection(high, s.clock)
    s.conns.push(conn)
    const ready = s.table.waitFor(high, new AbortController().signal)
    s.table.linkUp(high)
    await s.clock.advance(0)
    await ready
    expect(s.table.isOpen(high.toString())).toBe(true)
    expect(s.opened).toEqual([high.toString()])
    expect(s.table.list()).toMatchObject([{ peer: high.toString(), direction: 'outbound', openedAt: 0 }])

    // this node closes it (e.g. a bad frame): it re-opens only after 1 s, then 2 s after the next close
    for (const cooldown of [1_000, 2_000]) {
      const before = conn.opens.length
      ;(s.channels[s.channels.length - 1] as Channel).close('bad frame from peer')
      expect(s.table.get(high.toString())?.refusedUntil).toBe(s.clock.now() + cooldown)
      expect(s.lines.some(l => l.includes(`refusing it for ${cooldown} ms`))).toBe(true)
      await s.clock.advance(cooldown - 1)
      expect(conn.opens.length).toBe(before)
      await s.clock.advance(1)
      expect(conn.opens.length).toBe(before + 1)
      expect(s.table.isOpen(high.toString())).toBe(true)
    }
  })

  it('retries a failed stream open after the backoff, and stops for a peer without the protocol', async () => {
    const s = scene(low)
    const conn = new FakeConnection(high, s.clock)
    conn.answer = 'fail'
    s.conns.push(conn)
    s.table.linkUp(high)
    await s.clock.advance(1_000)
    // churn 1, 2, 3: retries after 100, 200 and 400 ms
    expect(conn.opens.slice(0, 4)).toEqual([0, 100, 300, 700])
    conn.answer = 'unsupported'
    await s.clock.advance(10_000)
    const tries = conn.opens.length
    expect(s.table.get(high.toString())?.unsupported).toBe(true)
    s.table.linkUp(high)
    await s.clock.advance(10_000)
    expect(conn.opens.length).toBe(tries)
    expect(s.table.isOpen(high.toString())).toBe(false)
  })

  it('accepts the stream of the lower id, replaces it with a newer one, and refuses it while cooling down', async () => {
    const s = scene(high)
    const conn = new FakeConnection(low, s.clock)
    s.conns.push(conn)
    const first = new FakeStream('inbound')
    s.table.accept(first as any, conn as any)
    expect(s.table.list()).toMatchObject([{ peer: low.toString(), direction: 'inbound' }])
    const second = new FakeStream('inbound')
    s.table.accept(second as any, conn as any)
    expect(first.status).toBe('closed')
    expect(s.channels.length).toBe(2)
    expect(s.table.list().length).toBe(1)
    // the accepting side never opens a stream itself
    s.table.linkUp(low)
    await s.clock.advance(1_000)
    expect(conn.opens).toEqual([])

    ;(s.channels[1] as Channel).close('engine request')
    const third = new FakeStream('inbound')
    s.table.accept(third as any, conn as any)
    expect(third.aborted).toBe('cooling down')
    // the replacement was this node's first close, this is its second: 2 s
    await s.clock.advance(1_999)
    const early = new FakeStream('inbound')
    s.table.accept(early as any, conn as any)
    expect(early.aborted).toBe('cooling down')
    await s.clock.advance(1)
    const fourth = new FakeStream('inbound')
    s.table.accept(fourth as any, conn as any)
    expect(fourth.aborted).toBeUndefined()
    expect(s.table.isOpen(low.toString())).toBe(true)
  })

  it('stop closes every channel and fails the waiters', async () => {
    const s = scene(low)
    s.conns.push(new FakeConnection(high, s.clock))
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const waiting = s.table.waitFor(other, new AbortController().signal)
    s.table.linkUp(high)
    await s.clock.advance(0)
    const ch = s.channels[0] as Channel
    s.table.stop()
    await expect(waiting).rejects.toMatchObject({ name: 'PeerUnavailableError', message: expect.stringMatching(/transport stopped/) })
    expect(s.table.isOpen(high.toString())).toBe(false)
    expect(s.table.list()).toEqual([])
    expect(s.table.running).toBe(false)
    await expect(ch.send(Uint8Array.of(1))).rejects.toMatchObject({ name: 'PeerUnavailableError' })
  })
})
