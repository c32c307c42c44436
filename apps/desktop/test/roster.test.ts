/**
 * In a managed swarm the notes app lists each device by the name the roster gives it, with what
 * it may do; two daemons on the memory network, the admin's page in Chromium.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'
import { createMemoryNetwork, createNode, parseGrant } from '@hearsay/core'
import { createTestKeyring, waitFor } from '@hearsay/core/testing'
import { startDaemon } from '@hearsay/daemon'
import type { Daemon } from '@hearsay/daemon'
import { browserMissing, buildWeb, CHROMIUM, CHROMIUM_ARGS, WEB_DIR } from './browser.js'

const missing = browserMissing()
if (missing !== undefined) process.stderr.write(`apps/desktop roster test skipped: ${missing}\n`)

describe.skipIf(missing !== undefined)('Hearsay Notes in a managed swarm', () => {
  const net = createMemoryNetwork({ seed: 5 })
  const keys = createTestKeyring()
  let browser: Browser
  let admin: Daemon
  let tablet: Daemon

  beforeAll(async () => {
    buildWeb()
    const trust = (id: string, genesis?: Uint8Array): { crypto: typeof keys.crypto, signer: ReturnType<typeof keys.signer>, genesis?: Uint8Array } =>
      ({ crypto: keys.crypto, signer: keys.signer(id), ...(genesis !== undefined ? { genesis } : {}) })
    admin = await startDaemon({ node: createNode({ id: 'admin-node', transport: net.transport('admin-node'), trust: trust('admin-node') }), staticDir: WEB_DIR, transport: 'memory', name: 'office' })
    const genesis = await admin.node.trust.createSwarm()
    await admin.node.trust.name('tablet-node', 'Kitchen tablet')
    await admin.node.trust.grant('tablet-node', [parseGrant('notes/:read')])
    tablet = await startDaemon({ node: createNode({ id: 'tablet-node', transport: net.transport('tablet-node'), trust: trust('tablet-node', genesis) }), staticDir: WEB_DIR, transport: 'memory', name: 'android' })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  })
  afterAll(async () => {
    await browser?.close()
    await tablet?.close()
    await admin?.close()
  })

  it('lists the other device by its roster name and access, not by the name it announces or its id', async () => {
    const page = await browser.newPage()
    await page.goto(`${admin.url}/`)
    const peer = page.locator('#peers li', { hasText: 'Kitchen tablet' })
    await peer.waitFor({ timeout: 10_000 })
    await waitFor(async () => (await peer.locator('.peer-state').textContent())?.includes('notes/:read') === true, { message: 'access shown' })
    expect(await page.locator('#peers li', { hasText: 'android' }).count()).toBe(0)
    expect(tablet.status().name).toBe('Kitchen tablet')
  })
})
