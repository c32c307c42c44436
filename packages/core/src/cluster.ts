/**
 * Cluster state by Scuttlebutt reconciliation (van Renesse et al. 2008), with a timeout-based
 * failure detector.
 *
 * Every node owns a small map key → (value, version) that only it writes: a heartbeat, its
 * collection digest root and document count, and whatever the application sets with
 * `node.setMeta`. Versions come from one counter per owner, so "owner r at version v" names a
 * whole state of r's map. Everybody keeps a copy of everybody's map.
 *
 * Reconciliation with a peer: A sends its digest {owner → highest version known}; B answers with
 * exactly the entries A lacks (version above A's) and its own digest; A answers with the entries B
 * lacks. Answers fit in `maxMessageBytes` (an entry larger than that goes alone): owners with the most outstanding entries go first
 * (scuttle-depth), each owner's entries in version order, and an owner's entries stop at the first
 * one that does not fit, never skipping ahead, so the receiver's digest stays truthful.
 *
 * Each run of a node is a new *generation* of its map (its start time in ms, as Cassandra does),
 * carried with every digest entry and every entry. Versions count within a generation. A
 * restarted node thus starts a new map: a peer that holds an older generation of it gets every
 * current entry of the new one and drops the whole old map (keys the node no longer sets
 * included), and entries of an older generation are ignored wherever they still travel. A node
 * that hears of its own generation at or above its current one (a clock that went back, two runs
 * within a millisecond) moves its generation past it and writes its entries again.
 *
 * Failure detection: a member is `alive` while its versions keep rising (the heartbeat bumps them
 * every gossip interval) or it is connected to us, `suspect` after `suspectMs` without news,
 * `dead` after `deadMs`. A member first heard of through gossip has not been seen rising yet: it
 * starts as `suspect` (as if last heard `suspectMs` ago), so one that died long ago does not pass
 * for alive, and turns `alive` when its versions rise. A member silent for
 * `CLUSTER_FORGET_DEAD_MULTIPLE` × `deadMs` is forgotten; what we last knew of it is remembered for
 * as long again, so a peer that has not forgotten it yet cannot bring it back: only newer state
 * (a higher version or generation) does.
 *
 * Trust: any member may send entries about any other, so an entry is stored (and hence relayed)
 * only if it passes what a receiver can check on its own. An entry is dropped, and counted, when
 * - its key is empty or longer than `MAX_GOSSIP_KEY_BYTES`, or its value is longer than
 *   `CLUSTER_MAX_VALUE_BYTES` (the limits `setMeta` applies), or a reserved key holds a value of
 *   the wrong shape (`hearsay/hb`, `hearsay/docs`, `hearsay/bytes`: a decimal number of at most
 *   15 digits; `hearsay/root`: 16 bytes);
 * - it is about another member than the sender (a member is the authority on its own map, so
 *   these two rules judge only what it says of others) and its generation (a start time in ms) is
 *   more than `CLUSTER_MAX_CLOCK_SKEW_MS` (1 day) ahead of our clock, or its version is above
 *   what its owner could have counted since that generation began, at
 *   `CLUSTER_MAX_VERSIONS_PER_MS` (1 per ms) plus `CLUSTER_VERSION_BURST` (100,000), allowing for
 *   the same clock skew, or, for a member whose current generation we already follow, above our
 *   highest known version of it plus as many as it could have counted since that version rose.
 *   A node whose clock is more than a day behind its peers' thus still hears each peer's own
 *   state, but drops what is relayed about members it is not connected to;
 * - it would add a member past `maxMembers` (`CLUSTER_MAX_MEMBERS`, 2048, ourselves included), a
 *   key past `CLUSTER_MAX_KEYS_PER_MEMBER` (32) to a member's map, or take a member's map past
 *   `CLUSTER_MAX_MEMBER_BYTES` (8 KiB of keys and values).
 * Dropped entries are never stored, so they never travel further. Numbers are bounded on decode
 * already (protocol.ts: versions and generations at most 2^48), so no arithmetic here can leave
 * the safe integers. What these rules cannot check: a member may still lie about another one within
 * the bounds (a plausible but false value); the owner, hearing its own map at a version it never
 * counted, moves to a new generation and rewrites its entries, which replaces the lie everywhere.
 */
import {
  CLUSTER_FORGET_DEAD_MULTIPLE, CLUSTER_MAX_CLOCK_SKEW_MS, CLUSTER_MAX_KEYS_PER_MEMBER, CLUSTER_MAX_MEMBER_BYTES, CLUSTER_MAX_MEMBERS,
  CLUSTER_MAX_VALUE_BYTES, CLUSTER_MAX_VERSIONS_PER_MS, CLUSTER_VERSION_BURST, MAX_WIRE_COUNTER
} from './constants.js'
import { utf8Length } from './bytes.js'
import { MAX_GOSSIP_KEY_BYTES, type GossipDigestEntry, type GossipEntry } from './protocol.js'

export type MemberState = 'alive' | 'suspect' | 'dead'

export interface ClusterSettings {
  maxMessageBytes: number
  suspectMs: number
  deadMs: number
  /** Most members held, ourselves included. @default CLUSTER_MAX_MEMBERS (2048) */
  maxMembers?: number
}

interface Owned { value: Uint8Array, version: number }

interface Member {
  id: string
  /** The run of the member whose map we hold. */
  generation: number
  entries: Map<string, Owned>
  /** Highest version known of this generation of the member's map. */
  version: number
  /** Local time its version last rose. */
  lastHeard: number
  /** Its version has risen since we first heard of it: `lastHeard` is real. */
  confirmed: boolean
  /** Bytes of keys and values in `entries`. */
  bytes: number
}

/** Reserved keys whose values are decimal numbers. */
const NUMERIC_KEYS = new Set(['hearsay/hb', 'hearsay/docs', 'hearsay/bytes'])
const DECIMAL = /^[0-9]{1,15}$/
const latin1 = new TextDecoder('latin1')

/** Bytes a key and value take in a member's map, as counted against `CLUSTER_MAX_MEMBER_BYTES`. */
function ownedSize (key: string, value: Uint8Array): number {
  return utf8Length(key) + value.length
}

/**
 * Why an entry cannot be true whatever we hold (see the header), or undefined when it may be.
 * `now` is our clock in ms. `own`: the entry is about the member that sent it, the authority on its
 * own map, so our clock does not judge it (a node whose clock is behind still hears its peers).
 */
export function implausible (e: GossipEntry, now: number, own = false): string | undefined {
  if (!Number.isSafeInteger(e.generation) || e.generation < 0 || e.generation > MAX_WIRE_COUNTER) return 'generation out of range'
  if (!Number.isSafeInteger(e.version) || e.version < 1 || e.version > MAX_WIRE_COUNTER) return 'version out of range'
  if (e.key.length === 0 || utf8Length(e.key) > MAX_GOSSIP_KEY_BYTES) return 'key empty or too long'
  if (e.value.length > CLUSTER_MAX_VALUE_BYTES) return 'value too large'
  if (NUMERIC_KEYS.has(e.key) && !DECIMAL.test(latin1.decode(e.value))) return `malformed ${e.key}`
  if (e.key === 'hearsay/root' && e.value.length !== 16) return 'malformed hearsay/root'
  if (own) return undefined
  if (e.generation > now + CLUSTER_MAX_CLOCK_SKEW_MS) return 'generation ahead of our clock'
  if (e.version > CLUSTER_VERSION_BURST + Math.max(0, now + CLUSTER_MAX_CLOCK_SKEW_MS - e.generation) * CLUSTER_MAX_VERSIONS_PER_MS) return 'version beyond what its owner could have counted'
  return undefined
}

/** Bytes an entry takes on the wire, at most. */
export function entrySize (e: GossipEntry): number {
  return e.nodeId.length * 3 + e.key.length * 3 + e.value.length + 4 * 9
}

/** What we knew of a forgotten member, and when we forgot it. */
interface Forgotten { generation: number, version: number, at: number }

export class ClusterState {
  private readonly members = new Map<string, Member>()
  private readonly forgotten = new Map<string, Forgotten>()
  private readonly self: Member
  /** Entries dropped by the trust rules since `takeRejections`, by reason. */
  private rejections = new Map<string, number>()

  /** `generation`: this run of the node, higher than any earlier run's (e.g. its start time in ms). */
  constructor (readonly selfId: string, private readonly s: ClusterSettings, private readonly now: () => number, generation = 0) {
    this.self = { id: selfId, generation: Math.max(0, Math.floor(generation)), entries: new Map(), version: 0, lastHeard: now(), confirmed: true, bytes: 0 }
    this.members.set(selfId, this.self)
  }

  private get maxMembers (): number {
    return this.s.maxMembers ?? CLUSTER_MAX_MEMBERS
  }

  /** Write one of our own entries; a new version even when the value is unchanged. */
  set (key: string, value: Uint8Array): void {
    this.self.version++
    this.put(this.self, key, { value, version: this.self.version })
  }

  /** Why our own map cannot take this entry (peers would drop it), or undefined when it can. */
  refuses (key: string, value: Uint8Array): string | undefined {
    const have = this.self.entries.get(key)
    if (have === undefined && this.self.entries.size >= CLUSTER_MAX_KEYS_PER_MEMBER) return `at most ${CLUSTER_MAX_KEYS_PER_MEMBER} keys per member`
    const bytes = this.self.bytes - (have === undefined ? 0 : ownedSize(key, have.value)) + ownedSize(key, value)
    if (bytes > CLUSTER_MAX_MEMBER_BYTES) return `at most ${CLUSTER_MAX_MEMBER_BYTES} bytes of keys and values per member`
    return undefined
  }

  private put (m: Member, key: string, e: Owned): void {
    const have = m.entries.get(key)
    if (have !== undefined) m.bytes -= ownedSize(key, have.value)
    m.entries.set(key, e)
    m.bytes += ownedSize(key, e.value)
  }

  private reject (reason: string): void {
    this.rejections.set(reason, (this.rejections.get(reason) ?? 0) + 1)
  }

  /** Entries dropped by the trust rules since the last call, by reason (and forgets them). */
  takeRejections (): Map<string, number> {
    const out = this.rejections
    this.rejections = new Map()
    return out
  }

  get (owner: string, key: string): Uint8Array | undefined {
    return this.members.get(owner)?.entries.get(key)?.value
  }

  digest (): GossipDigestEntry[] {
    return [...this.members.values()].map(m => ({ nodeId: m.id, generation: m.generation, version: m.version }))
  }

  /**
   * The entries a peer with this digest lacks, at most `maxMessageBytes` (and `budget`) of them;
   * at least one, when it fits `budget`, even if it is larger than `maxMessageBytes`.
   * A peer that holds an older generation of a member lacks all of its current entries; one that
   * holds a newer generation lacks nothing we have.
   */
  deltasFor (digest: GossipDigestEntry[], budget = Infinity): GossipEntry[] {
    const limit = Math.min(budget, this.s.maxMessageBytes)
    const theirs = new Map(digest.map(d => [d.nodeId, d]))
    const outstanding: GossipEntry[][] = []
    for (const m of this.members.values()) {
      const t = theirs.get(m.id)
      if (t !== undefined && t.generation > m.generation) continue
      const known = t === undefined || t.generation < m.generation ? 0 : t.version
      if (m.version <= known) continue
      const list: GossipEntry[] = []
      for (const [key, e] of m.entries) if (e.version > known) list.push({ nodeId: m.id, generation: m.generation, key, value: e.value, version: e.version })
      list.sort((a, b) => a.version - b.version)
      outstanding.push(list)
    }
    // scuttle-depth: the owners the peer is furthest behind on first
    outstanding.sort((a, b) => b.length - a.length || ((a[0] as GossipEntry).nodeId < (b[0] as GossipEntry).nodeId ? -1 : 1))
    const out: GossipEntry[] = []
    let size = 0
    for (const list of outstanding) {
      for (const e of list) {
        const n = entrySize(e)
        // an entry larger than the limit goes alone, or its owner would never get past it
        if (size + n > limit && (out.length > 0 || n > budget)) break
        out.push(e)
        size += n
      }
    }
    return out
  }

  /**
   * Apply entries from a peer; returns whether we had to start a new generation (entries
   * rewritten). Entries the trust rules refuse (see the header) are dropped and counted in
   * `takeRejections()`. `from`: the member that sent them (its own entries are not judged by our clock).
   */
  apply (entries: GossipEntry[], from?: string): boolean {
    let stale = false
    const now = this.now()
    const firstHeard = new Set<Member>()
    const revived = this.revived(entries)
    for (const e of entries) {
      const own = e.nodeId === from
      const why = implausible(e, now, own)
      if (why !== undefined) {
        this.reject(why)
        continue
      }
      if (e.nodeId === this.selfId) {
        // a run of ours we do not know: an earlier one that counted further, or a later clock
        if (e.generation > this.self.generation || (e.generation === this.self.generation && e.version > this.self.version)) {
          this.self.generation = e.generation + 1
          stale = true
        }
        continue
      }
      let m = this.members.get(e.nodeId)
      if (m === undefined) {
        if (this.forgotten.has(e.nodeId) && !revived.has(e.nodeId)) continue
        if (this.members.size >= this.maxMembers) {
          this.reject('too many members')
          continue
        }
        this.forgotten.delete(e.nodeId)
        // not seen rising yet: it may have died long ago
        m = { id: e.nodeId, generation: e.generation, entries: new Map(), version: 0, lastHeard: now - this.s.suspectMs, confirmed: false, bytes: 0 }
        this.members.set(e.nodeId, m)
        firstHeard.add(m)
      }
      if (e.generation < m.generation) continue
      if (!own && e.generation === m.generation && m.version > 0 && !firstHeard.has(m) &&
          e.version > m.version + CLUSTER_VERSION_BURST + Math.max(0, now - m.lastHeard) * CLUSTER_MAX_VERSIONS_PER_MS) {
        this.reject('version jumped further than its owner could have counted')
        continue
      }
      if (e.generation > m.generation) {
        // the member restarted: its old map is gone
        m.generation = e.generation
        m.entries = new Map()
        m.bytes = 0
        m.version = 0
      }
      const have = m.entries.get(e.key)
      if (have === undefined || have.version < e.version) {
        if (have === undefined && m.entries.size >= CLUSTER_MAX_KEYS_PER_MEMBER) {
          this.reject('too many keys for one member')
          continue
        }
        if (m.bytes - (have === undefined ? 0 : ownedSize(e.key, have.value)) + ownedSize(e.key, e.value) > CLUSTER_MAX_MEMBER_BYTES) {
          this.reject('member state too large')
          continue
        }
        this.put(m, e.key, { value: e.value, version: e.version })
      }
      if (e.version > m.version) {
        m.version = e.version
        if (!firstHeard.has(m)) {
          m.lastHeard = now
          m.confirmed = true
        }
      }
    }
    // a member first heard of whose every entry was dropped is not kept
    for (const m of firstHeard) if (m.entries.size === 0) this.members.delete(m.id)
    if (stale) {
      const current = [...this.self.entries]
      this.self.entries = new Map()
      this.self.bytes = 0
      this.self.version = 0
      for (const [key, e] of current) this.set(key, e.value)
    }
    return stale
  }

  /** Forgotten members that `entries` hold newer state of than what we knew when we forgot them. */
  private revived (entries: GossipEntry[]): Set<string> {
    const out = new Set<string>()
    if (this.forgotten.size === 0) return out
    for (const e of entries) {
      const gone = this.forgotten.get(e.nodeId)
      if (gone !== undefined && (e.generation > gone.generation || (e.generation === gone.generation && e.version > gone.version))) out.add(e.nodeId)
    }
    return out
  }

  /** Failure detector verdict for a member we are not connected to. */
  state (id: string): MemberState {
    const m = this.members.get(id)
    if (m === undefined) return 'dead'
    const quiet = this.now() - m.lastHeard
    return quiet < this.s.suspectMs ? 'alive' : quiet < this.s.deadMs ? 'suspect' : 'dead'
  }

  /**
   * Forget members silent for `CLUSTER_FORGET_DEAD_MULTIPLE` × `deadMs`; returns their ids.
   * What we knew of them is kept as long again, so stale copies from peers are refused.
   */
  forget (): string[] {
    const now = this.now()
    const after = this.s.deadMs * CLUSTER_FORGET_DEAD_MULTIPLE
    for (const [id, f] of this.forgotten) if (now - f.at >= after) this.forgotten.delete(id)
    const out: string[] = []
    for (const m of this.members.values()) {
      if (m === this.self || now - m.lastHeard < after) continue
      this.members.delete(m.id)
      this.forgotten.set(m.id, { generation: m.generation, version: m.version, at: now })
      // bounded like members: the oldest memory goes first
      if (this.forgotten.size > this.maxMembers) this.forgotten.delete(this.forgotten.keys().next().value as string)
      out.push(m.id)
    }
    return out
  }

  /** A member first heard of through gossip whose versions have not risen since: maybe up, maybe long gone. */
  unconfirmed (id: string): boolean {
    const m = this.members.get(id)
    return m !== undefined && !m.confirmed
  }

  /** When the next member falls silent long enough to be forgotten (`forget()`), if any is due. */
  nextForgetAt (): number | undefined {
    let next: number | undefined
    for (const m of this.members.values()) {
      if (m === this.self) continue
      const at = m.lastHeard + this.s.deadMs * CLUSTER_FORGET_DEAD_MULTIPLE
      if (next === undefined || at < next) next = at
    }
    return next
  }

  lastHeard (id: string): number | undefined {
    return this.members.get(id)?.lastHeard
  }

  /** Every other member we know of. */
  others (): string[] {
    return [...this.members.keys()].filter(id => id !== this.selfId)
  }

  entries (id: string): Map<string, Uint8Array> {
    const m = this.members.get(id)
    return new Map([...(m?.entries ?? [])].map(([k, e]) => [k, e.value]))
  }

  /** Highest version of our own map. */
  get version (): number {
    return this.self.version
  }

  /** This run of our own map. */
  get generation (): number {
    return this.self.generation
  }
}
