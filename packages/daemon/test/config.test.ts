import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig, main } from '../src/index.js'
import { run, tempDir } from './helpers.js'

const cleanup: Array<() => unknown> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

async function cli (argv: string[], env: Record<string, string> = {}): Promise<{ code: number, out: string, err: string }> {
  let out = ''
  let err = ''
  const code = await main(argv, { out: t => { out += t + '\n' }, err: t => { err += t + '\n' }, env })
  return { code, out, err }
}

const BOOT = '/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWLbHtsJbjRWG2uqSvhfPLKL8JbUrvnEqGZHFzUQk4nkEa'

describe('configuration', () => {
  it('layers defaults, file, environment and flags', async () => {
    const dir = await tempDir('cfg', cleanup)
    await writeFile(join(dir, 'config.json'), JSON.stringify({ httpPort: 5000, mdns: false, bootstrap: [BOOT] }))
    const { config, sources } = loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: '5001' }, flags: { logLevel: 'debug' } })
    expect(config.httpPort).toBe(5001)
    expect(sources.httpPort).toBe('env')
    expect(config.mdns).toBe(false)
    expect(config.bootstrap).toEqual([BOOT])
    expect(config.logLevel).toBe('debug')
    expect(config.httpHost).toBe('127.0.0.1')
    expect(config.name).toBeUndefined()
  })

  it('takes a device name that survives restarts, checked like PUT /api/name', async () => {
    const dir = await tempDir('cfg-name', cleanup)
    expect(loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_NAME: ' kitchen Pi ' } }).config.name).toBe('kitchen Pi')
    await writeFile(join(dir, 'config.json'), JSON.stringify({ name: 'gateway' }))
    expect(loadConfig({ env: { HEARSAY_DATA_DIR: dir } }).config.name).toBe('gateway')
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir }, flags: { name: 'bad\u202Ename' } })).toThrow(/--name must be a device name of 1 to 64 printable characters/)
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir }, flags: { name: 'x'.repeat(65) } })).toThrow(/--name must be a device name/)
  })

  it('uses <dataDir>/swarm.key when it exists, with or without a config file', async () => {
    const dir = await tempDir('cfg-key', cleanup)
    expect(loadConfig({ env: { HEARSAY_DATA_DIR: dir } }).config.swarmKeyFile).toBeUndefined()
    await writeFile(join(dir, 'swarm.key'), 'copied from another device')
    expect(loadConfig({ env: { HEARSAY_DATA_DIR: dir } }).config.swarmKeyFile).toBe('swarm.key')
    await writeFile(join(dir, 'config.json'), JSON.stringify({ swarmKeyFile: 'other.key' }))
    expect(loadConfig({ env: { HEARSAY_DATA_DIR: dir } }).config.swarmKeyFile).toBe('other.key')
  })

  it('names the field, its source and the fix', async () => {
    const dir = await tempDir('cfg', cleanup)
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: 'eighty' } }))
      .toThrow(/HEARSAY_HTTP_PORT must be an integer from 0 to 65535.*got "eighty"\. Fix the variable, or unset it/)
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_BOOTSTRAP: '/ip4/10.0.0.2/tcp/4001' } }))
      .toThrow(/HEARSAY_BOOTSTRAP must be multiaddrs such as \/ip4\/192\.168\.1\.20\/tcp\/4001\/p2p\/12D3KooW.*got "\/ip4\/10\.0\.0\.2\/tcp\/4001"/)
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir }, flags: { listen: '0.0.0.0:4001' } })).toThrow(/--listen must be multiaddrs/)
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir }, flags: { listen: '/ip4/10.0.0.300/tcp/1' } })).toThrow(/--listen must be multiaddrs.*not a multiaddr \(Invalid IPv4/)
    // right characters, wrong peer id: one letter changed, or cut short
    for (const typo of [BOOT.slice(0, -1), BOOT.replace('KooW', 'KoW')]) {
      const e = (() => { try { loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_BOOTSTRAP: typo } }) } catch (e) { return e as Error } })()
      expect(e?.name).toBe('ConfigError')
      expect(e?.message).toMatch(/^HEARSAY_BOOTSTRAP must be multiaddrs .*is not a valid peer id/)
    }
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir }, flags: { allowPeers: '12D3KooWLbHtsJbjRWG2uqSvhfPLKL8JbUrvnEqGZHFzUQk4nk' } })).toThrow(/--allow-peers must be peer ids.*not a valid peer id/)
    await writeFile(join(dir, 'config.json'), JSON.stringify({ durability: 'disk' }))
    const err = (() => { try { loadConfig({ env: { HEARSAY_DATA_DIR: dir } }) } catch (e) { return e as Error } })()
    expect(err?.name).toBe('ConfigError')
    expect(err?.message).toMatch(/"durability" in .*config\.json must be 'power'.*or 'process'.*got "disk"\. Fix it in the file/)
    await writeFile(join(dir, 'config.json'), JSON.stringify({ httpPrt: 1 }))
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir } })).toThrow(/unknown setting "httpPrt" in .*config\.json\. Did you mean "httpPort"\?\. Known settings: .*httpPort/)
    await writeFile(join(dir, 'config.json'), JSON.stringify({ swarm_key_file: 'k' }))
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir } })).toThrow(/unknown setting "swarm_key_file" .*Did you mean "swarmKeyFile"\?/)
    await writeFile(join(dir, 'config.json'), JSON.stringify({ colour: 'blue' }))
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir } })).toThrow(/unknown setting "colour" in \S+config\.json\. Known settings/)
    await writeFile(join(dir, 'config.json'), '{ not json')
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir } })).toThrow(/not valid JSON/)
    expect(() => loadConfig({ configFile: join(dir, 'missing.json') })).toThrow(/does not exist/)
  })
})

describe('relay settings', () => {
  it('takes relays as peer addresses, --relay as a switch, and refuses a relay without a swarm key', async () => {
    const dir = await tempDir('cfg', cleanup)
    const { config } = loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_RELAYS: BOOT }, flags: { relay: 'true', relayPace: '0' } })
    expect(config).toMatchObject({ relays: [BOOT], relay: true, relayPace: 0 })
    expect(loadConfig({ env: { HEARSAY_DATA_DIR: dir } }).config).toMatchObject({ relays: [], relay: false, relayPace: 1024 * 1024 })
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_RELAYS: '/ip4/10.0.0.2/tcp/4001' } })).toThrow(/HEARSAY_RELAYS must be relay multiaddrs/)
    expect(() => loadConfig({ env: { HEARSAY_DATA_DIR: dir, HEARSAY_RELAY_PACE: '-1' } })).toThrow(/HEARSAY_RELAY_PACE must be bytes a second/)
    // a relay open to anyone is refused before anything starts
    const r = await cli(['start', '--relay', '--data-dir', dir, '--mdns', 'false', '--http-port', '0'])
    expect(r.code).not.toBe(0)
    expect(r.err).toMatch(/a relay needs a swarm key \(or allowPeers\)/)
  })
})

describe('hearsay CLI', () => {
  it('prints help for every command', async () => {
    for (const c of ['init', 'start', 'status', 'docs', 'get', 'set', 'watch']) {
      const r = await cli([c, '--help'])
      expect(r.code).toBe(0)
      expect(r.out).toContain(`Usage: hearsay ${c}`)
    }
    expect((await cli(['--help'])).out).toMatch(/Commands:[\s\S]*watch/)
  })

  it('rejects bad commands, options and arguments with exit code 2', async () => {
    expect(await cli(['strat'])).toMatchObject({ code: 2, err: expect.stringMatching(/unknown command "strat"/) })
    expect(await cli(['start', '--http-prot', '1'])).toMatchObject({ code: 2, err: expect.stringMatching(/Unknown option '--http-prot' \(did you mean --http-port\?\)\. See `hearsay start --help`/) })
    expect(await cli(['set', 'doc', 'key'])).toMatchObject({ code: 2, err: expect.stringMatching(/expected at least 3 argument\(s\), got 2/) })
    expect(await cli(['start', '--http-port', '99999'])).toMatchObject({ code: 2, err: expect.stringMatching(/^hearsay start: --http-port must be an integer from 0 to 65535.*got "99999"\. Fix the flag, or leave it out to use the default\.$/m) })
    expect(await cli(['status', '--url', 'ftp://x'])).toMatchObject({ code: 2, err: expect.stringMatching(/--url must be the daemon's endpoint/) })
  })

  it('says how to reach a daemon that is not running', async () => {
    const r = await cli(['docs', '--url', 'http://127.0.0.1:9'])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/cannot reach the daemon at http:\/\/127\.0\.0\.1:9.*hearsay start/)
  })

  it('init writes identity, swarm key and config; a second init refuses', async () => {
    const dir = await tempDir('init', cleanup)
    const first = await cli(['init', '--data-dir', dir])
    expect(first.code).toBe(0)
    expect(first.out).toMatch(/swarm key/)
    const { config } = loadConfig({ env: { HEARSAY_DATA_DIR: dir } })
    expect(config.swarmKeyFile).toBe('swarm.key')
    expect(await cli(['init', '--data-dir', dir])).toMatchObject({ code: 2, err: expect.stringMatching(/already exists.*--force/) })
    expect((await cli(['init', '--data-dir', dir, '--force'])).code).toBe(0)
  })

  it('init keeps a swarm.key copied from another device; --force neither reads the config nor replaces the key', async () => {
    const first = await tempDir('init-a', cleanup)
    expect((await cli(['init', '--data-dir', first])).code).toBe(0)
    const key = await readFile(join(first, 'swarm.key'))

    const second = await tempDir('init-b', cleanup)
    await writeFile(join(second, 'swarm.key'), key)
    const joined = await cli(['init', '--data-dir', second])
    expect(joined).toMatchObject({ code: 0, out: expect.stringMatching(/swarm key .*kept the existing key/) })
    expect(await readFile(join(second, 'swarm.key'))).toEqual(key)

    // a broken config file: the error says to run init --force, which must then work
    await writeFile(join(second, 'config.json'), '{ "httpPort": ')
    expect(await cli(['status', '--data-dir', second])).toMatchObject({ code: 2, err: expect.stringMatching(/not valid JSON.*hearsay init --force/) })
    expect((await cli(['init', '--data-dir', second, '--force'])).code).toBe(0)
    expect(await readFile(join(second, 'swarm.key'))).toEqual(key)
    expect(loadConfig({ env: { HEARSAY_DATA_DIR: second } }).config.swarmKeyFile).toBe('swarm.key')

    const renewed = await cli(['init', '--data-dir', second, '--force', '--new-swarm-key'])
    expect(renewed).toMatchObject({ code: 0, out: expect.stringMatching(/NEW key written over the old one/) })
    expect(await readFile(join(second, 'swarm.key'))).not.toEqual(key)

    expect(await cli(['init', '--data-dir', second, '--force', '--no-swarm-key'])).toMatchObject({ code: 2, err: expect.stringMatching(/swarm\.key exists.*Delete it for an open swarm/) })
    expect(await cli(['init', '--data-dir', second, '--force', '--no-swarm-key', '--new-swarm-key'])).toMatchObject({ code: 2, err: expect.stringMatching(/contradict/) })
  })

  it('exits 2 with the message from a real process', async () => {
    const r = await run(['start', '--data-dir', '/tmp', '--durability', 'fast'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--durability must be 'power'/)
    const dir = await tempDir('boot', cleanup)
    await writeFile(join(dir, 'config.json'), JSON.stringify({ bootstrap: [BOOT.slice(0, -1)], httpPort: 0, mdns: false }))
    const typo = await run(['start', '--data-dir', dir])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toMatch(/"bootstrap" in .*config\.json must be multiaddrs.*is not a valid peer id/)
    expect(typo.stderr).not.toMatch(/\n\s+at /)
  })
})
