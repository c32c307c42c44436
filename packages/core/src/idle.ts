/**
 * Quiet when idle, after Trickle (RFC 6206): while this node and its peers agree, the gossip
 * interval doubles after every round, up to `cluster.idleMaxMs`, and anti-entropy rounds are
 * skipped; any difference brings both back to their base intervals at once.
 *
 * "Agree" (the `quiet` predicate, judged after each gossip round) means: every connected peer
 * last announced the same digest root as ours for what we share, none is owed an exchange, and
 * every member we know that is not dead is connected to us. The last rule keeps failure detection
 * where it was: a member's heartbeat only matters to members that are not connected to it (for
 * connected ones the connection says whether it is alive), and a node with such a member in view
 * never backs off, so heartbeats keep flowing wherever someone relies on them.
 *
 * The longest interval is `cluster.idleMaxMs`, and at most a quarter of the time after which a
 * silent member is forgotten (10 × `cluster.deadMs`), so a connected member's heartbeat always
 * arrives long before it could be taken for gone; a backed-off round also comes when a silent
 * member is due to be forgotten.
 *
 * Suppression, as in Trickle: while backed off, a node whose peer's gossip round reached it since
 * its own last round skips sending its own (membership.ts; the exchange carried both heartbeats),
 * so an idle pair makes one exchange an interval rather than one per node.
 *
 * Anything that may make nodes disagree resets the backoff at once (`reset()`, wired in node.ts):
 * a document change (local or from a peer), a peer announcing another root, a session opening or
 * closing, gossip bringing entries other than heartbeats (a new member, a new root, metadata),
 * this node's own metadata, a roster change. A reset reschedules a backed-off loop to its base
 * interval, so the first round after a change comes as soon as it would have without backoff.
 */
import { Emitter } from './events.js'

export interface IdleEvents extends Record<string, unknown> {
  /** The backoff was reset: loops waiting longer than their base interval should reschedule. */
  reset: Record<string, never>
}

/** Doublings past which the level stops growing (2^20 × any base is past any useful maximum). */
const MAX_LEVEL = 20

export class IdleBackoff extends Emitter<IdleEvents> {
  private level = 0

  constructor (private readonly d: {
    /** Whether this node and its peers agree now (see above). */
    quiet: () => boolean
    /** Longest interval a backed-off loop waits, in ms; at most its base interval disables backoff. */
    maxMs: () => number
  }) {
    super()
  }

  /** Whether the node is backed off: it found everything quiet after its last gossip round. */
  get idle (): boolean {
    return this.level > 0
  }

  /** The wait before a loop's next round, for a loop whose base interval is `baseMs`. */
  interval (baseMs: number): number {
    if (this.level === 0) return baseMs
    return Math.max(baseMs, Math.min(this.d.maxMs(), baseMs * 2 ** this.level))
  }

  /** A gossip round ended: one more doubling while quiet, back to the base interval otherwise. */
  step (): void {
    if (!this.d.quiet()) {
      this.reset()
      return
    }
    if (this.level < MAX_LEVEL) this.level++
  }

  /** Something may differ: back to base intervals now. */
  reset (): void {
    if (this.level === 0) return
    this.level = 0
    this.emit('reset', {})
  }
}
