import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { startDaemon } from '@hearsay/daemon'
import type { Daemon } from '@hearsay/daemon'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { browserMissing, buildWeb, CHROMIUM, CHROMIUM_ARGS, editorText, typeAtEnd, WEB_DIR } from './browser.js'

const missing = browserMissing()
if (missing !== undefined) process.stderr.write(`apps/desktop browser test skipped: ${missing}\n`)
/** Set to a directory to save the README's screenshots there. */
const SHOTS = process.env.HEARSAY_SCREENSHOTS

describe.skipIf(missing !== undefined)('Hearsay Notes in Chromium, two devices', () => {
  const net = createMemoryNetwork({ seed: 3 })
  let browser: Browser
  let laptop: Daemon
  let desk: Daemon
  const errors: string[] = []

  beforeAll(async () => {
    buildWeb()
    laptop = await startDaemon({ node: createNode({ id: 'laptop-node', transport: net.transport('laptop-node') }), staticDir: WEB_DIR, transport: 'memory' })
    desk = await startDaemon({ node: createNode({ id: 'desk-node', transport: net.transport('desk-node') }), staticDir: WEB_DIR, transport: 'memory' })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  })
  afterAll(async () => {
    await browser?.close()
    await laptop?.close()
    await desk?.close()
  })

  async function open (daemon: Daemon, name: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
    const page = await browser.newPage({ viewport })
    page.on('pageerror', e => { errors.push(`${name}: ${e.message}`) })
    page.on('response', r => { if (r.status() >= 400) errors.push(`${name}: ${r.status()} ${r.url()}`) })
    page.on('console', m => { if (m.type() === 'error') errors.push(`${name}: console: ${m.text()}`) })
    await page.goto(`${daemon.url}/?name=${name}`)
    return page
  }

  it('two windows edit one note: text, cursors with names, device names, rename, delete, offline edits', async () => {
    const a = await open(laptop, 'laptop')
    const b = await open(desk, 'desk')

    // create a note on the laptop; it appears in the desk's list
    await a.click('#new-note')
    await typeAtEnd(a, 'Groceries\nmilk')
    await b.locator('#notes li', { hasText: 'Groceries' }).click({ timeout: 10_000 })
    await waitFor(async () => (await editorText(b)) === 'Groceries\nmilk', { message: 'desk sees the note' })

    // live typing both ways, each window shows the other's cursor with its name
    const t0 = Date.now()
    await typeAtEnd(b, ', eggs')
    await waitFor(async () => (await editorText(a)) === 'Groceries\nmilk, eggs', { intervalMs: 10, message: 'laptop sees the desk typing' })
    process.stderr.write(`typing → other window: ${Date.now() - t0} ms for 6 keystrokes\n`)
    await typeAtEnd(a, '\nbread')
    await waitFor(async () => (await editorText(b)) === 'Groceries\nmilk, eggs\nbread', { message: 'desk sees the laptop typing' })
    await a.locator('#editor .cm-ySelectionInfo', { hasText: 'desk' }).waitFor({ timeout: 10_000 })
    await b.locator('#editor .cm-ySelectionInfo', { hasText: 'laptop' }).waitFor({ timeout: 10_000 })
    await a.locator('#here .chip', { hasText: 'desk' }).waitFor()
    // each window says which other device stored the note (acknowledged by that device)
    await a.locator('#saved', { hasText: 'Saved on desk' }).waitFor({ timeout: 10_000 })
    await b.locator('#saved', { hasText: 'Saved on laptop' }).waitFor({ timeout: 10_000 })
    // presence is not stored: no document but the notes themselves
    expect(laptop.node.docs().filter(d => !d.startsWith('notes/'))).toEqual([])

    // the other device by the name typed there, in sync, pluralised
    await a.locator('#peers li .peer-name', { hasText: 'desk' }).waitFor({ timeout: 10_000 })
    expect(await a.getAttribute('#peers li', 'data-state')).toBe('alive')
    await waitFor(async () => (await a.textContent('#sync')) === 'In sync with 1 device.', { message: 'status says in sync' })
    expect(await a.textContent('#self-name')).toBe('laptop')
    expect(laptop.status().name).toBe('laptop')

    // a second note, then rename the first on the desk: the laptop's list and text follow
    await a.click('#new-note')
    await typeAtEnd(a, 'Weekend\ncall the plumber')
    await b.locator('#note-count', { hasText: '2 notes' }).waitFor({ timeout: 10_000 })
    await b.click('#rename')
    await b.fill('#rename-input', 'Shopping list')
    await b.press('#rename-input', 'Enter')
    await a.locator('#notes li', { hasText: 'Shopping list' }).waitFor({ timeout: 10_000 })
    expect(await a.locator('#notes li', { hasText: 'Groceries' }).count()).toBe(0)
    await a.locator('#notes li', { hasText: 'Shopping list' }).click()
    await waitFor(async () => (await editorText(a)) === 'Shopping list\nmilk, eggs\nbread', { message: 'renamed text on the laptop' })

    if (SHOTS !== undefined) {
      await a.locator('#editor .cm-ySelectionInfo', { hasText: 'desk' }).waitFor()
      await a.locator('#pill-text', { hasText: 'in sync' }).waitFor({ timeout: 10_000 })
      await a.screenshot({ path: join(SHOTS, 'notes-desktop.png') })
      const phone = await open(laptop, 'laptop', { width: 390, height: 760 })
      await phone.locator('#notes li', { hasText: 'Shopping list' }).click({ timeout: 10_000 })
      await phone.locator('#editor .cm-ySelectionInfo', { hasText: 'desk' }).waitFor({ timeout: 10_000 })
      await phone.locator('#pill-text', { hasText: 'in sync' }).waitFor({ timeout: 10_000 })
      await phone.screenshot({ path: join(SHOTS, 'notes-phone.png') })
      await phone.close()
    }

    // cut the link, edit both sides, reconnect: both converge
    net.disconnect('laptop-node', 'desk-node')
    net.partition([['laptop-node'], ['desk-node']])
    await waitFor(async () => (await a.textContent('#sync'))?.includes('No other device connected') === true, { message: 'laptop notices' })
    await typeAtEnd(a, '\ncheese (laptop)')
    await typeAtEnd(b, '\napples (desk)')
    net.heal()
    await waitFor(async () => {
      const [x, y] = [await editorText(a), await editorText(b)]
      return x === y && x.includes('cheese (laptop)') && x.includes('apples (desk)')
    }, { timeoutMs: 15_000, message: 'both windows converge' })

    // delete on the laptop: gone from both lists; the desk's open editor says so and closes
    a.once('dialog', d => { void d.accept() })
    await a.click('#delete')
    await waitFor(async () => (await b.locator('#notes li', { hasText: 'Shopping list' }).count()) === 0, { message: 'deleted on the desk too' })
    await b.locator('#notice', { hasText: 'deleted on laptop' }).waitFor({ timeout: 10_000 })
    expect(await b.evaluate(() => document.body.classList.contains('has-note'))).toBe(false)
    expect(await a.textContent('#note-count')).toBe('1 note')
    expect(errors).toEqual([])
  })

  it('stays usable at 640 px and at phone width', async () => {
    const wide = await open(laptop, 'laptop', { width: 640, height: 800 })
    await wide.click('#new-note')
    await typeAtEnd(wide, 'Layout\nat 640 px')
    const box = await wide.locator('#editor').boundingBox()
    expect(box!.width).toBeGreaterThanOrEqual(400)
    expect(await wide.locator('#notes').isVisible()).toBe(true)
    // the sync panel opens over the editor from the header
    expect(await wide.locator('#sync-panel').isVisible()).toBe(false)
    await wide.click('#sync-pill')
    await wide.locator('#sync-panel').waitFor({ state: 'visible' })
    await waitFor(async () => { const p = await wide.locator('#sync-panel').boundingBox(); return p !== null && p.x + p.width <= 640.5 }, { message: 'the panel slid in' })
    const id = await wide.locator('#node-id').boundingBox()
    const panel = await wide.locator('#sync-panel').boundingBox()
    expect(id!.x + id!.width).toBeLessThanOrEqual(panel!.x + panel!.width) // the node id does not overflow

    const phone = await open(laptop, 'laptop', { width: 390, height: 760 })
    await phone.locator('#notes li', { hasText: 'Layout' }).click({ timeout: 10_000 })
    const editor = await phone.locator('#editor').boundingBox()
    expect(editor!.width).toBeGreaterThanOrEqual(370)
    expect(await phone.locator('#notes').isVisible()).toBe(false)
    await phone.click('#toggle-notes')
    await phone.locator('#notes li', { hasText: 'Layout' }).waitFor({ state: 'visible' })
    const scroll = await phone.evaluate(() => document.documentElement.scrollWidth)
    expect(scroll).toBeLessThanOrEqual(390) // nothing sticks out sideways
    expect(errors).toEqual([])
  })

  it('presence from other devices cannot load anything from elsewhere or flood the page', async () => {
    const page = await open(laptop, 'laptop')
    const outside: string[] = []
    const blocked: string[] = []
    const isOutside = (url: string): boolean => !url.startsWith(laptop.url) && !url.startsWith(laptop.url.replace('http', 'ws'))
    page.on('request', r => { if (isOutside(r.url())) outside.push(r.url()) })
    page.on('requestfailed', r => { if (isOutside(r.url()) && r.failure()?.errorText === 'csp') blocked.push(r.url()) })
    await page.click('#new-note')
    await typeAtEnd(page, 'Visitors\nhello')
    const id = decodeURIComponent(new URL(page.url()).hash.slice(1))
    // a window on the desk whose presence is crafted: a huge name, colours that are CSS with a URL
    const evil = { name: 'x'.repeat(5000), color: 'red; background-image: url(http://evil.example/c)', colorLight: 'red; background-image: url(http://evil.example/l)' }
    const clients = ['notes/index', `notes/${id}`].map(room => {
      const doc = new Y.Doc()
      const provider = new WebsocketProvider(desk.url.replace('http', 'ws'), room, doc, { WebSocketPolyfill: WebSocket as any, disableBc: true })
      provider.awareness.setLocalStateField('user', { ...evil, note: id })
      return { doc, provider }
    })
    // with a cursor in the note, drawn by y-codemirror.next with those colours in a style attribute
    const note = clients[1]!
    await waitFor(() => note.provider.synced && note.doc.getText('body').length > 0, { message: 'crafted client synced' })
    const at = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(note.doc.getText('body'), 3))
    note.provider.awareness.setLocalStateField('cursor', { anchor: at, head: at })
    try {
      await page.locator('#here .chip').waitFor({ timeout: 10_000 })
      expect((await page.textContent('#here .chip'))!.length).toBe(64)
      expect(await page.locator('#here .chip').evaluate(e => getComputedStyle(e).backgroundImage)).toBe('none')
      await page.locator('#notes li .who').first().waitFor()
      await page.locator('#editor .cm-ySelectionCaret').waitFor({ timeout: 10_000 })
      expect((await page.locator('#editor .cm-ySelectionInfo').boundingBox())!.width).toBeLessThan(250) // the 5,000-character name is cut
      // the page's Content-Security-Policy keeps the browser from fetching the URLs in the caret's style
      await waitFor(() => outside.length > 0 && outside.every(u => blocked.includes(u)), { message: `the browser refused the crafted URLs: ${outside.join(', ')}` })
    } finally {
      for (const c of clients) { c.provider.destroy(); c.doc.destroy() }
    }
  })
})
