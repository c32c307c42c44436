/**
 * The memory network closes links as a real connection does: the side that closes sends its last
 * frames, then the close; the other side, until that close reaches it, may still send (what it
 * sends is lost) and still receives those last frames, a Close with its reason among them.
 */
import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, createVirtualClock } from '../src/index.js'
import type { Channel, ChannelHandler } from '../src/index.js'

function endpoint (): { channels: Channel[], frames: number[][], closes: Array<string | undefined>, handler: { onChannel: (c: Channel) => ChannelHandler } } {
  const e = {
    channels: [] as Channel[],
    frames: [] as number[][],
    closes: [] as Array<string | undefined>,
    handler: {
      onChannel (c: Channel): ChannelHandler {
        e.channels.push(c)
        return { onFrame: f => { e.frames.push([...f]) }, onClose: reason => { e.closes.push(reason) } }
      }
    }
  }
  return e
}

describe('memory network: closing a link', () => {
  it('the other side may send until the close reaches it, and gets the closing side\'s last frames first', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ seed: 1, timers: clock, latency: () => 5, autoConnect: false })
    const a = endpoint()
    const b = endpoint()
    await net.transport('a').start(a.handler)
    await net.transport('b').start(b.handler)
    net.connect('a', 'b')
    const [ca] = a.channels
    const [cb] = b.channels
    await ca?.send(new Uint8Array([1, 2, 3]))
    ca?.close('done here')
    // the close is on its way: b's send neither fails nor arrives
    await expect(cb?.send(new Uint8Array([4]))).resolves.toBeUndefined()
    await expect(ca?.send(new Uint8Array([5]))).rejects.toMatchObject({ name: 'PeerUnavailableError' })
    await clock.advance(20)
    expect(b.frames).toEqual([[1, 2, 3]])
    expect(b.closes).toEqual(['done here'])
    expect(a.frames).toEqual([])
    // once it has arrived, sends fail
    await expect(cb?.send(new Uint8Array([6]))).rejects.toMatchObject({ name: 'PeerUnavailableError' })
  })
})
