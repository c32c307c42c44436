import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '@hearsay/core/testing'
import { CLIENT_TIMEOUT_MS } from '../src/index.js'
import { hearsay, run } from './helpers.js'

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
      cleanup.push(() => { p.child.kill('SIGKILL') })
      const signal = new Promise<string | null>(resolve => { p.child.on('exit', (_code, sig) => { resolve(sig) }) })
      await waitFor(() => connections() > before, { timeoutMs: 10_000, message: `${args[0]} connected` })
      p.child.kill('SIGINT')
      expect(await signal).toBe('SIGINT')
      expect(p.stderr()).not.toMatch(/did not answer/)
    }
  }, 30_000)
})
