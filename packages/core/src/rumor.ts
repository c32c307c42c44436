/**
 * Rumor mongering for nodes that are not connected to everybody.
 *
 * Direct mail reaches only the peers a node is connected to. When some recently seen peer is not
 * connected (a partial mesh, a device that can reach only a gateway), a fresh local update goes
 * out as a rumor instead: to `fanout` random connected peers, each of which applies it and, on its
 * first receipt only, passes it on to `fanout` random connected peers of its own (never back to
 * the sender), one hop further. A rumor stops spreading at a node that has already seen it
 * (a bounded set of update ids) or after `maxHops` hops. Like any rumor mongering it can leave a
 * few nodes out; anti-entropy repairs them.
 *
 * An update's id is the first 8 bytes of SHA-256 over its document id and bytes: rumors are
 * forwarded byte for byte, so every node computes the same id.
 */
import { digest } from 'lib0/hash/sha256'
import { toHex } from './bytes.js'
import type { LiveEntry } from './protocol.js'
import type { Random } from './random.js'

export type PropagationMode = 'auto' | 'direct' | 'rumor'

export interface RumorSettings {
  fanout: number
  maxHops: number
  seenIds: number
}

const encoder = new TextEncoder()

export function updateId (e: LiveEntry): string {
  const id = encoder.encode(e.docId)
  const buf = new Uint8Array(id.length + 1 + e.update.length)
  buf.set(id)
  buf.set(e.update, id.length + 1)
  return toHex(digest(buf).subarray(0, 8))
}

export class RumorMill {
  /** Ids of updates seen, oldest first (a Set keeps insertion order). */
  private readonly seen = new Set<string>()

  constructor (private readonly s: RumorSettings, private readonly rng: Random) {}

  /** Record the entries as seen; returns those not seen before. */
  fresh (entries: LiveEntry[]): LiveEntry[] {
    const out: LiveEntry[] = []
    for (const e of entries) {
      const id = updateId(e)
      if (this.seen.has(id)) continue
      this.seen.add(id)
      out.push(e)
    }
    while (this.seen.size > this.s.seenIds) {
      const oldest = this.seen.values().next().value as string
      this.seen.delete(oldest)
    }
    return out
  }

  /** Whether a rumor that arrived after `hops` hops may be passed on. */
  forwards (hops: number): boolean {
    return hops < this.s.maxHops
  }

  /** `fanout` distinct random peers among `candidates`. */
  targets<T> (candidates: T[]): T[] {
    return this.rng.shuffle(candidates).slice(0, this.s.fanout)
  }

  get seenCount (): number {
    return this.seen.size
  }
}
