/**
 * 1,000 documents crossing sites: a member joins and takes 1,000 documents (1 KiB of text each)
 * from a member at another site, directly over TCP or through a Hearsay relay, on loopback. The
 * relay has no grant in the swarm's roster, so it holds no document: everything crosses the
 * relayed connection. Relayed rows with the default pacing (1 MiB/s per member) and without.
 */
import { parseGrant } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createHearsayNode, generateSwarmKey } from '@hearsay/libp2p'
import type { HearsayLibp2pNode, HearsayNodeOptions } from '@hearsay/libp2p'
import type { Table } from '../run.js'

const DOCS = 1000
const TEXT = 'x'.repeat(1024)

interface Result { path: string, channelMs: number, syncMs: number, bytes: number, pathSeen: string }

async function crossing (mode: 'direct' | 'relay' | 'relay, pacing off'): Promise<Result> {
  const swarmKey = generateSwarmKey()
  const nodes: HearsayLibp2pNode[] = []
  const make = async (o: HearsayNodeOptions): Promise<HearsayLibp2pNode> => {
    const n = await createHearsayNode({ swarmKey, mdns: false, listen: ['/ip4/127.0.0.1/tcp/0'], maxLoadedDocs: 2 * DOCS, ...o })
    nodes.push(n)
    return n
  }
  try {
    const relayed = mode !== 'direct'
    const relay = relayed ? await make({ relay: true }) : undefined
    const behind = relay !== undefined ? { listen: [], relays: [relay.multiaddrs()[0]!] } : {}
    const sync = mode === 'relay, pacing off' ? { relayPaceBytesPerSec: Infinity } : {}
    const a = await make({ ...behind, sync })
    const genesis = await a.trust.createSwarm()
    const b = await make({ ...behind, sync, trust: { genesis }, start: false, ...(relayed ? {} : { bootstrap: a.multiaddrs() }) })
    await a.trust.grant(b.peerId, [parseGrant('*:write')])
    for (let i = 0; i < DOCS; i++) {
      const d = await a.open(`site1/${i}`)
      d.getText('t').insert(0, TEXT)
      a.close(`site1/${i}`)
    }
    await a.flush()
    if (relay !== undefined) await waitFor(() => a.status().relay.relays[0]?.reserved === true, { timeoutMs: 30_000, message: 'a reserved' })
    const t0 = performance.now()
    await b.start()
    await waitFor(() => b.sync.channels().some(c => c.peer === a.peerId), { timeoutMs: 60_000, intervalMs: 5, message: 'channel a-b' })
    const t1 = performance.now()
    await waitFor(() => b.docs().length >= DOCS, { timeoutMs: 120_000, intervalMs: 5, message: `${DOCS} docs at b` })
    const t2 = performance.now()
    const ch = b.sync.channels().find(c => c.peer === a.peerId)
    const bytes = relayed
      ? b.status().relay.bytesSent + b.status().relay.bytesReceived
      : (ch?.bytesSent ?? 0) + (ch?.bytesReceived ?? 0)
    if (relay !== undefined && relay.docs().length > 0) throw new Error('the relay holds documents: the bench would measure it as a hub')
    return { path: mode, channelMs: t1 - t0, syncMs: t2 - t1, bytes, pathSeen: ch?.path ?? '?' }
  } finally {
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
  }
}

const RUNS = 3

/** The run with the median sync time of RUNS, after one run to warm up. */
async function median (mode: Parameters<typeof crossing>[0]): Promise<Result> {
  const runs: Result[] = []
  for (let i = 0; i < RUNS; i++) runs.push(await crossing(mode))
  return runs.sort((x, y) => x.syncMs - y.syncMs)[Math.floor(RUNS / 2)]!
}

export async function run (): Promise<Table[]> {
  await crossing('direct') // warm-up: the first run pays for JIT compilation
  const direct = await median('direct')
  const rows: Array<Array<string | number>> = []
  for (const r of [direct, await median('relay'), await median('relay, pacing off')]) {
    rows.push([r.path, r.pathSeen, r.channelMs, r.syncMs, (r.bytes / 1024).toFixed(0), r.syncMs / direct.syncMs])
  }
  return [{
    title: `${DOCS.toLocaleString('en')} documents (1 KiB each) crossing sites: direct against a Hearsay relay (loopback)`,
    columns: ['path', 'status says', 'ms to a channel', 'ms to all documents', 'KiB on the channel', 'sync time ÷ direct'],
    rows,
    notes: [
      `Median of ${RUNS} runs each (by sync time), after a warm-up run.`,
      'A member holding the documents and one that joins; the relay has no grant, so it holds none and forwards the members\' connection. "ms to a channel" counts from starting the joining node: reservation, announcement and dial through the relay.',
      'KiB on the channel: Hearsay frames both ways on the joining member\'s channel, which is what crosses the relay in the relayed rows (the relay adds its own TCP, Noise and yamux framing on each leg).',
      'Pacing: a member sends through relays at most 1 MiB/s (burst 256 KiB) by default, so that one member\'s bulk sync leaves the relay\'s uplink to the others.'
    ]
  }]
}
