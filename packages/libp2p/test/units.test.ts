import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRandom } from '@hearsay/core'
import { afterAll, describe, expect, it } from 'vitest'
import {
  FrameDecoder, encodeFrame, failureKind, encodeSwarmKey, generateSwarmKey, hearsaySync, loadOrCreatePrivateKey, mdnsQueryForTest,
  parseSwarmKey, swarmKeySecret
} from './exports.js'
import type { HearsaySyncInit } from './exports.js'

describe('framing', () => {
  it('round-trips frames split at every possible point, in order', () => {
    const rng = createRandom(7)
    const frames = [0, 1, 127, 128, 300, 16_384, 70_000].map(n => Uint8Array.from({ length: n }, () => rng.int(256)))
    const wire = new Uint8Array(frames.reduce((s, f) => s + encodeFrame(f).length, 0))
    let o = 0
    for (const f of frames) { const e = encodeFrame(f); wire.set(e, o); o += e.length }
    for (let trial = 0; trial < 50; trial++) {
      const dec = new FrameDecoder(1 << 20)
      const out: Uint8Array[] = []
      let pos = 0
      while (pos < wire.length) {
        const n = 1 + rng.int(trial < 10 ? 3 : 9000)
        out.push(...dec.push(Buffer.from(wire.subarray(pos, pos + n))))
        pos += n
      }
      expect(out.length).toBe(frames.length)
      out.forEach((f, i) => { expect(Buffer.compare(f, frames[i] as Uint8Array)).toBe(0) })
      expect(out.every(f => Object.getPrototypeOf(f) === Uint8Array.prototype)).toBe(true)
      expect(dec.pending).toBe(0)
    }
  })

  it('refuses an oversized frame from its prefix alone', () => {
    const dec = new FrameDecoder(1024)
    const big = encodeFrame(new Uint8Array(1025)).subarray(0, 2) // prefix only
    expect(() => dec.push(big)).toThrow(expect.objectContaining({ name: 'FrameTooLargeError' }))
  })

  it('refuses malformed prefixes', () => {
    expect(() => new FrameDecoder(1 << 20).push(Uint8Array.of(0x80, 0x00))).toThrow(expect.objectContaining({ name: 'FrameError' }))
    expect(() => new FrameDecoder(1 << 20).push(new Uint8Array(9).fill(0x80))).toThrow(/varint too long/)
    // a huge prefix is refused before all its bytes arrive
    expect(() => new FrameDecoder(1 << 20).push(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toThrow(expect.objectContaining({ name: 'FrameTooLargeError' }))
  })

  it('the received frame does not alias the decoder input', () => {
    const input = Buffer.from(encodeFrame(Uint8Array.of(1, 2, 3)))
    const [f] = new FrameDecoder(1024).push(input)
    input.fill(9)
    expect([...(f as Uint8Array)]).toEqual([1, 2, 3])
  })
})

describe('swarm keys', () => {
  it('generates keys that parse back to the same secret', () => {
    const k = generateSwarmKey()
    const text = new TextDecoder().decode(k)
    expect(text).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
    expect(parseSwarmKey(text + '\r\n')).toEqual(k)
    expect(swarmKeySecret(k).length).toBe(32)
    expect(generateSwarmKey()).not.toEqual(k)
  })

  it('says what is wrong with a bad key', () => {
    const good = new TextDecoder().decode(encodeSwarmKey(new Uint8Array(32).fill(0xab)))
    const cases: Array<[unknown, RegExp]> = [
      ['', /3 lines/],
      [good.replace('/key/swarm/psk/1.0.0/', '/key/other/'), /must start with/],
      [good.replace('/base16/', '/base64/'), /unsupported swarm key encoding/],
      [good.slice(0, -2), /64 hex digits/],
      [good.slice(0, -1) + 'z', /not hexadecimal/],
      [Uint8Array.of(0xff, 0xfe), /not text/],
      [42, /string or Uint8Array/]
    ]
    for (const [input, msg] of cases) {
      expect(() => parseSwarmKey(input as string)).toThrow(msg)
      expect(() => parseSwarmKey(input as string)).toThrow(expect.objectContaining({ name: 'SwarmKeyError' }))
    }
    expect(() => encodeSwarmKey(new Uint8Array(31))).toThrow(expect.objectContaining({ name: 'SwarmKeyError' }))
  })
})

describe('identity', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })
  const fresh = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'hs-id-')); dirs.push(d); return d }

  it('creates the key once, with mode 0600, and loads the same key after', async () => {
    const dir = join(await fresh(), 'nested', 'data')
    const k1 = await loadOrCreatePrivateKey(dir)
    const st = await stat(join(dir, 'peer-key'))
    expect(st.mode & 0o777).toBe(0o600)
    const k2 = await loadOrCreatePrivateKey(dir)
    expect(k2.publicKey.toString()).toBe(k1.publicKey.toString())
    // two processes racing to create: both end with the same key
    const dir2 = await fresh()
    const [x, y] = await Promise.all([loadOrCreatePrivateKey(dir2), loadOrCreatePrivateKey(dir2)])
    expect(x.publicKey.toString()).toBe(y.publicKey.toString())
  })

  it('refuses a corrupt key file and leaves it untouched', async () => {
    const dir = await fresh()
    await writeFile(join(dir, 'peer-key'), 'not a key')
    await expect(loadOrCreatePrivateKey(dir)).rejects.toMatchObject({ name: 'IdentityError' })
    expect(await readFile(join(dir, 'peer-key'), 'utf8')).toBe('not a key')
  })

  it('tightens a key file readable by others', async () => {
    const dir = await fresh()
    await loadOrCreatePrivateKey(dir)
    await chmod(join(dir, 'peer-key'), 0o644)
    const warnings: string[] = []
    const log = Object.assign(() => {}, { warn: (m: string) => { warnings.push(m) }, error: () => {}, trace: () => {} })
    await loadOrCreatePrivateKey(dir, log)
    expect((await stat(join(dir, 'peer-key'))).mode & 0o777).toBe(0o600)
    expect(warnings.join('\n')).toMatch(/readable by other users/)
  })
})

describe('discovery probe packet', () => {
  it('encodes a PTR question for the service tag', () => {
    const q = mdnsQueryForTest('_p2p._udp.local')
    expect([...q.subarray(0, 12)]).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    expect(Buffer.from(q.subarray(12)).toString('latin1')).toBe('\x04_p2p\x04_udp\x05local\x00\x00\x0c\x00\x01')
  })
})

describe('dial failure kinds', () => {
  const named = (name: string, extra: Record<string, unknown> = {}): Error => Object.assign(new Error(name), { name, ...extra })
  it('counts an unreachable address or a timeout as unreachable', () => {
    expect(failureKind(named('Error', { code: 'ECONNREFUSED' }))).toBe('unreachable')
    expect(failureKind(named('TimeoutError'))).toBe('unreachable')
    expect(failureKind(named('AbortError'))).toBe('unreachable')
    expect(failureKind(named('NoValidAddressesError'))).toBe('unreachable')
    expect(failureKind(new AggregateError([named('Error', { code: 'EHOSTUNREACH' })], 'all dials failed'))).toBe('unreachable')
    expect(failureKind('not an error')).toBe('unreachable')
  })

  it('counts a denied or failed handshake, or a reset, as refused, also when wrapped', () => {
    expect(failureKind(named('EncryptionFailedError'))).toBe('refused')
    expect(failureKind(named('ConnectionDeniedError'))).toBe('refused')
    expect(failureKind(named('DialError', { cause: named('Error', { code: 'ECONNRESET' }) }))).toBe('refused')
    expect(failureKind(new AggregateError([named('Error', { code: 'ECONNREFUSED' }), named('DialDeniedError')]))).toBe('refused')
  })
})

describe('sync service options', () => {
  // the options are checked before the service touches its libp2p components
  const build = (init: HearsaySyncInit): unknown => hearsaySync(init)({} as any)
  it('refuses bad values with a ConfigError naming the option', () => {
    const cases: Array<[HearsaySyncInit, string]> = [
      [{ dialTimeoutMs: 0 }, 'dialTimeoutMs must be a positive number, got 0'],
      [{ connectTimeoutMs: Number.NaN }, 'connectTimeoutMs must be a positive number, got NaN'],
      [{ backoff: { initialMs: -1 } }, 'backoff.initialMs must be a positive number, got -1'],
      [{ backoff: { jitter: 1 } }, 'backoff.jitter must be in [0, 1), got 1'],
      [{ maxRedialAttempts: 0 }, 'maxRedialAttempts must be a positive number, got 0'],
      [{ discoveryDialDelayMs: -1 }, 'discoveryDialDelayMs must be a number >= 0, got -1'],
      [{ closeCooldownMs: Number.POSITIVE_INFINITY }, 'closeCooldownMs must be a number >= 0, got Infinity'],
      [{ maxFrameBytes: 8 }, 'maxFrameBytes must be a number >= '],
      [{ timers: 5 as any }, 'timers must be an object']
    ]
    for (const [init, message] of cases) {
      expect(() => build(init)).toThrow(expect.objectContaining({ name: 'ConfigError', message: expect.stringContaining(message) }))
    }
  })
})
