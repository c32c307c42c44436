/**
 * Hearsay over real libp2p (TCP + Noise + yamux on 127.0.0.1): live update latency, small-update
 * throughput, and the digest exchange on reconnect for 100 / 1,000 / 10,000 documents.
 */
import { createRandom } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createHearsayNode } from '@hearsay/libp2p'
import type { HearsayLibp2pNode } from '@hearsay/libp2p'
import type * as Y from 'yjs'
import type { Table } from '../run.js'

const LATENCY_SAMPLES = 1000
const THROUGHPUT_UPDATES = 50_000
const THROUGHPUT_DOCS = 100
const SIZES = [100, 1000, 10_000]

interface Pair { a: HearsayLibp2pNode, b: HearsayLibp2pNode, reconnect: () => Promise<number>, cut: () => Promise<void>, stop: () => Promise<void> }

async function pair (antiEntropy: boolean): Promise<Pair> {
  const opts = {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false as const,
    antiEntropy: antiEntropy ? { intervalMs: 1000 } : { enabled: false },
    maxLoadedDocs: 100_000,
    retryQueueBytes: 0
  }
  const a = await createHearsayNode(opts)
  const b = await createHearsayNode(opts)
  const channel = async (): Promise<void> => {
    await waitFor(() => a.sync.channels().length === 1 && b.sync.channels().length === 1 && a.peers().some(p => p.connected) && b.peers().some(p => p.connected), { timeoutMs: 20_000, message: 'libp2p channel' })
  }
  const reconnect = async (): Promise<number> => {
    const t0 = performance.now()
    await b.libp2p.dial(a.libp2p.getMultiaddrs())
    await b.sync.transport.connect?.(a.peerId)
    await channel()
    return performance.now() - t0
  }
  await reconnect()
  return {
    a,
    b,
    reconnect,
    cut: async () => {
      await b.libp2p.hangUp(a.libp2p.peerId)
      await waitFor(() => a.sync.channels().length === 0 && b.sync.channels().length === 0 && !a.peers().some(p => p.connected) && !b.peers().some(p => p.connected), { message: 'cut' })
    },
    stop: async () => { await a.stop(); await b.stop() }
  }
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

async function latency (): Promise<Table> {
  const p = await pair(false)
  const da = await p.a.open('latency')
  const db = await p.b.open('latency')
  const samples: number[] = []
  let arrived: (() => void) | undefined
  db.on('update', () => { arrived?.() })
  for (let i = 0; i < LATENCY_SAMPLES + 100; i++) {
    const t0 = performance.now()
    const got = new Promise<void>((resolve) => { arrived = resolve })
    da.getText('t').insert(0, 'x')
    await got
    if (i >= 100) samples.push(performance.now() - t0) // first 100: warm-up
  }
  await p.stop()
  samples.sort((x, y) => x - y)
  const p50 = percentile(samples, 0.5)
  const p99 = percentile(samples, 0.99)
  return {
    title: 'Live update latency over libp2p (loopback TCP, Noise, yamux)',
    columns: ['samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
    rows: [[samples.length, p50, percentile(samples, 0.9), p99, samples[samples.length - 1] as number]],
    notes: [
      'One-character insert on node A until the Y.Doc on node B has applied it; one edit in flight at a time, after 100 warm-up edits.',
      `targets: p50 ≤ 5 ms (${p50 <= 5 ? 'met' : 'MISSED'}), p99 ≤ 25 ms (${p99 <= 25 ? 'met' : 'MISSED'})`
    ]
  }
}

async function throughput (): Promise<Table> {
  const p = await pair(false)
  const rng = createRandom(3)
  const ids = Array.from({ length: THROUGHPUT_DOCS }, (_, i) => `tp/${i}`)
  const src: Y.Doc[] = []
  const dst: Y.Doc[] = []
  for (const id of ids) { src.push(await p.a.open(id)); dst.push(await p.b.open(id)) }
  const received = (): number => dst.reduce((s, d) => s + d.getText('t').length, 0)
  const ch0 = p.a.sync.channels()[0]
  const t0 = performance.now()
  for (let i = 0; i < THROUGHPUT_UPDATES; i++) {
    const d = src[rng.int(src.length)] as Y.Doc
    d.getText('t').insert(0, 'y')
    // let the engine batch what was typed in this slice of time, as an app's event loop would
    if (i % 1000 === 999) await new Promise(resolve => setImmediate(resolve))
  }
  const typedMs = performance.now() - t0
  await waitFor(() => received() === THROUGHPUT_UPDATES, { timeoutMs: 60_000, intervalMs: 2, message: 'all updates applied on B' })
  const ms = performance.now() - t0
  const ch = p.a.sync.channels()[0]
  const frames = (ch?.framesSent ?? 0) - (ch0?.framesSent ?? 0)
  const bytes = (ch?.bytesSent ?? 0) - (ch0?.bytesSent ?? 0)
  await p.stop()
  const rate = THROUGHPUT_UPDATES / (ms / 1000)
  return {
    title: 'Small-update throughput over libp2p',
    columns: ['updates', 'docs', 'total ms', 'updates/s', 'frames', 'bytes on the wire', 'edit loop ms'],
    rows: [[THROUGHPUT_UPDATES, THROUGHPUT_DOCS, ms, Math.round(rate), frames, bytes, typedMs]],
    notes: [
      'One-character inserts spread over 100 documents on A, yielding to the event loop every 1,000 edits; timed until every one is applied on B. The engine batches the updates of each tick into one frame.',
      `target ≥ 50,000 updates/s: ${rate >= 50_000 ? 'met' : 'MISSED'}`
    ]
  }
}

async function digests (): Promise<Table> {
  const rows: Table['rows'] = []
  for (const n of SIZES) {
    const rng = createRandom(n)
    const p = await pair(false)
    for (let i = 0; i < n; i++) {
      const d = await p.a.open(`doc/${i}`)
      d.getText('t').insert(0, `note ${rng.int(1e6)} `)
      p.a.close(`doc/${i}`)
    }
    await p.a.flush()
    let t0 = performance.now()
    const initial = await p.b.syncWith(p.a.peerId)
    const initialMs = performance.now() - t0
    await p.cut()
    const idleDial = await p.reconnect()
    t0 = performance.now()
    const idle = await p.b.syncWith(p.a.peerId)
    const idleMs = performance.now() - t0
    await p.cut()
    const changed = new Set<number>()
    while (changed.size < 10) changed.add(rng.int(n))
    for (const i of changed) (await p.a.open(`doc/${i}`)).getText('t').insert(0, 'changed ')
    await p.a.flush()
    const d10Dial = await p.reconnect()
    t0 = performance.now()
    const d10 = await p.b.syncWith(p.a.peerId)
    const d10Ms = performance.now() - t0
    await p.stop()
    rows.push([n, 'initial sync to empty node', '-', initialMs, initial.bytesSent + initial.bytesReceived, initial.docsReceived])
    rows.push([n, 'idle reconnect', idleDial, idleMs, idle.bytesSent + idle.bytesReceived, idle.docsReceived])
    rows.push([n, '10 changed of N', d10Dial, d10Ms, d10.bytesSent + d10.bytesReceived, d10.docsReceived])
  }
  return {
    title: 'Digest exchange over libp2p on reconnect',
    columns: ['docs', 'scenario', 'dial + channel ms', 'exchange ms', 'bytes (both ways)', 'docs received'],
    rows,
    notes: [
      'Two nodes on loopback; anti-entropy timers off so each number is one `syncWith` (push-pull). "dial + channel" is the libp2p dial, Noise and yamux handshakes and the Hearsay stream, after the previous connection was closed.',
      'Bytes are the engine\'s frame bytes (without the varint length prefix, Noise and yamux overhead).'
    ]
  }
}

export async function run (): Promise<Table[]> {
  return [await latency(), await throughput(), await digests()]
}
