/**
 * Stand-ins for testing one subsystem of a node alone on the virtual clock: sessions that record
 * what is sent on them, and a logger that keeps its lines.
 */
import { createVirtualClock, type VirtualClock } from '../src/clock.js'
import type { Log } from '../src/logger.js'
import { createCounters, type Counters } from '../src/metrics.js'
import { resolveSettings, type NodeOptions, type Settings } from '../src/options.js'
import type { SyncReport } from '../src/exchange.js'
import { createMemoryStorage } from '../src/memory-storage.js'
import { PeerTable } from '../src/peers.js'
import type { AntiEntropyMode, GossipMessage, LiveEntry } from '../src/protocol.js'
import type { Session } from '../src/session.js'
import type { Transport } from '../src/transport.js'

/** A session whose sends are recorded; `accept` decides whether live frames are taken. */
export class FakeSession {
  state: 'handshake' | 'open' | 'closed' = 'handshake'
  backlog = 0
  frameLimit = 64 * 1024
  activeInitiated = 0
  accept = true
  readonly live: LiveEntry[][] = []
  readonly rumors: Array<{ hops: number, entries: LiveEntry[] }> = []
  readonly gossip: Array<Omit<GossipMessage, 'type'>> = []
  readonly statuses: Uint8Array[] = []
  readonly exchanges: AntiEntropyMode[] = []
  /** How the next exchanges end: resolve (default) or reject. */
  failExchanges = false
  closedWith: string | undefined

  constructor (readonly remoteId: string) {}

  sendLive (entries: LiveEntry[]): boolean {
    if (!this.accept) return false
    this.live.push(entries)
    return true
  }

  sendRumor (hops: number, entries: LiveEntry[]): boolean {
    if (!this.accept) return false
    this.rumors.push({ hops, entries })
    return true
  }

  sendGossip (msg: Omit<GossipMessage, 'type'>): boolean {
    this.gossip.push(msg)
    return true
  }

  sendStatus (root: Uint8Array): void {
    this.statuses.push(root)
  }

  async startExchange (mode: AntiEntropyMode): Promise<SyncReport> {
    this.exchanges.push(mode)
    if (this.failExchanges) throw new Error('exchange failed')
    return { docsSent: 0, docsReceived: 0 } as unknown as SyncReport
  }

  close (reason: string): void {
    this.closedWith = reason
    this.state = 'closed'
  }
}

export interface Scene {
  clock: VirtualClock
  settings: Settings
  counters: Counters
  peers: PeerTable
  log: Log
  lines: string[]
  /** A peer with an open fake session. */
  connect: (peerId: string) => FakeSession
  /** Close the peer's session (the peer table forgets the session, keeps the peer). */
  disconnect: (peerId: string) => void
}

const transport: Transport = { localId: 'self', start: async () => {}, stop: async () => {} } as unknown as Transport

/** Settings, counters, a peer table and fake sessions on a virtual clock starting at 10 s. */
export function scene (options: Partial<NodeOptions> = {}): Scene {
  const clock = createVirtualClock(10_000)
  const settings = resolveSettings({ id: 'self', transport, timers: clock, seed: 7, ...options })
  const lines: string[] = []
  const log: Log = Object.assign((fmt: string, ...args: unknown[]) => { lines.push([fmt, ...args].join(' ')) }, {
    error: (fmt: string, ...args: unknown[]) => { lines.push(['error', fmt, ...args].join(' ')) },
    warn: (fmt: string, ...args: unknown[]) => { lines.push(['warn', fmt, ...args].join(' ')) },
    trace: () => {}
  })
  const peers = new PeerTable('self', clock, createMemoryStorage(), log)
  return {
    clock,
    settings,
    counters: createCounters(),
    peers,
    log,
    lines,
    connect (peerId) {
      const s = new FakeSession(peerId)
      peers.attach(s as unknown as Session, new Uint8Array(16))
      s.state = 'open'
      peers.opened(s as unknown as Session)
      return s
    },
    disconnect (peerId) {
      const s = peers.get(peerId)?.session
      if (s === undefined) return
      ;(s as unknown as FakeSession).state = 'closed'
      peers.closed(s, 'test')
    }
  }
}
