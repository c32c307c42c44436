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
 * lacks. Answers fit in `maxMessageBytes`: owners with the most outstanding entries go first
 * (scuttle-depth), each owner's entries in version order, and an owner's entries stop at the first
 * one that does not fit, never skipping ahead, so the receiver's digest stays truthful.
 *
 * A restarted node starts its counter at 0 while others still hold its old versions; when it
 * hears of a version of its own above its counter, it moves the counter past it and writes its
 * entries again, so its current values win.
 *
 * Failure detection: a member is `alive` while its versions keep rising (the heartbeat bumps them
 * every gossip interval) or it is connected to us, `suspect` after `suspectMs` without news,
 * `dead` after `deadMs`.
 */
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
  entries: Map<string, Owned>
  /** Highest version known of this member's map. */
  version: number
  /** Local time its version last rose. */
  lastHeard: number
}

/** Bytes an entry takes on the wire, at most. */
export function entrySize (e: GossipEntry): number {
  return e.nodeId.length * 3 + e.key.length * 3 + e.value.length + 3 * 9
}

export class ClusterState {
  private readonly members = new Map<string, Member>()
  private readonly self: Member

  constructor (readonly selfId: string, private readonly s: ClusterSettings, private readonly now: () => number) {
    this.self = { id: selfId, entries: new Map(), version: 0, lastHeard: now() }
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
    return [...this.members.values()].map(m => ({ nodeId: m.id, version: m.version }))
  }

  /** The entries a peer with this digest lacks, at most `maxMessageBytes` (and `budget`) of them. */
  deltasFor (digest: GossipDigestEntry[], budget = Infinity): GossipEntry[] {
    const limit = Math.min(budget, this.s.maxMessageBytes)
    const theirs = new Map(digest.map(d => [d.nodeId, d.version]))
    const outstanding: GossipEntry[][] = []
    for (const m of this.members.values()) {
      const known = theirs.get(m.id) ?? 0
      if (m.version <= known) continue
      const list: GossipEntry[] = []
      for (const [key, e] of m.entries) if (e.version > known) list.push({ nodeId: m.id, key, value: e.value, version: e.version })
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
        if (size + n > limit) break
        out.push(e)
        size += n
      }
    }
    return out
  }

  /** Apply entries from a peer; returns whether our own counter had to move (entries rewritten). */
  apply (entries: GossipEntry[]): boolean {
    let stale = false
    const now = this.now()
    for (const e of entries) {
      if (e.nodeId === this.selfId) {
        // versions of ours from an earlier run: move past them
        if (e.version > this.self.version) {
          this.self.version = e.version
          stale = true
        }
        continue
      }
      let m = this.members.get(e.nodeId)
      if (m === undefined) {
        m = { id: e.nodeId, entries: new Map(), version: 0, lastHeard: now }
        this.members.set(e.nodeId, m)
      }
      const have = m.entries.get(e.key)
      if (have === undefined || have.version < e.version) m.entries.set(e.key, { value: e.value, version: e.version })
      if (e.version > m.version) {
        m.version = e.version
        m.lastHeard = now
      }
    }
    if (stale) for (const [key, e] of [...this.self.entries]) this.set(key, e.value)
    return stale
  }

  /** Failure detector verdict for a member we are not connected to. */
  state (id: string): MemberState {
    const m = this.members.get(id)
    if (m === undefined) return 'dead'
    const quiet = this.now() - m.lastHeard
    return quiet < this.s.suspectMs ? 'alive' : quiet < this.s.deadMs ? 'suspect' : 'dead'
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
}
