import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '@hearsay/core/testing'
import { ROOT, hearsay, kill, run, tempDir } from './helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

/** A port nothing listens on right now. */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as { port: number }
  await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  return port
}

const QUIET = ['--mdns', 'false', '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn']

async function start (args: string[]): Promise<ReturnType<typeof hearsay> & { url: string }> {
  const proc = hearsay(['start', ...args, ...QUIET])
  cleanup.push(async () => { await kill(proc.child) })
  await waitFor(() => /serving (http:\/\/\S+)/.test(proc.stderr()) || proc.child.exitCode !== null, { timeoutMs: 30_000, message: `daemon up: ${proc.stderr()}` })
  const m = /serving (http:\/\/\S+)/.exec(proc.stderr())
  if (m === null) throw new Error(`hearsay start exited: ${proc.stderr()}`)
  return { ...proc, url: m[1]! }
}

describe('the hearsay command', () => {
  it('runs as `pnpm hearsay` from the repository, without a build', async () => {
    const child = spawn('pnpm', ['--silent', 'hearsay', 'init', '--help'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    cleanup.push(async () => { await kill(child) })
    const code = await new Promise<number | null>(resolve => { child.on('exit', resolve) })
    expect(out).toMatch(/^hearsay init: create the data directory/m)
    expect(out).toMatch(/^ *-d, --data-dir DIR/m)
    expect(code).toBe(0)
    // the bin pnpm links into node_modules/.bin is the committed, executable wrapper
    expect(existsSync(join(ROOT, 'node_modules/.bin/hearsay'))).toBe(true)
  }, 30_000)

  it('init, start, status, docs, set, get and stop; each data directory reaches its own daemon', async () => {
    const [a, b] = [await tempDir('cli-a', cleanup), await tempDir('cli-b', cleanup)]
    const init = await run(['init', '--data-dir', a])
    expect(init.code).toBe(0)
    expect(init.stdout).toMatch(/next: hearsay start --data-dir /)
    expect((await run(['init', '--data-dir', b])).code).toBe(0)
    // both configs say the same port, as two `init`s with the defaults would
    const port = await freePort()
    for (const d of [a, b]) {
      const file = join(d, 'config.json')
      await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), httpPort: port }))
    }
    const da = await start(['--data-dir', a, '--static-dir', a])
    expect(da.stderr()).toContain(`; the web app in ${a} at ${da.url}/`)
    expect(da.url).toBe(`http://127.0.0.1:${port}`)
    const db = await start(['--data-dir', b, '--http-port', '0'])
    const idOf = async (dir: string): Promise<string> => JSON.parse(await readFile(join(dir, 'daemon.json'), 'utf8')).id
    expect(JSON.parse(await readFile(join(b, 'daemon.json'), 'utf8'))).toMatchObject({ pid: db.child.pid, url: db.url })

    // B's commands go to B's daemon, found through daemon.json, not to A on the config's port
    const status = await run(['status', '--data-dir', b])
    expect(status.code).toBe(0)
    expect(status.stdout).toContain(`node      ${await idOf(b)}`)
    expect((await run(['set', 'notes/1', 'title', 'hello', 'world', '--data-dir', b])).stdout).toBe('notes/1: title set to "hello world"\n')
    expect((await run(['docs', '--data-dir', b])).stdout.trim()).toBe('notes/1')
    expect(JSON.parse((await run(['get', 'notes/1', '--data-dir', b])).stdout)).toEqual({ data: { title: 'hello world' } })
    expect((await run(['docs', '--data-dir', a])).stdout.trim()).toBe('')

    // an endpoint that is not this data directory's daemon is refused
    const wrong = await run(['docs', '--data-dir', b, '--url', da.url])
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(new RegExp(`is node ${await idOf(a)}, not node ${await idOf(b)} of the data directory`))

    // B dies without cleaning up: its daemon.json is stale, the config's port is A's: refused
    const idB = await idOf(b)
    db.child.kill('SIGKILL')
    await db.exited
    const stale = await run(['set', 'notes/1', 'title', 'lost', '--data-dir', b])
    expect(stale.code).toBe(1)
    expect(stale.stderr).toContain(`not node ${idB} of the data directory ${b}`)
    expect((await run(['docs', '--data-dir', a])).stdout.trim()).toBe('')

    // a clean stop removes daemon.json
    da.child.kill('SIGTERM')
    expect(await da.exited).toBe(0)
    expect(existsSync(join(a, 'daemon.json'))).toBe(false)
  }, 90_000)
})
