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
 */
import { CLUSTER_FORGET_DEAD_MULTIPLE } from './constants.js'
import type { GossipDigestEntry, GossipEntry } from './protocol.js'

export type MemberState = 'alive' | 'suspect' | 'dead'

export interface ClusterSettings {
  maxMessageBytes: number
  suspectMs: number
  deadMs: number
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

  /** `generation`: this run of the node, higher than any earlier run's (e.g. its start time in ms). */
  constructor (readonly selfId: string, private readonly s: ClusterSettings, private readonly now: () => number, generation = 0) {
    this.self = { id: selfId, generation: Math.max(0, Math.floor(generation)), entries: new Map(), version: 0, lastHeard: now(), confirmed: true }
    this.members.set(selfId, this.self)
  }

  /** Write one of our own entries; a new version even when the value is unchanged. */
  set (key: string, value: Uint8Array): void {
    this.self.version++
    this.self.entries.set(key, { value, version: this.self.version })
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

  /** Apply entries from a peer; returns whether we had to start a new generation (entries rewritten). */
  apply (entries: GossipEntry[]): boolean {
    let stale = false
    const now = this.now()
    const firstHeard = new Set<Member>()
    for (const e of entries) {
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
        if (!this.newerThanForgotten(e.nodeId, entries)) continue
        this.forgotten.delete(e.nodeId)
        // not seen rising yet: it may have died long ago
        m = { id: e.nodeId, generation: e.generation, entries: new Map(), version: 0, lastHeard: now - this.s.suspectMs, confirmed: false }
        this.members.set(e.nodeId, m)
        firstHeard.add(m)
      }
      if (e.generation < m.generation) continue
      if (e.generation > m.generation) {
        // the member restarted: its old map is gone
        m.generation = e.generation
        m.entries = new Map()
        m.version = 0
      }
      const have = m.entries.get(e.key)
      if (have === undefined || have.version < e.version) m.entries.set(e.key, { value: e.value, version: e.version })
      if (e.version > m.version) {
        m.version = e.version
        if (!firstHeard.has(m)) {
          m.lastHeard = now
          m.confirmed = true
        }
      }
    }
    if (stale) {
      const current = [...this.self.entries]
      this.self.entries = new Map()
      this.self.version = 0
      for (const [key, e] of current) this.set(key, e.value)
    }
    return stale
  }
  /** Whether `entries` hold state of `id` newer than what we knew when we forgot it (if we did). */
  private newerThanForgotten (id: string, entries: GossipEntry[]): boolean {
    const gone = this.forgotten.get(id)
    if (gone === undefined) return true
    return entries.some(e => e.nodeId === id && (e.generation > gone.generation || (e.generation === gone.generation && e.version > gone.version)))
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
      out.push(m.id)
    }
    return out
  }

  /** A member first heard of through gossip whose versions have not risen since: maybe up, maybe long gone. */
  unconfirmed (id: string): boolean {
    const m = this.members.get(id)
    return m !== undefined && !m.confirmed
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
