/**
 * Compliance suite for `Transport` implementations. Run it from a vitest file:
 *
 *   runTransportTests('memory', async () => { ...; return { a, b, connect, cleanup } })
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Channel, ChannelHandler, Transport } from '../transport.js'
import { waitFor } from './wait.js'

export interface TransportPair {
  a: Transport
  b: Transport
  /** Make `a` and `b` (both started) open a channel; for self-discovering transports, wait for it. */
  connect: () => Promise<void>
  /** Cut the link from outside (optional: a network failure rather than a close). */
  cut?: () => Promise<void>
  cleanup: () => Promise<void>
}

interface Recorder {
  channels: Channel[]
  frames: Uint8Array[]
  closes: Array<string | undefined>
  handler: { onChannel: (c: Channel) => ChannelHandler }
}

function recorder (): Recorder {
  const r: Recorder = {
    channels: [],
    frames: [],
    closes: [],
    handler: {
      onChannel (c) {
        r.channels.push(c)
        return { onFrame: f => { r.frames.push(f.slice()) }, onClose: reason => { r.closes.push(reason) } }
      }
    }
  }
  return r
}

export function runTransportTests (name: string, setup: () => Promise<TransportPair>): void {
  describe(`Transport compliance: ${name}`, () => {
    let pair: TransportPair | undefined
    afterEach(async () => {
      await pair?.cleanup()
      pair = undefined
    })

    async function started (): Promise<{ p: TransportPair, ra: Recorder, rb: Recorder }> {
      const p = await setup()
      pair = p
      const ra = recorder()
      const rb = recorder()
      await p.a.start(ra.handler)
      await p.a.start(ra.handler) // idempotent
      await p.b.start(rb.handler)
      await p.connect()
      await waitFor(() => ra.channels.length > 0 && rb.channels.length > 0, { message: 'channels on both sides' })
      return { p, ra, rb }
    }

    it('opens one channel per side, naming the remote peer', async () => {
      const { p, ra, rb } = await started()
      expect(ra.channels.map(c => c.remoteId)).toEqual([p.b.localId])
      expect(rb.channels.map(c => c.remoteId)).toEqual([p.a.localId])
      // connecting again does not open a second channel
      await p.connect()
      await p.b.connect?.(p.a.localId)
      const [ca] = ra.channels
      await ca?.send(new Uint8Array([1]))
      await waitFor(() => rb.frames.length === 1)
      expect(ra.channels.length).toBe(1)
      expect(rb.channels.length).toBe(1)
    })

    it('delivers frames whole and in order, both ways, small and large', async () => {
      const { ra, rb } = await started()
      const [ca] = ra.channels
      const [cb] = rb.channels
      const sizes = [0, 1, 100, 70_000, 512 * 1024]
      const sent: Uint8Array[] = []
      for (let i = 0; i < 500; i++) {
        const size = sizes[i % sizes.length] as number
        const f = new Uint8Array(size)
        for (let j = 0; j < size; j += 997) f[j] = (i + j) & 0xff
        if (size > 0) f[0] = i & 0xff
        sent.push(f)
      }
      await Promise.all(sent.map(f => ca?.send(f)))
      await cb?.send(new Uint8Array([7, 7, 7]))
      await waitFor(() => rb.frames.length === sent.length && ra.frames.length === 1, { timeoutMs: 30_000, message: 'all frames' })
      const same = (x: Uint8Array | undefined, y: Uint8Array | undefined): boolean =>
        x !== undefined && y !== undefined && x.length === y.length && Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length))
      for (let i = 0; i < sent.length; i++) expect(same(rb.frames[i], sent[i]), `frame ${i}`).toBe(true)
      expect(ra.frames[0]).toEqual(new Uint8Array([7, 7, 7]))
    })

    it('a close on one side reaches the other, and later sends reject', async () => {
      const { ra, rb } = await started()
      const [ca] = ra.channels
      const [cb] = rb.channels
      await ca?.send(new Uint8Array([1, 2, 3]))
      ca?.close('done here')
      await waitFor(() => ra.closes.length === 1 && rb.closes.length === 1, { message: 'close on both sides' })
      expect(rb.frames[0]).toEqual(new Uint8Array([1, 2, 3]))
      await expect(cb?.send(new Uint8Array([4]))).rejects.toMatchObject({ name: 'PeerUnavailableError' })
      await expect(ca?.send(new Uint8Array([4]))).rejects.toMatchObject({ name: 'PeerUnavailableError' })
    })

    it('a cut link closes both sides; the peers can connect again', async () => {
      const { p, ra, rb } = await started()
      if (p.cut === undefined) return
      await p.cut()
      await waitFor(() => ra.closes.length === 1 && rb.closes.length === 1, { message: 'close after cut', timeoutMs: 20_000 })
      await p.connect()
      await waitFor(() => ra.channels.length === 2 && rb.channels.length === 2, { message: 'second channels', timeoutMs: 20_000 })
      await ra.channels[1]?.send(new Uint8Array([9]))
      await waitFor(() => rb.frames.length === 1)
      expect(rb.frames[0]).toEqual(new Uint8Array([9]))
    })

    it('stop closes channels and is idempotent', async () => {
      const { p, ra, rb } = await started()
      await p.a.stop()
      await p.a.stop()
      await waitFor(() => ra.closes.length === 1 && rb.closes.length === 1, { message: 'close after stop' })
    })
  })
}
