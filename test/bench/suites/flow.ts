/**
 * One fast writer, one slow peer (and a fast one): what the writer keeps waiting for the slow peer,
 * with and without flow control, and how long the slow peer takes to catch up after the burst.
 * Scenario in test/sim/flow.ts: 3000 edits of ~1.8 KB (about 5 MiB), one per virtual ms, 4 documents;
 * the link to the slow peer carries 20 KB/s, 5 ms latency; anti-entropy periodic rounds off. The
 * burst is several times outbox + window, so "off" grows with it while "on" levels off.
 */
import { fastWriterSlowPeer } from '../../sim/flow.js'
import type { Table } from '../run.js'

export async function run (): Promise<Table[]> {
  const cases = [
    { label: 'off', flowControl: false },
    { label: 'on, outbox 256 KiB, max window 512 KiB', flowControl: true, outboxBytes: 256 * 1024, maxWindow: 512 * 1024 },
    { label: 'on, defaults (outbox 1 MiB, max window 4 MiB)', flowControl: true }
  ]
  const rows: Array<Array<string | number>> = []
  for (const c of cases) {
    const r = await fastWriterSlowPeer(c)
    rows.push([c.label, Math.round(r.burstBytes / 1024), Math.round(r.peakWaitingBytes / 1024), Math.round(r.slowLinkBytes / 1024),
      (r.catchUpMs / 1000).toFixed(1), r.congestions, r.outboxOverflows, r.fastPeerConverged ? 'yes' : 'no'])
  }
  return [{
    title: 'Flow control: one fast writer, one slow peer (20 KB/s)',
    columns: ['flow control', 'burst KiB', 'peak waiting KiB', 'sent on slow link KiB', 'catch-up s (virtual)', 'window cuts', 'outbox overflows', 'fast peer kept up'],
    rows,
    notes: [
      'peak waiting: the most bytes the writer held for the slow peer at any sampled instant (channel backlog + held-back updates)',
      'catch-up: virtual time from the end of the burst until the slow peer held every edit; an overflowing outbox is replaced by one anti-entropy exchange'
    ]
  }]
}
