/**
 * Trust: how fast a revocation shuts a device out, and what a roster costs an idle reconnect.
 * - **revocation**: rounds until every node refuses the revoked device (test/sim/revocation.ts),
 *   real nodes on the memory network and a virtual clock, with frame loss, against the rounds
 *   push-pull anti-entropy takes in theory.
 * - **idle reconnect**: bytes an admin sends when a reader of `notes/` reconnects with nothing
 *   changed, with 10,000 notes it shares and 10,000 private documents it does not, against the
 *   same documents in an unmanaged swarm.
 */
import { createMemoryNetwork, createNode, parseGrant, type HearsayNode, type NodeOptions } from '@hearsay/core'
import { createTestKeyring, waitFor } from '@hearsay/core/testing'
import { THEORY } from '../../sim/epidemic.js'
import { revocationRounds } from '../../sim/revocation.js'
import type { Table } from '../run.js'

const DOCS = 10_000

async function idleReconnect (managed: boolean): Promise<number> {
  const net = createMemoryNetwork({ seed: 3 })
  const keys = createTestKeyring()
  const opts = (id: string, genesis?: Uint8Array): NodeOptions => ({ id, transport: net.transport(id), trust: managed ? { crypto: keys.crypto, signer: keys.signer(id), genesis } : undefined, maxLoadedDocs: 100 })
  const admin = createNode(opts('admin'))
  await admin.start()
  const genesis = managed ? await admin.trust.createSwarm() : undefined
  if (managed) await admin.trust.grant('reader', [parseGrant('notes/:read')])
  for (let i = 0; i < DOCS; i++) {
    for (const id of [`notes/${i}`, `private/${i}`]) {
      const d = await admin.open(id)
      d.getText('t').insert(0, id)
      admin.close(id)
    }
  }
  await admin.flush()
  const reader: HearsayNode = createNode(opts('reader', genesis))
  await reader.start()
  const want = managed ? DOCS : 2 * DOCS
  await waitFor(() => reader.docs().length === want, { timeoutMs: 300_000, message: 'reader synced' })
  await admin.repairPass()
  net.disconnect('admin', 'reader')
  await waitFor(() => !admin.peers().some(p => p.connected), { message: 'disconnected' })
  const before = admin.metrics().bytesSent
  net.connect('admin', 'reader')
  await waitFor(() => admin.peers().some(p => p.connected && p.inSync), { message: 'in sync' })
  const bytes = admin.metrics().bytesSent - before
  await reader.stop()
  await admin.stop()
  return bytes
}

export async function run (): Promise<Table[]> {
  const rows: Array<Array<string | number>> = []
  const cases: Array<[number, string, number | undefined, number[]]> = [
    [20, 'full mesh', undefined, [0, 0.1, 0.3]],
    [100, 'full mesh', undefined, [0, 0.1, 0.3]],
    [100, 'sparse (degree 4)', 4, [0.3]],
    [100, 'ring', 2, [0.1, 0.3]]
  ]
  for (const [n, topology, degree, losses] of cases) {
    for (const loss of losses) {
      const r = await revocationRounds(n, loss, n === 20 ? 10 : 3, 100 + n, degree)
      const theory = THEORY['push-pull'][n] as number
      rows.push([n, topology, `${loss * 100}%`, r.meanMs, r.mean, r.worst, theory, (r.mean / theory).toFixed(2)])
    }
  }
  const managed = await idleReconnect(true)
  const open = await idleReconnect(false)
  return [{
    title: 'Revocation: gossip rounds until every node refuses the device',
    columns: ['n', 'mesh', 'frame loss', 'ms until the last node refuses (mean)', 'rounds (mean)', 'rounds (worst)', 'push-pull theory (full mesh)', 'ratio'],
    rows,
    notes: ['real nodes with a roster on the memory network and a virtual clock; 1 ms per frame, time measured in 10 ms steps (10: within the first step), rounds of 1 s (cluster.intervalMs); the statement floods at once, goes again each round for 10 rounds to peers not known to hold it, and the per-round roster summary (to one random peer) repairs the rest; 10 runs for n = 20, 3 for n = 100', 'frames are lost silently here, which TCP does not do: over libp2p a lost connection is repaired by the summary sent when the session opens again. On a ring each flood stops at the first lost frame and is picked up again the next round, about a hop a round where frames keep being lost']
  }, {
    title: `Idle reconnect with a roster: ${DOCS.toLocaleString('en')} shared + ${DOCS.toLocaleString('en')} private documents`,
    columns: ['swarm', 'bytes sent by the admin', 'ratio'],
    rows: [['managed (reader of notes/)', managed, (managed / open).toFixed(2)], ['unmanaged (same documents, all shared)', open, '1.00']],
    notes: ['memory network; the reader reconnects with nothing changed; managed pairs compare a digest over the documents both may see']
  }]
}
