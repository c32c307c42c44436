import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { hostname, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { main } from '@hearsay/daemon'
import type { Daemon } from '@hearsay/daemon'
import { read, runPi, simulatedTemperature, startAgent } from '../src/index.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..')
const cleanup: Array<() => unknown> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

/** A temporary directory, removed after the test (after the processes started later have stopped). */
async function tempDir (name: string, list: Array<() => unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `hs-${name}-`))
  list.push(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  child.kill('SIGKILL')
  await gone
}

describe('telemetry', () => {
  it('reads the thermal zone when present, simulates otherwise', async () => {
    const dir = await tempDir('thermal', cleanup)
    await writeFile(join(dir, 'temp'), '48312\n')
    const real = await read(join(dir, 'temp'))
    expect(real).toMatchObject({ cpuTempC: 48.3, simulatedTemp: false })
    expect(real.memUsedPct).toBeGreaterThan(0)
    const sim = await read(join(dir, 'missing'))
    expect(sim.simulatedTemp).toBe(true)
    expect(sim.cpuTempC).toBeGreaterThan(40)
    expect(simulatedTemperature(4, 4, 0)).toBeGreaterThan(simulatedTemperature(0, 4, 0))
  })
})

describe('agent', () => {
  it('publishes telemetry a peer sees, and applies the config a peer writes', async () => {
    const net = createMemoryNetwork({ seed: 5 })
    const pi = createNode({ id: 'pi', transport: net.transport('pi') })
    const laptop = createNode({ id: 'laptop', transport: net.transport('laptop') })
    await pi.start(); await laptop.start()
    cleanup.push(() => pi.stop(), () => laptop.stop())
    const agent = await startAgent({ node: pi, deviceId: 'pi-1', intervalMs: 10_000 })
    cleanup.push(() => { agent.stop() })

    const seen = await laptop.open('telemetry/pi-1')
    await waitFor(() => typeof seen.getMap('latest').get('cpuTempC') === 'number')
    expect(seen.getArray('history').length).toBe(1)

    // the laptop speeds the Pi up through its config document
    const cfg = await laptop.open('config/pi-1')
    cfg.getMap('data').set('intervalMs', 600)
    cfg.getMap('data').set('label', 'greenhouse')
    await waitFor(() => agent.settings.intervalMs === 600)
    await waitFor(() => seen.getArray('history').length >= 3, { timeoutMs: 5_000 })
    expect(seen.getMap('latest').get('label')).toBe('greenhouse')

    // what applies goes back where the laptop sees it
    await waitFor(() => cfg.getMap('applied').get('intervalMs') === 600 && cfg.getMap('applied').get('label') === 'greenhouse', { message: 'applied settings reach the laptop' })

    // a bad value is refused, the last good one kept, and the refusal is visible to the setter
    cfg.getMap('data').set('intervalMs', 'fast')
    cfg.getMap('data').set('intervalMS', 700)
    await waitFor(() => cfg.getMap('refused').has('intervalMs') && cfg.getMap('refused').has('intervalMS'), { message: 'refusals reach the laptop' })
    expect(agent.settings.intervalMs).toBe(600)
    expect(cfg.getMap('refused').get('intervalMs')).toMatchObject({ value: 'fast', reason: 'must be a number >= 500; keeping 600' })
    expect(cfg.getMap('refused').get('intervalMS')).toMatchObject({ value: 700, reason: expect.stringMatching(/^unknown setting; known: intervalMs, history, label$/) })
    // fixed: the refusal goes away
    cfg.getMap('data').set('intervalMs', 800)
    cfg.getMap('data').delete('intervalMS')
    await waitFor(() => cfg.getMap('refused').size === 0 && cfg.getMap('applied').get('intervalMs') === 800, { message: 'refusal cleared' })

    // history is bounded
    cfg.getMap('data').set('history', 2)
    await waitFor(() => agent.settings.history === 2)
    await agent.sample()
    // the window slides once the laptop confirmed storing the readings
    const mine = await pi.open('telemetry/pi-1')
    await waitFor(() => mine.getArray('history').length === 2)
    expect(agent.confirmedAt).toBeGreaterThan(0)
  })

  it('keeps readings past the window until a peer confirms storing them, so the gateway sees every one', async () => {
    const net = createMemoryNetwork({ seed: 6 })
    const pi = createNode({ id: 'pi', transport: net.transport('pi') })
    const gateway = createNode({ id: 'gw', transport: net.transport('gw') })
    await pi.start(); await gateway.start()
    cleanup.push(() => pi.stop(), () => gateway.stop())
    const seen = await gateway.open('telemetry/pi-2')
    const atGateway = new Set<number>()
    seen.getArray<{ at: number, uptimeS: number }>('history').observe(e => { for (const d of e.changes.added) for (const r of d.content.getContent() as Array<{ at: number }>) atGateway.add(r.at) })
    const agent = await startAgent({ node: pi, deviceId: 'pi-2', intervalMs: 60_000, confirmTimeoutMs: 500, bufferMax: 8 })
    cleanup.push(() => { agent.stop() })
    const cfg = await pi.open('config/pi-2')
    cfg.getMap('data').set('history', 2)
    await waitFor(() => agent.settings.history === 2)
    const doc = await pi.open('telemetry/pi-2')
    const times = (): number[] => doc.getArray<{ at: number }>('history').toArray().map(r => r.at)
    // the gateway goes away: nothing leaves the buffer
    net.disconnect('pi', 'gw')
    await waitFor(() => !pi.peers().some(p => p.connected))
    const taken: number[] = [...times()]
    for (let i = 0; i < 5; i++) {
      await new Promise(resolve => setTimeout(resolve, 2)) // distinct reading times
      taken.push((await agent.sample()).at)
    }
    expect(times().length).toBeGreaterThanOrEqual(6)
    expect(agent.buffered).toBeGreaterThanOrEqual(4)
    // past bufferMax the oldest go, counted and logged
    for (let i = 0; i < 4; i++) {
      await new Promise(resolve => setTimeout(resolve, 2))
      taken.push((await agent.sample()).at)
    }
    expect(times().length).toBe(8)
    expect(agent.dropped).toBeGreaterThan(0)
    // back: the gateway stores them, confirms, and the window slides to 2
    net.connect('pi', 'gw')
    await agent.sample()
    await waitFor(() => times().length === 2, { timeoutMs: 10_000 })
    const kept = taken.slice(agent.dropped)
    for (const at of kept) expect(atGateway.has(at)).toBe(true)
  })

  it('runs as hearsay-pi: telemetry through the endpoint, config through the CLI, SIGTERM exits 0', async () => {
    const dir = await tempDir('pi', cleanup)
    const env = { ...process.env, HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: '0', HEARSAY_DEVICE_ID: 'pi-test', HEARSAY_INTERVAL_MS: '500', HEARSAY_LOG_LEVEL: 'warn', HEARSAY_MDNS: 'false', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0' }
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', join(ROOT, 'apps/pi/src/main.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    cleanup.push(async () => { await kill(child) })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const exited = new Promise<number | null>(resolve => { child.on('exit', resolve) })
    await waitFor(() => /serving (http:\/\/\S+)/.test(err) && err.includes('publishing'), { timeoutMs: 20_000, message: err })
    const url = /serving (http:\/\/\S+)/.exec(err)![1]!
    const status = await (await fetch(`${url}/status`)).json() as any
    expect(status.id).toMatch(/\S/)
    const get = async (): Promise<any> => (await (await fetch(`${url}/api/docs/${encodeURIComponent('telemetry/pi-test')}`)).json())
    await waitFor(async () => (await get()).content?.history?.length >= 2, { timeoutMs: 10_000 })
    await fetch(`${url}/api/docs/${encodeURIComponent('config/pi-test')}/intervalMs`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '700' })
    await waitFor(async () => (await get()).content?.latest?.intervalMs === 700, { timeoutMs: 10_000 })
    expect(err).toContain('hearsay-pi: config/pi-test applied: intervalMs 500, history 60, label "pi-test"')
    await waitFor(() => err.includes('hearsay-pi: config/pi-test applied: intervalMs 700, history 60, label "pi-test"'), { timeoutMs: 10_000, message: err })
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })

  it('hearsay-pi has its own usage, refuses commands it does not run, and treats an empty device id as unset', async () => {
    const io = (env: Record<string, string> = {}, stopSignal?: Promise<string>): { out: string[], err: string[], io: Parameters<typeof runPi>[1] } => {
      const out: string[] = []
      const err: string[] = []
      return { out, err, io: { out: t => { out.push(t) }, err: t => { err.push(t) }, env, ...(stopSignal !== undefined ? { stopSignal } : {}) } }
    }
    const status = io()
    expect(await runPi(['status'], status.io)).toBe(2)
    expect(status.err.join('\n')).toMatch(/hearsay-pi: unknown command "status". Commands: init, start, join. For status, use `hearsay status`/)
    expect(status.err.join('\n')).not.toMatch(/expected 0 argument/)

    const help = io()
    expect(await runPi(['--help'], help.io)).toBe(0)
    expect(help.out.join('\n')).toMatch(/Usage: hearsay-pi \[start\][\s\S]*hearsay-pi init[\s\S]*HEARSAY_DEVICE_ID[\s\S]*HEARSAY_INTERVAL_MS/)
    const startHelp = io()
    expect(await runPi(['start', '--help'], startHelp.io)).toBe(0)
    expect(startHelp.out.join('\n')).toMatch(/HEARSAY_DEVICE_ID[\s\S]*Usage: hearsay start/)

    const dir = await tempDir('pi-empty', cleanup)
    let stop!: (s: string) => void
    const run = io({ HEARSAY_DATA_DIR: dir, HEARSAY_DEVICE_ID: '', HEARSAY_INTERVAL_MS: '', HEARSAY_HTTP_PORT: '0', HEARSAY_LOG_LEVEL: 'warn', HEARSAY_MDNS: 'false', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0' }, new Promise(resolve => { stop = resolve }))
    const code = runPi([], run.io)
    cleanup.push(async () => { stop('SIGTERM'); await code })
    await waitFor(() => run.err.some(l => l.includes('publishing')), { timeoutMs: 20_000, message: `agent up: ${run.err.join('\n')}` })
    expect(run.err.join('\n')).toContain(`device ${hostname()} publishing telemetry/${hostname()} every 5000 ms`)
    stop('SIGTERM')
    expect(await code).toBe(0)
  })

  it('joins a managed swarm with an invite: telemetry reaches the gateway, the gateway\'s config reaches the agent', async () => {
    const [gw, pi] = [await tempDir('pi-gw', cleanup), await tempDir('pi-join', cleanup)]
    const env = { HEARSAY_HTTP_PORT: '0', HEARSAY_LOG_LEVEL: 'warn', HEARSAY_MDNS: 'false', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0' }
    const lines = (): { out: string[], err: string[], io: (extra?: Record<string, string>, stopSignal?: Promise<string>) => Parameters<typeof runPi>[1] } => {
      const out: string[] = []
      const err: string[] = []
      return { out, err, io: (extra = {}, stopSignal) => ({ out: t => { out.push(t) }, err: t => { err.push(t) }, env: { ...env, ...extra }, ...(stopSignal !== undefined ? { stopSignal } : {}) }) }
    }
    const admin = lines()
    expect(await main(['init', '--data-dir', gw, '--admin', '--name', 'gateway'], admin.io())).toBe(0)
    let stopGw!: (s: string) => void
    let gateway: Daemon | undefined
    const gwRun = main(['start', '--data-dir', gw], { ...admin.io({}, new Promise(resolve => { stopGw = resolve })), onStarted: d => { gateway = d } })
    cleanup.push(async () => { stopGw('SIGTERM'); await gwRun })
    await waitFor(() => gateway !== undefined, { timeoutMs: 20_000, message: `gateway up: ${admin.err.join('\n')}` })
    const invite = lines()
    expect(await main(['invite', '--name', 'kitchen-pi', '--grant', 'telemetry/kitchen-pi:write', '--grant', 'config/kitchen-pi:read', '--no-qr', '--data-dir', gw], invite.io())).toBe(0)
    const token = invite.out.join('\n').match(/^hst1\S+$/m)?.[0] as string

    const agent = lines()
    let stopPi!: (s: string) => void
    const piRun = runPi(['join', token, '--data-dir', pi], agent.io({ HEARSAY_DEVICE_ID: 'kitchen-pi', HEARSAY_INTERVAL_MS: '500' }, new Promise(resolve => { stopPi = resolve })))
    cleanup.push(async () => { stopPi('SIGTERM'); await piRun })
    await waitFor(() => agent.err.some(l => l.includes('publishing telemetry/kitchen-pi')), { timeoutMs: 30_000, message: `pi joined: ${agent.err.join('\n')}` })
    expect(agent.out.join('\n')).toMatch(/joined swarm [0-9a-f]{32} as "kitchen-pi": telemetry\/kitchen-pi:write, config\/kitchen-pi:read/)
    const node = (gateway as Daemon).node
    await waitFor(() => node.docs().includes('telemetry/kitchen-pi'), { timeoutMs: 20_000, message: 'telemetry at the gateway' })
    await fetch(`${(gateway as Daemon).url}/api/docs/${encodeURIComponent('config/kitchen-pi')}/intervalMs`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '700' })
    await waitFor(() => agent.err.some(l => l.includes('config/kitchen-pi applied: intervalMs 700')), { timeoutMs: 20_000, message: agent.err.join('\n') })
    stopPi('SIGTERM')
    expect(await piRun).toBe(0)
  }, 90_000)

  it('exits 2 on a configuration error, which the systemd unit does not restart', async () => {
    const dir = await tempDir('pi-bad', cleanup)
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', join(ROOT, 'apps/pi/src/main.ts'), 'start'], { cwd: ROOT, env: { ...process.env, HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: 'eighty' }, stdio: ['ignore', 'pipe', 'pipe'] })
    cleanup.push(async () => { await kill(child) })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    expect(await new Promise<number | null>(resolve => { child.on('exit', resolve) })).toBe(2)
    expect(err).toMatch(/HEARSAY_HTTP_PORT must be an integer/)
    const unit = await readFile(join(ROOT, 'apps/pi/hearsay-pi.service'), 'utf8')
    expect(unit).toMatch(/^Restart=on-failure$/m)
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m)
  })

  it('hearsay-pi status in a real process: exit 2 and a pointer to hearsay', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', join(ROOT, 'apps/pi/src/main.ts'), 'status'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    cleanup.push(async () => { await kill(child) })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const code = await new Promise<number | null>(resolve => { child.on('exit', resolve) })
    expect(code).toBe(2)
    expect(err).toMatch(/unknown command "status".*hearsay status/)
  })
})
