import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { waitFor } from '@hearsay/core/testing'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..')
/** The `hearsay` command as installed in node_modules/.bin (it runs the sources in a checkout). */
export const BIN = join(ROOT, 'packages/daemon/bin/hearsay.mjs')

export interface Proc {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

/** Run the `hearsay` command in a real process, as a user would. */
export function hearsay (args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>(resolve => { child.on('exit', code => { resolve(code) }) })
  return { child, stdout: () => out, stderr: () => err, exited }
}

export async function run (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const p = hearsay(args, env)
  const code = await p.exited
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}

/** A y-websocket client in Node, as a web app would connect. */
export async function client (url: string, docId: string): Promise<{ doc: Y.Doc, provider: WebsocketProvider }> {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url.replace(/^http/, 'ws'), docId, doc, { WebSocketPolyfill: WebSocket as any, disableBc: true })
  await waitFor(() => provider.synced, { timeoutMs: 10_000, message: `client of ${docId} synced` })
  return { doc, provider }
}

/** Bundle the dashboard (fast) so tests never run against a stale or missing build. */
export function buildDashboard (): void {
  execFileSync(process.execPath, [join(ROOT, 'packages/daemon/scripts/bundle-dashboard.mjs')], { stdio: 'inherit' })
}

/** A temporary directory `hs-<name>-…`, removed by `cleanup` (run in reverse: processes registered later stop first). */
export async function tempDir (name: string, cleanup: Array<() => unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `hs-${name}-`))
  cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Kill a process (SIGKILL) and wait until it is gone, so its files can be removed. */
export async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  child.kill('SIGKILL')
  await gone
}
