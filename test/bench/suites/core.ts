/**
 * Digest exchange cost against the naive per-document handshake that y-websocket runs on connect
 * (y-protocols sync step 1 and step 2 for every document, both ways), over the in-memory network.
 */
import { createMemoryNetwork, createNode, createRandom, type HearsayNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as sync from 'y-protocols/sync'
import * as Y from 'yjs'
import type { Table } from '../run.js'

const SIZES = [100, 1000, 10_000]

function edit (doc: Y.Doc, rng: ReturnType<typeof createRandom>): void {
  const t = doc.getText('t')
  t.insert(rng.int(t.length + 1), `note ${rng.int(1e6)} `)
  if (t.length > 10 && rng.next() < 0.5) t.delete(rng.int(t.length - 4), 3)
}

/** Initial syncs timed per size, each to a new empty receiver: short runs need more for a stable median. */
const repeatsFor = (n: number): number => n <= 100 ? 15 : n <= 1000 ? 7 : 3
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number

interface Pair {
  a: HearsayNode
  b: HearsayNode
  connect: () => Promise<void>
  cut: () => Promise<void>
  /** A new empty node connected to `a` (for repeated initial syncs). */
  fresh: (id: string) => Promise<HearsayNode>
  stop: () => Promise<void>
}

async function pair (): Promise<Pair> {
  const net = createMemoryNetwork({ seed: 1, autoConnect: false })
  const opts = { antiEntropy: { enabled: false }, retryQueueBytes: 0, maxLoadedDocs: 100_000 }
  const a = createNode({ id: 'a', transport: net.transport('a'), seed: 1, ...opts })
  const b = createNode({ id: 'b', transport: net.transport('b'), seed: 2, ...opts })
  await a.start()
  await b.start()
  const extra: HearsayNode[] = []
  return {
    a,
    b,
    fresh: async (id) => {
      const node = createNode({ id, transport: net.transport(id), seed: 3 + extra.length, ...opts })
      extra.push(node)
      await node.start()
      net.connect('a', id)
      await waitFor(() => node.peers().some(p => p.connected))
      return node
    },
    connect: async () => {
      net.connect('a', 'b')
      await waitFor(() => a.peers().some(p => p.id === 'b' && p.connected))
    },
    cut: async () => {
      net.disconnect('a', 'b')
      await waitFor(() => !a.peers().some(p => p.id === 'b' && p.connected))
    },
    stop: async () => { for (const n of [a, b, ...extra]) await n.stop() } // stop() is idempotent
  }
}

/**
 * y-websocket's connect: each side sends step 1 for every doc, the other answers with step 2.
 * `left` may be a function creating the receiving docs, timed with the handshake.
 */
function naiveHandshake (leftDocs: Y.Doc[] | (() => Y.Doc[]), right: Y.Doc[]): { ms: number, ab: number, ba: number, left: Y.Doc[] } {
  const t0 = performance.now()
  const left = typeof leftDocs === 'function' ? leftDocs() : leftDocs
  let ab = 0
  let ba = 0
  for (let i = 0; i < left.length; i++) {
    const l = left[i] as Y.Doc
    const r = right[i] as Y.Doc
    for (const [from, to, dir] of [[l, r, 'ab'], [r, l, 'ba']] as const) {
      const step1 = encoding.createEncoder()
      sync.writeSyncStep1(step1, from)
      const s1 = encoding.toUint8Array(step1)
      const reply = encoding.createEncoder()
      sync.readSyncMessage(decoding.createDecoder(s1), reply, to, 'naive')
      const s2 = encoding.toUint8Array(reply)
      sync.readSyncMessage(decoding.createDecoder(s2), encoding.createEncoder(), from, 'naive')
      if (dir === 'ab') { ab += s1.length; ba += s2.length } else { ba += s1.length; ab += s2.length }
    }
  }
  return { ms: performance.now() - t0, ab, ba, left }
}

export async function run (): Promise<Table[]> {
  const rows: Table['rows'] = []
  const checks: string[] = []
  // warm-up: JIT-compile both code paths before anything is timed (one pass is not enough)
  for (let k = 0; k < 5; k++) await measure(200, [], [])
  for (const n of SIZES) await measure(n, rows, checks)
  return [{
    title: 'Collection sync vs per-document handshake (in-memory network)',
    columns: ['scenario', 'docs', 'system', 'time ms', 'bytes sent', 'bytes received', 'bytes/doc'],
    rows,
    notes: [
      'hearsay: one `syncWith` (push-pull) between two nodes over the in-memory network, timed end to end including message scheduling.',
      'naive: y-protocols sync step 1 + step 2 for every document in both directions, as y-websocket does on connect; direct calls, no transport, no storage, no validation; for the initial sync the receiving Y.Docs are created inside the timed region, as Hearsay creates them.',
      'hearsay initial sync includes validating every update before applying it, storing it, and fingerprinting every received document.',
      `Both paths run five times on 200 documents before timing; initial sync times are the median of ${SIZES.map(repeatsFor).join(' / ')} runs for N = ${SIZES.join(' / ')}, each to a new empty receiver.`,
      ...checks
    ]
  }]
}

async function measure (n: number, rows: Table['rows'], checks: string[]): Promise<void> {
  const rng = createRandom(n)
  // --- Hearsay
  const p = await pair()
  for (let i = 0; i < n; i++) {
    edit(await p.a.open(`doc/${i}`), rng)
    p.a.close(`doc/${i}`)
  }
  await p.a.flush()
  await p.connect()
  let t0 = performance.now()
  const initial = await p.b.syncWith('a')
  p.b.digest() // fingerprints of received documents are computed lazily: count them here
  const initialRuns = [performance.now() - t0]
  for (let k = 1; k < repeatsFor(n); k++) {
    const c = await p.fresh(`c${k}`)
    t0 = performance.now()
    await c.syncWith('a')
    c.digest()
    initialRuns.push(performance.now() - t0)
    await c.stop()
  }
  const initialMs = median(initialRuns)
  t0 = performance.now()
  const idle = await p.b.syncWith('a')
  const idleMs = performance.now() - t0
  await p.cut()
  const changed = new Set<number>()
  while (changed.size < 10) changed.add(rng.int(n))
  let diffPayload = 0
  for (const i of changed) {
    const da = await p.a.open(`doc/${i}`)
    const sv = Y.encodeStateVector(await p.b.open(`doc/${i}`))
    edit(da, rng)
    diffPayload += Y.encodeStateAsUpdate(da, sv).length
  }
  await p.a.flush()
  await p.connect()
  t0 = performance.now()
  const d10 = await p.b.syncWith('a')
  const d10Ms = performance.now() - t0
  await p.stop()

  // --- naive, on identical content
  const src = Array.from({ length: n }, (_, i) => new Y.Doc({ guid: `doc/${i}` }))
  const r2 = createRandom(n)
  for (const d of src) edit(d, r2)
  const makeLeft = (): Y.Doc[] => Array.from({ length: n }, (_, i) => new Y.Doc({ guid: `doc/${i}` }))
  const nRuns = Array.from({ length: repeatsFor(n) }, () => naiveHandshake(makeLeft, src))
  const nInitial = { ...nRuns[0] as ReturnType<typeof naiveHandshake>, ms: median(nRuns.map(r => r.ms)) }
  const dst = nInitial.left
  const nIdle = naiveHandshake(dst, src)
  for (const i of changed) edit(src[i] as Y.Doc, r2)
  const nD10 = naiveHandshake(dst, src)

  const add = (scenario: string, system: string, ms: number, sent: number, received: number): void => {
    rows.push([scenario, n, system, ms, sent, received, (sent + received) / n])
  }
  add('initial sync to empty node', 'hearsay', initialMs, initial.bytesSent, initial.bytesReceived)
  add('initial sync to empty node', 'naive y-protocols', nInitial.ms, nInitial.ab, nInitial.ba)
  add('idle reconnect', 'hearsay', idleMs, idle.bytesSent, idle.bytesReceived)
  add('idle reconnect', 'naive y-protocols', nIdle.ms, nIdle.ab, nIdle.ba)
  add('10 changed docs', 'hearsay', d10Ms, d10.bytesSent, d10.bytesReceived)
  add('10 changed docs', 'naive y-protocols', nD10.ms, nD10.ab, nD10.ba)
  const idleBytes = idle.bytesSent + idle.bytesReceived
  const d10Bytes = d10.bytesSent + d10.bytesReceived
  checks.push(`N=${n}: idle ${idleBytes} B (target ≤ 1024: ${idleBytes <= 1024 ? 'met' : 'MISSED'}); ` +
    `10 changed ${d10Bytes} B vs diff payload ${diffPayload} B + 8 KB (${d10Bytes <= diffPayload + 8192 ? 'met' : 'MISSED'}), ${d10.docsReceived} docs travelled; ` +
    `initial sync ${(initialMs / nInitial.ms).toFixed(2)}× naive time (target ≤ 1.5×: ${initialMs <= 1.5 * nInitial.ms ? 'met' : 'MISSED'})`)
}
