import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'
import { waitFor } from '@hearsay/core/testing'
import { createHearsayNode, generateSwarmKey } from '@hearsay/libp2p'
import { startDaemon } from '../src/index.js'
import type { Daemon } from '../src/index.js'
import { browserMissing, CHROMIUM, CHROMIUM_ARGS } from '../../../test/browser/chromium.js'
import { buildDashboard } from './helpers.js'

const missing = browserMissing()
if (missing !== undefined) process.stderr.write(`dashboard browser test skipped: ${missing}\n`)
/** Set to a directory to save the dashboard's screenshot there (the README's picture). */
const SHOTS = process.env.HEARSAY_SCREENSHOTS

describe.skipIf(missing !== undefined)('dashboard in Chromium, two daemons over libp2p on loopback', () => {
  let browser: Browser
  let dir: string
  const daemons: Daemon[] = []

  beforeAll(async () => {
    buildDashboard()
    dir = await mkdtemp(join(tmpdir(), 'hs-dashboard-'))
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  })
  afterAll(async () => {
    await browser?.close()
    for (const d of daemons) await d.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function daemon (name: string, swarmKey: Uint8Array, bootstrap: string[]): Promise<Daemon> {
    await mkdir(join(dir, name))
    const node = await createHearsayNode({ dataDir: join(dir, name), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, swarmKey, bootstrap, start: false })
    const d = await startDaemon({ node, name })
    daemons.push(d)
    return d
  }

  it('shows this device, the peer by name, a document, and live traffic', async () => {
    const key = generateSwarmKey()
    const laptop = await daemon('laptop', key, [])
    const pi = await daemon('kitchen-pi', key, [laptop.status().multiaddrs[0]!])
    const put = async (d: Daemon, docId: string, value: string): Promise<void> => {
      const r = await fetch(`${d.url}/api/docs/${encodeURIComponent(docId)}/text`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) })
      expect(r.status).toBe(200)
    }
    await put(pi, 'notes/shopping', 'milk, eggs, bread')
    await put(laptop, 'config/kitchen-pi', 'interval 5 s')

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    const errors: string[] = []
    page.on('pageerror', e => { errors.push(e.message) })
    page.on('response', r => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`) })
    await page.goto(`${laptop.url}/dashboard`)
    expect(page.url()).toBe(`${laptop.url}/dashboard/`)

    await page.locator('#device-name', { hasText: 'laptop' }).waitFor()
    const peer = page.locator('#peers li[data-peer]')
    await peer.locator('.peer-name', { hasText: 'kitchen-pi' }).waitFor({ timeout: 15_000 })
    await waitFor(async () => (await peer.getAttribute('data-state')) === 'alive' && (await peer.textContent())!.includes('in sync'), { timeoutMs: 15_000, message: 'kitchen-pi alive and in sync' })
    expect(await peer.textContent()).toContain('direct connection')
    await page.locator('#docs tr[data-doc="notes/shopping"]').waitFor({ timeout: 10_000 })
    expect(await page.locator('#docs tr[data-doc="notes/shopping"] td.num').textContent()).toMatch(/^\d+ B$/)
    expect(await page.textContent('#device')).toContain('private (swarm key)')
    expect(await page.textContent('#problems')).toBe('None')

    // traffic: the Pi writes; the laptop's counter and rate move within a few polls
    const totalIn = async (): Promise<string> => (await page.textContent('#total-in')) ?? ''
    await waitFor(async () => (await totalIn()) !== '', { message: 'traffic shown' })
    const before = await totalIn()
    await put(pi, 'notes/shopping', 'milk, eggs, bread, '.repeat(500))
    await waitFor(async () => (await totalIn()) !== before && (await page.textContent('#rate-in')) !== '0 B/s', { timeoutMs: 10_000, message: `traffic numbers update (was ${before})` })
    if (SHOTS !== undefined) {
      // for the picture: the document list refreshes less often than the counters
      await waitFor(async () => /KiB/.test((await page.textContent('#docs tr[data-doc="notes/shopping"] td.num')) ?? ''), { timeoutMs: 10_000 })
      await page.screenshot({ path: join(SHOTS, 'dashboard.png') })
    }
    expect(errors).toEqual([])
  })
})
