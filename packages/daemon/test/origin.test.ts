import { request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import { startDaemon } from '../src/index.js'
import type { Daemon, DaemonOptions } from '../src/index.js'
import { isLoopbackHost, requestGuard } from '../src/guard.js'
import { client } from './helpers.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function daemon (options: Partial<DaemonOptions> = {}): Promise<Daemon> {
  const net = createMemoryNetwork({ seed: 1 })
  const d = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a') }), transport: 'memory', ...options })
  cleanup.push(() => d.close())
  return d
}

/** A raw HTTP request with the headers a browser (or an attacker's page) would send. */
async function raw (d: Daemon, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: d.port, method, path, headers }, res => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => {
        let message = text
        try { message = (JSON.parse(text) as { error?: string }).error ?? text } catch {}
        resolve({ status: res.statusCode ?? 0, body: message })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Open a WebSocket with these headers: resolves to 'open' or the HTTP status of the refusal. */
async function upgrade (d: Daemon, docId: string, headers: Record<string, string>): Promise<'open' | number> {
  const ws = new WebSocket(`ws://127.0.0.1:${d.port}/${docId}`, { headers })
  return await new Promise((resolve, reject) => {
    ws.on('open', () => { ws.close(); resolve('open') })
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.on('error', reject)
  })
}

const content = async (d: Daemon, docId: string): Promise<unknown> =>
  ((await (await fetch(`${d.url}/api/docs/${encodeURIComponent(docId)}`)).json()) as { content: unknown }).content

describe('who may use the local endpoint', () => {
  it('refuses a cross-origin write from a web page, even as a text/plain "simple request"', async () => {
    const d = await daemon()
    const host = `127.0.0.1:${d.port}`
    const evil = await raw(d, 'POST', '/api/docs/notes%2F1/title', { host, origin: 'https://evil.example', 'content-type': 'text/plain' }, '"pwned"')
    expect(evil.status).toBe(403)
    expect(evil.body).toMatch(/Origin "https:\/\/evil\.example" may not use this endpoint.*allowOrigins/)
    const evilJson = await raw(d, 'PUT', '/api/docs/notes%2F1/title', { host, origin: 'null', 'content-type': 'application/json' }, '"pwned"')
    expect(evilJson.status).toBe(403)
    expect(d.node.docs()).toEqual([])
    expect((await fetch(`${d.url}/api/docs/notes%2F1`)).status).toBe(404)
  })

  it('requires application/json for writes; the endpoint\'s own pages and origin-less clients may write', async () => {
    const d = await daemon()
    const host = `127.0.0.1:${d.port}`
    const plain = await raw(d, 'PUT', '/api/docs/doc/k', { host, 'content-type': 'text/plain' }, '1')
    expect(plain.status).toBe(415)
    expect(plain.body).toMatch(/content-type: application\/json/)
    expect((await raw(d, 'PUT', '/api/docs/doc/k', { host, 'content-type': 'application/json' }, 'not json')).status).toBe(400)
    const own = await raw(d, 'PUT', '/api/docs/doc/k', { host, origin: `http://${host}`, 'content-type': 'application/json; charset=utf-8' }, '1')
    expect(own.status).toBe(200)
    const cli = await raw(d, 'PUT', '/api/docs/doc/s', { host: `localhost:${d.port}`, 'content-type': 'application/json' }, '"hi"')
    expect(cli.status).toBe(200)
    expect(await content(d, 'doc')).toEqual({ data: { k: 1, s: 'hi' } })
  })

  it('refuses a rebound DNS name in Host, for reads too', async () => {
    const d = await daemon()
    const rebound = await raw(d, 'GET', '/status', { host: `attacker.example:${d.port}` })
    expect(rebound.status).toBe(403)
    expect(rebound.body).toMatch(/Host "attacker\.example:\d+" is not this endpoint/)
    expect((await raw(d, 'GET', '/api/docs', { host: `127.0.0.1:${d.port + 1}` })).status).toBe(403)
    expect((await upgrade(d, 'doc', { host: `attacker.example:${d.port}` }))).toBe(403)
    for (const host of [`127.0.0.1:${d.port}`, `localhost:${d.port}`, `LOCALHOST:${d.port}`]) {
      expect((await raw(d, 'GET', '/status', { host })).status).toBe(200)
    }
  })

  it('refuses WebSockets from other origins unless allowOrigins lists them', async () => {
    const d = await daemon({ allowOrigins: ['http://localhost:5173'] })
    expect(await upgrade(d, 'notes/1', { origin: 'https://evil.example' })).toBe(403)
    expect(await upgrade(d, 'notes/1', { origin: `http://127.0.0.1:${d.port}` })).toBe('open')
    expect(await upgrade(d, 'notes/1', { origin: 'http://localhost:5173' })).toBe('open')
    expect(await upgrade(d, 'notes/1', {})).toBe('open')
    // a stock y-websocket client in Node sends no Origin and keeps working
    const c = await client(d.url, 'notes/1')
    cleanup.push(() => { c.provider.destroy() })
    c.doc.getMap('data').set('ok', true)
    const { waitFor } = await import('@hearsay/core/testing')
    await waitFor(async () => JSON.stringify(await content(d, 'notes/1')) === '{"data":{"ok":true}}', { timeoutMs: 5000 })
  })

  it('knows loopback hosts and, when listening everywhere, this machine\'s addresses', () => {
    expect(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'].every(isLoopbackHost)).toBe(true)
    expect(['0.0.0.0', '192.168.1.20', '::', 'example.com'].some(isLoopbackHost)).toBe(false)
    const everywhere = requestGuard({ host: '0.0.0.0', port: 4410 })
    expect(everywhere.checkHost('127.0.0.1:4410')).toBeUndefined()
    expect(everywhere.checkHost('0.0.0.0:4410')).toBeDefined()
    expect(everywhere.checkHost('attacker.example:4410')).toBeDefined()
    const lan = requestGuard({ host: '192.168.1.20', port: 80 })
    expect(lan.checkHost('192.168.1.20')).toBeUndefined()
    expect(lan.checkOrigin('http://192.168.1.20')).toBeUndefined()
    expect(lan.checkOrigin('http://192.168.1.20:8080')).toBeDefined()
  })
})
