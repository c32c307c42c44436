/**
 * StreamChannel backpressure on a fake message stream: `send()` stays pending while the stream
 * needs a drain, then resolves in order; frames waiting when the stream closes are rejected.
 */
import { describe, expect, it } from 'vitest'
import { StreamChannel } from './exports.js'

class FakeStream extends EventTarget {
  direction = 'outbound' as const
  status = 'open'
  writeStatus = 'writable'
  writableNeedsDrain = false
  sent: Uint8Array[] = []
  send (bytes: Uint8Array): boolean { this.sent.push(bytes); return !this.writableNeedsDrain }
  async close (): Promise<void> { this.status = 'closed' }
  abort (): void { this.status = 'aborted' }
}

const tick = async (): Promise<void> => { await new Promise<void>(resolve => { setImmediate(resolve) }) }

function channel (stream: FakeStream): StreamChannel {
  const log = Object.assign(() => {}, { warn: () => {}, error: () => {}, trace: () => {} })
  const ch = new StreamChannel({ remoteId: 'peer', stream: stream as any, connection: {} as any, maxFrameBytes: 1 << 20, log, onClosed: () => {} })
  ch.attach({ onFrame: () => {}, onClose: () => {} })
  return ch
}

describe('channel backpressure', () => {
  it('send() stays pending until the stream drains, then frames go out in order', async () => {
    const stream = new FakeStream()
    const ch = channel(stream)
    await ch.send(Uint8Array.of(1))
    expect(stream.sent.length).toBe(1)

    stream.writableNeedsDrain = true
    const done: number[] = []
    const p2 = ch.send(Uint8Array.of(2)).then(() => { done.push(2) })
    const p3 = ch.send(Uint8Array.of(3)).then(() => { done.push(3) })
    await tick()
    await tick()
    expect(done).toEqual([])
    expect(stream.sent.length).toBe(1)

    stream.writableNeedsDrain = false
    stream.dispatchEvent(new Event('drain'))
    await Promise.all([p2, p3])
    expect(done).toEqual([2, 3])
    // each frame is its length prefix then its bytes
    expect(stream.sent.slice(1).map(b => [...b])).toEqual([[1, 2], [1, 3]])
  })

  it('frames waiting for a drain are rejected when the stream closes', async () => {
    const stream = new FakeStream()
    const ch = channel(stream)
    stream.writableNeedsDrain = true
    const pending = ch.send(Uint8Array.of(9))
    await tick()
    stream.status = 'closed'
    stream.dispatchEvent(new Event('close'))
    await expect(pending).rejects.toMatchObject({ name: 'PeerUnavailableError' })
    expect(ch.isOpen).toBe(false)
    expect(stream.sent).toEqual([])
  })
})
