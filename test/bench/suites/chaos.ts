/**
 * The chaos run of test/chaos at length: five hosts in network namespaces, each a `hearsay start`
 * daemon, three minutes of SIGKILLs and restarts, partitions and packet loss while clients write
 * through the HTTP API; then how long every host takes to hold every acknowledged write. Needs
 * root; without network namespaces the table says why and holds no row.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runChaos } from '../../chaos/cluster.js'
import { createLan, namespacesUnavailable } from '../../netns.js'
import type { Table } from '../run.js'

const FAULT_MS = 180_000
const SEED = process.env.CHAOS_SEED !== undefined ? Number(process.env.CHAOS_SEED) : 9

export async function run (): Promise<Table[]> {
  const columns = ['seed', 'hosts', 'faults s', 'writes attempted', 'acknowledged', 'kills', 'partitions', 'loss %', 'converged s after healing', 'acknowledged writes lost']
  const title = 'Chaos: 5 hosts, SIGKILL + restart, partitions, packet loss, writes through the HTTP API'
  const skipped = namespacesUnavailable()
  if (skipped !== undefined) return [{ title, columns, rows: [], notes: [`not run: ${skipped}`] }]
  const lan = createLan({ hosts: 5, reachable: true })
  const dataRoot = mkdtempSync(join(tmpdir(), 'hs-chaos-'))
  lan.atTearDown(() => { rmSync(dataRoot, { recursive: true, force: true }) })
  try {
    const r = await runChaos(lan, dataRoot, {
      seed: SEED,
      faultMs: FAULT_MS,
      convergeTimeoutMs: 180_000,
      log: line => { process.stdout.write(`  ${line}\n`) }
    })
    return [{
      title,
      columns,
      rows: [[r.seed, r.hosts, r.faultMs / 1000, r.writesAttempted, r.writesAcked, r.kills, r.partitions,
        r.lossPercent !== undefined ? r.lossPercent.toFixed(1) : 'skipped', (r.convergeMs / 1000).toFixed(1), 0]],
      notes: [
        'every fault drawn from the seed (CHAOS_SEED=<seed> replays the choices); a write counts as acknowledged on HTTP 2xx, which the daemon sends after the write is fsynced',
        'loss: every host drops that share of the packets it receives from the LAN (iptables statistic match)' +
          (r.lossSkipped !== undefined ? `; skipped here: ${r.lossSkipped}` : ''),
        'the run fails (and writes no row) if any acknowledged write is missing on any host when the convergence deadline passes'
      ]
    }]
  } finally {
    lan.tearDown()
  }
}
