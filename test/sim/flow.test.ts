import { describe, expect, it } from 'vitest'
import { fastWriterSlowPeer } from './flow.js'

describe('flow control: one fast writer, one slow peer', () => {
  it('keeps what waits for the slow peer bounded, and the slow peer catches up after the burst', async () => {
    const on = await fastWriterSlowPeer({ flowControl: true, edits: 3000, outboxBytes: 128 * 1024 })
    const off = await fastWriterSlowPeer({ flowControl: false, edits: 3000 })
    // window + outbox + one document's diff in flight, against the whole burst without it
    expect(on.peakWaitingBytes).toBeLessThan(off.peakWaitingBytes / 2)
    expect(off.peakWaitingBytes).toBeGreaterThan(0.8 * off.burstBytes)
    expect(on.congestions).toBeGreaterThan(0)
    expect(on.outboxOverflows).toBeGreaterThan(0)
    for (const r of [on, off]) {
      expect(r.catchUpMs).toBeLessThan(600_000)
      expect(r.fastPeerConverged).toBe(true)
    }
  })
})
