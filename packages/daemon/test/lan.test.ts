import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '@hearsay/core/testing'
import { client, hearsay, kill, run, tempDir } from './helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

/** Loopback only, no mDNS: peers meet through `bootstrap`, as across a LAN without multicast. */
const LOOPBACK = { HEARSAY_HTTP_PORT: '0', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0', HEARSAY_MDNS: 'false', HEARSAY_LOG_LEVEL: 'warn' }

async function daemon (dir: string, env: Record<string, string> = {}): Promise<{ proc: ReturnType<typeof hearsay>, url: string, status: () => Promise<any> }> {
  const proc = hearsay(['start'], { ...LOOPBACK, HEARSAY_DATA_DIR: dir, ...env })
  cleanup.push(async () => { await kill(proc.child) })
  await waitFor(() => /serving (http:\/\/\S+)/.test(proc.stderr()), { timeoutMs: 30_000, message: `daemon up: ${proc.stderr()}` })
  const url = /serving (http:\/\/\S+)/.exec(proc.stderr())![1]!
  return { proc, url, status: async () => await (await fetch(`${url}/status`)).json() }
}

describe('two daemons over libp2p on loopback (real processes)', () => {
  it('a y-websocket edit on one daemon reaches a client of the other; outsiders are refused', async () => {
    const [dirA, dirB, dirC] = await Promise.all([1, 2, 3].map(async () => await tempDir('lan', cleanup)))
    for (const d of [dirA!, dirB!, dirC!]) expect((await run(['init', '--data-dir', d])).code).toBe(0)
    await copyFile(join(dirA!, 'swarm.key'), join(dirB!, 'swarm.key')) // same swarm; C keeps its own key

    const a = await daemon(dirA!)
    const addr = (await a.status()).multiaddrs[0] as string
    expect(addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    const b = await daemon(dirB!, { HEARSAY_BOOTSTRAP: addr })
    const c = await daemon(dirC!, { HEARSAY_BOOTSTRAP: addr })
    await waitFor(async () => (await b.status()).peers.some((p: any) => p.state === 'alive' && p.inSync), { timeoutMs: 20_000, message: 'b connected to a' })

    const ca = await client(a.url, 'notes/lan')
    const cb = await client(b.url, 'notes/lan')
    cleanup.push(() => { ca.provider.destroy(); cb.provider.destroy() })
    const samples: number[] = []
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now()
      ca.doc.getText('body').insert(0, `${i} `)
      await waitFor(() => cb.doc.getText('body').toString().startsWith(`${i} `), { intervalMs: 1 })
      samples.push(performance.now() - t0)
    }
    samples.sort((x, y) => x - y)
    process.stderr.write(`y-websocket client → daemon → libp2p → daemon → client: median ${samples[10]!.toFixed(1)} ms, max ${samples[19]!.toFixed(1)} ms\n`)

    cb.doc.getText('body').insert(0, 'from b ')
    await waitFor(() => ca.doc.getText('body').toString().startsWith('from b '))
    const status = await run(['status', '--url', b.url])
    expect(status.stdout).toMatch(/peer +\S+ +alive +connected \(lan\), in sync/)
    expect(status.stdout).toMatch(/swarm +private \(swarm key\) +1 connection/)
    expect((await b.status()).network).toMatchObject({ privateSwarm: true, connections: 1 })

    // C has another swarm key: it never gets the document
    expect((await c.status()).peers.filter((p: any) => p.connected)).toEqual([])
    expect((await (await fetch(`${c.url}/api/docs`)).json()).docs).toEqual([])

    for (const d of [a, b, c]) d.proc.child.kill('SIGTERM')
    expect(await Promise.all([a, b, c].map(d => d.proc.exited))).toEqual([0, 0, 0])
  })
})
