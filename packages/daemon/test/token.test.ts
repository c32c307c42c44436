import { describe, expect, it } from 'vitest'
import { decodeToken, encodeToken, InviteTokenError, joinAddresses } from '../src/token.js'
import { loadConfig } from '../src/index.js'

const token = {
  swarmKey: new Uint8Array(32).fill(1),
  addresses: ['/ip4/192.0.2.2/tcp/4001/p2p/12D3KooWQJU5AWr3buCTwQgdBqgEY7JL2a8XF9uLecy7N23x5b3z'],
  genesisId: 'ab'.repeat(16),
  inviteId: 'cd'.repeat(16),
  secret: new Uint8Array(32).fill(9)
}

describe('invite tokens', () => {
  it('round-trip in about 200 characters', () => {
    const text = encodeToken(token)
    expect(text.length).toBeLessThan(220)
    expect(decodeToken(` ${text}\n`)).toEqual(token)
    expect(decodeToken(encodeToken({ ...token, swarmKey: undefined, addresses: [] }))).toMatchObject({ swarmKey: undefined, addresses: [] })
  })

  it('refuse anything else with InviteTokenError: wrong prefix, cut short, trailing bytes, bad address, bad key, junk', () => {
    const text = encodeToken(token)
    const bytes = Buffer.from(text.slice(4), 'base64url')
    const withBytes = (b: Buffer): string => 'hst1' + b.toString('base64url')
    const cases = [
      'hello',
      text.slice(0, 60),
      withBytes(Buffer.concat([bytes, Buffer.from([0])])),
      withBytes(Buffer.from([2, ...bytes.subarray(1)])), // another version
      withBytes(Buffer.from([1, 5, 1, 2, 3, 4, 5, 0, ...bytes.subarray(1 + 33 + 1 + 1 + (bytes[35] as number))])), // 5-byte swarm key
      withBytes(Buffer.from([1, 0, 1, 3, 0xff, 0xff, 0xff, ...new Uint8Array(80)])), // an address that is not a multiaddr
      withBytes(Buffer.from([1, 0, 200])), // too many addresses
      'hst1' + '!'.repeat(50),
      'hst1' + 'A'.repeat(5000)
    ]
    for (const c of cases) expect(() => decodeToken(c), c.slice(0, 40)).toThrow(InviteTokenError)
  })

  it('a relayed address in a token gives the joining device the relay, and passes the config checks', () => {
    const relay = '/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWLbHtsJbjRWG2uqSvhfPLKL8JbUrvnEqGZHFzUQk4nkEa'
    const admin = '12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'
    const relayed = `${relay}/p2p-circuit/p2p/${admin}`
    const lan = `/ip4/192.168.1.20/tcp/4001/p2p/${admin}`
    const t = decodeToken(encodeToken({ swarmKey: undefined, addresses: [relayed, lan], genesisId: '00'.repeat(16), inviteId: '11'.repeat(16), secret: new Uint8Array(32) }))
    const dial = joinAddresses(t.addresses)
    expect(dial).toEqual({ bootstrap: [relayed, lan], relays: [relay] })
    const { config } = loadConfig({ readFile: false, env: { HEARSAY_DATA_DIR: '/nonexistent', HEARSAY_BOOTSTRAP: dial.bootstrap.join(','), HEARSAY_RELAYS: dial.relays.join(',') } })
    expect(config.bootstrap).toEqual([relayed, lan])
    expect(config.relays).toEqual([relay])
    // a relay must be the relay's own address, not one through another relay
    expect(() => loadConfig({ readFile: false, env: { HEARSAY_DATA_DIR: '/nonexistent', HEARSAY_RELAYS: relayed } })).toThrow(/HEARSAY_RELAYS must be relay multiaddrs/)
    expect(() => loadConfig({ readFile: false, env: { HEARSAY_DATA_DIR: '/nonexistent', HEARSAY_BOOTSTRAP: `${relay}/p2p-circuit/p2p/12D3KooWbad` } })).toThrow(/not a valid peer id/)
  })
})
