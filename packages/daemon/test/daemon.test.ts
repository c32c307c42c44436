import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork, createMemoryStorage, createNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import * as Y from 'yjs'
import { formatStatus, startDaemon } from '../src/index.js'
import { formatDocSync } from '../src/doc-sync.js'
import type { Daemon } from '../src/index.js'
import { client, hearsay, kill, run, tempDir } from './helpers.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function pair (): Promise<[Daemon, Daemon]> {
  const net = createMemoryNetwork({ seed: 7 })
  const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a') }), transport: 'memory' })
  const b = await startDaemon({ node: createNode({ id: 'b', transport: net.transport('b') }), transport: 'memory' })
  cleanup.push(() => a.close(), () => b.close())
  await waitFor(() => a.node.peers().some(p => p.connected && p.inSync))
  return [a, b]
}

describe('daemon endpoint', () => {
  it('a y-websocket client edit on one daemon reaches a client of another daemon', async () => {
    const [a, b] = await pair()
    const ca = await client(a.url, 'notes/1')
    const cb = await client(b.url, 'notes/1')
    cleanup.push(() => { ca.provider.destroy(); cb.provider.destroy() })

    const t0 = performance.now()
    ca.doc.getText('body').insert(0, 'hello from a')
    await waitFor(() => cb.doc.getText('body').toString() === 'hello from a', { intervalMs: 1 })
    const ms = performance.now() - t0
    expect(ms).toBeLessThan(2000)

    cb.doc.getText('body').insert(0, '> ')
    await waitFor(() => ca.doc.getText('body').toString() === '> hello from a')
    expect(b.node.docs()).toContain('notes/1')
    process.stderr.write(`client → daemon → peer daemon → client: ${ms.toFixed(1)} ms\n`)
  })

  it('relays awareness between clients of the same daemon', async () => {
    const [a] = await pair()
    const c1 = await client(a.url, 'doc')
    const c2 = await client(a.url, 'doc')
    cleanup.push(() => { c1.provider.destroy(); c2.provider.destroy() })
    c1.provider.awareness.setLocalStateField('user', { name: 'laptop' })
    await waitFor(() => Array.from(c2.provider.awareness.getStates().values()).some(s => (s as any).user?.name === 'laptop'))
  })

  it('shares awareness with the clients of another daemon through the engine, stores none of it, and removes it when the client leaves', async () => {
    const [a, b] = await pair()
    const ca = await client(a.url, 'shared')
    const cb = await client(b.url, 'shared')
    cleanup.push(() => { cb.provider.destroy() })
    ca.provider.awareness.setLocalStateField('user', { name: 'laptop' })
    const seesLaptop = (): boolean => Array.from(cb.provider.awareness.getStates().values()).some(s => (s as any).user?.name === 'laptop')
    await waitFor(seesLaptop, { message: 'b sees a client of a' })
    ca.provider.awareness.setLocalStateField('cursor', 7)
    await waitFor(() => Array.from(cb.provider.awareness.getStates().values()).some(s => (s as any).cursor === 7), { message: 'update crosses' })
    ca.provider.destroy()
    await waitFor(() => !seesLaptop(), { message: 'b sees the laptop leave' })
    // presence is not a document: nothing but the (empty) shared document exists on either side
    expect(((await (await fetch(`${a.url}/api/docs?all`)).json()) as any).docs).toEqual([])
    expect(a.node.metrics().presenceSent).toBeGreaterThan(0)
    expect(b.node.metrics().presenceReceived).toBeGreaterThan(0)
  })

  it('a client whose connection dropped is seen again at once when it reconnects, not after its next renewal', async () => {
    const [a, b] = await pair()
    const ca = await client(a.url, 'room')
    const cb = await client(b.url, 'room')
    cleanup.push(() => { ca.provider.destroy(); cb.provider.destroy() })
    ca.provider.awareness.setLocalStateField('user', { name: 'laptop' })
    const seen = (): boolean => cb.provider.awareness.getStates().has(ca.doc.clientID)
    await waitFor(seen, { message: 'b sees a client of a' })
    // the connection drops (no goodbye): the state leaves with it, everywhere
    ;(ca.provider.ws as unknown as { close: () => void }).close()
    await waitFor(() => !seen(), { message: 'b sees the client leave' })
    // y-websocket reconnects and sends the same state with the same clock: seen well before the 15 s renewal
    const t0 = Date.now()
    await waitFor(seen, { timeoutMs: 5000, message: 'b sees the client again' })
    expect(Date.now() - t0).toBeLessThan(5000)
    // and its next change goes through too
    ca.provider.awareness.setLocalStateField('cursor', 3)
    await waitFor(() => (cb.provider.awareness.getStates().get(ca.doc.clientID) as any)?.cursor === 3, { message: 'next change crosses' })
  })

  it('drops the legacy _awareness/ documents at start, and when a peer brings one back', async () => {
    const net = createMemoryNetwork({ seed: 8 })
    const storage = createMemoryStorage()
    const old = createNode({ id: 'a', transport: createMemoryNetwork({ seed: 9 }).transport('a'), storage })
    await old.start()
    const legacy = await old.open('_awareness/notes/1')
    legacy.getMap('states').set('x/1', { clientID: 1, clock: 1, state: '{}', at: 0 })
    const keep = await old.open('notes/1')
    keep.getText('t').insert(0, 'kept')
    await old.stop()
    const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a'), storage }), transport: 'memory' })
    cleanup.push(() => a.close())
    expect(a.node.docs()).toEqual(['notes/1'])
    expect((await storage.list()).map(d => d.id)).toEqual(['notes/1'])
    // a peer that still has one brings it back: it is dropped again
    const peer = createNode({ id: 'p', transport: net.transport('p') })
    await peer.start()
    cleanup.push(() => peer.stop())
    ;(await peer.open('_awareness/notes/2')).getMap('states').set('p/1', 1)
    await waitFor(() => !a.node.docs().includes('_awareness/notes/2') && a.node.peers().some(p => p.id === 'p' && p.connected), { timeoutMs: 10_000 })
  })

  it('says which peers hold a document and which stored it (GET /api/docs/<id>/sync)', async () => {
    const [a, b] = await pair()
    await fetch(`${a.url}/api/docs/${encodeURIComponent('notes/1')}/title`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '"hi"' })
    const r = await (await fetch(`${a.url}/api/docs/${encodeURIComponent('notes/1')}/sync`)).json() as any
    expect(r).toMatchObject({ id: 'notes/1', peers: [{ peerId: 'b', state: 'synced', durable: true, connected: true }], savedOn: [expect.any(String)] })
    expect(formatDocSync(r)).toMatch(/^notes\/1: saved on /)
    await b.close()
    await waitFor(() => !a.node.peers().some(p => p.connected))
    await fetch(`${a.url}/api/docs/${encodeURIComponent('notes/1')}/title`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '"changed"' })
    const later = await (await fetch(`${a.url}/api/docs/${encodeURIComponent('notes/1')}/sync?wait=0`)).json() as any
    expect(later).toMatchObject({ peers: [{ peerId: 'b', state: 'unknown', durable: false, connected: false }], savedOn: [] })
    expect((await fetch(`${a.url}/api/docs/${encodeURIComponent('notes/1')}/sync?wait=x`)).status).toBe(400)
  })

  it('serves status, metrics and the document API', async () => {
    const [a, b] = await pair()
    const put = await fetch(`${a.url}/api/docs/${encodeURIComponent('config/pi-1')}/intervalMs`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '2000' })
    expect(put.status).toBe(200)
    await waitFor(async () => {
      const r = await (await fetch(`${b.url}/api/docs/${encodeURIComponent('config/pi-1')}`)).json() as any
      return r.content?.data?.intervalMs === 2000
    })
    const docs = await (await fetch(`${b.url}/api/docs`)).json()
    expect(docs).toEqual({ docs: ['config/pi-1'] })

    const status = await (await fetch(`${a.url}/status`)).json() as any
    expect(status.id).toBe('a')
    expect(status.peers).toEqual([expect.objectContaining({ id: 'b', state: 'alive', connected: true })])
    expect(status.sync).toMatchObject({ docsDone: 1, docsTotal: 1 })
    expect(status.discovery.mdns).toBe('unavailable')

    const metrics = await (await fetch(`${a.url}/metrics`)).text()
    expect(metrics).toMatch(/^hearsay_peers_connected 1$/m)
    expect(metrics).toMatch(/^hearsay_docs 1$/m)
    expect(metrics).toMatch(/^hearsay_bytes_sent_total \d+$/m)
    expect(metrics).toMatch(/^hearsay_docs_quarantined 0$/m)
    expect(metrics).toMatch(/^hearsay_docs_lost 0$/m)
    expect(metrics).toMatch(/^hearsay_live_frames_dropped_total 0$/m)
    expect(metrics).toMatch(/^hearsay_gossip_entries_rejected_total 0$/m)
    expect(metrics).toMatch(/^hearsay_session_faults_total 0$/m)
    expect(metrics).toMatch(/^hearsay_docs_refused_total 0$/m)
    expect(metrics).toMatch(/^hearsay_receive_aborts_total 0$/m)
    expect(metrics).toMatch(/^hearsay_timer_faults_total 0$/m)
    expect(metrics).toMatch(/^hearsay_presence_dropped_total 0$/m)

    expect((await fetch(`${a.url}/nope`)).status).toBe(404)
    expect((await fetch(`${a.url}/api/docs/${'x'.repeat(3000)}`)).status).toBe(400)
  })

  it('reports each peer\'s state from the node\'s failure detector, apart from the connection', async () => {
    const net = createMemoryNetwork({ seed: 11 })
    const cluster = { intervalMs: 50, suspectMs: 300, deadMs: 900 }
    const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a'), cluster }), transport: 'memory' })
    const b = await startDaemon({ node: createNode({ id: 'b', transport: net.transport('b'), cluster }), transport: 'memory' })
    cleanup.push(() => a.close())
    const peerB = async (): Promise<any> => ((await (await fetch(`${a.url}/status`)).json()) as any).peers.find((p: any) => p.id === 'b')
    await waitFor(async () => (await peerB())?.state === 'alive' && (await peerB()).connected === true, { timeoutMs: 5000, message: 'b alive' })
    await b.close()
    await waitFor(async () => (await peerB())?.connected === false, { timeoutMs: 5000, message: 'b disconnected' })
    // the node's verdict: suspect, then dead after deadMs, both long before any fixed 30 s window
    await waitFor(async () => (await peerB()).state === 'dead', { timeoutMs: 5000, message: 'b dead' })
    expect(a.node.peers().find(p => p.id === 'b')?.state).toBe('dead')
    expect((await peerB()).lastSeenMsAgo).toBeLessThan(30_000)
  })

  it('reports initial-sync progress as documents and document bytes received, not protocol traffic', async () => {
    const net = createMemoryNetwork({ seed: 13 })
    const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a') }), transport: 'memory' })
    cleanup.push(() => a.close())
    let written = 0
    for (let i = 0; i < 5; i++) {
      const doc = await a.node.open(`notes/${i}`)
      doc.getText('body').insert(0, `note ${i} `.repeat(50))
      written += Y.encodeStateAsUpdate(doc).length
    }
    const b = await startDaemon({ node: createNode({ id: 'b', transport: net.transport('b') }), transport: 'memory' })
    cleanup.push(() => b.close())
    await waitFor(() => b.node.docs().length === 5 && b.node.peers().some(p => p.connected && p.inSync), { timeoutMs: 5000, message: 'b caught up' })
    const sb = b.status().sync
    expect(sb).toMatchObject({ inSync: true, docsDone: 5, docsTotal: 5, docsTotalExact: true, docsReceived: 5 })
    // the documents' content arrived, give or take Yjs encoding; frames add digests and gossip
    expect(sb.bytesReceived).toBeGreaterThanOrEqual(written * 0.9)
    expect(sb.bytesReceived).toBeLessThanOrEqual(written * 1.1)
    expect(sb.wireBytesReceived).toBeGreaterThan(sb.bytesReceived)
    // a heard only digests and gossip from b: no document bytes
    const sa = a.status().sync
    expect(sa.bytesReceived).toBe(0)
    expect(sa.docsReceived).toBe(0)
    expect(sa.wireBytesReceived).toBeGreaterThan(0)
  })

  it('reports sync progress in bytes: the size a peer announces as the total, ours as done', async () => {
    const net = createMemoryNetwork({ seed: 17 })
    const cluster = { intervalMs: 50 }
    // no anti-entropy: b learns a's size first, then syncs when told to
    const antiEntropy = { enabled: false }
    const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a'), cluster, antiEntropy, statusIntervalMs: 20 }), transport: 'memory' })
    cleanup.push(() => a.close())
    for (let i = 0; i < 20; i++) {
      const doc = await a.node.open(`notes/${i}`)
      for (let j = 0; j < 5; j++) doc.getText('body').insert(0, `note ${i} line ${j}\n`.repeat(10))
    }
    await a.node.flush()
    const size = a.node.metrics().storedBytes
    expect(size).toBeGreaterThan(0)
    const b = await startDaemon({ node: createNode({ id: 'b', transport: net.transport('b'), cluster, antiEntropy, statusIntervalMs: 20 }), transport: 'memory' })
    cleanup.push(() => b.close())
    const statusOf = async (d: Daemon): Promise<any> => await (await fetch(`${d.url}/status`)).json()

    await waitFor(async () => (await statusOf(b)).sync.bytesTotal === size, { timeoutMs: 5000, message: 'b to hear of a\'s size' })
    const before = await statusOf(b)
    expect(before.sync).toMatchObject({ inSync: false, bytesDone: 0, bytesTotal: size, docsDone: 0, docsTotal: 20 })
    expect(before.peers.find((p: any) => p.id === 'a')).toMatchObject({ connected: true, bytes: size })

    await b.node.syncWith('a', { mode: 'pull' })
    await waitFor(async () => {
      const s = (await statusOf(b)).sync
      return s.docsDone === 20 && s.bytesTotal > 0 && s.bytesDone >= s.bytesTotal / 2
    }, { timeoutMs: 5000, message: 'b to store at least half of the announced bytes' })
    const after = (await statusOf(b)).sync
    expect(after.bytesDone).toBeLessThanOrEqual(after.bytesTotal)
    expect(after.bytesTotal).toBeGreaterThanOrEqual(size / 2)
  })

  it('does not call a lower bound a total while peers are out of sync', () => {
    const base = { id: 'a', version: 'x', uptimeMs: 0, endpoint: 'http://127.0.0.1:1', transport: 'memory', discovery: { mdns: 'unavailable', detail: '' }, multiaddrs: [], network: undefined, clients: { rooms: 0, clients: 0 }, problems: [], metrics: {} } as any
    const peer = { id: 'b', state: 'alive', connected: true, inSync: false, docCount: 100, lastSeenMsAgo: 0 }
    const syncing = formatStatus({ ...base, peers: [{ ...peer, bytes: 3 * 1024 * 1024 }], sync: { inSync: false, docsDone: 40, docsTotal: 100, docsTotalExact: false, bytesDone: 1.2 * 1024 * 1024, bytesTotal: 3 * 1024 * 1024, bytesReceived: 2048, wireBytesReceived: 4096, docsReceived: 40, exchangesRunning: 1 } })
    expect(syncing).toMatch(/syncing +docs 40 here, at least 100 in the swarm +bytes 1\.2 MiB\/~3\.0 MiB +received 2\.0 KiB of updates to 40 doc\(s\) \(4\.0 KiB on the wire\)/)
    expect(syncing).toMatch(/peer +b .* 100 doc\(s\) \(~3\.0 MiB\)/)
    expect(syncing).not.toMatch(/%/)
    // done never shows past the total, whatever a replica reports
    const over = formatStatus({ ...base, peers: [peer], sync: { inSync: true, docsDone: 1, docsTotal: 1, docsTotalExact: true, bytesDone: 5000, bytesTotal: 4000, bytesReceived: 0, wireBytesReceived: 0, docsReceived: 0, exchangesRunning: 0 } })
    expect(over).toMatch(/docs 1\/1 +bytes 3\.9 KiB\/~3\.9 KiB/)
    // every kind of document problem gets its own line
    const problems = [
      { kind: 'corrupt', docId: 'notes/1', error: 'StorageCorruptionError', message: 'checksum mismatch', since: 0 },
      { kind: 'missing', docId: 'notes/2', error: 'StorageLossError', message: 'gone since the last close', since: 0 },
      { kind: 'damaged', docId: '', error: 'StorageLossError', message: 'LevelDB dropped 120 bytes', since: 0 }
    ]
    const hurt = formatStatus({ ...base, problems, peers: [peer], sync: { inSync: true, docsDone: 1, docsTotal: 1, docsTotalExact: true, bytesReceived: 0, wireBytesReceived: 0, docsReceived: 0, exchangesRunning: 0 } })
    expect(hurt).toMatch(/^problem +corrupt notes\/1: checksum mismatch$/m)
    expect(hurt).toMatch(/^problem +missing notes\/2: gone since the last close$/m)
    expect(hurt).toMatch(/^problem +damaged: LevelDB dropped 120 bytes$/m)
  })

  it('listens on 127.0.0.1 by default', async () => {
    const [a] = await pair()
    expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })
})

describe('hearsay start (real process)', () => {
  it('serves clients and the CLI; SIGTERM flushes and exits 0; the edit survives a restart', async () => {
    const dir = await tempDir('daemon', cleanup)
    expect((await run(['init', '--data-dir', dir])).code).toBe(0)
    const env = { HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: '0', HEARSAY_LOG_LEVEL: 'warn', HEARSAY_DURABILITY: 'power', HEARSAY_MDNS: 'false', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0' }
    const started = async (): Promise<{ proc: ReturnType<typeof hearsay>, url: string }> => {
      const proc = hearsay(['start'], env)
      cleanup.push(async () => { await kill(proc.child) })
      await waitFor(() => /serving (http:\/\/\S+)/.test(proc.stderr()), { timeoutMs: 20_000, message: `daemon up: ${proc.stderr()}` })
      return { proc, url: /serving (http:\/\/\S+)/.exec(proc.stderr())![1]! }
    }
    const first = await started()
    const c = await client(first.url, 'shopping')
    c.doc.getText('list').insert(0, 'milk, eggs')
    await waitFor(async () => (await run(['get', 'shopping', '--url', first.url])).stdout.includes('milk, eggs'))
    expect((await run(['set', 'shopping', 'done', 'false', '--url', first.url])).code).toBe(0)
    const docs = await run(['docs', '--url', first.url])
    expect(docs.stdout.trim()).toBe('shopping')
    const status = await run(['status', '--url', first.url])
    expect(status.stdout).toMatch(/sync +no peer connected +docs 1\/1 +bytes \d+(\.\d)? (B|KiB)\/~\d+(\.\d)? (B|KiB)/)
    expect(status.stdout).toMatch(/discovery disabled: mDNS is turned off \("mdns": false in the config, or HEARSAY_MDNS/)
    expect(status.stdout).not.toMatch(/options\.mdns/)
    c.provider.destroy()

    first.proc.child.kill('SIGTERM')
    expect(await first.proc.exited).toBe(0)
    expect(first.proc.stderr()).toMatch(/SIGTERM: flushing and stopping[\s\S]*stopped/)

    const second = await started()
    const got = await run(['get', 'shopping', '--url', second.url])
    expect(JSON.parse(got.stdout)).toEqual({ list: 'milk, eggs', data: { done: false } })
    second.proc.child.kill('SIGTERM')
    expect(await second.proc.exited).toBe(0)
  })

  it('a swarm.key copied into a data directory without a config file makes a private swarm', async () => {
    const first = await tempDir('key-a', cleanup)
    expect((await run(['init', '--data-dir', first])).code).toBe(0)
    const dir = await tempDir('key-b', cleanup)
    await copyFile(join(first, 'swarm.key'), join(dir, 'swarm.key'))
    const d = hearsay(['start', '--data-dir', dir, '--http-port', '0', '--log-level', 'warn', '--mdns', 'false', '--listen', '/ip4/127.0.0.1/tcp/0'])
    cleanup.push(async () => { await kill(d.child) })
    await waitFor(() => /serving (http:\/\/\S+)/.test(d.stderr()), { timeoutMs: 20_000, message: `daemon up: ${d.stderr()}` })
    const url = /serving (http:\/\/\S+)/.exec(d.stderr())![1]!
    const status = await run(['status', '--url', url])
    expect(status.stdout).toMatch(/^swarm +private \(swarm key\)/m)
    d.child.kill('SIGTERM')
    expect(await d.exited).toBe(0)
  })

  it('watch prints every change', async () => {
    const dir = await tempDir('watch', cleanup)
    const d = hearsay(['start', '--data-dir', dir, '--http-port', '0', '--log-level', 'warn', '--mdns', 'false', '--listen', '/ip4/127.0.0.1/tcp/0'])
    cleanup.push(async () => { await kill(d.child) })
    await waitFor(() => /serving (http:\/\/\S+)/.test(d.stderr()), { timeoutMs: 20_000 })
    const url = /serving (http:\/\/\S+)/.exec(d.stderr())![1]!
    const w = hearsay(['watch', 'room', '--url', url])
    cleanup.push(async () => { await kill(w.child) })
    await waitFor(() => w.stdout().includes('initial: {}'), { timeoutMs: 20_000 })
    await run(['set', 'room', 'temp', '21.5', '--url', url])
    await waitFor(() => w.stdout().includes('{"data":{"temp":21.5}}'), { timeoutMs: 10_000 })
    w.child.kill('SIGTERM')
    expect(await w.exited).toBe(0)
    d.child.kill('SIGTERM')
    expect(await d.exited).toBe(0)
  })
})
