import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { startDaemon } from '@hearsay/daemon'
import type { Daemon } from '@hearsay/daemon'
import { browserMissing, buildWeb, CHROMIUM, CHROMIUM_ARGS, WEB_DIR } from './browser.js'

const missing = browserMissing()
if (missing !== undefined) process.stderr.write(`apps/desktop browser test skipped: ${missing}\n`)

describe.skipIf(missing !== undefined)('Hearsay Notes in Chromium, two devices', () => {
  const net = createMemoryNetwork({ seed: 3 })
  let browser: Browser
  let laptop: Daemon
  let desk: Daemon

  beforeAll(async () => {
    buildWeb()
    laptop = await startDaemon({ node: createNode({ id: 'laptop', transport: net.transport('laptop') }), staticDir: WEB_DIR, transport: 'memory' })
    desk = await startDaemon({ node: createNode({ id: 'desk', transport: net.transport('desk') }), staticDir: WEB_DIR, transport: 'memory' })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  })
  afterAll(async () => {
    await browser?.close()
    await laptop?.close()
    await desk?.close()
  })

  const editor = (page: Page): Promise<string> => page.inputValue('#editor')

  it('typing in one window shows up in the other; offline edits converge', async () => {
    const a = await browser.newPage()
    const b = await browser.newPage()
    const errors: string[] = []
    for (const p of [a, b]) p.on('pageerror', e => { errors.push(e.message) })
    await a.goto(`${laptop.url}/?name=laptop`)
    await b.goto(`${desk.url}/?name=desk`)

    // create a note on the laptop; it appears in the desk's list
    await a.click('#new-note')
    await a.locator('#editor').pressSequentially('Groceries\nmilk')
    await b.locator('#notes li', { hasText: 'Groceries' }).click({ timeout: 10_000 })
    await waitFor(async () => (await editor(b)) === 'Groceries\nmilk', { message: 'desk sees the note' })

    // live typing, measured
    await a.locator('#editor').press('End')
    const t0 = Date.now()
    await a.locator('#editor').pressSequentially(', eggs')
    await waitFor(async () => (await editor(b)) === 'Groceries\nmilk, eggs', { intervalMs: 10, message: 'desk sees the typing' })
    process.stderr.write(`typing → other window: ${Date.now() - t0} ms for 6 keystrokes\n`)

    // presence and status
    await waitFor(async () => (await a.textContent('#presence'))?.includes('desk') === true, { message: 'laptop sees desk here' })
    await waitFor(async () => (await a.textContent('#sync'))?.includes('in sync with 1 peer') === true, { message: 'status says in sync' })
    expect(await a.getAttribute('#peers li', 'data-state')).toBe('alive')

    // cut the link, edit both sides, reconnect: both converge
    net.disconnect('laptop', 'desk')
    net.partition([['laptop'], ['desk']])
    await waitFor(async () => (await a.textContent('#sync'))?.includes('no peer connected') === true, { message: 'laptop notices' })
    await a.locator('#editor').press('Control+End')
    await a.locator('#editor').pressSequentially('\nbread (laptop)')
    await b.locator('#editor').press('Control+End')
    await b.locator('#editor').pressSequentially('\napples (desk)')
    await a.waitForTimeout(300)
    expect(await editor(a)).not.toContain('apples')
    expect(await editor(b)).not.toContain('bread')

    net.heal()
    await waitFor(async () => {
      const [x, y] = [await editor(a), await editor(b)]
      return x === y && x.includes('bread (laptop)') && x.includes('apples (desk)')
    }, { timeoutMs: 15_000, message: 'both windows converge' })
    expect(errors).toEqual([])
  })
})
