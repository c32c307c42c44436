import { describe, expect, it } from 'vitest'
import { createMemoryNetwork, createVirtualClock, type Channel, type ChannelHandler } from '../src/index.js'

describe('virtual clock', () => {
  it('fires timers in order of due time and creation, and lets promise chains settle between instants', async () => {
    const clock = createVirtualClock()
    const seen: string[] = []
    clock.setTimeout(() => { seen.push('b@20') }, 20)
    clock.setTimeout(() => {
      seen.push('a@10')
      void Promise.resolve().then(() => { seen.push('a@10 then') })
    }, 10)
    clock.setTimeout(() => { seen.push('c@10') }, 10)
    const h = clock.setTimeout(() => { seen.push('cancelled') }, 15)
    clock.clearTimeout(h)
    await clock.advance(15)
    expect(clock.now()).toBe(15)
    expect(seen).toEqual(['a@10', 'c@10', 'a@10 then'])
    await clock.advanceTo(100)
    expect(seen).toEqual(['a@10', 'c@10', 'a@10 then', 'b@20'])
    expect(clock.nextAt()).toBeUndefined()
  })

  it('a disposed scope cancels its timers and ignores new ones', async () => {
    const clock = createVirtualClock()
    const scope = clock.scope()
    let fired = 0
    scope.setTimeout(() => { fired++ }, 5)
    clock.setTimeout(() => { fired += 10 }, 5)
    scope.dispose()
    scope.setTimeout(() => { fired++ }, 1)
    await clock.advance(10)
    expect(fired).toBe(10)
  })
})

interface Ends { a: Channel, b: Channel, gotA: Array<number | string>, gotB: Array<number | string> }

function handler (got: Array<number | string>): ChannelHandler {
  return { onFrame: f => { got.push(f[0] as number) }, onClose: r => { got.push(`closed: ${r ?? ''}`) } }
}

async function pair (net: ReturnType<typeof createMemoryNetwork>): Promise<Ends> {
  const ends: Partial<Ends> = { gotA: [], gotB: [] }
  await net.transport('a').start({ onChannel: c => { ends.a = c; return handler(ends.gotA as Array<number | string>) } })
  await net.transport('b').start({ onChannel: c => { ends.b = c; return handler(ends.gotB as Array<number | string>) } })
  return ends as Ends
}

describe('memory network on a virtual clock', () => {
  it('delivers after the latency, in order per link whatever each frame drew', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: (_f, _t, r) => 1 + r.int(50) })
    const { a, gotB } = await pair(net)
    for (let i = 0; i < 20; i++) await a.send(new Uint8Array([i]))
    expect(gotB).toEqual([])
    await clock.advance(60)
    expect(gotB).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  it('a link with limited bandwidth spaces frames out and releases the sender when a frame leaves', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5, bandwidth: (from) => from === 'a' ? 10 : undefined })
    const { a, gotB } = await pair(net)
    const sent: number[] = []
    for (let i = 0; i < 3; i++) void a.send(new Uint8Array(100).fill(i)).then(() => { sent.push(clock.now()) })
    await clock.advance(14)
    expect(sent).toEqual([10])
    expect(gotB).toEqual([])
    await clock.advance(1)
    expect(gotB).toEqual([0])
    await clock.advance(30)
    expect(sent).toEqual([10, 20, 30])
    expect(gotB).toEqual([0, 1, 2])
  })

  it('with resetOnLoss a lost frame closes the link on both sides', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5, loss: 1, resetOnLoss: true })
    const { a, gotA, gotB } = await pair(net)
    await a.send(new Uint8Array([1]))
    await clock.advance(10)
    expect(net.connected('a', 'b')).toBe(false)
    expect(net.stats.linkResets).toBe(1)
    expect(gotA).toEqual(['closed: connection reset'])
    expect(gotB).toEqual(['closed: connection reset'])
    await expect(a.send(new Uint8Array([2]))).rejects.toMatchObject({ name: 'PeerUnavailableError' })
  })

  it('a crashed transport loses its frames in flight and its id can start again', async () => {
    const clock = createVirtualClock()
    const net = createMemoryNetwork({ timers: clock, latency: () => 5 })
    const { b, gotA } = await pair(net)
    await b.send(new Uint8Array([7]))
    net.crash('a')
    await clock.advance(10)
    expect(gotA).toEqual(['closed: connection reset'])
    const again: Array<number | string> = []
    await net.transport('a').start({ onChannel: () => handler(again) })
    expect(net.connected('a', 'b')).toBe(true)
  })
})
