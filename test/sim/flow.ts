/**
 * One fast writer, one slow peer (and one fast peer), on a virtual clock: the link from the writer
 * to the slow peer carries `slowBytesPerMs`; the writer makes a burst of edits faster than that.
 * Measures the most bytes the writer ever had waiting for the slow peer (channel backlog plus
 * updates held back by flow control), the bytes that crossed the slow link, and how long after
 * the burst the slow peer held everything.
 *
 * The default burst (about 5 MiB) is several times the default outbox plus a cut window, so
 * without flow control what waits grows with the burst, and with it levels off near
 * `outboxBytes` + window (plus one frame in flight).
 */
import { createMemoryNetwork, createNode, createRandom, createVirtualClock, type HearsayNode, type Transport } from '@hearsay/core'

/** The slow link needs minutes for a burst of megabytes; an exchange may take that long. */
const EXCHANGE_TIMEOUT_MS = 900_000

export interface FlowRun {
  flowControl: boolean
  burstBytes: number
  /** Most bytes waiting for the slow peer at the writer at any sampled instant. */
  peakWaitingBytes: number
  /** Bytes that crossed the link to the slow peer. */
  slowLinkBytes: number
  /** Virtual ms from the end of the burst until the slow peer held everything. */
  catchUpMs: number
  congestions: number
  outboxOverflows: number
  /** The fast peer kept up with the writer during the burst (checked every 100 edits). */
  fastPeerConverged: boolean
}

export interface FlowScenario {
  flowControl: boolean
  /** @default FLOW_OUTBOX_BYTES (1 MiB) */
  outboxBytes?: number
  /** @default FLOW_MAX_WINDOW (4 MiB) */
  maxWindow?: number
  /** Edits in the burst, one per virtual ms. @default 3000 */
  edits?: number
  /** Mean bytes of text per edit (± 1/3). @default 1800: a burst of about 5 MiB */
  editBytes?: number
  /** What the link to the slow peer carries, in bytes per ms. @default 20 */
  slowBytesPerMs?: number
  seed?: number
}

export async function fastWriterSlowPeer (o: FlowScenario): Promise<FlowRun> {
  const edits = o.edits ?? 3000
  const editBytes = o.editBytes ?? 1800
  const slow = o.slowBytesPerMs ?? 20
  const rng = createRandom(o.seed ?? 1)
  const clock = createVirtualClock()
  const net = createMemoryNetwork({
    timers: clock,
    latency: () => 5,
    bandwidth: (from, to) => from === 'writer' && to === 'slow' ? slow : undefined
  })
  let clientId = 1
  const toSlow = { sent: 0, waiting: 0 }
  const nodes: HearsayNode[] = ['writer', 'slow', 'fast'].map((id, i) => createNode({
    id,
    transport: id === 'writer' ? watch(net.transport(id), 'slow', toSlow) : net.transport(id),
    timers: clock,
    seed: i + 1,
    newClientId: () => clientId++,
    // the repair exchange after an overflow carries most of the burst over the slow link: minutes
    antiEntropy: { enabled: false, timeoutMs: EXCHANGE_TIMEOUT_MS },
    cluster: { enabled: false },
    flowControl: { enabled: o.flowControl, outboxBytes: o.outboxBytes, maxWindow: o.maxWindow }
  }))
  const [writer, slowPeer, fastPeer] = nodes as [HearsayNode, HearsayNode, HearsayNode]
  for (const n of nodes) await n.start()
  await clock.advance(100)
  const docs = await Promise.all([0, 1, 2, 3].map(async i => await writer.open(`doc/${i}`)))
  let burstBytes = 0
  let peak = 0
  const slowWaiting = (): number => writer.metrics().flowHeldBytes + toSlow.waiting
  let fastPeerConverged = true
  // a burst: an edit of ~`editBytes` every ms (1.8 MB/s by default) against a slow link of `slow` KB/s
  const spread = Math.floor(editBytes / 3)
  for (let i = 0; i < edits; i++) {
    const doc = docs[rng.int(docs.length)] as (typeof docs)[number]
    const text = 'x'.repeat(editBytes - spread + rng.int(2 * spread + 1))
    doc.getText('t').insert(rng.int(doc.getText('t').length + 1), text)
    burstBytes += text.length
    await clock.advance(1)
    peak = Math.max(peak, slowWaiting())
    if (i % 100 === 99 && !sameRoot(writer, fastPeer)) {
      await clock.advance(20)
      if (!sameRoot(writer, fastPeer)) fastPeerConverged = false
    }
  }
  const burstEnd = clock.now()
  while (!sameRoot(writer, slowPeer) && clock.now() - burstEnd < EXCHANGE_TIMEOUT_MS) {
    await clock.advance(50)
    peak = Math.max(peak, slowWaiting())
  }
  const m = writer.metrics()
  const run: FlowRun = {
    flowControl: o.flowControl,
    burstBytes,
    peakWaitingBytes: peak,
    slowLinkBytes: toSlow.sent,
    catchUpMs: clock.now() - burstEnd,
    congestions: m.flowCongestions,
    outboxOverflows: m.flowOutboxOverflows,
    fastPeerConverged
  }
  for (const n of nodes) await n.stop()
  return run
}

function sameRoot (a: HearsayNode, b: HearsayNode): boolean {
  return Buffer.from(a.digest().root).equals(Buffer.from(b.digest().root))
}

/** Count the bytes sent to `peer`, and those the transport has not taken yet. */
function watch (t: Transport, peer: string, counts: { sent: number, waiting: number }): Transport {
  return {
    localId: t.localId,
    start: async handler => {
      await t.start({
        onChannel (channel) {
          if (channel.remoteId !== peer) return handler.onChannel(channel)
          return handler.onChannel({
            remoteId: channel.remoteId,
            close: reason => { channel.close(reason) },
            async send (frame) {
              counts.sent += frame.length
              counts.waiting += frame.length
              try {
                await channel.send(frame)
              } finally {
                counts.waiting -= frame.length
              }
            }
          })
        }
      })
    },
    stop: async () => { await t.stop() }
  }
}
