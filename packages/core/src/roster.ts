/**
 * The roster: a grow-only set of signed statements (statements.ts) and what it means, computed
 * from the set alone so that every device holding the same statements reaches the same verdicts,
 * whatever order they arrived in.
 *
 * Which statements the set takes (`authorises`): those whose issuer is, or ever was, an admin
 * (a chain of admin statements from the genesis's root admin), and claims signed by the key of an
 * invite the set holds, at most `MAX_CLAIMS_PER_INVITE` per invite (the smallest ids, so every
 * device keeps the same ones). "Ever was" keeps the set's growth independent of order; what
 * counts is decided by `evaluate`:
 * - **revoked**: every subject of a revoke statement by anyone who ever was an admin. Revocation
 *   dominates and is final.
 * - **admins**: the root admin and the subjects of admin statements by admins, none revoked. A
 *   revoked admin's statements stop counting, all of them (its clock cannot be trusted to say
 *   which came before).
 * - **withdrawn**: targets of withdraw statements by admins; a withdrawn grant or invite counts no
 *   more.
 * - **grants** of a device: its grant statements by admins, not withdrawn, plus those of the one
 *   invite it claimed. An invite claimed by two devices is a conflict: neither is admitted.
 * - **names**: the latest name statement by an admin (by time, then id), else the invite's name.
 */
import { MAX_CLAIMS_PER_INVITE } from './constants.js'
import { fromHex, toHex } from './bytes.js'
import { StatementKind, covers, type AccessMode, type Grant, type SignedStatement } from './statements.js'

export interface DeviceEntry {
  id: string
  name: string | undefined
  admin: boolean
  revoked: boolean
  grants: Grant[]
}

export interface RosterVerdicts {
  readonly admins: ReadonlySet<string>
  readonly revoked: ReadonlySet<string>
  readonly devices: ReadonlyMap<string, DeviceEntry>
  /** Ids of invites claimed by more than one device (none of them admitted). */
  readonly conflicts: readonly string[]
  /** Ids of invites that count and are not claimed yet. */
  readonly openInvites: readonly SignedStatement[]
}

export class Roster {
  readonly swarm: string
  readonly root: string
  private readonly byId = new Map<string, SignedStatement>()
  private readonly hashBytes = new Uint8Array(16)
  private verdicts: RosterVerdicts | undefined
  /** `accessKey` per device, until the set changes (it is asked on every frame sent). */
  private readonly keys = new Map<string, string>()

  constructor (readonly genesis: SignedStatement) {
    this.swarm = genesis.swarm
    this.root = genesis.issuer
    this.insert(genesis)
  }

  get size (): number { return this.byId.size }
  /** XOR of every statement id: equal sets have equal hashes. */
  get hash (): Uint8Array { return this.hashBytes.slice() }
  has (id: string): boolean { return this.byId.has(id) }
  get (id: string): SignedStatement | undefined { return this.byId.get(id) }
  statements (): SignedStatement[] { return [...this.byId.values()] }

  /**
   * Why the set would not take `s` (signature already checked), given the statements it holds and
   * `pending` ones arriving with it; undefined when it would.
   */
  authorises (s: SignedStatement, pending: ReadonlyMap<string, SignedStatement> = new Map(), ever = this.everAdmins(pending)): string | undefined {
    if (s.swarm !== this.swarm) return `statement of another swarm (${s.swarm})`
    if (s.kind === StatementKind.Genesis) return s.id === this.genesis.id ? undefined : 'a second genesis'
    if (s.kind !== StatementKind.Claim) return ever.has(s.issuer) ? undefined : `${s.issuer} is not an admin`
    const invite = this.byId.get(toHex(s.target)) ?? pending.get(toHex(s.target))
    if (invite === undefined || invite.kind !== StatementKind.Invite) return 'claim of an unknown invite'
    if (invite.subject !== s.issuer) return 'claim not signed by the invite\'s key'
    if (invite.expires !== 0 && s.at > invite.expires) return 'claim made after the invite expired'
    return undefined
  }

  /** Everyone who is or ever was an admin, by the statements held and `pending` ones. */
  everAdmins (pending: ReadonlyMap<string, SignedStatement> = new Map()): Set<string> {
    return everAdmins(this.root, [...this.byId.values(), ...pending.values()])
  }

  /** Add a statement `authorises` accepted; returns the id it displaced (claims only), if any. */
  insert (s: SignedStatement): { added: boolean, dropped?: string } {
    if (this.byId.has(s.id)) return { added: false }
    let dropped: string | undefined
    if (s.kind === StatementKind.Claim) {
      const target = toHex(s.target)
      const claims = this.claimsOf(target)
      if (claims.length >= MAX_CLAIMS_PER_INVITE) {
        const largest = claims.reduce((a, b) => (a.id > b.id ? a : b))
        if (largest.id < s.id) return { added: false }
        this.remove(largest.id)
        dropped = largest.id
      }
    }
    this.byId.set(s.id, s)
    xorHex(this.hashBytes, s.id)
    this.changed()
    return { added: true, dropped }
  }

  private remove (id: string): void {
    if (!this.byId.delete(id)) return
    xorHex(this.hashBytes, id)
    this.changed()
  }

  private changed (): void {
    this.verdicts = undefined
    this.keys.clear()
  }

  claimsOf (inviteId: string): SignedStatement[] {
    return [...this.byId.values()].filter(c => c.kind === StatementKind.Claim && toHex(c.target) === inviteId)
  }

  /** What the set means now (cached until it changes). */
  evaluate (): RosterVerdicts {
    this.verdicts ??= evaluate(this.root, [...this.byId.values()])
    return this.verdicts
  }

  /** Whether `peerId` may read or write `docId` by this roster. */
  may (peerId: string, docId: string, mode: AccessMode): boolean {
    const v = this.evaluate()
    if (v.revoked.has(peerId)) return false
    if (v.admins.has(peerId)) return true
    const grants = v.devices.get(peerId)?.grants ?? []
    return grants.some(g => covers(g.pattern, docId) && (mode === 'read' || g.mode === 'write'))
  }

  /**
   * A key equal for two devices exactly when they may do the same: `admin`, `revoked`, or their
   * grants in a canonical order.
   */
  accessKey (peerId: string): string {
    let key = this.keys.get(peerId)
    if (key === undefined) {
      key = this.computeKey(peerId)
      if (this.keys.size >= 4096) this.keys.clear()
      this.keys.set(peerId, key)
    }
    return key
  }

  private computeKey (peerId: string): string {
    const v = this.evaluate()
    if (v.revoked.has(peerId)) return 'revoked'
    if (v.admins.has(peerId)) return 'admin'
    const grants = (v.devices.get(peerId)?.grants ?? []).map(g => `${g.mode}:${g.pattern}`)
    return JSON.stringify([...new Set(grants)].sort())
  }
}

function everAdmins (root: string, all: SignedStatement[]): Set<string> {
  return closure(new Set([root]), all.filter(s => s.kind === StatementKind.Admin))
}

/** Grow `admins` by admin statements issued by members of it until nothing changes. */
function closure (admins: Set<string>, adminStatements: SignedStatement[], excluded: ReadonlySet<string> = new Set()): Set<string> {
  for (let grew = true; grew;) {
    grew = false
    for (const s of adminStatements) {
      if (admins.has(s.issuer) && !admins.has(s.subject) && !excluded.has(s.subject)) {
        admins.add(s.subject)
        grew = true
      }
    }
  }
  return admins
}

function evaluate (root: string, all: SignedStatement[]): RosterVerdicts {
  const ever = everAdmins(root, all)
  const revoked = new Set(all.filter(s => s.kind === StatementKind.Revoke && ever.has(s.issuer)).map(s => s.subject))
  const admins = revoked.has(root) ? new Set<string>() : closure(new Set([root]), all.filter(s => s.kind === StatementKind.Admin), revoked)
  const counted = all.filter(s => s.kind !== StatementKind.Claim && s.kind !== StatementKind.Genesis && admins.has(s.issuer))
  const withdrawn = new Set(counted.filter(s => s.kind === StatementKind.Withdraw).map(s => toHex(s.target)))
  const devices = new Map<string, DeviceEntry>()
  const names = new Map<string, { at: number, id: string, name: string }>()
  const device = (id: string): DeviceEntry => {
    let d = devices.get(id)
    if (d === undefined) {
      d = { id, name: undefined, admin: admins.has(id), revoked: revoked.has(id), grants: [] }
      devices.set(id, d)
    }
    return d
  }
  const nameIt = (id: string, name: string, at: number, sid: string): void => {
    const n = names.get(id)
    if (n === undefined || at > n.at || (at === n.at && sid > n.id)) names.set(id, { at, id: sid, name })
  }
  device(root)
  for (const a of admins) device(a)
  for (const r of revoked) device(r)
  const conflicts: string[] = []
  const openInvites: SignedStatement[] = []
  const claimsByInvite = new Map<string, SignedStatement[]>()
  for (const c of all) {
    if (c.kind !== StatementKind.Claim) continue
    const t = toHex(c.target)
    claimsByInvite.set(t, [...(claimsByInvite.get(t) ?? []), c])
  }
  for (const s of counted) {
    if (withdrawn.has(s.id)) continue
    if (s.kind === StatementKind.Grant) device(s.subject).grants.push(...s.grants)
    else if (s.kind === StatementKind.Name) nameIt(device(s.subject).id, s.name, s.at, s.id)
    else if (s.kind === StatementKind.Invite) {
      const claims = (claimsByInvite.get(s.id) ?? []).filter(c => c.issuer === s.subject && (s.expires === 0 || c.at <= s.expires))
      const claimants = new Set(claims.map(c => c.subject))
      if (claimants.size === 0) openInvites.push(s)
      else if (claimants.size > 1) conflicts.push(s.id)
      else {
        const d = device([...claimants][0] as string)
        d.grants.push(...s.grants)
        if (s.name !== '') nameIt(d.id, s.name, s.at, s.id)
      }
    }
  }
  for (const [id, n] of names) device(id).name = n.name
  return { admins, revoked, devices, conflicts, openInvites }
}

function xorHex (target: Uint8Array, hex: string): void {
  const bytes = fromHex(hex)
  for (let i = 0; i < 16; i++) target[i] = (target[i] as number) ^ (bytes[i] as number)
}
