/**
 * Two sites behind NAT and a relay on the internet (test/nat.ts), every host running the
 * `hearsay` daemon from the CLI, in its own network namespace:
 *
 *   - all four site hosts converge on documents written at both sites; hosts within a site use
 *     their LAN path, cross-site pairs a relayed or direct one, and the status says which;
 *   - with the relay killed, each site keeps converging on its own; restarted, everything converges;
 *   - a device at the other site joins with an invite token and nothing else (no mDNS): the token
 *     carries the admin's relayed address, and the relay;
 *   - a host outside the swarm (another swarm key) cannot use the relay.
 *
 * Whether DCUtR punched a direct path under this NAT is printed. Needs root, ip netns and
 * iptables; skipped with a message elsewhere.
 */
import { execFile } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { waitFor } from '@hearsay/core/testing'
import { generateSwarmKey } from '@hearsay/libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSites } from '../nat.js'
import type { HostName, Sites } from '../nat.js'
import { iptablesUnavailable, namespacesUnavailable } from '../netns.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const BIN = join(root, 'packages/daemon/bin/hearsay.mjs')
const PROCESS_TIMEOUT_S = 240
const HTTP_PORT = 4410
const P2P_PORT = 4001
const exec = promisify(execFile)

const skipReason = namespacesUnavailable() ?? iptablesUnavailable()
if (skipReason !== undefined) process.stderr.write(`two-sites relay test skipped: ${skipReason}\n`)

const SITE_HOSTS: HostName[] = ['site:1:1', 'site:1:2', 'site:2:1', 'site:2:2']
const site = (h: HostName): number => Number(h.split(':')[1])

interface Daemon { proc: ChildProcessWithoutNullStreams, log: () => string }

let sites: Sites
let work = ''
const daemons = new Map<HostName, Daemon>()
let relayAddr = ''

/** An HTTP request to the daemon of `host`, made inside its namespace. */
async function http (host: HostName, method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const script = 'const [p, m, b] = process.argv.slice(1); fetch(`http://127.0.0.1:' + HTTP_PORT + '${p}`, { method: m, headers: { "content-type": "application/json" }, body: b === "" ? undefined : b })' +
    '.then(async r => process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() }))).catch(e => process.stdout.write(JSON.stringify({ status: 0, text: String(e) })))'
  const { stdout } = await exec('ip', ['netns', 'exec', sites.ns(host), 'timeout', '10', process.execPath, '-e', script, path, method, body === undefined ? '' : JSON.stringify(body)])
  const r = JSON.parse(stdout) as { status: number, text: string }
  let json: any
  try { json = JSON.parse(r.text) } catch { json = r.text }
  return { status: r.status, json }
}

const status = async (host: HostName): Promise<any> => (await http(host, 'GET', '/status')).json

/** The value of `key` in the document on `host`, or undefined. */
async function valueOn (host: HostName, doc: string, key: string): Promise<unknown> {
  const r = await http(host, 'GET', `/api/docs/${encodeURIComponent(doc)}`)
  return r.status === 200 ? r.json?.content?.data?.[key] : undefined
}

/** The `hearsay` CLI inside a host's namespace, against its daemon. */
async function cliIn (host: HostName, args: string[]): Promise<string> {
  const { stdout } = await exec('ip', ['netns', 'exec', sites.ns(host), 'timeout', '30', process.execPath, BIN, ...args, '--url', `http://127.0.0.1:${HTTP_PORT}`], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' } })
  return stdout
}

async function startDaemon (host: HostName, dir: string, env: Record<string, string>, args: string[] = ['start']): Promise<void> {
  const proc = sites.spawnIn(host, [process.execPath, BIN, ...args], {
    timeoutS: PROCESS_TIMEOUT_S,
    cwd: root,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      HEARSAY_DATA_DIR: dir,
      HEARSAY_HTTP_PORT: String(HTTP_PORT),
      HEARSAY_LISTEN: `/ip4/0.0.0.0/tcp/${P2P_PORT}`,
      HEARSAY_LOG_LEVEL: 'info',
      HEARSAY_NAME: host.replace(/:/g, '-'),
      ...env
    }
  })
  let log = ''
  proc.stderr.on('data', (d: Buffer) => { log += d.toString() })
  proc.stdout.on('data', (d: Buffer) => { log += d.toString() })
  daemons.set(host, { proc, log: () => log })
  await waitFor(async () => (await http(host, 'GET', '/status')).status === 200, { timeoutMs: 60_000, intervalMs: 250, message: `${host} serving: ${log}` })
}

const dataDir = (host: HostName): string => join(work, host.replace(/:/g, '-'))

async function put (host: HostName, doc: string, key: string, value: string): Promise<void> {
  const r = await http(host, 'PUT', `/api/docs/${encodeURIComponent(doc)}/${key}`, value)
  expect(r.status, JSON.stringify(r.json)).toBe(200)
}

async function converged (hosts: HostName[], doc: string, key: string, value: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await Promise.all(hosts.map(async h => await valueOn(h, doc, key)))).every(v => v === value), { timeoutMs, intervalMs: 250, message: `${doc} on ${hosts.join(', ')}` })
}

async function startRelay (): Promise<void> {
  await startDaemon('relay', dataDir('relay'), { HEARSAY_MDNS: 'false' }, ['start', '--relay'])
}

describe.skipIf(skipReason !== undefined)('two sites behind NAT and a relay (network namespaces, real daemons)', () => {
  beforeAll(async () => {
    sites = createSites({ hostsPerSite: 3, internetHosts: 1 })
    work = mkdtempSync(join(tmpdir(), 'hs-sites-'))
    const dir = work
    sites.atTearDown(() => { rmSync(dir, { recursive: true, force: true }) })
    const key = generateSwarmKey()
    for (const h of ['relay', ...SITE_HOSTS] as HostName[]) {
      const d = dataDir(h)
      rmSync(d, { recursive: true, force: true })
      mkdirSync(d, { recursive: true })
      writeFileSync(join(d, 'swarm.key'), key, { mode: 0o600 })
    }
    await startRelay()
    const st = await status('relay')
    relayAddr = `/ip4/${sites.addr('relay')}/tcp/${P2P_PORT}/p2p/${st.id as string}`
    // every member knows the relay's address, nothing else
    await Promise.all(SITE_HOSTS.map(async h => { await startDaemon(h, dataDir(h), { HEARSAY_RELAYS: relayAddr }) }))
  }, 120_000)

  afterAll(() => {
    sites?.tearDown()
  })

  it('converges across sites through the relay; LAN paths within a site; the status says which', async () => {
    await put('site:1:1', 'shop/orders', 'from', 'back room')
    await put('site:2:1', 'home/ledger', 'from', 'home')
    await converged(SITE_HOSTS, 'shop/orders', 'from', 'back room', 60_000)
    await converged(SITE_HOSTS, 'home/ledger', 'from', 'home', 60_000)

    // every host sees the other three: the one at its site on the LAN, the others relayed (or direct)
    await waitFor(async () => {
      for (const h of SITE_HOSTS) {
        const peers = (await status(h)).peers as Array<{ id: string, name?: string, path?: string }>
        const others = SITE_HOSTS.filter(o => o !== h)
        for (const o of others) {
          const p = peers.find(q => q.name === o.replace(/:/g, '-'))
          if (p?.path === undefined) return false
          if (site(o) === site(h) ? p.path !== 'lan' : p.path === 'lan') return false
        }
      }
      return true
    }, { timeoutMs: 60_000, intervalMs: 500, message: 'paths of every pair' })

    const s11 = await status('site:1:1')
    const cross = (s11.peers as Array<{ name?: string, path?: string }>).filter(p => p.name?.startsWith('site-2-') === true).map(p => p.path)
    process.stderr.write(`two sites: cross-site paths from site 1 host 1: ${cross.join(', ')} (DCUtR ${cross.includes('direct') ? 'punched a direct path' : 'did not punch through this NAT: relayed'})\n`)
    expect(s11.network.relay.relays).toEqual([{ id: relayAddr.split('/p2p/')[1], connected: true, reserved: true }])
    expect(s11.peers.find((p: any) => p.name === 'relay')?.path).toBe('direct')
    if (cross.includes('relayed')) expect(s11.network.relay.bytesSent).toBeGreaterThan(0)
    const relayStatus = await status('relay')
    expect(relayStatus.network.relay).toMatchObject({ serving: true, reservationsServed: 4 })

    // the CLI says it too
    const stdout = await cliIn('site:1:1', ['status'])
    expect(stdout).toMatch(/connected \(lan\), in sync/)
    expect(stdout).toMatch(/connected \((relayed|direct)\), in sync/)
    expect(stdout).toMatch(/relay +\S+ +reserved/)
    const metrics = (await http('site:1:1', 'GET', '/metrics')).json as string
    expect(metrics).toMatch(/^hearsay_relay_reservations 1$/m)
    expect(metrics).toMatch(/^hearsay_peers_relayed [12]$/m)
  }, 150_000)

  it('with the relay down each site keeps syncing; with it back, everything converges', async () => {
    sites.kill(daemons.get('relay')!.proc)
    await put('site:1:2', 'shop/apart', 'note', 'written at the shop')
    await put('site:2:2', 'home/apart', 'note', 'written at home')
    await converged(['site:1:1', 'site:1:2'], 'shop/apart', 'note', 'written at the shop', 30_000)
    await converged(['site:2:1', 'site:2:2'], 'home/apart', 'note', 'written at home', 30_000)
    // the sites are really apart: nothing crosses without the relay (no hole was punched above)
    expect(await valueOn('site:2:1', 'shop/apart', 'note')).toBeUndefined()
    expect(await valueOn('site:1:1', 'home/apart', 'note')).toBeUndefined()

    await startRelay()
    await converged(SITE_HOSTS, 'shop/apart', 'note', 'written at the shop', 90_000)
    await converged(SITE_HOSTS, 'home/apart', 'note', 'written at home', 90_000)
    // and the cross-site connections come back through the relay
    await waitFor(async () => {
      const peers = (await status('site:1:1')).peers as Array<{ name?: string, path?: string }>
      return peers.filter(p => p.name?.startsWith('site-2-') === true && p.path !== undefined && p.path !== 'lan').length === 2
    }, { timeoutMs: 60_000, intervalMs: 500, message: 'cross-site connections again' })
  }, 240_000)

  it('a device at the other site joins with an invite token alone, through the relay', async () => {
    await cliIn('site:1:1', ['manage'])
    const invite = JSON.parse(await cliIn('site:1:1', ['invite', '--name', 'newcomer', '--grant', 'shop/:read', '--json'])) as { token: string }
    const host: HostName = 'site:2:3'
    const d = dataDir(host)
    // no swarm key, no relay, no mDNS: everything comes from the token
    await startDaemon(host, d, { HEARSAY_MDNS: 'false' }, ['join', invite.token])
    await converged([host], 'shop/orders', 'from', 'back room', 60_000)
    const st = await status(host)
    expect(st.network.relay.relays).toEqual([{ id: relayAddr.split('/p2p/')[1], connected: true, reserved: true }])
    expect(st.peers.find((p: any) => p.name === 'site-1-1')?.path).toMatch(/^(relayed|direct)$/)
    expect(await valueOn(host, 'home/ledger', 'from')).toBeUndefined() // its grant is shop/ only
  }, 120_000)

  it('a host outside the swarm cannot use the relay', async () => {
    const outsider: HostName = 'internet:1'
    const d = dataDir(outsider)
    mkdirSync(d, { recursive: true })
    writeFileSync(join(d, 'swarm.key'), generateSwarmKey(), { mode: 0o600 })
    await startDaemon(outsider, d, { HEARSAY_RELAYS: relayAddr, HEARSAY_MDNS: 'false' })
    const log = daemons.get(outsider)!.log
    await waitFor(() => (log().match(/swarm key mismatch|dial to bootstrap .* failed/g) ?? []).length >= 2, { timeoutMs: 30_000, intervalMs: 250, message: `outsider refused twice: ${log()}` })
    const st = await status(outsider)
    expect(st.network.relay.relays).toEqual([{ id: relayAddr.split('/p2p/')[1], connected: false, reserved: false }])
    expect(st.peers).toEqual([])
    expect((await status('relay')).network.relay.reservationsServed).toBe(5)
    for (const h of SITE_HOSTS) expect(((await status(h)).peers as Array<{ id: string }>).some(p => p.id === st.id)).toBe(false)
  }, 90_000)
})
