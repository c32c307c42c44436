/**
 * Chaos on five real hosts (network namespaces on one bridge, each running `hearsay start`): while
 * clients write through every daemon's HTTP API, daemons are killed with SIGKILL and restarted over
 * the same data, the LAN is partitioned and healed, and every host drops a share of its packets.
 * Once every fault is healed, every host must hold every acknowledged write. The seed is printed;
 * `CHAOS_SEED=<seed>` replays a run's choices. Needs root (namespaces); the packet loss needs
 * iptables and is skipped with a message without it. `pnpm bench chaos` runs a longer version.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLan, iptablesUnavailable, namespacesUnavailable } from '../netns.js'
import type { Lan } from '../netns.js'
import { formatReport, runChaos } from './cluster.js'

const skipReason = namespacesUnavailable()
if (skipReason !== undefined) process.stderr.write(`chaos test skipped: ${skipReason}\n`)
else if (iptablesUnavailable() !== undefined) process.stderr.write(`chaos test: packet loss skipped: ${iptablesUnavailable() ?? ''}\n`)

const SEED = process.env.CHAOS_SEED !== undefined ? Number(process.env.CHAOS_SEED) : Date.now() % 1_000_000

describe.skipIf(skipReason !== undefined)('chaos: five hosts, kills, partitions and packet loss', () => {
  let lan: Lan | undefined
  let dataRoot = ''
  beforeAll(() => {
    lan = createLan({ hosts: 5, reachable: true })
    dataRoot = mkdtempSync(join(tmpdir(), 'hs-chaos-'))
    const dir = dataRoot
    lan.atTearDown(() => { rmSync(dir, { recursive: true, force: true }) })
  })
  // also on a signal or a lost parent: the LAN's own exit hooks run the same teardown
  afterAll(() => { lan?.tearDown() })

  it('every acknowledged write reaches every host once the faults heal', async () => {
    process.stderr.write(`chaos seed ${SEED} (replay with CHAOS_SEED=${SEED})\n`)
    const report = await runChaos(lan!, dataRoot, {
      seed: SEED,
      faultMs: 40_000,
      convergeTimeoutMs: 60_000,
      log: line => { process.stderr.write(`chaos: ${line}\n`) }
    })
    process.stderr.write(formatReport(report) + '\n')
    expect(report.writesAcked).toBeGreaterThan(0)
    expect(report.kills + report.partitions).toBeGreaterThan(0)
    expect(report.identical).toBe(true)
  }, 240_000)
})
