/**
 * Durable acknowledgements across real processes: a `hearsay start` daemon (real LevelDB, real
 * libp2p) acknowledges a burst of edits from a node in this process; the moment
 * `replicated(…, { durable: true })` resolves the daemon is SIGKILLed, and after a restart, with the
 * writer gone, every acknowledged edit is read back from its disk. Twice, on the same directory.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '@hearsay/core/testing'
import { createHearsayNode } from '@hearsay/libp2p'
import { hearsay, kill, run, tempDir } from './helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

const LOOPBACK = ['--http-port', '0', '--listen', '/ip4/127.0.0.1/tcp/0', '--mdns', 'false', '--log-level', 'warn']

async function startDaemon (dir: string): Promise<{ proc: ReturnType<typeof hearsay>, url: string, id: string, addr: string }> {
  const proc = hearsay(['start', '--data-dir', dir, ...LOOPBACK])
  cleanup.push(async () => { await kill(proc.child) })
  await waitFor(() => /serving (http:\/\/\S+)/.test(proc.stderr()), { timeoutMs: 30_000, message: `daemon up: ${proc.stderr()}` })
  const url = /serving (http:\/\/\S+)/.exec(proc.stderr())![1]!
  const status = await (await fetch(`${url}/status`)).json() as { id: string, multiaddrs: string[] }
  return { proc, url, id: status.id, addr: status.multiaddrs[0]! }
}

describe('durable acknowledgements, real processes', () => {
  it('an edit acknowledged as stored survives a SIGKILL of the acknowledging daemon', async () => {
    const dir = await tempDir('ack-gw', cleanup)
    const mine = await tempDir('ack-me', cleanup)
    expect((await run(['init', '--data-dir', dir])).code).toBe(0)
    const swarmKey = await readFile(join(dir, 'swarm.key'))
    for (let round = 0; round < 2; round++) {
      const gw = await startDaemon(dir)
      const writer = await createHearsayNode({ dataDir: mine, swarmKey, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, bootstrap: [gw.addr] })
      cleanup.push(async () => { await writer.stop() })
      await writer.start()
      await waitFor(() => writer.peers().some(p => p.id === gw.id && p.connected), { timeoutMs: 30_000, message: 'writer connects to the daemon' })
      const doc = await writer.open('readings')
      const list = doc.getArray<number>('r')
      await waitFor(() => list.length === 300 * round, { timeoutMs: 30_000, message: 'writer has the earlier rounds' })
      if (round === 1) {
        // the daemon says who holds the document, as the writer reports it (hearsay get --sync)
        const sync = await run(['get', 'readings', '--sync', '--url', gw.url])
        expect(sync.code, sync.stderr).toBe(0)
        expect(sync.stdout).toMatch(new RegExp(`^readings: saved on \\S+`))
        expect(sync.stdout).toMatch(new RegExp(`synced +stored +connected +${writer.id}`))
      }
      // a burst of separate edits: the last ones are still being written when the ack is asked for
      for (let i = 0; i < 300; i++) list.push([round * 1000 + i])
      const r = await writer.replicated('readings', { peers: [gw.id], durable: true, timeoutMs: 20_000 })
      gw.proc.child.kill('SIGKILL')
      expect(r.peers).toEqual([gw.id])
      await gw.proc.exited
      // the writer goes too: whatever the daemon has after restart came from its own disk
      writer.close('readings')
      await writer.stop()
      const again = hearsay(['start', '--data-dir', dir, ...LOOPBACK])
      cleanup.push(async () => { await kill(again.child) })
      await waitFor(() => /serving (http:\/\/\S+)/.test(again.stderr()), { timeoutMs: 30_000, message: `daemon up again: ${again.stderr()}` })
      const url = /serving (http:\/\/\S+)/.exec(again.stderr())![1]!
      const got = await (await fetch(`${url}/api/docs/readings`)).json() as { content: { r: number[] } }
      expect(got.content.r.length).toBe(300 * (round + 1))
      expect(got.content.r.slice(-300)).toEqual(Array.from({ length: 300 }, (_, i) => round * 1000 + i))
      await kill(again.child)
    }
  }, 120_000)
})
