/**
 * Presence and acknowledgements.
 * - **cursor vs text**: two daemons on real libp2p (loopback, TCP + Noise + yamux), a y-websocket
 *   client on each; one client moves its cursor (awareness) or types one character, and the time
 *   until the other client sees it is taken, alternating, one in flight at a time.
 * - **after a restart**: one daemon is restarted on the same data directory and ports; its client
 *   reconnects by itself (y-websocket, reconnect delay capped at 100 ms) with an edit made while
 *   the daemon was down. Time from the daemon serving again until the other device's client sees
 *   the edit, and until it sees the client's presence.
 * - **storage writes from presence**: writes counted on both daemons' stores during 1,000 cursor moves.
 * - **acknowledgement bytes**: two nodes on the memory network, 2,000 small edits each sent on
 *   its own: bytes on the wire with nobody asking, and with the document followed (`syncState`).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import { countingStorage, waitFor } from '@hearsay/core/testing'
import { startDaemon, type Daemon } from '@hearsay/daemon'
import { createLevelStorage } from '@hearsay/leveldb'
import { createHearsayNode, generateSwarmKey } from '@hearsay/libp2p'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import type { Table } from '../run.js'

const SAMPLES = 200
const MOVES = 1000

interface Site { daemon: Daemon, addr: string, writes: () => number, dir: string, listen: string, port: number }

async function site (dir: string, swarmKey: Uint8Array, listen = '/ip4/127.0.0.1/tcp/0', port = 0, bootstrap: string[] = []): Promise<Site> {
  const store = countingStorage(createLevelStorage({ path: join(dir, 'db') }))
  const node = await createHearsayNode({ dataDir: dir, swarmKey, listen: [listen], mdns: false, bootstrap, storage: store.storage, sync: { backoff: { initialMs: 50, maxMs: 200 } } })
  const daemon = await startDaemon({ node, port, transport: 'libp2p' })
  const addr = node.multiaddrs()[0]!
  return { daemon, addr, writes: store.writes, dir, listen: addr.slice(0, addr.indexOf('/p2p/')), port: Number(new URL(daemon.url).port) }
}

function client (url: string, room: string): { doc: Y.Doc, provider: WebsocketProvider } {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url.replace('http', 'ws'), room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true, maxBackoffTime: 100 })
  return { doc, provider }
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] as number

/** Time until `seen()` holds after `act()`, waiting on the events of `on`. */
async function timed (act: () => void, seen: () => boolean, on: { on: (e: string, f: () => void) => void, off: (e: string, f: () => void) => void }, event: string): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => { on.off(event, check); reject(new Error(`not seen within 10 s (${event})`)) }, 10_000)
    const t0 = performance.now()
    function check (): void {
      if (!seen()) return
      clearTimeout(timer)
      on.off(event, check)
      resolve(performance.now() - t0)
    }
    on.on(event, check)
    act()
  })
}

async function daemonPair (): Promise<{ rows: Array<Array<string | number>>, restart: Array<Array<string | number>>, notes: string[], cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'hs-bench-presence-'))
  const swarmKey = generateSwarmKey()
  let a = await site(join(root, 'a'), swarmKey)
  const b = await site(join(root, 'b'), swarmKey, undefined, undefined, [a.addr])
  const ca = client(a.daemon.url, 'notes/1')
  const cb = client(b.daemon.url, 'notes/1')
  const closeAll = async (): Promise<void> => {
    for (const c of [ca, cb]) {
      c.provider.destroy()
      c.doc.destroy() // and with it the provider's Awareness and its timer
    }
    await a.daemon.close()
    await b.daemon.close()
    await rm(root, { recursive: true, force: true })
  }
  try {
    await waitFor(() => a.daemon.node.peers().some(p => p.connected) && ca.provider.synced && cb.provider.synced, { timeoutMs: 30_000, message: 'daemons and clients up' })
    const text = ca.doc.getText('t')
    const cursorOf = (): unknown => (cb.provider.awareness.getStates().get(ca.doc.clientID) as { cursor?: number } | undefined)?.cursor
    ca.provider.awareness.setLocalStateField('user', { name: 'ada' })
    await waitFor(() => cb.provider.awareness.getStates().has(ca.doc.clientID), { timeoutMs: 10_000, message: 'presence crosses' })
    const cursor: number[] = []
    const typing: number[] = []
    for (let i = 0; i < SAMPLES; i++) {
      cursor.push(await timed(() => { ca.provider.awareness.setLocalStateField('cursor', i) }, () => cursorOf() === i, cb.provider.awareness as never, 'change'))
      const n = text.length + 1
      typing.push(await timed(() => { text.insert(text.length, 'x') }, () => cb.doc.getText('t').length === n, cb.doc as never, 'update'))
    }
    // writes from presence alone
    await a.daemon.node.flush()
    await b.daemon.node.flush()
    const before = a.writes() + b.writes()
    for (let i = 0; i < MOVES; i++) ca.provider.awareness.setLocalStateField('cursor', 10_000 + i)
    await waitFor(() => cursorOf() === 10_000 + MOVES - 1, { timeoutMs: 30_000, message: 'moves cross' })
    await a.daemon.node.flush()
    await b.daemon.node.flush()
    const presenceWrites = a.writes() + b.writes() - before
    const rows: Array<Array<string | number>> = [
      ['remote cursor (awareness)', pct(cursor, 0.5), pct(cursor, 0.99), pct(cursor, 0.5) / pct(typing, 0.5)],
      ['one typed character', pct(typing, 0.5), pct(typing, 0.99), 1]
    ]

    // restart daemon a on the same directory and ports; its client edits while it is down
    const { dir, listen, port } = a
    await a.daemon.close()
    await waitFor(() => !b.daemon.node.peers().some(p => p.connected), { timeoutMs: 30_000, message: 'b notices' })
    await waitFor(() => !cb.provider.awareness.getStates().has(ca.doc.clientID), { timeoutMs: 10_000, message: 'presence leaves with the session' })
    text.insert(0, 'offline ')
    const t0 = performance.now()
    a = await site(dir, swarmKey, listen, port, [b.addr])
    const serving = performance.now() - t0
    let textAt = 0
    let presenceAt = 0
    await waitFor(() => {
      const now = performance.now() - t0
      if (textAt === 0 && cb.doc.getText('t').toString().startsWith('offline ')) textAt = now
      if (presenceAt === 0 && cb.provider.awareness.getStates().has(ca.doc.clientID)) presenceAt = now
      return textAt > 0 && presenceAt > 0
    }, { timeoutMs: 30_000, intervalMs: 5, message: 'text and presence return' })
    const restart = [
      ['text edited while the daemon was down', textAt - serving],
      ['the returning client\'s presence', presenceAt - serving]
    ]
    const notes = [
      `${SAMPLES} of each, alternating, one in flight; client → daemon → libp2p → daemon → client in one process (loopback). Target: cursor p50 ≤ 2× text.`,
      `storage writes on both daemons from ${MOVES} cursor moves: **${presenceWrites}** (target 0; the \`_awareness/\` document it replaced wrote at most every 250 ms).`,
      `after a restart: ms from the restarted daemon serving (it took ${serving.toFixed(0)} ms to start) until the other device's client sees it; the client's own reconnect delay is included. Target: presence ≤ 1,000 ms.`
    ]
    return { rows, restart, notes, cleanup: closeAll }
  } catch (err) {
    await closeAll()
    throw err
  }
}

async function ackBytes (follow: boolean): Promise<{ bytes: number, acks: number }> {
  const net = createMemoryNetwork({ seed: 4 })
  const a = createNode({ id: 'a', transport: net.transport('a'), antiEntropy: { enabled: false }, cluster: { enabled: false } })
  const b = createNode({ id: 'b', transport: net.transport('b'), antiEntropy: { enabled: false }, cluster: { enabled: false } })
  await a.start()
  await b.start()
  await waitFor(() => a.peers().some(p => p.connected))
  const doc = await a.open('live')
  if (follow) a.syncState('live')
  const before = a.metrics().bytesSent + b.metrics().bytesSent
  for (let i = 0; i < 2000; i++) {
    doc.getText('t').insert(i, 'x')
    a.flush().catch(() => {})
    await new Promise(resolve => setImmediate(resolve))
  }
  await waitFor(async () => (await b.open('live')).getText('t').length === 2000)
  b.close('live')
  await a.flush()
  await b.flush()
  await net.settled() // the last reports are on the wire too
  const bytes = a.metrics().bytesSent + b.metrics().bytesSent - before
  const acks = a.metrics().acksReceived + b.metrics().acksReceived
  await a.stop()
  await b.stop()
  return { bytes, acks }
}

export async function run (): Promise<Table[]> {
  const pair = await daemonPair()
  await pair.cleanup()
  const idle = await ackBytes(false)
  const followed = await ackBytes(true)
  return [
    {
      title: 'Presence: remote cursor against text, daemon to daemon (ms)',
      columns: ['what crosses', 'p50', 'p99', 'p50 ÷ text p50'],
      rows: pair.rows,
      notes: pair.notes
    },
    {
      title: 'Presence after a daemon restart (ms after it serves again)',
      columns: ['seen on the other device', 'ms'],
      rows: pair.restart
    },
    {
      title: 'Acknowledgements on the live path: 2,000 small edits, each sent on its own',
      columns: ['who asks', 'bytes on the wire', 'reports', 'vs nobody asking'],
      rows: [
        ['nobody (no replicated(), no syncState())', idle.bytes, idle.acks, 1],
        ['the writer follows the document (syncState)', followed.bytes, followed.acks, followed.bytes / idle.bytes]
      ],
      notes: ['Target: with nobody waiting, acknowledgements add ≤ 5% bytes — they add none: a peer reports only on documents someone watches. Following a document costs one report per batch of changes applied and one per storage write.']
    }
  ]
}
