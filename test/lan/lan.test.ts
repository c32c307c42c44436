/**
 * Three hosts on one bridge, each a network namespace running one node process: they find each
 * other by mDNS with no configuration, converge, and reconnect after one host's link is cut long
 * enough for its connections to die (the test waits until that host reports no channel) and
 * restored.
 * Two more namespaces check discovery diagnosis: one with an interface but no multicast route,
 * one with loopback only. Needs root (ip netns); skipped with a message elsewhere.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@hearsay/core/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLan, ip, namespacesUnavailable } from '../netns.js'
import type { Lan } from '../netns.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const tsx = join(root, 'node_modules', '.bin', 'tsx')
const PROCESS_TIMEOUT_S = 150
/** How long a cut host may take to notice its links are dead (connection monitor pings every 2 s in the runner). */
const LINK_DEATH_TIMEOUT_MS = 45_000

const skipReason = namespacesUnavailable()
if (skipReason !== undefined) process.stderr.write(`LAN test skipped: ${skipReason}\n`)

interface Host {
  proc: ChildProcessWithoutNullStreams
  peerId?: string
  logs: string[]
  pending: Map<number, (msg: any) => void>
  ready: Promise<any>
}

const hosts: Host[] = []
let lan: Lan
let dataDir = ''
let nextId = 1

function setUp (): void {
  // hosts 1-3 on the bridge; host 4 too, but with no multicast route (an offline LAN without a
  // gateway); host 5 has loopback only
  lan = createLan({ hosts: 4, noMulticastRoute: [4], loopbackOnly: 1 })
  dataDir = mkdtempSync(join(tmpdir(), 'hs-lan-'))
  const dir = dataDir
  lan.atTearDown(() => { rmSync(dir, { recursive: true, force: true }) })
}

function tearDown (): void {
  lan?.tearDown()
}

function spawnIn (i: number, args: string[]): ChildProcessWithoutNullStreams {
  return lan.spawnIn(i, [tsx, '--conditions=hearsay-source', join(here, 'runner.ts'), ...args], {
    timeoutS: PROCESS_TIMEOUT_S,
    cwd: root,
    env: { ...process.env, NODE_OPTIONS: '' }
  })
}

function startHost (i: number): Host {
  const proc = spawnIn(i, ['node', join(dataDir, `h${i}`)])
  const host: Host = { proc, logs: [], pending: new Map(), ready: Promise.resolve() }
  host.ready = new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout })
    rl.on('line', (line) => {
      let msg: any
      try { msg = JSON.parse(line) } catch { host.logs.push(`stdout: ${line}`); return }
      if (msg.type === 'ready') { host.peerId = msg.peerId; resolve(msg) } else if (msg.type === 'log') host.logs.push(msg.line)
      else if (msg.type === 'reply') { host.pending.get(msg.id)?.(msg); host.pending.delete(msg.id) } else host.logs.push(line)
    })
    proc.stderr.on('data', (d: Buffer) => { host.logs.push(`stderr: ${d.toString()}`) })
    proc.on('exit', (code) => { reject(new Error(`host ${i} exited with ${String(code)}: ${host.logs.slice(-5).join('\n')}`)) })
  })
  hosts.push(host)
  return host
}

async function call (h: Host, msg: Record<string, unknown>): Promise<any> {
  const id = nextId++
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { h.pending.delete(id); reject(new Error(`no reply to ${JSON.stringify(msg)}`)) }, 10_000)
    h.pending.set(id, (m) => { clearTimeout(timer); resolve(m) })
    h.proc.stdin.write(JSON.stringify({ ...msg, id }) + '\n')
  })
}

async function probe (i: number): Promise<any> {
  const proc = spawnIn(i, ['probe'])
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await new Promise<void>((resolve) => proc.on('exit', () => { resolve() }))
  return JSON.parse(out.trim().split('\n').pop() ?? '{}').status
}

async function channelCounts (hs: Host[]): Promise<number[]> {
  return await Promise.all(hs.map(async h => (await call(h, { cmd: 'state' })).channels.length as number))
}

async function converged (hs: Host[], docs: string[]): Promise<any[] | undefined> {
  const states = await Promise.all(hs.map(async h => await call(h, { cmd: 'state', docs })))
  const first = states[0]
  return states.every(s => s.root === first.root && s.count === first.count && JSON.stringify(s.docs) === JSON.stringify(first.docs)) ? states : undefined
}

describe.skipIf(skipReason !== undefined)('LAN: three hosts in network namespaces', () => {
  beforeAll(() => { setUp() })
  afterAll(() => { tearDown() })

  it('diagnoses a host with no multicast route and a host with loopback only', async () => {
    const noRoute = await probe(4)
    expect(noRoute.mdns).toBe('no-multicast-route')
    expect(noRoute.detail).toMatch(/ip route add 224\.0\.0\.0\/4 dev eth0/)
    const loOnly = await probe(5)
    expect(loOnly.mdns).toBe('no-interface')
    const ok = await probe(1)
    expect(ok.mdns).toBe('ok')
  })

  it('discover by mDNS with no configuration, converge, and reconnect and converge again after a link is cut until it dies', async () => {
    const hs = [startHost(1), startHost(2), startHost(3)]
    const readies = await Promise.all(hs.map(async h => await h.ready))
    for (const r of readies) expect(r.discovery.mdns).toBe('ok')
    await waitFor(async () => (await channelCounts(hs)).every(n => n === 2),
      { timeoutMs: 30_000, intervalMs: 200, message: 'mDNS mesh of three hosts' })

    for (const [i, h] of hs.entries()) await call(h, { cmd: 'edit', doc: `lan/${i}`, text: `from host ${i + 1};` })
    await call(hs[0] as Host, { cmd: 'edit', doc: 'lan/shared', text: 'one;' })
    const docs = ['lan/0', 'lan/1', 'lan/2', 'lan/shared']
    await waitFor(async () => (await converged(hs, docs)) !== undefined, { timeoutMs: 20_000, intervalMs: 200, message: 'first convergence' })

    // cut host 1 off and keep it cut until its connections are dead on both sides (a short cut
    // would leave the TCP connections alive and test nothing about reconnecting)
    ip('link', 'set', lan.veth(1), 'down')
    await waitFor(async () => { const [h1, h2, h3] = await channelCounts(hs); return h1 === 0 && h2 === 1 && h3 === 1 },
      { timeoutMs: LINK_DEATH_TIMEOUT_MS, intervalMs: 250, message: 'host 1 has no channel left, hosts 2 and 3 only each other' })
    // edit on both sides of the cut
    await call(hs[0] as Host, { cmd: 'edit', doc: 'lan/shared', text: 'cut-side;' })
    await call(hs[1] as Host, { cmd: 'edit', doc: 'lan/shared', text: 'other-side;' })
    await call(hs[2] as Host, { cmd: 'edit', doc: 'lan/new', text: 'made during the cut;' })
    // host 1 cannot see the others' edits while cut off
    await waitFor(async () => (await call(hs[1] as Host, { cmd: 'state', docs: ['lan/new'] })).docs['lan/new'] === 'made during the cut;', { message: 'host 2 edit reaches host 3' })
    const cutState = await call(hs[0] as Host, { cmd: 'state', docs: ['lan/new'] })
    expect(cutState.docs['lan/new']).toBe('')

    ip('link', 'set', lan.veth(1), 'up')
    // the links come back by redialling: channels again, then convergence
    await waitFor(async () => (await channelCounts(hs)).every(n => n === 2),
      { timeoutMs: 60_000, intervalMs: 250, message: 'channels back after the link came back' })
    const all = [...docs, 'lan/new']
    let states: any[] | undefined
    await waitFor(async () => { states = await converged(hs, all); return states !== undefined }, { timeoutMs: 60_000, intervalMs: 250, message: 'convergence after the link came back' })
    const shared = states?.[0].docs['lan/shared'] as string
    expect(shared).toContain('cut-side;')
    expect(shared).toContain('other-side;')
    expect(states?.[0].docs['lan/new']).toBe('made during the cut;')

    for (const h of hs) await call(h, { cmd: 'stop' }).catch(() => {})
  }, 200_000)
})
