import { request } from 'node:http'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { formatStatus, startDaemon } from '../src/index.js'
import type { Daemon } from '../src/index.js'
import { checkDeviceName } from '../src/device-name.js'
import { buildDashboard } from './helpers.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function pair (): Promise<[Daemon, Daemon]> {
  const net = createMemoryNetwork({ seed: 11 })
  const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a') }), transport: 'memory', name: 'laptop' })
  const b = await startDaemon({ node: createNode({ id: 'b', transport: net.transport('b') }), transport: 'memory', name: 'desk' })
  cleanup.push(() => a.close(), () => b.close())
  return [a, b]
}

async function raw (d: Daemon, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number, body: string, headers: Record<string, unknown> }> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: d.port, method, path, headers }, res => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

const putName = async (d: Daemon, body: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string }> =>
  await raw(d, 'PUT', '/api/name', { host: `127.0.0.1:${d.port}`, 'content-type': 'application/json', ...headers }, body)

describe('device names', () => {
  it('each daemon announces its name; peers list it; PUT /api/name renames', async () => {
    const [a, b] = await pair()
    expect(a.status().name).toBe('laptop')
    await waitFor(() => b.status().peers.some(p => p.id === 'a' && p.name === 'laptop'), { message: 'b knows a as laptop' })
    expect(formatStatus(b.status())).toMatch(/^node +b \(memory\) +name "desk"$/m)
    expect(formatStatus(b.status())).toMatch(/^peer +a .* name "laptop"$/m)
    expect((await putName(a, '"kitchen laptop"')).status).toBe(200)
    expect(a.status().name).toBe('kitchen laptop')
    await waitFor(() => b.status().peers.some(p => p.id === 'a' && p.name === 'kitchen laptop'), { message: 'b sees the new name' })
  })

  it('refuses bad names with 400, other origins with 403, and keeps the old name', async () => {
    const [a] = await pair()
    for (const body of ['"   "', `"${'x'.repeat(65)}"`, '"a\\u0000b"', '"\\u202eevil"', '42', 'laptop', '{"name":"x"}']) {
      const r = await putName(a, body)
      expect(r.status, body).toBe(400)
    }
    expect((await putName(a, '"x"', { 'content-type': 'text/plain' })).status).toBe(415)
    expect((await putName(a, '"evil"', { origin: 'http://evil.example' })).status).toBe(403)
    expect(a.status().name).toBe('laptop')
  })

  it('cleans up a name a peer announces: no control characters, at most 64 characters', async () => {
    const [a, b] = await pair()
    a.node.setMeta('name', `\u001b[31mred\u202e${'y'.repeat(200)}`)
    await waitFor(() => b.status().peers.some(p => p.id === 'a' && p.name?.startsWith('[31mred') === true), { message: 'b hears the new name' })
    const name = b.status().peers.find(p => p.id === 'a')!.name!
    expect([...name].length).toBe(64)
    expect(name).not.toMatch(/[\u0000-\u001f\u202e]/)
    expect(() => checkDeviceName('ok name')).not.toThrow()
  })
})

describe('dashboard', () => {
  beforeAll(() => { buildDashboard() })
  it('is served at /dashboard with its own files only, behind the Host check, unframeable', async () => {
    const [a] = await pair()
    expect((await raw(a, 'GET', '/dashboard', { host: `127.0.0.1:${a.port}` })).headers.location).toBe('/dashboard/')
    const page = await raw(a, 'GET', '/dashboard/', { host: `127.0.0.1:${a.port}` })
    expect(page.status).toBe(200)
    expect(page.body).toContain('<title>Hearsay</title>')
    expect(page.headers['x-frame-options']).toBe('DENY')
    expect(String(page.headers['content-security-policy'])).toContain("frame-ancestors 'none'")
    expect((await raw(a, 'GET', '/', { host: `127.0.0.1:${a.port}` })).headers.location).toBe('/dashboard/') // no web app at /
    expect((await raw(a, 'GET', '/dashboard/app.js', { host: `localhost:${a.port}` })).status).toBe(200)
    expect((await raw(a, 'GET', '/dashboard', { host: `evil.example:${a.port}` })).status).toBe(403)
    expect((await raw(a, 'GET', '/dashboard/../package.json', { host: `127.0.0.1:${a.port}` })).status).toBe(404)
    expect((await raw(a, 'GET', '/dashboard/%2e%2e%2fpackage.json', { host: `127.0.0.1:${a.port}` })).status).toBe(404)
  })

  it('GET /api/docs?sizes gives each document\'s size', async () => {
    const [a] = await pair()
    const put = await raw(a, 'PUT', `/api/docs/${encodeURIComponent('notes/1')}/body`, { host: `127.0.0.1:${a.port}`, 'content-type': 'application/json' }, JSON.stringify('x'.repeat(1000)))
    expect(put.status).toBe(200)
    const r = JSON.parse((await raw(a, 'GET', '/api/docs?sizes', { host: `127.0.0.1:${a.port}` })).body) as { docs: string[], sizes: Record<string, number> }
    expect(r.docs).toEqual(['notes/1'])
    expect(r.sizes['notes/1']).toBeGreaterThan(1000)
  })
})
