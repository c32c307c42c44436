import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '@hearsay/core/testing'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import { CLIENT_TIMEOUT_MS, main, startDaemon } from '../src/index.js'
import type { Daemon } from '../src/index.js'
import { client, hearsay, kill, run } from './helpers.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

/** Something listening on 127.0.0.1 that accepts connections and never answers. */
async function silentServer (): Promise<{ url: string, connections: () => number }> {
  const sockets = new Set<Socket>()
  let count = 0
  const server: Server = createServer(s => { count++; sockets.add(s) })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  cleanup.push(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  })
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, connections: () => count }
}

describe('client commands against a daemon that does not answer', () => {
  it('give up after CLIENT_TIMEOUT_MS with a message naming the URL', async () => {
    const { url } = await silentServer()
    const t0 = performance.now()
    const r = await run(['status', '--url', url])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`hearsay status: the daemon at ${url}/status did not answer within ${CLIENT_TIMEOUT_MS / 1000} s`)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(CLIENT_TIMEOUT_MS)
  }, 30_000)

  it('stop at once on Ctrl-C', async () => {
    const { url, connections } = await silentServer()
    for (const args of [['docs'], ['get', 'doc'], ['set', 'doc', 'k', '1']]) {
      const before = connections()
      const p = hearsay([...args, '--url', url])
      cleanup.push(async () => { await kill(p.child) })
      const signal = new Promise<string | null>(resolve => { p.child.on('exit', (_code, sig) => { resolve(sig) }) })
      await waitFor(() => connections() > before, { timeoutMs: 10_000, message: `${args[0]} connected` })
      p.child.kill('SIGINT')
      expect(await signal).toBe('SIGINT')
      expect(p.stderr()).not.toMatch(/did not answer/)
    }
  }, 30_000)
})

/** The CLI in this process: its exit code and what it printed so far. */
function cli (argv: string[], stopSignal?: Promise<string>): { code: Promise<number>, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  const code = main(argv, { out: t => { out.push(t) }, err: t => { err.push(t) }, env: {}, ...(stopSignal !== undefined ? { stopSignal } : {}) })
  return { code, out, err }
}

async function pair (): Promise<[Daemon, Daemon]> {
  const net = createMemoryNetwork({ seed: 5 })
  const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a') }), transport: 'memory' })
  const b = await startDaemon({ node: createNode({ id: 'b', transport: net.transport('b') }), transport: 'memory' })
  cleanup.push(() => a.close(), () => b.close())
  await waitFor(() => a.node.peers().some(p => p.connected && p.inSync), { timeoutMs: 5000 })
  return [a, b]
}

describe('get, set and watch', () => {
  it('get of a document this node does not hold fails and points at hearsay docs; set --json prints the result', async () => {
    const [a] = await pair()
    const missing = cli(['get', 'nope', '--url', a.url])
    expect(await missing.code).toBe(1)
    expect(missing.out).toEqual([])
    expect(missing.err.join('\n')).toMatch(/answered 404: no document "nope" on this node \(`hearsay docs`/)

    const set = cli(['set', 'room', 'temp', '21.5', '--json', '--url', a.url])
    expect(await set.code).toBe(0)
    expect(JSON.parse(set.out.join(''))).toEqual({ id: 'room', key: 'temp', value: 21.5 })
    const plain = cli(['set', 'room', 'who', 'me', '--url', a.url])
    expect(await plain.code).toBe(0)
    expect(plain.out).toEqual(['room: who set to "me"'])
    const got = cli(['get', 'room', '--url', a.url])
    expect(await got.code).toBe(0)
    expect(JSON.parse(got.out.join(''))).toEqual({ data: { temp: 21.5, who: 'me' } })
  })

  it('watch names who made each change, and says so when the daemon stops', async () => {
    const [a, b] = await pair()
    const w = cli(['watch', 'room', '--url', a.url], new Promise(() => {}))
    await waitFor(() => w.out.some(l => l.includes('initial: {}')), { timeoutMs: 5000 })

    expect(await cli(['set', 'room', 'n', '1', '--url', a.url]).code).toBe(0)
    await waitFor(() => w.out.some(l => / local: \{"data":\{"n":1\}\}$/.test(l)), { timeoutMs: 5000, message: `local: ${w.out.join('\n')}` })

    expect(await cli(['set', 'room', 'n', '2', '--url', b.url]).code).toBe(0)
    await waitFor(() => w.out.some(l => / peer b: \{"data":\{"n":2\}\}$/.test(l)), { timeoutMs: 5000, message: `peer: ${w.out.join('\n')}` })

    const c = await client(a.url, 'room')
    c.doc.getMap('data').set('n', 3)
    await waitFor(() => w.out.some(l => / client: \{"data":\{"n":3\}\}$/.test(l)), { timeoutMs: 5000, message: `client: ${w.out.join('\n')}` })
    expect(w.out.some(l => / client: /.test(l) && l.includes('"n":2'))).toBe(false)
    c.provider.destroy()

    await a.close()
    expect(await w.code).toBe(1)
    expect(w.err.join('\n')).toMatch(/the daemon at http:\/\/127\.0\.0\.1:\d+ closed the connection/)
  })
})
