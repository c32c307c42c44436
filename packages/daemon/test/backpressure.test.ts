/**
 * Limits toward local y-websocket clients, on a real `hearsay start` process: a client that stops
 * reading is cut off once its backlog passes `wsMaxBufferedBytes` while the daemon's memory stays
 * flat and every other client keeps syncing; an oversized or malformed message closes only the
 * client that sent it, and a malformed update never touches the document.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createRandom } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import * as encoding from 'lib0/encoding'
import { WebSocket } from 'ws'
import * as Y from 'yjs'
import { loadConfig } from '../src/index.js'
import { client, hearsay, run } from './helpers.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

const MiB = 1024 * 1024
/** Seed of the random messages; printed so a failure replays. */
const SEED = 20261203

async function daemon (env: Record<string, string> = {}): Promise<{ proc: ReturnType<typeof hearsay>, url: string, ws: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hs-bp-'))
  cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
  expect((await run(['init', '--data-dir', dir])).code).toBe(0)
  const proc = hearsay(['start'], {
    HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: '0', HEARSAY_LOG_LEVEL: 'warn', HEARSAY_DURABILITY: 'process',
    HEARSAY_MDNS: 'false', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0', ...env
  })
  cleanup.push(async () => { proc.child.kill('SIGKILL'); await proc.exited })
  await waitFor(() => /serving (http:\/\/\S+)/.test(proc.stderr()), { timeoutMs: 30_000, message: `daemon up: ${proc.stderr()}` })
  const url = /serving (http:\/\/\S+)/.exec(proc.stderr())![1]!
  return { proc, url, ws: url.replace(/^http/, 'ws') }
}

/** Resident and peak resident memory of a process, in bytes (Linux). */
async function memory (pid: number): Promise<{ rss: number, peak: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]) * 1024
  return { rss: kb('VmRSS'), peak: kb('VmHWM') }
}

async function closedCount (url: string, reason: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Number(new RegExp(`^hearsay_websocket_clients_closed_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN)
}

/** A raw WebSocket client; `closed` resolves with the close code and reason it receives. */
async function raw (url: string): Promise<{ ws: WebSocket, closed: Promise<{ code: number, reason: string }> }> {
  const ws = new WebSocket(url)
  const closed = new Promise<{ code: number, reason: string }>(resolve => { ws.on('close', (code, reason) => { resolve({ code, reason: reason.toString() }) }) })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve() }); ws.once('error', reject) })
  cleanup.push(() => { ws.terminate() })
  return { ws, closed }
}

function syncMessage (kind: number, payload: Uint8Array): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0) // y-websocket: sync
  encoding.writeVarUint(e, kind) // 2: update
  encoding.writeVarUint8Array(e, payload)
  return encoding.toUint8Array(e)
}

describe('y-websocket clients of a real daemon', () => {
  it('a client that stops reading is cut off at the backlog cap; memory stays flat; the others keep syncing', async () => {
    const d = await daemon()
    const pid = d.proc.child.pid!
    const room = 'bp/room'
    const writer = await client(d.url, room)
    const reader = await client(d.url, room)
    cleanup.push(() => { writer.provider.destroy(); reader.provider.destroy() })
    const stalled = await raw(`${d.ws}/${room}`)
    // it stops reading: the daemon's writes pile up in the kernel's buffers, then in the daemon
    const socket = (stalled.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
    socket.pause()

    // the writer's presence changes 2,048 times, 64 KiB each: 128 MiB flow to every client of the
    // room (relayed in memory, so the daemon's own work stays small and its memory shows the
    // backlog), with a document edit every 256 changes
    const blob = 'x'.repeat(64 * 1024)
    const ROUNDS = 2048
    const before = await memory(pid)
    const seen = (): number => Number(String(reader.provider.awareness.getStates().get(writer.doc.clientID)?.blob ?? '-1:').split(':')[0])
    let resumed = false
    for (let i = 0; i < ROUNDS; i++) {
      writer.provider.awareness.setLocalStateField('blob', `${i}:${blob}`)
      if (i % 256 === 0) writer.doc.getMap('m').set('edit', i)
      // the reader runs in this process too: at most 4 changes in flight to it, so it keeps up
      await waitFor(() => seen() >= i - 4, { timeoutMs: 20_000, intervalMs: 2, message: 'the reader keeps up' })
      // read the close frame within the grace period, as soon as the daemon says it cut us off
      if (!resumed && /closing a client of "bp\/room" \(4503\)/.test(d.proc.stderr())) {
        resumed = true
        socket.resume()
      }
    }
    await waitFor(() => seen() === ROUNDS - 1 && reader.doc.getMap('m').get('edit') === ROUNDS - 256, { message: 'the reader got the last change and edit' })
    const after = await memory(pid)
    const growthMiB = (after.peak - before.rss) / MiB
    const flowedMiB = ROUNDS * blob.length / MiB
    process.stderr.write(`stalled client: daemon RSS ${(before.rss / MiB).toFixed(0)} MiB before, peak ${(after.peak / MiB).toFixed(0)} MiB while ${flowedMiB} MiB went to its room (growth ${growthMiB.toFixed(1)} MiB, cap 8 MiB)\n`)
    await waitFor(() => /closing a client of "bp\/room" \(4503\): fell behind/.test(d.proc.stderr()), { message: `log line: ${d.proc.stderr()}` })
    socket.resume()
    const closed = await stalled.closed

    expect(closed.code).toBe(4503)
    expect(closed.reason).toMatch(/^fell behind: \d+ bytes unsent, limit 8388608$/)
    expect(await closedCount(d.url, 'slow')).toBe(1)
    // the backlog never held what flowed: without the cap the peak grows by more than the 128 MiB
    // sent (about 135 MiB measured), with it by about 55 MiB (V8's garbage from parsing the changes)
    expect(growthMiB).toBeLessThan(90)

    // the writer and the reader keep syncing both ways
    reader.doc.getMap('m').set('after', 'from the reader')
    await waitFor(() => writer.doc.getMap('m').get('after') === 'from the reader', { message: 'reader → writer after the cut' })
    writer.doc.getMap('m').set('after2', 'from the writer')
    await waitFor(() => reader.doc.getMap('m').get('after2') === 'from the writer', { message: 'writer → reader after the cut' })
    expect(JSON.parse((await run(['status', '--json', '--url', d.url])).stdout).clients.closed).toEqual({ slow: 1, too_large: 0, bad_message: 0 })
  }, 120_000)

  it('an oversized or malformed message closes only its sender; a malformed update never reaches the document', async () => {
    const d = await daemon({ HEARSAY_WS_MAX_MESSAGE_BYTES: String(MiB) })
    const room = 'bp/input'
    const good = await client(d.url, room)
    const other = await client(d.url, room)
    cleanup.push(() => { good.provider.destroy(); other.provider.destroy() })

    // past maxPayload: 1009 from the WebSocket layer
    const big = await raw(`${d.ws}/${room}`)
    big.ws.send(new Uint8Array(MiB + 1))
    expect((await big.closed).code).toBe(1009)
    await waitFor(async () => await closedCount(d.url, 'too_large') === 1, { message: 'too_large counted' })
    expect(d.proc.stderr()).toMatch(/closing a client of "bp\/input" \(1009\): message larger than 1048576 bytes/)

    // the same while the client's document is still loading: a fresh room per client
    for (let k = 0; k < 3; k++) {
      const early = new WebSocket(`${d.ws}/bp/early-${k}`)
      early.on('error', () => {})
      early.once('open', () => { early.send(new Uint8Array(MiB + 1)) })
      const code = await new Promise<number>(resolve => { early.once('close', c => { resolve(c) }) })
      expect(code).toBe(1009)
    }
    expect(await closedCount(d.url, 'too_large')).toBe(4)

    // an update whose structs are fine but whose delete set is cut short: Yjs alone would insert
    // the text before failing on the delete set
    const source = new Y.Doc()
    source.getText('t').insert(0, 'injected')
    source.getText('t').delete(0, 2)
    const full = Y.encodeStateAsUpdate(source)
    const truncated = await raw(`${d.ws}/${room}`)
    truncated.ws.send(syncMessage(2, full.slice(0, full.length - 2)))
    const c = await truncated.closed
    expect(c.code).toBe(4400)
    expect(c.reason).toMatch(/^bad message: /)

    // seeded random bytes after a sync/update header, from several clients
    const rnd = createRandom(SEED)
    process.stderr.write(`malformed updates: seed ${SEED}\n`)
    for (let i = 0; i < 8; i++) {
      const junk = new Uint8Array(2 + rnd.int(200))
      for (let j = 0; j < junk.length; j++) junk[j] = rnd.int(256)
      const r = await raw(`${d.ws}/${room}`)
      r.ws.send(syncMessage(2, junk))
      r.ws.send(new Uint8Array([0, 9, 1])) // and an unknown sync message type, in case the junk applied
      expect((await r.closed).code).toBe(4400)
    }
    expect(await closedCount(d.url, 'bad_message')).toBe(9)

    // the well-behaved clients never noticed, and the document holds nothing of the bad update
    good.doc.getText('t').insert(0, 'fine')
    await waitFor(() => other.doc.getText('t').toString() === 'fine', { message: 'good → other' })
    const content = (await (await fetch(`${d.url}/api/docs/${encodeURIComponent(room)}`)).json()).content
    expect(content.t).toBe('fine')
    expect(JSON.stringify(content)).not.toContain('jected')
    expect(d.proc.child.exitCode).toBeNull()
  }, 60_000)

  it('takes both limits from the config, refusing values that are not whole byte counts', () => {
    const env = (v: Record<string, string>): Record<string, string> => ({ HEARSAY_DATA_DIR: tmpdir(), ...v })
    expect(loadConfig({ env: env({}), readFile: false }).config).toMatchObject({ wsMaxBufferedBytes: 8 * MiB, wsMaxMessageBytes: 16 * MiB })
    expect(loadConfig({ env: env({ HEARSAY_WS_MAX_BUFFERED_BYTES: '65536' }), readFile: false }).config.wsMaxBufferedBytes).toBe(65536)
    for (const bad of ['12.5', '-1', '100', 'lots']) {
      expect(() => loadConfig({ env: env({ HEARSAY_WS_MAX_MESSAGE_BYTES: bad }), readFile: false }))
        .toThrow(/HEARSAY_WS_MAX_MESSAGE_BYTES must be a whole number of bytes >= 1024/)
    }
  })

  it('a watcher that stops reading is cut off at the same cap', async () => {
    const d = await daemon({ HEARSAY_WS_MAX_BUFFERED_BYTES: String(MiB) })
    const { hostname, port } = new URL(d.url)
    const socket = connect(Number(port), hostname)
    cleanup.push(() => { socket.destroy() })
    const closed = new Promise<void>(resolve => { socket.once('close', () => { resolve() }) })
    socket.on('error', () => {})
    await new Promise<void>(resolve => { socket.once('connect', () => { resolve() }) })
    socket.write(`GET /api/watch/bp%2Fwatch HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`)
    await new Promise<void>(resolve => { socket.once('data', () => { resolve() }) })
    socket.pause()
    const value = JSON.stringify('w'.repeat(512 * 1024))
    let puts = 0
    while (!/closing a watcher of "bp\/watch": fell behind/.test(d.proc.stderr())) {
      expect(puts++).toBeLessThan(100) // 50 MiB of lines: far past the kernel's buffers and the cap
      const r = await fetch(`${d.url}/api/docs/bp%2Fwatch/v`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: value })
      expect(r.status).toBe(200)
    }
    process.stderr.write(`watcher: cut off after ${puts} changes of 512 KiB (cap 1 MiB)\n`)
    socket.resume()
    await closed
    // the daemon and its other clients carry on
    const r = await fetch(`${d.url}/api/docs/bp%2Fwatch`)
    expect(r.status).toBe(200)
  }, 60_000)
})
