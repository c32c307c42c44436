/**
 * A managed swarm from the command line, every daemon its own process on real libp2p and LevelDB:
 * `init --admin`, `invite`, `join` (the only step on the new device), `devices`, the grants enforced,
 * a replayed token refused, and `revoke`.
 */
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '@hearsay/core/testing'
import { hearsay, kill, run, tempDir, type Proc } from './helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

/** Settings for every process here: no mDNS, loopback only, any free HTTP port. */
const ENV = { HEARSAY_MDNS: 'false', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0', HEARSAY_HTTP_PORT: '0', HEARSAY_LOG_LEVEL: 'warn' }

function background (args: string[]): Proc {
  const p = hearsay(args, ENV)
  cleanup.push(async () => { await kill(p.child) })
  return p
}

describe('trust from the command line', () => {
  it('init --admin, invite, join, devices, enforced grants, a replayed token, revoke', async () => {
    const [gw, pi, thief] = [await tempDir('trust-gw', cleanup), await tempDir('trust-pi', cleanup), await tempDir('trust-thief', cleanup)]
    const init = await run(['init', '--data-dir', gw, '--admin', '--name', 'gateway'], ENV)
    expect(init.code, init.stderr).toBe(0)
    expect(init.stdout).toMatch(/roster +swarm [0-9a-f]{32}, this device its admin/)
    const gateway = background(['start', '--data-dir', gw])
    await waitFor(() => gateway.stderr().includes('serving'), { timeoutMs: 30_000, message: `gateway up: ${gateway.stderr()}` })

    const invite = await run(['invite', '--name', 'kitchen-pi', '--grant', 'telemetry/kitchen-pi/:write', '--grant', 'config/kitchen-pi:read', '--expires', '1h', '--data-dir', gw], ENV)
    expect(invite.code, invite.stderr).toBe(0)
    const token = /^(hst1\S+)$/m.exec(invite.stdout)?.[1] as string
    expect(token).toBeDefined()
    expect(invite.stdout).toMatch(/[▀▄█]/) // the QR code

    const joining = background(['join', token, '--data-dir', pi])
    await waitFor(() => joining.stdout().includes('joined swarm') || joining.child.exitCode !== null, { timeoutMs: 30_000, message: `pi joined: ${joining.stderr()}` })
    expect(joining.stdout()).toMatch(/joined swarm [0-9a-f]{32} as "kitchen-pi": telemetry\/kitchen-pi\/:write, config\/kitchen-pi:read/)

    // provisioning a device whose service runs `start` later: join --exit stops once admitted
    const tabletDir = await tempDir('trust-tablet', cleanup)
    const tabletToken = /^(hst1\S+)$/m.exec((await run(['invite', '--name', 'tablet', '--grant', 'notes/:read', '--no-qr', '--data-dir', gw], ENV)).stdout)?.[1] as string
    const provisioned = await run(['join', tabletToken, '--exit', '--data-dir', tabletDir], ENV)
    expect(provisioned.code, provisioned.stderr).toBe(0)
    expect(provisioned.stdout).toMatch(/joined swarm [0-9a-f]{32} as "tablet": notes\/:read/)

    const devices = await run(['devices', '--data-dir', gw], ENV)
    expect(devices.stdout).toMatch(/gateway +\S+ +admin +this device/)
    expect(devices.stdout).toMatch(/kitchen-pi +\S+ +telemetry\/kitchen-pi\/:write, config\/kitchen-pi:read +connected/)
    expect(devices.stdout).toMatch(/tablet +\S+ +notes\/:read +seen/)
    const status = JSON.parse((await run(['status', '--json', '--data-dir', gw], ENV)).stdout) as { trust: { managed: boolean }, peers: Array<{ name?: string, access?: string }> }
    expect(status.trust.managed).toBe(true)
    expect(status.peers.find(p => p.name === 'kitchen-pi')?.access).toBe('telemetry/kitchen-pi/:write, config/kitchen-pi:read')

    // what the pi may write reaches the gateway; what it may not stays on the pi
    expect((await run(['set', 'telemetry/kitchen-pi/t1', 'celsius', '21.5', '--data-dir', pi], ENV)).code).toBe(0)
    expect((await run(['set', 'notes/from-pi', 'text', 'sneaky', '--data-dir', pi], ENV)).code).toBe(0)
    await waitFor(async () => (await run(['get', 'telemetry/kitchen-pi/t1', '--data-dir', gw], ENV)).code === 0, { timeoutMs: 20_000, message: 'telemetry at the gateway' })
    expect((await run(['get', 'notes/from-pi', '--data-dir', gw], ENV)).code).toBe(1)

    // the same token on a third device: refused, with the reason
    const replay = await run(['join', token, '--data-dir', thief], ENV)
    expect(replay.code).toBe(1)
    expect(replay.stderr).toMatch(/invite already used/)

    const revoke = await run(['revoke', 'kitchen-pi', '--data-dir', gw], ENV)
    expect(revoke.code, revoke.stderr).toBe(0)
    expect(revoke.stdout).toMatch(/kitchen-pi +\S+ +revoked/)
    await waitFor(async () => {
      const s = JSON.parse((await run(['status', '--json', '--data-dir', pi], ENV)).stdout) as { peers: Array<{ connected: boolean }> }
      return s.peers.every(p => !p.connected)
    }, { timeoutMs: 20_000, message: 'the pi is cut off' })
  }, 180_000)

  it('manage turns a running swarm into a managed one; the other device adopts the roster and keeps syncing', async () => {
    const [a, b] = [await tempDir('manage-a', cleanup), await tempDir('manage-b', cleanup)]
    expect((await run(['init', '--data-dir', a], ENV)).code).toBe(0)
    await copyFile(join(a, 'swarm.key'), join(b, 'swarm.key'))
    expect((await run(['init', '--data-dir', b], ENV)).code).toBe(0)
    const da = background(['start', '--data-dir', a, '--name', 'office'])
    await waitFor(() => da.stderr().includes('serving'), { timeoutMs: 30_000, message: 'a up' })
    const addr = (JSON.parse((await run(['status', '--json', '--data-dir', a], ENV)).stdout) as { multiaddrs: string[] }).multiaddrs[0] as string
    const db = background(['start', '--data-dir', b, '--name', 'shop', '--bootstrap', addr])
    await waitFor(() => db.stderr().includes('serving'), { timeoutMs: 30_000, message: 'b up' })
    const connected = async (dir: string): Promise<boolean> => (JSON.parse((await run(['status', '--json', '--data-dir', dir], ENV)).stdout) as { peers: Array<{ connected: boolean, name?: string }> }).peers.some(p => p.connected && p.name === 'office')
    await waitFor(async () => await connected(b), { timeoutMs: 20_000, message: 'b connected to a' })

    const manage = await run(['manage', '--data-dir', a], ENV)
    expect(manage.code, manage.stderr).toBe(0)
    expect(manage.stdout).toMatch(/now managed; this device is its admin/)
    expect(manage.stdout).toMatch(/shop +\S+ +\*:write/)
    await waitFor(async () => (JSON.parse((await run(['status', '--json', '--data-dir', b], ENV)).stdout) as { trust: { managed: boolean } }).trust.managed, { timeoutMs: 20_000, message: 'b adopted the roster' })
    expect((await run(['set', 'notes/after', 'text', 'still syncing', '--data-dir', b], ENV)).code).toBe(0)
    await waitFor(async () => (await run(['get', 'notes/after', '--data-dir', a], ENV)).code === 0, { timeoutMs: 20_000, message: 'b still writes to a' })
    // b is no admin
    const denied = await run(['invite', '--name', 'x', '--grant', 'a/:read', '--data-dir', b], ENV)
    expect(denied.code).toBe(1)
    expect(denied.stderr).toMatch(/not an admin/)
  }, 120_000)
})
