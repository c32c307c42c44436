import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'
import { waitFor } from '@hearsay/core/testing'
import { browserMissing, buildWeb, CHROMIUM, CHROMIUM_ARGS, editorText, typeAtEnd } from './browser.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..')
const missing = browserMissing()

interface App { child: ChildProcess, url: string, exited: Promise<number | null>, err: () => string }
const apps: App[] = []
const dirs: string[] = []

/** One device: the notes app in a real process, libp2p on loopback, no mDNS. */
async function startApp (dir: string, env: Record<string, string>): Promise<App> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', join(ROOT, 'apps/desktop/src/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: '0', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0', HEARSAY_MDNS: 'false', HEARSAY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  child.stdout!.on('data', () => {})
  const exited = new Promise<number | null>(resolve => { child.on('exit', resolve) })
  const app = { child, url: '', exited, err: () => err }
  apps.push(app) // killed in afterAll even if it never comes up
  await waitFor(() => /serving (http:\/\/\S+)/.test(err), { timeoutMs: 30_000, message: `notes app up: ${err}` })
  app.url = /serving (http:\/\/\S+)/.exec(err)![1]!
  return app
}

async function init (dir: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', join(ROOT, 'packages/daemon/src/cli.ts'), 'init', '--data-dir', dir], { cwd: ROOT, stdio: 'ignore' })
  expect(await new Promise(resolve => { child.on('exit', resolve) })).toBe(0)
}

describe.skipIf(missing !== undefined)('Hearsay Notes on two devices over libp2p (real processes, Chromium)', () => {
  let browser: Browser
  beforeAll(async () => {
    buildWeb()
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  })
  afterAll(async () => {
    await browser?.close()
    for (const a of apps) a.child.kill('SIGKILL')
    await Promise.all(apps.map(async a => await a.exited))
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })
  const text = editorText

  it('types across devices; a device that goes away and comes back converges', async () => {
    const [dirA, dirB] = [await mkdtemp(join(tmpdir(), 'hs-notes-a-')), await mkdtemp(join(tmpdir(), 'hs-notes-b-'))]
    dirs.push(dirA, dirB)
    await init(dirA)
    await init(dirB)
    await copyFile(join(dirA, 'swarm.key'), join(dirB, 'swarm.key'))
    const a = await startApp(dirA, {})
    const addr = ((await (await fetch(`${a.url}/status`)).json()) as { multiaddrs: string[] }).multiaddrs[0]!
    let b = await startApp(dirB, { HEARSAY_BOOTSTRAP: addr })
    const portB = new URL(b.url).port

    const pa = await browser.newPage()
    const pb = await browser.newPage()
    await pa.goto(`${a.url}/?name=laptop`)
    await pb.goto(`${b.url}/?name=desk`)
    await pa.click('#new-note')
    await typeAtEnd(pa, 'Plan\nA')
    await pb.locator('#notes li', { hasText: 'Plan' }).click({ timeout: 20_000 })
    await waitFor(async () => (await text(pb)) === 'Plan\nA', { message: 'desk sees the note' })
    await waitFor(async () => (await pa.textContent('#sync')) === 'In sync with 1 device.', { timeoutMs: 10_000, message: 'laptop in sync' })
    await waitFor(async () => (await pa.textContent('#presence'))?.includes('desk (Plan)') === true, { timeoutMs: 10_000, message: 'laptop sees the desk on the note' })
    // across the two daemons: the other device by name, and its cursor with its name
    await pa.locator('#peers li .peer-name', { hasText: 'desk' }).waitFor({ timeout: 10_000 })
    await pb.locator('#peers li .peer-name', { hasText: 'laptop' }).waitFor({ timeout: 10_000 })
    await typeAtEnd(pb, '!')
    await pa.locator('#editor .cm-ySelectionInfo', { hasText: 'desk' }).waitFor({ timeout: 10_000 })
    await pb.locator('#editor .cm-ySelectionInfo', { hasText: 'laptop' }).waitFor({ timeout: 10_000 })

    // the desk's daemon goes away; both windows keep editing
    b.child.kill('SIGTERM')
    expect(await b.exited).toBe(0)
    await waitFor(async () => (await pb.textContent('#daemon'))?.includes('disconnected') === true, { message: 'desk window notices' })
    await typeAtEnd(pa, '\nlaptop while apart')
    await typeAtEnd(pb, '\ndesk while apart')

    // it comes back on the same port; window, daemons and peers converge
    b = await startApp(dirB, { HEARSAY_BOOTSTRAP: addr, HEARSAY_HTTP_PORT: portB })
    await waitFor(async () => {
      const [x, y] = [await text(pa), await text(pb)]
      return x === y && x.includes('laptop while apart') && x.includes('desk while apart')
    }, { timeoutMs: 30_000, message: 'both windows converge' })

    for (const app of [a, b]) app.child.kill('SIGTERM')
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0])
  })
})
