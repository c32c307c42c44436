/**
 * Roster statements: what an admin (or an invite key) signs, their strict encoding, and their ids.
 *
 * A statement is `body sig`, where the signature covers `"hearsay-roster/1\0" body`. Its id is the
 * first 16 bytes of SHA-256 over the body, so one statement has one id however it was signed.
 * Statements are checked here for shape only; who may sign what is the roster's business
 * (roster.ts) and whether the signature holds is the injected `TrustCrypto`'s.
 *
 * body := format:u8(1) kind:u8 swarm:string issuer:string subject:string at:varuint
 *         expires:varuint name:string target:bytes grants:varuint { pattern:string mode:u8 }*
 * sig  := bytes
 */
import { Reader, Writer, toHex } from './bytes.js'
import { MAX_DEVICE_NAME_BYTES, MAX_DOC_ID_BYTES, MAX_STATEMENT_BYTES, MAX_STATEMENT_GRANTS, MAX_TRUST_ID_BYTES, MAX_WIRE_COUNTER } from './constants.js'
import { TrustError } from './errors.js'
import { sha256 } from './sha256.js'

export const StatementKind = {
  /** The swarm's first statement: `issuer` is its root admin, `swarm` its id. Self-signed. */
  Genesis: 1,
  /** `subject` is an admin. */
  Admin: 2,
  /** `subject` is named `name`. */
  Name: 3,
  /** `subject` may read or write what `grants` say. */
  Grant: 4,
  /** The grant or invite with id `target` no longer counts. */
  Withdraw: 5,
  /** `subject` is revoked: refused everywhere, for good. */
  Revoke: 6,
  /** One device may join with the one-time key `subject` until `expires`, named `name`, with `grants`. */
  Invite: 7,
  /** Signed by an invite key (`issuer`): device `subject` took the invite with id `target`. */
  Claim: 8
} as const
export type StatementKind = typeof StatementKind[keyof typeof StatementKind]
const KIND_NAMES: Record<number, string> = { 1: 'genesis', 2: 'admin', 3: 'name', 4: 'grant', 5: 'withdraw', 6: 'revoke', 7: 'invite', 8: 'claim' }

export type AccessMode = 'read' | 'write'
/**
 * What a grant covers: `*` every document; a pattern ending in `/` every id starting with it
 * (`notes/`); anything else exactly that id (`config/kitchen-pi`).
 */
export interface Grant { pattern: string, mode: AccessMode }

export interface Statement {
  kind: StatementKind
  swarm: string
  issuer: string
  subject: string
  /** When it was made, ms since the epoch (the issuer's clock). */
  at: number
  /** When an invite stops being usable, ms since the epoch; 0: never. */
  expires: number
  name: string
  /** The statement a withdraw or a claim refers to (16 bytes), else empty. */
  target: Uint8Array
  grants: Grant[]
}

/** A decoded statement with its id, body and signature. */
export interface SignedStatement extends Statement {
  /** Hex of the first 16 bytes of SHA-256 over the body. */
  readonly id: string
  readonly body: Uint8Array
  readonly sig: Uint8Array
  /** The whole encoded statement, as stored and sent. */
  readonly bytes: Uint8Array
}

/** Something that signs with this device's (or an invite's) key. */
export interface Signer {
  readonly id: string
  sign(data: Uint8Array): Uint8Array
}

/** The signature scheme, injected: `@hearsay/libp2p` verifies against libp2p peer ids (ed25519). */
export interface TrustCrypto {
  /** Whether `signature` over `data` was made by the key named `signerId`. Never throws. */
  verify(signerId: string, data: Uint8Array, signature: Uint8Array): boolean
  /** A fresh key for an invite, with the secret that recreates it. */
  generate(): { signer: Signer, secret: Uint8Array }
  /** The key an invite's secret stands for. Throws `TrustError` for a malformed secret. */
  fromSecret(secret: Uint8Array): Signer
}

const FORMAT = 1
const DOMAIN = new TextEncoder().encode('hearsay-roster/1\0')
const MAX_SIG_BYTES = 128
const MODES: AccessMode[] = ['read', 'write']

export const kindName = (kind: number): string => KIND_NAMES[kind] ?? `kind ${kind}`

/** Whether `pattern` covers `docId` (see `Grant`). */
export function covers (pattern: string, docId: string): boolean {
  if (pattern === '*') return true
  return pattern.endsWith('/') ? docId.startsWith(pattern) : docId === pattern
}

/** Parse `pattern:read` / `pattern:write` (the CLI's and the invite's form). Throws `TrustError`. */
export function parseGrant (text: string): Grant {
  const i = typeof text === 'string' ? text.lastIndexOf(':') : -1
  const mode = i > 0 ? text.slice(i + 1) : ''
  if (mode !== 'read' && mode !== 'write') throw new TrustError(`grant must look like "notes/:write" or "config/pi:read", got ${JSON.stringify(text)}`)
  const grant = { pattern: text.slice(0, i), mode } as Grant
  checkGrant(grant)
  return grant
}

function checkGrant (g: Grant): void {
  if (typeof g.pattern !== 'string' || g.pattern.length === 0 || utf8.encode(g.pattern).length > MAX_DOC_ID_BYTES) {
    throw new TrustError(`grant pattern must be 1 to ${MAX_DOC_ID_BYTES} bytes`)
  }
  if (!MODES.includes(g.mode)) throw new TrustError(`grant mode must be read or write, got ${String(g.mode)}`)
}

export function encodeBody (s: Statement): Uint8Array {
  for (const [what, v, max] of [['swarm', s.swarm, MAX_TRUST_ID_BYTES], ['issuer', s.issuer, MAX_TRUST_ID_BYTES], ['subject', s.subject, MAX_TRUST_ID_BYTES], ['name', s.name, MAX_DEVICE_NAME_BYTES]] as const) {
    if (utf8.encode(v).length > max) throw new TrustError(`statement ${what} is longer than ${max} bytes`)
  }
  if (s.grants.length > MAX_STATEMENT_GRANTS) throw new TrustError(`a statement carries at most ${MAX_STATEMENT_GRANTS} grants`)
  s.grants.forEach(checkGrant)
  const w = new Writer(256)
  w.u8(FORMAT).u8(s.kind).string(s.swarm).string(s.issuer).string(s.subject).varuint(s.at).varuint(s.expires).string(s.name).bytes(s.target)
  w.varuint(s.grants.length)
  for (const g of s.grants) w.string(g.pattern).u8(MODES.indexOf(g.mode))
  return w.finish()
}

/** The bytes a signature covers. */
export function signedBytes (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(DOMAIN.length + body.length)
  out.set(DOMAIN)
  out.set(body, DOMAIN.length)
  return out
}

/** Sign `s` as `signer` (whose id must be `s.issuer`) and return it decoded. */
export function signStatement (s: Statement, signer: Signer): SignedStatement {
  if (signer.id !== s.issuer) throw new TrustError(`statement issued by ${s.issuer} cannot be signed by ${signer.id}`)
  const body = encodeBody(s)
  const sig = signer.sign(signedBytes(body))
  const w = new Writer(body.length + sig.length + 4)
  w.raw(body).bytes(sig)
  return decodeStatement(w.finish())
}

/** Decode one statement strictly (shape only; no signature check). Throws `TrustError`. */
export function decodeStatement (bytes: Uint8Array): SignedStatement {
  if (bytes.length > MAX_STATEMENT_BYTES) throw new TrustError(`statement of ${bytes.length} bytes exceeds ${MAX_STATEMENT_BYTES}`)
  try {
    const r = new Reader(bytes)
    const format = r.u8('statement format')
    if (format !== FORMAT) throw new TrustError(`unknown statement format ${format}`)
    const kind = r.u8('statement kind')
    if (KIND_NAMES[kind] === undefined) throw new TrustError(`unknown statement kind ${kind}`)
    const swarm = r.string('swarm', MAX_TRUST_ID_BYTES)
    const issuer = r.string('issuer', MAX_TRUST_ID_BYTES)
    const subject = r.string('subject', MAX_TRUST_ID_BYTES)
    const at = r.varuint('time', MAX_WIRE_COUNTER)
    const expires = r.varuint('expiry', MAX_WIRE_COUNTER)
    const name = r.string('name', MAX_DEVICE_NAME_BYTES)
    const target = r.bytes('target', 16).slice()
    const n = r.varuint('grant count', MAX_STATEMENT_GRANTS)
    const grants: Grant[] = []
    for (let i = 0; i < n; i++) {
      const pattern = r.string('grant pattern', MAX_DOC_ID_BYTES)
      const mode = MODES[r.u8('grant mode')]
      if (mode === undefined) throw new TrustError('unknown grant mode')
      checkGrant({ pattern, mode })
      grants.push({ pattern, mode })
    }
    const bodyEnd = r.pos
    const sig = r.bytes('signature', MAX_SIG_BYTES)
    r.done('statement')
    const s: Statement = { kind: kind as StatementKind, swarm, issuer, subject, at, expires, name, target, grants }
    checkShape(s)
    const body = bytes.slice(0, bodyEnd)
    return { ...s, id: toHex(sha256(body, 16)), body, sig, bytes: bytes.slice() }
  } catch (err) {
    if (err instanceof TrustError) throw err
    throw new TrustError(`malformed statement: ${(err as Error).message}`, { cause: err })
  }
}

/** What each kind must and must not carry. */
function checkShape (s: Statement): void {
  const k = kindName(s.kind)
  const need = (ok: boolean, what: string): void => { if (!ok) throw new TrustError(`malformed ${k} statement: ${what}`) }
  need(s.swarm.length > 0 && s.issuer.length > 0, 'empty swarm or issuer')
  const targeted = s.kind === StatementKind.Withdraw || s.kind === StatementKind.Claim
  need(targeted ? s.target.length === 16 : s.target.length === 0, targeted ? 'needs a 16-byte target' : 'carries a target')
  need(s.kind === StatementKind.Withdraw || s.subject.length > 0, 'empty subject')
  const granting = s.kind === StatementKind.Grant || s.kind === StatementKind.Invite
  need(granting || s.grants.length === 0, 'carries grants')
  need(s.kind !== StatementKind.Grant || s.grants.length > 0, 'grants nothing')
  need(s.kind === StatementKind.Name || s.kind === StatementKind.Invite || s.name.length === 0, 'carries a name')
  need(s.kind !== StatementKind.Name || s.name.length > 0, 'empty name')
  need(s.kind === StatementKind.Invite || s.expires === 0, 'carries an expiry')
  need(s.kind !== StatementKind.Genesis || s.subject === s.issuer, 'genesis must name its issuer as subject')
}

/** A short description for logs: `grant by 12D3…abcd to 12D3…wxyz`. */
export function describe (s: Statement): string {
  return `${kindName(s.kind)} by ${short(s.issuer)}${s.subject === '' ? '' : ` about ${short(s.subject)}`}`
}

export const short = (id: string): string => id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id

const utf8 = new TextEncoder()
