/**
 * What an idle, fully synced pair costs on the wire: two nodes over libp2p in a fresh network
 * namespace (its own loopback, so the interface counters hold only their traffic: TCP/IP headers,
 * Noise, yamux and liveness pings included), one document written, then nothing. Bytes per second
 * between 60 s and 120 s after the write, with the defaults and with the idle backoff and
 * liveness turned back into fixed timers (libp2p's connection monitor every 10 s, gossip every
 * second), run side by side. Needs root (ip netns); skipped with a note otherwise.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { ip, namespacesUnavailable } from '../../netns.js'
import type { Table } from '../run.js'

const here = dirname(fileURLToPath(import.meta.url))
const exec = promisify(execFile)
const QUIET_S = 60
const WINDOW_S = 60

interface Measured { bytesPerSec: number, packetsPerSec: number, frameBytesPerSec: number, connected: boolean }

async function measure (node: Record<string, unknown>): Promise<Measured> {
  const ns = `hsidle${randomBytes(3).toString('hex')}`
  ip('netns', 'add', ns)
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    const { stdout } = await exec('ip', ['netns', 'exec', ns, 'timeout', String(QUIET_S + WINDOW_S + 60), process.execPath, '--import', 'tsx', '--conditions=hearsay-source',
      join(here, '..', 'idle-child.ts'), JSON.stringify({ quietS: QUIET_S, windowS: WINDOW_S, node })], { cwd: join(here, '..', '..', '..') })
    return JSON.parse(stdout.trim().split('\n').pop() as string) as Measured
  } finally {
    try { ip('netns', 'del', ns) } catch {}
  }
}

export async function run (): Promise<Table[]> {
  const why = namespacesUnavailable()
  const title = 'An idle, synced pair on the wire (libp2p, loopback in a network namespace)'
  if (why !== undefined) return [{ title, columns: ['skipped'], rows: [[why]] }]
  const [defaults, fixed] = await Promise.all([
    measure({}),
    measure({ cluster: { idleMaxMs: 0 }, libp2p: { connectionMonitor: { pingInterval: 10_000 } } })
  ])
  const row = (what: string, m: Measured): Array<string | number> => [what, m.bytesPerSec, m.packetsPerSec, m.frameBytesPerSec, Math.round(m.bytesPerSec * 86_400 / 1e6 * 10) / 10, m.connected ? 'yes' : 'NO']
  return [{
    title,
    columns: ['setup', 'bytes/s on the wire (both ways)', 'packets/s', 'Hearsay frame bytes/s', 'MB a day', 'still connected'],
    rows: [row('defaults: idle backoff, liveness pings only when silent', defaults), row('fixed timers: gossip every 1 s, libp2p ping every 10 s', fixed)],
    notes: [
      `Measured from ${QUIET_S} s to ${QUIET_S + WINDOW_S} s after one document was written and synced; both setups ran at the same time, each in its own namespace.`,
      `target ≤ 50 B/s per idle pair after 1 minute quiet: ${defaults.bytesPerSec <= 50 ? 'met' : 'MISSED'} (${(defaults.bytesPerSec / fixed.bytesPerSec * 100).toFixed(1)} % of the fixed timers)`,
      'The "fixed timers" row is the defaults of the previous release except yamux keep-alive, which stays off in both rows.'
    ]
  }]
}
