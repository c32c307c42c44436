import { describe, expect, it } from 'vitest'
import { fromHex } from '../src/bytes.js'
import { createRandom } from '../src/random.js'
import { Roster } from '../src/roster.js'
import { StatementKind, decodeStatement, encodeBody, parseGrant, signStatement, type SignedStatement, type Statement } from '../src/statements.js'
import { createTestKeyring } from '../src/testing/index.js'
import { TrustError } from '../src/errors.js'

const keys = createTestKeyring()
const SWARM = 'ab'.repeat(16)
let clock = 1

function stmt (kind: Statement['kind'], issuer: string, subject: string, more: Partial<Statement> = {}, signer = keys.signer(issuer)): SignedStatement {
  return signStatement({ kind, swarm: SWARM, issuer, subject, at: clock++, expires: 0, name: '', target: new Uint8Array(0), grants: [], ...more }, signer)
}

/** Add statements in the given order the way trust.ts does: each one the roster authorises. */
function build (genesis: SignedStatement, statements: SignedStatement[]): Roster {
  const r = new Roster(genesis)
  const pending = new Map(statements.map(s => [s.id, s]))
  for (const s of statements) if (r.authorises(s, pending) === undefined) r.insert(s)
  return r
}

describe('roster statements', () => {
  it('decode strictly: a flipped byte, a trailing byte or a wrong shape is a TrustError', () => {
    const g = stmt(StatementKind.Genesis, 'root', 'root')
    expect(decodeStatement(g.bytes).id).toBe(g.id)
    const trailing = new Uint8Array([...g.bytes, 0])
    expect(() => decodeStatement(trailing)).toThrow(TrustError)
    const kind = g.bytes.slice()
    kind[1] = 99
    expect(() => decodeStatement(kind)).toThrow(TrustError)
    expect(() => encodeBody({ kind: StatementKind.Grant, swarm: SWARM, issuer: 'a', subject: 'b', at: 1, expires: 0, name: '', target: new Uint8Array(0), grants: [] })).not.toThrow()
    expect(() => decodeStatement(signStatement({ kind: StatementKind.Grant, swarm: SWARM, issuer: 'root', subject: 'b', at: 1, expires: 0, name: '', target: new Uint8Array(0), grants: [] }, keys.signer('root')).bytes)).toThrow(/grants nothing/)
    expect(() => parseGrant('notes/')).toThrow(TrustError)
    expect(parseGrant('a:b:read')).toEqual({ pattern: 'a:b', mode: 'read' })
  })

  it('merges in any order to the same set and the same verdicts', () => {
    const g = stmt(StatementKind.Genesis, 'root', 'root')
    const all = [
      stmt(StatementKind.Admin, 'root', 'alice'),
      stmt(StatementKind.Grant, 'alice', 'w', { grants: [parseGrant('notes/:write')] }),
      stmt(StatementKind.Grant, 'alice', 'r', { grants: [parseGrant('notes/:read'), parseGrant('config/r:read')] }),
      stmt(StatementKind.Name, 'root', 'w', { name: 'Laptop' }),
      stmt(StatementKind.Name, 'alice', 'w', { name: 'Work laptop' }),
      stmt(StatementKind.Revoke, 'root', 'gone'),
      stmt(StatementKind.Grant, 'root', 'gone', { grants: [parseGrant('*:write')] })
    ]
    const withdrawn = stmt(StatementKind.Grant, 'root', 'r', { grants: [parseGrant('secret/:write')] })
    all.push(withdrawn, stmt(StatementKind.Withdraw, 'root', '', { target: fromHex(withdrawn.id) }))
    const reference = build(g, all)
    const v = reference.evaluate()
    expect(reference.size).toBe(all.length + 1)
    expect(v.devices.get('w')?.name).toBe('Work laptop')
    expect(reference.may('w', 'notes/x', 'write')).toBe(true)
    expect(reference.may('r', 'notes/x', 'write')).toBe(false)
    expect(reference.may('r', 'config/r', 'read')).toBe(true)
    expect(reference.may('r', 'config/r2', 'read')).toBe(false)
    expect(reference.may('r', 'secret/a', 'read')).toBe(false)
    expect(reference.may('gone', 'notes/x', 'read')).toBe(false)
    const rng = createRandom(42)
    for (let i = 0; i < 50; i++) {
      const shuffled = [...all]
      for (let j = shuffled.length - 1; j > 0; j--) {
        const k = rng.int(j + 1)
        ;[shuffled[j], shuffled[k]] = [shuffled[k] as SignedStatement, shuffled[j] as SignedStatement]
      }
      const r = build(g, shuffled)
      expect(r.hash).toEqual(reference.hash)
      for (const id of ['w', 'r', 'gone', 'alice']) expect(r.accessKey(id)).toBe(reference.accessKey(id))
    }
  })

  it('a revoked admin loses every statement it made, and its revocations still count', () => {
    const g = stmt(StatementKind.Genesis, 'root', 'root')
    const r = build(g, [
      stmt(StatementKind.Admin, 'root', 'mallory'),
      stmt(StatementKind.Grant, 'mallory', 'm2', { grants: [parseGrant('*:write')] }),
      stmt(StatementKind.Admin, 'mallory', 'm3'),
      stmt(StatementKind.Revoke, 'mallory', 'victim'),
      stmt(StatementKind.Revoke, 'root', 'mallory')
    ])
    expect(r.may('m2', 'a', 'read')).toBe(false)
    expect(r.evaluate().admins.has('m3')).toBe(false)
    expect(r.may('victim', 'a', 'read')).toBe(false)
    expect(r.evaluate().admins).toEqual(new Set(['root']))
    // statements by someone who never was an admin are not taken at all
    expect(r.authorises(stmt(StatementKind.Grant, 'nobody', 'x', { grants: [parseGrant('*:write')] }))).toMatch(/not an admin/)
  })

  it('an invite admits the one device that claims it; two claims admit neither', () => {
    const g = stmt(StatementKind.Genesis, 'root', 'root')
    const key = keys.crypto.generate().signer
    const invite = stmt(StatementKind.Invite, 'root', key.id, { name: 'pi', grants: [parseGrant('t/:write')], expires: 1_000_000 })
    const claim = (device: string, at = clock++): SignedStatement => signStatement({ kind: StatementKind.Claim, swarm: SWARM, issuer: key.id, subject: device, at, expires: 0, name: '', target: fromHex(invite.id), grants: [] }, key)
    const one = build(g, [invite, claim('pi')])
    expect(one.may('pi', 't/1', 'write')).toBe(true)
    expect(one.evaluate().devices.get('pi')?.name).toBe('pi')
    const two = build(g, [invite, claim('pi'), claim('thief'), claim('third')])
    expect(two.may('pi', 't/1', 'read')).toBe(false)
    expect(two.evaluate().conflicts).toEqual([invite.id])
    expect(two.size).toBe(1 + 1 + 2)
    // late claim, and a claim not signed by the invite's key
    expect(one.authorises(claim('late', 2_000_000))).toMatch(/expired/)
    const wrongKey = stmt(StatementKind.Claim, 'root', 'x', { target: fromHex(invite.id) })
    expect(one.authorises(wrongKey)).toMatch(/invite's key/)
  })
})
