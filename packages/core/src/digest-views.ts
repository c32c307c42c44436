/**
 * What one peer and this node share, by the roster: the documents both may read and at least one
 * may write. Each pair compares a digest over exactly that set, so two peers whose grants differ
 * from ours still find each other equal in one small message when nothing changed.
 *
 * A `Scope` is that set's digest tree plus the two directions: `sends` (we may write the document
 * and the peer may read it: a device that may only read does not pass a document on, since no
 * one would take it from it) and `takes` (the peer may write it). Unmanaged, and between two
 * admins, the scope is every document and the node's own tree. Other pairs get a tree of their
 * own, built on first use from the node's tree and kept up to date by watching it; pairs of
 * devices with the same grants share it. Every roster change drops the trees (`invalidate`).
 */
import type { DigestTree } from './digest.js'
import type { Roster } from './roster.js'

export interface Scope {
  readonly tree: DigestTree
  /** Whether this node may send the peer `docId`. */
  sends(docId: string): boolean
  /** Whether this node takes updates to `docId` from the peer. */
  takes(docId: string): boolean
  /** Every document, both ways. */
  readonly whole: boolean
}

interface View { scope: Scope, stop: () => void }

export class DigestViews {
  private readonly views = new Map<string, View>()
  /** The view key each peer was last given a scope under. */
  private readonly keys = new Map<string, string>()
  private readonly whole: Scope

  constructor (private readonly selfId: string, private readonly tree: DigestTree, private readonly roster: () => Roster | undefined) {
    this.whole = { tree, sends: () => true, takes: () => true, whole: true }
  }

  /** Which view a pair falls under: equal keys share one (`whole` for every document). */
  private keyOf (peerId: string): string {
    const r = this.roster()
    if (r === undefined) return 'whole'
    const mine = r.accessKey(this.selfId)
    const theirs = r.accessKey(peerId)
    return mine === 'admin' && theirs === 'admin' ? 'whole' : `${mine}\n${theirs}`
  }

  scope (peerId: string): Scope {
    const key = this.keyOf(peerId)
    this.keys.set(peerId, key)
    if (key === 'whole') return this.whole
    const r = this.roster() as Roster
    let v = this.views.get(key)
    if (v === undefined) {
      const self = this.selfId
      const sends = (d: string): boolean => r.may(self, d, 'write') && r.may(peerId, d, 'read')
      const takes = (d: string): boolean => r.may(peerId, d, 'write') && r.may(self, d, 'read')
      // both may read it and one may write it (every document `sends` or `takes` is among them)
      const shared = (d: string): boolean => r.may(self, d, 'read') && r.may(peerId, d, 'read') && (r.may(self, d, 'write') || r.may(peerId, d, 'write'))
      const tree = this.tree.filtered(shared)
      const stop = this.tree.watch((docId, fp) => {
        if (fp === undefined) tree.delete(docId)
        else if (shared(docId)) tree.set(docId, fp)
      })
      v = { scope: { tree, sends, takes, whole: false }, stop }
      this.views.set(key, v)
    }
    return v.scope
  }

  /** The roster changed: every view is rebuilt on next use. Returns the peers whose scope changed. */
  invalidate (): string[] {
    for (const v of this.views.values()) v.stop()
    this.views.clear()
    return [...this.keys].filter(([peerId, key]) => this.keyOf(peerId) !== key).map(([peerId]) => peerId)
  }

  forget (peerId: string): void {
    this.keys.delete(peerId)
  }

  get size (): number {
    return this.views.size
  }
}
