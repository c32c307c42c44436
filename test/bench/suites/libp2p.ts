/**
 * Hearsay over real libp2p (TCP + Noise + yamux on 127.0.0.1): live update latency, small-update
 * throughput, and the digest exchange on reconnect for 100 / 1,000 / 10,000 documents.
 */
import { createRandom } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createHearsayNode } from '@hearsay/libp2p'
import type { HearsayLibp2pNode } from '@hearsay/libp2p'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type * as Y from 'yjs'
import type { Table } from '../run.js'

const here = dirname(fileURLToPath(import.meta.url))

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

/** Type THROUGHPUT_UPDATES one-character inserts over THROUGHPUT_DOCS documents on `a`, yielding every 1,000. */
async function typeUpdates (a: HearsayLibp2pNode): Promise<number> {
  const rng = createRandom(3)
  const src: Y.Doc[] = []
  for (let i = 0; i < THROUGHPUT_DOCS; i++) src.push(await a.open(`tp/${i}`))
  const t0 = performance.now()
  for (let i = 0; i < THROUGHPUT_UPDATES; i++) {
    const d = src[rng.int(src.length)] as Y.Doc
    d.getText('t').insert(0, 'y')
    // let the engine batch what was typed in this slice of time, as an app's event loop would
    if (i % 1000 === 999) await new Promise(resolve => setImmediate(resolve))
  }
  return performance.now() - t0
}

/** Both nodes in this process: every update costs Yjs twice on one thread. */
async function inProcess (): Promise<Array<string | number>> {
  const p = await pair(false)
  const dst: Y.Doc[] = []
  for (let i = 0; i < THROUGHPUT_DOCS; i++) dst.push(await p.b.open(`tp/${i}`))
  const received = (): number => dst.reduce((s, d) => s + d.getText('t').length, 0)
  const m0 = p.a.metrics()
  const t0 = performance.now()
  const typedMs = await typeUpdates(p.a)
  await waitFor(() => received() === THROUGHPUT_UPDATES, { timeoutMs: 60_000, intervalMs: 2, message: 'all updates applied on B' })
  const ms = performance.now() - t0
  const m = p.a.metrics()
  const row = ['one process (A and B share a thread)', THROUGHPUT_UPDATES, ms, Math.round(THROUGHPUT_UPDATES / (ms / 1000)), m.messagesSent - m0.messagesSent, m.bytesSent - m0.bytesSent, typedMs]
  await p.stop()
  return row
}

/** B in a child process, as on a second device: sender and receiver each have a core. */
async function twoProcesses (): Promise<Array<string | number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', join(here, '..', 'throughput-child.ts')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines: Array<Record<string, unknown>> = []
  createInterface({ input: child.stdout }).on('line', l => { lines.push(JSON.parse(l) as Record<string, unknown>) })
  const next = async (key: string): Promise<Record<string, unknown>> => {
    await waitFor(() => {
      if (child.exitCode !== null && !lines.some(l => key in l)) throw new Error(`throughput child exited (${child.exitCode}) before "${key}"`)
      return lines.some(l => key in l)
    }, { timeoutMs: 60_000, intervalMs: 1, message: `child: ${key}` })
    return lines.find(l => key in l) as Record<string, unknown>
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  try {
    const { addrs } = await next('addrs') as { addrs: string[] }
    const a = await createHearsayNode({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, antiEntropy: { enabled: false }, bootstrap: addrs })
    await waitFor(() => a.sync.channels().length === 1 && a.peers().some(p => p.connected), { timeoutMs: 20_000, message: 'channel to the child' })
    child.stdin.write(JSON.stringify({ expect: THROUGHPUT_UPDATES, docs: THROUGHPUT_DOCS }) + '\n')
    await next('watching')
    const m0 = a.metrics()
    const t0 = performance.now()
    const typedMs = await typeUpdates(a)
    await next('done')
    const ms = performance.now() - t0
    const m = a.metrics()
    const row = ['two processes (B as a second device)', THROUGHPUT_UPDATES, ms, Math.round(THROUGHPUT_UPDATES / (ms / 1000)), m.messagesSent - m0.messagesSent, m.bytesSent - m0.bytesSent, typedMs]
    await a.stop()
    return row
  } finally {
    clearTimeout(timer)
    child.kill('SIGKILL')
  }
}

async function throughput (): Promise<Table> {
  const rows = [await inProcess(), await twoProcesses()]
  const rate = rows[1]?.[3] as number
  return {
    title: 'Small-update throughput over libp2p',
    columns: ['setup', 'updates', 'total ms', 'updates/s', 'frames sent by A', 'frame bytes sent by A', 'edit loop ms'],
    rows,
    notes: [
      `One-character inserts spread over ${THROUGHPUT_DOCS} documents on A, yielding to the event loop every 1,000 edits; timed until every one is applied on B. The engine takes each document's edits of a tick as one update and sends the tick's updates in one frame.`,
      'The edit loop includes the engine\'s own work per edit on A (noting the transaction; a run of 1,024 is encoded, queued for storage and batched for live at once).',
      `target ≥ 50,000 updates/s between two devices (two processes): ${rate >= 50_000 ? 'met' : 'MISSED'}`
    ]
  }
}

const BURSTS = [12_500, 25_000, 50_000]
/** Runs per burst size; each row is the median run. */
const BURST_RUNS = 3

/**
 * One document, N one-character inserts typed in one turn of the event loop (no yielding), timed
 * until B has applied them all: doubling N should roughly double the time (no superlinear step
 * on the live path: batches and merges are bounded).
 */
async function bursts (): Promise<Table> {
  const rows: Table['rows'] = []
  let previous: number | undefined
  for (const n of BURSTS) {
    const runs: Array<{ typed: number, ms: number, frames: number }> = []
    for (let run = 0; run < BURST_RUNS; run++) {
      const p = await pair(false)
      const da = await p.a.open('burst')
      const db = await p.b.open('burst')
      const t0 = performance.now()
      for (let i = 0; i < n; i++) da.getText('t').insert(0, 'z')
      const typed = performance.now() - t0
      await waitFor(() => db.getText('t').length === n, { timeoutMs: 120_000, intervalMs: 2, message: `burst of ${n} applied on B` })
      runs.push({ typed, ms: performance.now() - t0, frames: p.a.metrics().messagesSent })
      await p.stop()
    }
    const { typed, ms, frames } = runs.sort((x, y) => x.ms - y.ms)[Math.floor(BURST_RUNS / 2)] as { typed: number, ms: number, frames: number }
    rows.push([n, typed, ms, Math.round(n / (ms / 1000)), frames, previous === undefined ? '-' : (ms / previous).toFixed(2)])
    previous = ms
  }
  return {
    title: 'A burst typed in one turn, one document, over libp2p: time as the burst doubles',
    columns: ['edits', 'edit loop ms', 'ms until all applied on B', 'updates/s', 'frames sent by A', 'time ÷ previous row'],
    rows,
    notes: [
      'One-character inserts into one document on A with no yield between them (a paste, a script), then timed until B\'s copy has them all; each row is the median of 3 runs, each on a new pair of nodes.',
      'A document\'s transactions are encoded as one update every 1,024 (`CHANGE_RUN_MAX_TRANSACTIONS`), live batches go out every 1,024 updates (or 256 KiB) and merge at most 64 updates of a document at a time, so each step is bounded work: doubling the burst should about double the time (target ≤ 2.2×).'
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
  return [await latency(), await throughput(), await bursts(), await digests()]
}
