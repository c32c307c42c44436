/**
 * Pacing of what this node sends through relays: one token bucket shared by every relayed
 * channel, refilled at `bytesPerSec` up to `burstBytes`. A frame goes as soon as the bucket is
 * not empty (it may take it below zero, so a frame larger than the burst still goes); after that
 * the sender waits until the bucket has refilled past zero. The wait is the channel's
 * backpressure, so the engine's flow control slows down behind it instead of queueing.
 */
export class Pacer {
  private tokens: number
  private at: number

  constructor (
    readonly bytesPerSec: number,
    readonly burstBytes: number,
    private readonly now: () => number
  ) {
    this.tokens = burstBytes
    this.at = now()
  }

  /** Take `bytes` and return 0 when they may go now, else the ms to wait before asking again. */
  take (bytes: number): number {
    if (!Number.isFinite(this.bytesPerSec)) return 0
    const t = this.now()
    this.tokens = Math.min(this.burstBytes, this.tokens + Math.max(0, t - this.at) * this.bytesPerSec / 1000)
    this.at = t
    if (this.tokens > 0) {
      this.tokens -= bytes
      return 0
    }
    return Math.max(1, Math.ceil((1 - this.tokens) * 1000 / this.bytesPerSec))
  }
}
