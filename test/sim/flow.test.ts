import { MAX_FRAME_BYTES } from '@hearsay/core'
import { describe, expect, it } from 'vitest'
import { fastWriterSlowPeer } from './flow.js'

describe('flow control: one fast writer, one slow peer', () => {
  it('keeps what waits for the slow peer under outbox + window while a burst several times larger goes out, and the slow peer catches up', async () => {
    const outboxBytes = 256 * 1024
    const maxWindow = 512 * 1024
    const on = await fastWriterSlowPeer({ flowControl: true, outboxBytes, maxWindow })
    const off = await fastWriterSlowPeer({ flowControl: false })
    expect(on.burstBytes).toBe(off.burstBytes)
    expect(on.burstBytes).toBeGreaterThan(4 * (outboxBytes + maxWindow))
    // without flow control the whole burst waits; with it, the outbox, the window and one frame at most
    expect(off.peakWaitingBytes).toBeGreaterThan(0.9 * off.burstBytes)
    expect(on.peakWaitingBytes).toBeLessThanOrEqual(outboxBytes + maxWindow + MAX_FRAME_BYTES)
    expect(on.congestions).toBeGreaterThan(0)
    expect(on.outboxOverflows).toBeGreaterThan(0)
    for (const r of [on, off]) {
      expect(r.catchUpMs).toBeLessThan(600_000)
      expect(r.fastPeerConverged).toBe(true)
    }
  }, 60_000)
})
