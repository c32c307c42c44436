import { writerLogger } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { TypedEventEmitter, peerDiscoverySymbol } from '@libp2p/interface'
import type { Libp2p, PeerDiscovery, PeerDiscoveryEvents, PeerInfo, PrivateKey, Startable } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { createHearsayNode, hearsaySync } from '../src/index.js'
import type { HearsayLibp2pNode, HearsayNodeOptions, HearsaySync, HearsaySyncInit } from '../src/index.js'

/** A logger that keeps lines in memory (and prints them with HEARSAY_DEBUG=1). */
export function memoryLogger (): Logger & { lines: string[] } {
  const lines: string[] = []
  const inner = writerLogger({ level: 'trace', write: (l) => { lines.push(l); if (process.env.HEARSAY_DEBUG === '1') process.stderr.write(l + '\n') } })
  return Object.assign(inner, { lines })
}

/**
 * A `createHearsayNode` on 127.0.0.1 without mDNS, quick gossip and short backoffs, keeping its log
 * lines; added to `running` so the test's afterEach stops it.
 */
export async function loopbackNode (options: HearsayNodeOptions, running: HearsayLibp2pNode[]): Promise<HearsayLibp2pNode & { lines: string[] }> {
  const logger = memoryLogger()
  const n = await createHearsayNode({
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    logger,
    cluster: { intervalMs: 100 },
    ...options,
    sync: { backoff: { initialMs: 100, maxMs: 2000 }, discoveryDialDelayMs: 200, ...options.sync }
  })
  running.push(n)
  return Object.assign(n, { lines: logger.lines })
}

export type SyncNode = Libp2p<{ hearsay: HearsaySync, identify: unknown, ping: unknown }>

/** A libp2p node on 127.0.0.1 with the Hearsay service mounted (the "bring your own libp2p" way). */
export async function syncNode (init: HearsaySyncInit = {}, opts: { mdns?: boolean, serviceTag?: string, privateKey?: PrivateKey, listen?: string[] } = {}): Promise<SyncNode> {
  const node = await createLibp2p({
    ...(opts.privateKey !== undefined ? { privateKey: opts.privateKey } : {}),
    addresses: { listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: opts.mdns === true ? [mdns({ interval: 1000, serviceTag: opts.serviceTag })] : [],
    services: {
      identify: identify(),
      ping: ping(),
      hearsay: hearsaySync({ backoff: { initialMs: 100, maxMs: 2000 }, discoveryDialDelayMs: 200, ...init }) as any
    }
  })
  return node as unknown as SyncNode
}

/** A service tag unique to this test run, so parallel runs on one host do not find each other. */
export function uniqueServiceTag (name: string): string {
  return `_hs-${name}-${process.pid}-${Math.floor(Math.random() * 1e6)}._udp.local`
}

/** Start a mounted service's transport with a handler that accepts channels and ignores frames. */
export async function startTransport (node: SyncNode): Promise<void> {
  await node.services.hearsay.transport.start({ onChannel: () => ({ onFrame: () => {}, onClose: () => {} }) })
}

/**
 * A peer discovery service that announces one peer (set with `announce()`) every `intervalMs`, the
 * way mDNS announces a peer on every query, and counts its announcements.
 */
export interface SightingStub {
  /** Put it in `peerDiscovery`. */
  factory: (components: unknown) => PeerDiscovery
  /** The peer to announce from now on; `undefined` stops announcing. */
  announce: (info: PeerInfo | undefined) => void
  /** Announcements made so far. */
  sightings: () => number
}

export function sightingStub (intervalMs: number): SightingStub {
  let target: PeerInfo | undefined
  let count = 0
  class Stub extends TypedEventEmitter<PeerDiscoveryEvents> implements PeerDiscovery, Startable {
    readonly [peerDiscoverySymbol] = this
    readonly [Symbol.toStringTag] = 'test:sighting-stub'
    private timer: ReturnType<typeof setInterval> | undefined
    start (): void {
      this.timer = setInterval(() => {
        if (target === undefined) return
        count++
        this.safeDispatchEvent('peer', { detail: target })
      }, intervalMs)
    }

    stop (): void {
      clearInterval(this.timer)
    }
  }
  return { factory: () => new Stub(), announce: (info) => { target = info }, sightings: () => count }
}
