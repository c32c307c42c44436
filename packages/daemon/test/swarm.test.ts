import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '@hearsay/core/testing'
import { hearsay, kill, run, tempDir } from './helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

const LOOPBACK = ['--http-port', '0', '--listen', '/ip4/127.0.0.1/tcp/0', '--mdns', 'false', '--log-level', 'warn']

async function daemon (dir: string, more: string[] = []): Promise<{ proc: ReturnType<typeof hearsay>, status: () => Promise<any> }> {
  const proc = hearsay(['start', '--data-dir', dir, ...LOOPBACK, ...more])
  cleanup.push(async () => { await kill(proc.child) })
  await waitFor(() => /serving (http:\/\/\S+)/.test(proc.stderr()), { timeoutMs: 30_000, message: `daemon up: ${proc.stderr()}` })
  const url = /serving (http:\/\/\S+)/.exec(proc.stderr())![1]!
  return { proc, status: async () => await (await fetch(`${url}/status`)).json() }
}

const mismatchLines = (log: string): string[] => log.split('\n').filter(l => l.includes('swarm key mismatch'))

describe('swarm keys (real processes)', () => {
  it('a garbage swarm.key names the file and the fix, and exits 2', async () => {
    const dir = await tempDir('swarm-bad', cleanup)
    await writeFile(join(dir, 'swarm.key'), 'not a key\n')
    const r = await run(['start', '--data-dir', dir, ...LOOPBACK])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`hearsay start: ${join(dir, 'swarm.key')} is not a swarm key: swarm key must have 3 lines`)
    expect(r.stderr).toMatch(/Copy the swarm's swarm\.key from another device over it, or run `hearsay init --new-swarm-key`/)
  })

  it('warns about an open swarm; names a key mismatch on both sides, once per peer, and in status', async () => {
    const [keyed, open, other] = [await tempDir('swarm-k', cleanup), await tempDir('swarm-o', cleanup), await tempDir('swarm-x', cleanup)]
    expect((await run(['init', '--data-dir', keyed])).code).toBe(0)
    expect((await run(['init', '--data-dir', open, '--no-swarm-key'])).code).toBe(0)
    expect((await run(['init', '--data-dir', other])).code).toBe(0)

    const k = await daemon(keyed)
    const ks = await k.status()
    const addr = ks.multiaddrs[0] as string
    const o = await daemon(open, ['--bootstrap', addr])
    const x = await daemon(other, ['--bootstrap', addr])
    expect(o.proc.stderr()).toMatch(/warn +hearsay:daemon open swarm: no swarm key in .*any Hearsay node on this network may connect.*hearsay init/)
    expect(k.proc.stderr()).not.toMatch(/open swarm/)

    // both outsiders keep dialling; the keyed node counts every refusal but names it once
    await waitFor(async () => ((await k.status()).network.swarmMismatches[0]?.count ?? 0) >= 3, { timeoutMs: 30_000, message: `refusals: ${k.proc.stderr()}` })
    await waitFor(async () => (await o.status()).network.swarmMismatches.some((m: any) => m.peer === ks.id), { timeoutMs: 30_000, message: `open side: ${o.proc.stderr()}` })
    await waitFor(async () => (await x.status()).network.swarmMismatches.some((m: any) => m.peer === ks.id), { timeoutMs: 30_000, message: `other key: ${x.proc.stderr()}` })
    expect(mismatchLines(k.proc.stderr())).toEqual([expect.stringMatching(/swarm key mismatch: refused connection from \/ip4\/127\.0\.0\.1\/tcp\/\d+: .*not in this private swarm/)])
    expect(mismatchLines(o.proc.stderr())).toEqual([expect.stringMatching(new RegExp(`swarm key mismatch: dial to ${ks.id} failed .*runs a private swarm.*this node has none`))])
    expect(mismatchLines(x.proc.stderr())).toEqual([expect.stringMatching(new RegExp(`swarm key mismatch: refused connection to \\S+/p2p/${ks.id}`))])

    const onKeyed = await run(['status', '--data-dir', keyed])
    expect(onKeyed.stdout).toMatch(/^mismatch +\/ip4\/127\.0\.0\.1 +swarm key mismatch \(it has another swarm key, or none\): \d+ connection\(s\)/m)
    const onOpen = await run(['status', '--data-dir', open])
    expect(onOpen.stdout).toMatch(/^swarm +open \(no swarm key\)/m)
    expect(onOpen.stdout).toMatch(new RegExp(`^mismatch +${ks.id} +swarm key mismatch \\(it has a swarm key, this node none\\): \\d+ connection`, 'm'))
    const onOther = await run(['status', '--data-dir', other])
    expect(onOther.stdout).toMatch(new RegExp(`^mismatch +${ks.id} +swarm key mismatch \\(it has another swarm key, or none\\): \\d+ connection`, 'm'))
  }, 120_000)
})
