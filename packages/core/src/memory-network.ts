/**
 * An in-process network for the engine's tests and the simulator. Every `transport(id)` it hands
 * out is a real `Transport`; frames are delivered asynchronously, in order per link, with the
 * interleaving across links chosen by a seeded PRNG so a run replays from its seed.
 *
 * By default every started transport is connected to every other one (like peers that found each
 * other on a LAN); `disconnect`, `partition` and `heal` cut and restore links.
 *
 * Given `timers` (a virtual clock), frames are delivered on that clock after a `latency` drawn per
 * frame instead of on the next turn of the event loop; links stay in order, and frames on different
 * links overtake each other whenever their latencies say so. `resetOnLoss` makes a lost frame reset
 * its link, as a TCP connection does, rather than vanish from an ordered stream (see test/sim).
 */
import type { Timers } from './clock.js'
import { ConfigError, PeerUnavailableError } from './errors.js'
import { createRandom, type Random } from './random.js'
import type { Channel, ChannelHandler, Transport, TransportHandler } from './transport.js'

export interface MemoryNetworkOptions {
  /** Seed of every random choice the network makes. @default 1 */
  seed?: number
  /** Connect every started transport to every other one. @default true */
  autoConnect?: boolean
  /** Probability that a frame is silently lost. @default 0 */
  loss?: number
  /** Probability that a frame is delivered twice. @default 0 */
  duplicate?: number
  /**
   * A lost frame closes its link on both sides (frames in flight are dropped), like a TCP reset,
   * instead of vanishing silently from an ordered channel. @default false
   */
  resetOnLoss?: boolean
  /**
   * Deliver frames on this clock (a simulator's virtual clock) after `latency` ms instead of on
   * the next turn of the event loop. @default undefined (event loop)
   */
  timers?: Timers
  /** Delay of one frame from `from` to `to`, in ms; used only with `timers`. @default () => 0 */
  latency?: (from: string, to: string, rng: Random) => number
  /**
   * Bytes per ms a link carries from `from` to `to` (undefined: unlimited); used only with
   * `timers`. Frames wait their turn on the wire and `send()` resolves when a frame leaves, so a
   * sender sees the backlog of a slow link as it would a full TCP send buffer. @default unlimited
   */
  bandwidth?: (from: string, to: string) => number | undefined
}

/** Faults that can be changed while a network runs. */
export interface MemoryNetworkFaults {
  loss?: number
  duplicate?: number
  resetOnLoss?: boolean
}

export interface MemoryNetworkStats {
  framesSent: number
  framesDelivered: number
  framesLost: number
  bytesDelivered: number
  /** Links closed because a frame was lost (`resetOnLoss`). */
  linkResets: number
}

export interface MemoryNetwork {
  transport(id: string): Transport
  /** Open a channel between two started transports (no-op when open or partitioned apart). */
  connect(a: string, b: string): void
  /** Cut the link between two transports: both sides see the channel close, frames in flight are lost. */
  disconnect(a: string, b: string, reason?: string): void
  /** Split the network into groups that cannot reach each other; closes the links between groups. */
  partition(groups: string[][]): void
  /** Remove partitions and, with `autoConnect`, reconnect every pair of started transports. */
  heal(): void
  /** Whether a channel between the two is open. */
  connected(a: string, b: string): boolean
  /** Deliver raw bytes to `to` as if `from` sent them on their open channel (for tests of bad input). */
  inject(from: string, to: string, frame: Uint8Array): void
  /**
   * Resolves when no frame is in flight. With `timers`, frames move only when the clock does:
   * this resolves at once.
   */
  settled(): Promise<void>
  /** Change loss and duplication while running. */
  setFaults(faults: MemoryNetworkFaults): void
  /**
   * Take a transport down abruptly, as a crashed process: its links reset and frames in flight
   * are lost. `transport(id)` may then be called again for a restarted node with the same id.
   */
  crash(id: string): void
  readonly stats: MemoryNetworkStats
}

interface Endpoint {
  id: string
  handler: TransportHandler | undefined
  links: Map<string, Link>
}

/** One direction of a channel pair. */
interface HalfLink {
  from: string
  to: string
  handler: ChannelHandler | undefined
  queue: Array<Uint8Array | { close: string | undefined }>
  /** With `timers`: due time of the last queued item, and a count bumped when the queue is cleared. */
  lastAt: number
  generation: number
  /** With `bandwidth`: when the wire is free for the next frame. */
  wireFreeAt: number
}

interface Link { a: HalfLink, b: HalfLink, open: boolean }

const key = (a: string, b: string): string => a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`

export function createMemoryNetwork (options: MemoryNetworkOptions = {}): MemoryNetwork {
  const rng = createRandom(options.seed ?? 1)
  const autoConnect = options.autoConnect ?? true
  let loss = options.loss ?? 0
  let duplicate = options.duplicate ?? 0
  let resetOnLoss = options.resetOnLoss ?? false
  const timers = options.timers
  const latency = options.latency ?? (() => 0)
  const bandwidth = options.bandwidth
  const endpoints = new Map<string, Endpoint>()
  const links = new Map<string, Link>()
  let groups: Map<string, number> | undefined
  const stats: MemoryNetworkStats = { framesSent: 0, framesDelivered: 0, framesLost: 0, bytesDelivered: 0, linkResets: 0 }
  const busy = new Set<HalfLink>()
  let pumping = false
  let idleWaiters: Array<() => void> = []

  const reachable = (a: string, b: string): boolean => groups === undefined || groups.get(a) === groups.get(b)

  const schedule = (): void => {
    if (pumping) return
    pumping = true
    setImmediate(pump)
  }

  function deliver (half: HalfLink, item: Uint8Array | { close: string | undefined }): void {
    if (item instanceof Uint8Array) {
      stats.framesDelivered++
      stats.bytesDelivered += item.length
      half.handler?.onFrame(item)
    } else {
      const h = half.handler
      half.handler = undefined
      h?.onClose(item.close)
    }
  }

  // Deliver frames one at a time, choosing among links with frames waiting by the seeded PRNG.
  function pump (): void {
    for (let steps = 0; steps < 64 && busy.size > 0; steps++) {
      const half = rng.pick([...busy])
      const item = half.queue.shift()
      if (half.queue.length === 0) busy.delete(half)
      if (item === undefined) continue
      deliver(half, item)
    }
    if (busy.size > 0) {
      setImmediate(pump)
    } else {
      pumping = false
      const w = idleWaiters
      idleWaiters = []
      for (const f of w) f()
    }
  }

  const enqueue = (half: HalfLink, item: Uint8Array | { close: string | undefined }, departAt?: number): void => {
    half.queue.push(item)
    if (timers === undefined) {
      busy.add(half)
      schedule()
      return
    }
    // in order per link: never due before the item queued ahead of it
    const at = Math.max((departAt ?? timers.now()) + Math.max(0, latency(half.from, half.to, rng)), half.lastAt)
    half.lastAt = at
    const generation = half.generation
    timers.setTimeout(() => {
      if (half.generation !== generation) return
      const next = half.queue.shift()
      if (next !== undefined) deliver(half, next)
    }, at - timers.now())
  }

  const clearQueue = (half: HalfLink): void => {
    half.queue.length = 0
    half.generation++
    busy.delete(half)
  }

  function makeChannel (link: Link, out: HalfLink, back: HalfLink): Channel {
    return {
      remoteId: out.to,
      async send (frame) {
        if (!link.open) {
          // the peer closed the link and its close is still on the way to us: as on a real
          // connection, what we send meanwhile is lost, and the peer's last frames (a Close with
          // its reason) still arrive before the close
          if (back.handler !== undefined) return
          throw new PeerUnavailableError(`channel to ${out.to} is closed`)
        }
        stats.framesSent++
        if (loss > 0 && rng.next() < loss) {
          stats.framesLost++
          if (resetOnLoss) {
            stats.linkResets++
            closeLink(link, out, back, 'connection reset', false)
          }
          return
        }
        const copy = frame.slice()
        const bw = timers === undefined ? undefined : bandwidth?.(out.from, out.to)
        if (timers === undefined || bw === undefined || !(bw > 0)) {
          enqueue(out, copy)
          if (duplicate > 0 && rng.next() < duplicate) enqueue(out, copy)
          return
        }
        // the frame waits for the wire; the sender is released when it leaves
        const depart = Math.max(timers.now(), out.wireFreeAt) + copy.length / bw
        out.wireFreeAt = depart
        enqueue(out, copy, depart)
        if (duplicate > 0 && rng.next() < duplicate) enqueue(out, copy, depart)
        await new Promise<void>(resolve => { timers.setTimeout(resolve, depart - timers.now()) })
      },
      close (reason) {
        if (!link.open) return
        closeLink(link, out, back, reason, true)
      }
    }
  }

  /** Close a link opened by `closer` (graceful: the remote gets frames already sent, then the close). */
  function closeLink (link: Link, out: HalfLink, back: HalfLink, reason: string | undefined, graceful: boolean): void {
    link.open = false
    links.delete(key(out.from, out.to))
    endpoints.get(out.from)?.links.delete(out.to)
    endpoints.get(out.to)?.links.delete(out.from)
    clearQueue(back)
    const local = back.handler
    back.handler = undefined
    if (!graceful) clearQueue(out)
    enqueue(out, { close: reason })
    queueMicrotask(() => local?.onClose(reason))
  }

  function connect (a: string, b: string): void {
    if (a === b) return
    const ea = endpoints.get(a)
    const eb = endpoints.get(b)
    if (ea?.handler === undefined || eb?.handler === undefined) return
    if (!reachable(a, b) || links.has(key(a, b))) return
    const ab: HalfLink = { from: a, to: b, handler: undefined, queue: [], lastAt: 0, generation: 0, wireFreeAt: 0 }
    const ba: HalfLink = { from: b, to: a, handler: undefined, queue: [], lastAt: 0, generation: 0, wireFreeAt: 0 }
    const link: Link = { a: ab, b: ba, open: true }
    links.set(key(a, b), link)
    ea.links.set(b, link)
    eb.links.set(a, link)
    // frames sent by a travel on ab and are handled by b's handler
    ab.handler = eb.handler.onChannel(makeChannel(link, ba, ab))
    ba.handler = ea.handler.onChannel(makeChannel(link, ab, ba))
  }

  function disconnect (a: string, b: string, reason = 'link down'): void {
    const link = links.get(key(a, b))
    if (link === undefined) return
    closeLink(link, link.a, link.b, reason, false)
  }

  function connectAll (id: string): void {
    if (!autoConnect) return
    for (const [other, e] of endpoints) if (other !== id && e.handler !== undefined) connect(id, other)
  }

  return {
    stats,
    transport (id) {
      if (endpoints.has(id)) throw new ConfigError(`memory network already has a transport "${id}"`)
      const ep: Endpoint = { id, handler: undefined, links: new Map() }
      endpoints.set(id, ep)
      return {
        localId: id,
        async start (handler) {
          if (ep.handler !== undefined) return
          ep.handler = handler
          connectAll(id)
        },
        async stop () {
          if (ep.handler === undefined) return
          for (const other of [...ep.links.keys()]) disconnect(id, other, 'peer stopped')
          ep.handler = undefined
        },
        async connect (peerId) {
          connect(id, peerId)
          if (!links.has(key(id, peerId))) throw new PeerUnavailableError(`cannot reach ${peerId}`)
        }
      }
    },
    connect,
    disconnect,
    partition (parts) {
      groups = new Map()
      parts.forEach((g, i) => { for (const id of g) groups?.set(id, i) })
      for (const link of [...links.values()]) {
        if (!reachable(link.a.from, link.a.to)) disconnect(link.a.from, link.a.to, 'partitioned')
      }
    },
    heal () {
      groups = undefined
      for (const id of endpoints.keys()) connectAll(id)
    },
    connected: (a, b) => links.get(key(a, b))?.open === true,
    inject (from, to, frame) {
      const link = links.get(key(from, to))
      if (link === undefined) throw new PeerUnavailableError(`${from} and ${to} are not connected`)
      enqueue(link.a.from === from ? link.a : link.b, frame.slice())
    },
    setFaults (f) {
      loss = f.loss ?? loss
      duplicate = f.duplicate ?? duplicate
      resetOnLoss = f.resetOnLoss ?? resetOnLoss
    },
    crash (id) {
      const ep = endpoints.get(id)
      if (ep === undefined) return
      for (const other of [...ep.links.keys()]) disconnect(id, other, 'connection reset')
      ep.handler = undefined
      endpoints.delete(id)
    },
    settled () {
      if (timers !== undefined || (!pumping && busy.size === 0)) return Promise.resolve()
      return new Promise(resolve => { idleWaiters.push(resolve) })
    }
  }
}
