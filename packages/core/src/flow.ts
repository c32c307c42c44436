/**
 * Flow control of direct mail, per peer, so a fast writer cannot drown a slow peer.
 *
 * The window bounds the channel's backlog: bytes handed to the transport that it has not yet
 * taken (a full TCP send buffer, a slow stream). Live frames go out at once while the backlog is
 * below the peer's window. Past it, updates wait in the peer's outbox, merged per document, so a
 * burst of small edits to one document reaches a slow peer as few updates; the outbox is sent
 * whenever the backlog drains below the window again.
 *
 * The window adapts AIMD-style to how long frames wait: a frame the transport took more than
 * `targetDelayMs` to accept halves the window (at most once per `targetDelayMs`, down to
 * `minWindow`); frames accepted sooner grow it by `increase` bytes per window's worth drained (up
 * to `maxWindow`). A slow peer thus gets about what its link carries in `targetDelayMs`, and a
 * fast one a large window. The outbox is bounded too: past `outboxBytes`, even after merging, it
 * is dropped and an anti-entropy exchange repairs the peer instead (it sends each document's diff
 * once, straight from the document).
 *
 * Anti-entropy replies to the peer wait while the backlog is past the window too (a frame at a
 * time, so one document's diff may overshoot it). Rumors are not held: they are shed when the
 * channel is backed up past `sendQueueBytes`, and anti-entropy repairs.
 */
import * as Y from 'yjs'
import type { LiveEntry } from './protocol.js'

export interface FlowSettings {
  targetDelayMs: number
  initialWindow: number
  minWindow: number
  maxWindow: number
  increase: number
  outboxBytes: number
}

export class PeerFlow {
  window: number
  private outbox = new Map<string, Uint8Array[]>()
  bytes = 0
  /** When the window was last cut. */
  private lastCut = -Infinity
  /** Outbox size after the last merge; merge again when it doubles. */
  private compacted = 0

  constructor (private readonly s: FlowSettings) {
    this.window = s.initialWindow
  }

  get holding (): boolean {
    return this.outbox.size > 0
  }

  /** Whether a live frame may go now, given the channel backlog. Nothing overtakes the outbox. */
  admits (backlog: number): boolean {
    return !this.holding && backlog < this.window
  }

  /**
   * The transport took a frame of `bytes` after `delayMs`: cut the window if it waited too long,
   * grow it otherwise. Returns whether the window was cut.
   */
  drained (bytes: number, delayMs: number, now: number): boolean {
    if (delayMs > this.s.targetDelayMs) {
      if (now - this.lastCut < this.s.targetDelayMs || this.window === this.s.minWindow) return false
      this.window = Math.max(this.s.minWindow, Math.floor(this.window / 2))
      this.lastCut = now
      return true
    }
    this.window = Math.min(this.s.maxWindow, this.window + Math.ceil(this.s.increase * bytes / this.window))
    return false
  }

  /** Bring the window back within `minWindow`..`maxWindow` after the settings changed. */
  clamp (): void {
    this.window = Math.min(this.s.maxWindow, Math.max(this.s.minWindow, this.window))
  }

  /** Keep entries for later; false when the outbox overflowed and was dropped (repair instead). */
  hold (entries: LiveEntry[]): boolean {
    for (const e of entries) {
      const list = this.outbox.get(e.docId)
      if (list === undefined) this.outbox.set(e.docId, [e.update])
      else list.push(e.update)
      this.bytes += e.update.length + e.docId.length
    }
    if (this.bytes > Math.max(64 * 1024, 2 * this.compacted) || this.bytes > this.s.outboxBytes) this.compact()
    if (this.bytes > this.s.outboxBytes) {
      this.clear()
      return false
    }
    return true
  }

  /** Everything held, one merged update per document. */
  take (): LiveEntry[] {
    const out: LiveEntry[] = []
    for (const [docId, updates] of this.outbox) out.push({ docId, update: updates.length === 1 ? updates[0] as Uint8Array : Y.mergeUpdates(updates) })
    this.clear()
    return out
  }

  clear (): void {
    this.outbox = new Map()
    this.bytes = 0
    this.compacted = 0
  }

  private compact (): void {
    const merged = this.take()
    for (const e of merged) {
      this.outbox.set(e.docId, [e.update])
      this.bytes += e.update.length + e.docId.length
    }
    this.compacted = this.bytes
  }
}
