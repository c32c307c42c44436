/**
 * Liveness of the connections that carry Hearsay channels, in place of libp2p's connection
 * monitor, which pings every connection every 10 s whatever it carries (a new stream each time:
 * about 2 KB on the wire per ping, the largest cost of an idle pair by far).
 *
 * A channel is probed only when it has been silent for longer than usual: longer than three times
 * the longest gap between its last arrivals, at least `minSilenceMs` (`pingIntervalMs`, 10 s) and
 * at most `LIVENESS_MAX_SILENCE_MS` (150 s). A busy channel (gossip every second) is thus probed
 * after about 10 s of silence, as before, and an idle one, whose peer gossips about once a minute
 * (idle.ts in the engine), after 150 s, which it never reaches while the peer is alive. The probe
 * is the standard libp2p ping on the channel's own connection; no answer within
 * `LIVENESS_PING_TIMEOUT_MS` closes that connection, and the dialler redials.
 *
 * Dead links are found within the silence threshold + `LIVENESS_CHECK_MS` + the ping timeout:
 * about 25 s on a busy channel, under 3 minutes on an idle one.
 */
import type { Log, Timers } from '@hearsay/core'
import type { Connection } from '@libp2p/interface'
import { byteStream } from '@libp2p/utils'
import { LIVENESS_CHECK_MS, LIVENESS_MAX_SILENCE_MS, LIVENESS_PING_TIMEOUT_MS } from './constants.js'
import { describeError } from './errors.js'
import { timeoutSignal } from './signals.js'

/** What liveness reads of a channel. */
export interface Audible {
  readonly remoteId: string
  readonly connection: Connection
  /** When the channel last received anything. */
  readonly lastReceived: number
  /** The longest gap between its recent arrivals, in ms. */
  readonly recentMaxGap: number
}

export interface LivenessInit {
  channels: () => Audible[]
  timers: Timers
  log: Log
  /** Shortest silence before a probe, in ms. */
  minSilenceMs: number
}

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_BYTES = 32

/** One libp2p ping on this connection; resolves with the round trip in ms. */
export async function pingConnection (conn: Connection, signal: AbortSignal, now: () => number): Promise<number> {
  const stream = await conn.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
  try {
    const bs = byteStream(stream)
    const data = crypto.getRandomValues(new Uint8Array(PING_BYTES))
    const t0 = now()
    const [, echo] = await Promise.all([bs.write(data, { signal }), bs.read({ bytes: PING_BYTES, signal })])
    const got = echo.subarray()
    if (got.length !== PING_BYTES || got.some((b, i) => b !== data[i])) throw new Error('ping answer differs from what was sent')
    await stream.close({ signal })
    return now() - t0
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

export class Liveness {
  private timer: unknown
  private running = false
  /** Channels with a probe under way, and when each was last proven alive by one. */
  private readonly probing = new WeakSet<Connection>()
  private readonly proven = new WeakMap<Connection, number>()

  constructor (private readonly init: LivenessInit) {}

  start (): void {
    if (this.running) return
    this.running = true
    this.schedule()
  }

  stop (): void {
    this.running = false
    this.init.timers.clearTimeout(this.timer)
    this.timer = undefined
  }

  /** How long this channel may stay silent before it is probed. */
  threshold (ch: Audible): number {
    return Math.min(LIVENESS_MAX_SILENCE_MS, Math.max(this.init.minSilenceMs, 3 * ch.recentMaxGap))
  }

  /** Probe every channel silent for longer than its threshold. */
  check (): void {
    const now = this.init.timers.now()
    for (const ch of this.init.channels()) {
      const conn = ch.connection
      if (conn.status !== 'open' || this.probing.has(conn)) continue
      const heard = Math.max(ch.lastReceived, this.proven.get(conn) ?? 0)
      if (now - heard <= this.threshold(ch)) continue
      this.probing.add(conn)
      const signal = timeoutSignal(this.init.timers, LIVENESS_PING_TIMEOUT_MS)
      pingConnection(conn, signal, this.init.timers.now).then(rtt => {
        this.proven.set(conn, this.init.timers.now())
        this.init.log.trace(`${ch.remoteId} silent for ${now - heard} ms answered a ping in ${rtt} ms`)
      }, (err: unknown) => {
        this.init.log(`closing the connection to ${ch.remoteId}: silent for ${now - heard} ms and no answer to a ping (${describeError(err)})`)
        conn.abort(err instanceof Error ? err : new Error(String(err)))
      }).finally(() => { this.probing.delete(conn) })
    }
  }

  private schedule (): void {
    if (!this.running) return
    this.timer = this.init.timers.setTimeout(() => {
      try {
        this.check()
      } finally {
        this.schedule()
      }
    }, Math.min(LIVENESS_CHECK_MS, this.init.minSilenceMs / 2))
  }
}
