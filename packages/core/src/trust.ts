/**
 * Trust: this node's copy of the swarm's roster (roster.ts), what it allows, and the admin
 * operations that add to it. How it spreads between peers is roster-spread.ts's.
 *
 * Without a genesis statement the swarm is unmanaged: everyone may read and write everything, as
 * with a plain swarm key. With one, `may(peer, docId, mode)` answers from the roster, which:
 * - takes statements only with a valid signature (the injected `TrustCrypto`) from an issuer the
 *   roster authorises; a forged or malformed statement from a peer closes its session
 *   (`TrustError`), one not authorised (yet) is refused and counted, a second claim of an invite
 *   made by its claimant is refused with "invite already used";
 * - is stored in the `hearsay/roster` metadata record, every statement checked again on load;
 * - tells of statements new to it with `learned` (roster-spread.ts passes them on).
 * An unmanaged node takes the roster of the first peer that offers one (`adopt`): every member
 * already had full trust, so the first admin's word is no weaker than the swarm key.
 */
import { fromHex, toHex } from './bytes.js'
import type { Timers } from './clock.js'
import { MAX_ROSTER_STATEMENTS } from './constants.js'
import { ConfigError, TrustError } from './errors.js'
import { Emitter } from './events.js'
import { LogThrottle, type Log } from './logger.js'
import type { Counters } from './metrics.js'
import { Roster } from './roster.js'
import { loadRoster, saveRoster } from './roster-store.js'
import {
  StatementKind, decodeStatement, describe, signStatement, signedBytes, short,
  type AccessMode, type Grant, type SignedStatement, type Statement, type TrustCrypto
} from './statements.js'
import type { Storage } from './storage.js'
import type { DeviceInfo, NodeTrust, TrustChange, TrustOptions } from './node-trust.js'

export type { DeviceInfo, NodeTrust, TrustChange, TrustOptions } from './node-trust.js'

export interface TrustEvents extends Record<string, unknown> {
  /** Statements new to this node, from a peer (`from`) or made here: roster-spread.ts passes them on. */
  learned: { statements: SignedStatement[], from: string | undefined }
  /** The roster took new statements (what may be shared changed, devices may be revoked). */
  change: TrustChange
}

export interface TrustDeps {
  selfId: string
  options: TrustOptions | undefined
  storage: Storage
  timers: Timers
  log: Log
  counters: Counters
}

/** A peer that sent something the roster refused, and why: the session decides what to do. */
export interface Refusal { reason: string, forged: boolean, alreadyUsed: boolean }

export class Trust extends Emitter<TrustEvents> {
  private roster: Roster | undefined
  private readonly crypto: TrustCrypto | undefined
  private write: Promise<void> = Promise.resolve()
  /** Statements refused per peer within the current minute. */
  private readonly refusedFrom = new Map<string, { since: number, count: number }>()
  private readonly logs: LogThrottle

  constructor (private readonly d: TrustDeps) {
    super()
    this.logs = new LogThrottle(() => d.timers.now())
    this.crypto = d.options?.crypto
    if (d.options !== undefined && typeof d.options.crypto?.verify !== 'function') throw new ConfigError('trust.crypto must be a TrustCrypto (see @hearsay/libp2p trustCrypto)')
    if (d.options?.signer !== undefined && d.options.signer.id !== d.selfId) throw new ConfigError(`trust.signer is ${d.options.signer.id}, not this node (${d.selfId})`)
  }

  get managed (): boolean { return this.roster !== undefined }
  get swarm (): string | undefined { return this.roster?.swarm }
  get hash (): Uint8Array { return this.roster?.hash ?? new Uint8Array(16) }
  get count (): number { return this.roster?.size ?? 0 }
  /** The roster, for digest views (undefined: unmanaged). */
  get current (): Roster | undefined { return this.roster }

  /** Load the stored roster and the configured statements. */
  async init (): Promise<void> {
    const o = this.d.options
    if (o === undefined) return
    const stored = await this.load()
    const configured = o.genesis === undefined ? undefined : this.checkGenesis(o.genesis, 'trust.genesis')
    if (configured !== undefined && stored !== undefined && configured.id !== stored[0]?.id) {
      throw new ConfigError(`the store holds the roster of swarm ${stored[0]?.swarm}, but trust.genesis is of swarm ${configured.swarm}`)
    }
    const genesis = configured ?? stored?.[0]
    if (genesis !== undefined) this.roster = new Roster(genesis)
    const more = [...(stored?.slice(1).map(s => s.bytes) ?? []), ...(o.statements ?? [])]
    if (more.length > 0 && this.roster === undefined) throw new ConfigError('trust.statements need a genesis')
    if (more.length > 0) await this.add(more, undefined)
    else if (configured !== undefined && stored === undefined) this.persist()
    if (this.roster !== undefined) this.d.log('roster of swarm %s: %d statements', short(this.roster.swarm), this.roster.size)
  }

  may (peerId: string, docId: string, mode: AccessMode): boolean {
    return this.roster === undefined || this.roster.may(peerId, docId, mode)
  }

  revoked (peerId: string): boolean {
    return this.roster?.evaluate().revoked.has(peerId) ?? false
  }

  /**
   * Check and add statements from a peer (`from`) or from this node (undefined). Statements new to
   * us are stored, passed on to every other session, and `change` says who was revoked. Returns what was
   * added and, for a peer, the first refusal that should concern its session.
   */
  async add (encoded: Uint8Array[], from: string | undefined): Promise<{ added: SignedStatement[], refusal?: Refusal }> {
    const c = this.d.counters
    let refusal: Refusal | undefined
    let refused = 0
    const refuse = (reason: string, forged = false, alreadyUsed = false): void => {
      c.statementsRefused++
      refused++
      if (refusal === undefined || (forged && !refusal.forged)) refusal = { reason, forged, alreadyUsed }
    }
    const pending = new Map<string, SignedStatement>()
    for (const bytes of encoded) {
      let s: SignedStatement
      try {
        s = decodeStatement(bytes)
      } catch (err) {
        refuse((err as Error).message, true)
        if (from !== undefined) break // the session closes: the rest of its frame is not worth checking
        continue
      }
      if (this.roster?.has(s.id) === true || pending.has(s.id)) continue
      if (!this.verify(s)) {
        refuse(`forged ${describe(s)}: the signature does not verify`, true)
        if (from !== undefined) break
        continue
      }
      const wanted = this.d.options?.genesisId
      if (this.roster === undefined && s.kind === StatementKind.Genesis && from !== undefined && this.adopts && (wanted === undefined || wanted === s.id)) {
        this.roster = new Roster(s)
        this.d.log.warn('adopted the roster of swarm %s (root admin %s) from %s: documents are now shared by its grants', short(s.swarm), s.issuer, from)
        pending.set(s.id, s)
        continue
      }
      pending.set(s.id, s)
    }
    const roster = this.roster
    if (roster === undefined) {
      if (pending.size > 0) refuse('statements without a genesis: this node is not in a managed swarm')
      return { added: [], refusal }
    }
    const before = roster.evaluate()
    const ever = roster.everAdmins(pending)
    const added: SignedStatement[] = []
    for (const s of pending.values()) {
      if (roster.has(s.id)) { added.push(s); continue } // an adopted genesis
      const why = roster.authorises(s, pending, ever) ?? this.freshClaim(roster, s, from)
      if (why !== undefined) {
        refuse(`${describe(s)}: ${why}`, false, why === ALREADY_USED)
        continue
      }
      if (roster.size >= MAX_ROSTER_STATEMENTS) {
        refuse(`roster is full (${MAX_ROSTER_STATEMENTS} statements)`)
        continue
      }
      if (roster.insert(s).added) added.push(s)
    }
    if (refusal !== undefined && from !== undefined && this.floods(from, refused)) {
      // an honest peer passes on only statements it took, so it is refused a few at most (in a race)
      refusal = { reason: `sent more than ${REFUSED_PER_MINUTE} statements this node refuses within a minute`, forged: true, alreadyUsed: false }
    }
    if (refusal !== undefined) this.logRefusal(from, refusal)
    if (added.length === 0) return { added, refusal }
    c.statementsAccepted += added.length
    this.persist()
    const after = roster.evaluate()
    const revoked = [...after.revoked].filter(p => !before.revoked.has(p))
    for (const p of revoked) {
      if (p === this.d.selfId) this.d.log.error('this device was revoked from swarm %s: every member refuses it now; its changes stay on it', short(roster.swarm))
      else this.d.log.warn('device %s is revoked', p)
    }
    this.emit('learned', { statements: added, from })
    this.emit('change', { revoked })
    return { added, refusal }
  }

  /** Count statements refused from `peerId`; true once it passed `REFUSED_PER_MINUTE` within a minute. */
  private floods (peerId: string, n: number): boolean {
    const now = this.d.timers.now()
    let f = this.refusedFrom.get(peerId)
    if (f === undefined || now - f.since >= 60_000) {
      f = { since: now, count: 0 }
      this.refusedFrom.set(peerId, f)
    }
    f.count += n
    return f.count > REFUSED_PER_MINUTE
  }

  /**
   * This node changed a document it may not write: the change stays here, since no peer would
   * take it. Said in the log (at most once a minute), never silently.
   */
  unshared (docId: string): void {
    this.d.counters.localEditsUnshared++
    if (!this.logs.allows('\0unshared')) return
    this.d.log.warn('"%s" was changed here, but the roster does not let this device write it: the change stays on this device (counted in localEditsUnshared)', docId)
  }

  /** A claim sent by its own claimant is refused when the invite was used or expired. */
  private freshClaim (roster: Roster, s: SignedStatement, from: string | undefined): string | undefined {
    if (s.kind !== StatementKind.Claim || from === undefined || from !== s.subject) return undefined
    const invite = roster.get(toHex(s.target))
    if (invite === undefined) return undefined
    if (roster.claimsOf(invite.id).some(c => c.subject !== s.subject)) return ALREADY_USED
    if (invite.expires !== 0 && this.d.timers.now() > invite.expires) return 'invite expired'
    return undefined
  }

  private verify (s: SignedStatement): boolean {
    try {
      return this.crypto?.verify(s.issuer, signedBytes(s.body), s.sig) === true
    } catch {
      return false
    }
  }

  private checkGenesis (bytes: Uint8Array, what: string): SignedStatement {
    let s: SignedStatement
    try {
      s = decodeStatement(bytes)
    } catch (err) {
      throw new ConfigError(`${what}: ${(err as Error).message}`)
    }
    if (s.kind !== StatementKind.Genesis || !this.verify(s)) throw new ConfigError(`${what} is not a genesis statement signed by its issuer`)
    return s
  }

  private logRefusal (from: string | undefined, r: Refusal): void {
    if (!this.logs.allows(from ?? '', r.forged)) return
    this.d.log.warn('refused roster statements from %s: %s', from ?? 'this node', r.reason)
  }

  /** Every statement, genesis first. */
  all (): SignedStatement[] {
    const r = this.roster
    if (r === undefined) return []
    return [r.genesis, ...r.statements().filter(s => s.id !== r.genesis.id)]
  }

  /** Whether roster traffic is taken at all (a `trust` option was given), and a roster offered adopted. */
  get enabled (): boolean { return this.d.options !== undefined }
  get adopts (): boolean { return this.d.options !== undefined && this.d.options.adopt !== false }

  forget (peerId: string): void {
    this.refusedFrom.delete(peerId)
    this.logs.forget(peerId)
  }

  // -- issuing

  private async issue (s: Omit<Statement, 'swarm' | 'issuer' | 'at'> & { issuer?: string }, signer = this.d.options?.signer): Promise<SignedStatement> {
    const r = this.roster
    if (r === undefined) throw new TrustError('this swarm has no roster: run createSwarm() (hearsay init --admin) first')
    if (signer === undefined) throw new TrustError('this node has no signing key (trust.signer)')
    const signed = signStatement({ ...s, swarm: r.swarm, issuer: s.issuer ?? signer.id, at: this.d.timers.now() }, signer)
    const { added, refusal } = await this.add([signed.bytes], undefined)
    if (refusal !== undefined && added.length === 0) throw new TrustError(refusal.reason)
    return signed
  }

  async createSwarm (): Promise<Uint8Array> {
    const signer = this.d.options?.signer
    if (this.crypto === undefined || signer === undefined) throw new TrustError('createSwarm needs trust.crypto and trust.signer')
    if (this.roster !== undefined) throw new TrustError(`this node is already in managed swarm ${this.roster.swarm}`)
    const swarm = toHex(this.crypto.generate().secret.subarray(0, 16))
    const g = signStatement({ kind: StatementKind.Genesis, swarm, issuer: signer.id, subject: signer.id, at: this.d.timers.now(), expires: 0, name: '', target: new Uint8Array(0), grants: [] }, signer)
    this.roster = new Roster(g)
    this.persist()
    this.d.log.warn('this device is now the root admin of swarm %s', short(swarm))
    this.emit('learned', { statements: [g], from: undefined })
    this.emit('change', { revoked: [] })
    return g.bytes
  }

  async addAdmin (peerId: string): Promise<void> { await this.issue(blank(StatementKind.Admin, peerId)) }
  async name (peerId: string, name: string): Promise<void> { await this.issue({ ...blank(StatementKind.Name, peerId), name }) }
  async grant (peerId: string, grants: Grant[]): Promise<void> { await this.issue({ ...blank(StatementKind.Grant, peerId), grants }) }
  async revoke (peerId: string): Promise<void> { await this.issue(blank(StatementKind.Revoke, peerId)) }

  async withdraw (target: { peerId: string, pattern: string } | { inviteId: string }): Promise<number> {
    const r = this.roster
    if (r === undefined) return 0
    const ids = 'inviteId' in target
      ? [target.inviteId].filter(id => r.get(id)?.kind === StatementKind.Invite)
      : r.statements().filter(s => s.kind === StatementKind.Grant && s.subject === target.peerId && s.grants.some(g => g.pattern === target.pattern)).map(s => s.id)
    for (const id of ids) await this.issue({ ...blank(StatementKind.Withdraw, ''), target: fromHex(id) })
    return ids.length
  }

  async invite (o: { name: string, grants: Grant[], expiresAt: number }): Promise<{ invite: Uint8Array, secret: Uint8Array }> {
    if (this.crypto === undefined) throw new TrustError('invites need trust.crypto')
    const key = this.crypto.generate()
    const s = await this.issue({ ...blank(StatementKind.Invite, key.signer.id), name: o.name, grants: o.grants, expires: o.expiresAt })
    return { invite: s.bytes, secret: key.secret }
  }

  async claim (invite: Uint8Array | string, secret: Uint8Array): Promise<void> {
    if (this.crypto === undefined) throw new TrustError('claims need trust.crypto')
    const inv = typeof invite === 'string' ? this.roster?.get(invite) : decodeStatement(invite)
    if (inv === undefined) throw new TrustError(`invite ${String(invite)} is not known yet: this node has not received the swarm's roster`)
    if (inv.kind !== StatementKind.Invite) throw new TrustError('not an invite')
    const key = this.crypto.fromSecret(secret)
    if (key.id !== inv.subject) throw new TrustError('the secret is not this invite\'s key')
    if (this.roster?.has(inv.id) !== true) await this.add([inv.bytes], undefined)
    await this.issue({ ...blank(StatementKind.Claim, this.d.selfId), issuer: key.id, target: fromHex(inv.id) }, key)
  }

  // -- the view

  devices (): DeviceInfo[] {
    return [...(this.roster?.evaluate().devices.values() ?? [])].map(d => ({ ...d, grants: [...d.grants] }))
  }

  invites (): ReturnType<NodeTrust['invites']> {
    const v = this.roster?.evaluate()
    return {
      open: (v?.openInvites ?? []).map(s => ({ id: s.id, name: s.name, grants: s.grants, expires: s.expires })),
      conflicts: [...(v?.conflicts ?? [])]
    }
  }

  nameOf (peerId: string): string | undefined {
    return this.roster?.evaluate().devices.get(peerId)?.name
  }

  // -- storage

  private persist (): void {
    const statements = this.all()
    this.write = this.write.then(async () => { await saveRoster(this.d.storage, statements) }).catch((err: unknown) => {
      this.d.log.error('could not store the roster (it is kept in memory and stored with the next change): %s', (err as Error).message)
    })
  }

  /** Resolves when the roster as of now is stored. */
  async flush (): Promise<void> {
    await this.write
  }

  private async load (): Promise<SignedStatement[] | undefined> {
    return await loadRoster(this.d.storage, this.d.log, s => this.verify(s))
  }
}

const ALREADY_USED = 'invite already used by another device'
/** Statements a peer may have refused within a minute before its session is closed. */
const REFUSED_PER_MINUTE = 1000

const blank = (kind: StatementKind, subject: string): Omit<Statement, 'swarm' | 'issuer' | 'at'> =>
  ({ kind, subject, expires: 0, name: '', target: new Uint8Array(0), grants: [] })
