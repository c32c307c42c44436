/**
 * `createHearsayNode`: a ready libp2p node (TCP, pnet when a swarm key is given, Noise, yamux,
 * identify, ping, mDNS) with the Hearsay sync service mounted, and the core engine on top.
 */
import { ConfigError, createNode, realTimers, silentLogger } from '@hearsay/core'
import type { HearsayNode, Logger, NodeOptions, TrustOptions } from '@hearsay/core'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { noise } from '@chainsafe/libp2p-noise'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify } from '@libp2p/identify'
import type { Identify } from '@libp2p/identify'
import type { ConnectionGater, Libp2p, PrivateKey } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import type { Libp2pOptions } from 'libp2p'
import { Announcer } from './announce.js'
import {
  DISCOVERY_PROBE_INTERVAL_MS,
  LISTEN_ADDRESSES,
  MDNS_INTERVAL_MS,
  MDNS_SERVICE_TAG,
  PING_INTERVAL_MS,
  RELAY_MAX_CLIENT_RESERVATIONS
} from './constants.js'
import { probeMulticast } from './discovery.js'
import type { DiscoveryStatus } from './discovery.js'
import { allowListGater } from './gater.js'
import { loadOrCreatePrivateKey } from './identity.js'
import { swarmDiagnosis, swarmGuard } from './pnet.js'
import type { SwarmMismatch } from './pnet.js'
import { isRelayed } from './paths.js'
import { parseRelayAddress, relayServer, relaySlots } from './relay.js'
import type { RelayServerOptions, RelaySlots } from './relay.js'
import { hearsaySync } from './service.js'
import { forwardSightings } from './sightings.js'
import type { ChannelStatus, HearsaySync, HearsaySyncInit, PeerStatus } from './service.js'
import { parseSwarmKey } from './swarm-key.js'
import { libp2pSigner, trustCrypto } from './trust-crypto.js'

export interface MdnsOptions {
  /** Query interval, in ms. @default MDNS_INTERVAL_MS (10 000) */
  intervalMs?: number
  /** Service tag; nodes with different tags do not see each other. @default MDNS_SERVICE_TAG ('_p2p._udp.local') */
  serviceTag?: string
  /** How often the node re-checks that mDNS can send, in ms. @default DISCOVERY_PROBE_INTERVAL_MS (30 000) */
  probeIntervalMs?: number
}

export interface HearsayNodeOptions extends Omit<NodeOptions, 'id' | 'transport' | 'trust'> {
  /**
   * The swarm's roster (TRUST.md): its genesis statement and statements to add. The signature
   * scheme and this device's signing key come from its libp2p identity. `false` turns trust off
   * (the node neither adopts nor answers a roster). @default {} (unmanaged until a roster is created or adopted)
   */
  trust?: Omit<TrustOptions, 'crypto' | 'signer'> | false
  /**
   * Directory for the node's private key (`peer-key`, mode 0600): the peer id survives restarts.
   * Without it (and without `privateKey`) the node gets a new, ephemeral id every run.
   */
  dataDir?: string
  /** Use this key instead of one kept in `dataDir`. */
  privateKey?: PrivateKey
  /** Listen multiaddrs. @default LISTEN_ADDRESSES (['/ip4/0.0.0.0/tcp/0']) */
  listen?: string[]
  /**
   * Pre-shared swarm key (file contents, see `generateSwarmKey()`): only peers with the same key
   * can connect. Checked at once; a malformed key throws `SwarmKeyError`. @default none (open swarm)
   */
  swarmKey?: Uint8Array | string
  /** Only these peer ids may connect (checked by the connection gater after Noise proves the id). @default everyone */
  allowPeers?: string[]
  /** LAN discovery by mDNS: `false` turns it off. @default true */
  mdns?: boolean | MdnsOptions
  /** Multiaddrs to dial on start and keep connected (`/ip4/10.0.0.2/tcp/4001/p2p/12D3…`). @default [] */
  bootstrap?: string[]
  /**
   * Relays to hold a reservation on (`/ip4/203.0.113.7/tcp/4001/p2p/12D3…`), so that members at
   * other sites reach this node through them. They are dialled and kept connected like bootstrap
   * peers; relays learned from members' cluster state are used too (up to
   * `RELAY_MAX_CLIENT_RESERVATIONS` in all). @default []
   */
  relays?: string[]
  /**
   * Serve as a circuit relay for this swarm's members (RELAY.md): no data or time limit for them,
   * refused to everyone else. Needs a swarm key or `allowPeers` (a relay open to anyone would
   * carry anyone's traffic). `true` takes the default limits. @default false
   */
  relay?: boolean | RelayServerOptions
  /** Try to turn relayed connections into direct ones by hole punching (DCUtR). @default true */
  dcutr?: boolean
  /** Where log lines go (components `hearsay:*`). libp2p's own debug logs follow `DEBUG=libp2p:*`. @default silentLogger() */
  logger?: Logger
  /** Dial, backoff and stream tuning of the sync service. */
  sync?: Omit<HearsaySyncInit, 'logger' | 'bootstrap' | 'allowPeers' | 'maxFrameBytes'>
  /**
   * Shortest silence of a channel before its connection is pinged to check that it is alive, in
   * ms (liveness.ts: a channel that is usually quiet waits longer, up to 150 s); an unanswered ping
   * closes the connection and the peer is redialled. libp2p's own connection monitor, which pings
   * every connection every 10 s, is off unless `libp2p.connectionMonitor` is given.
   * @default PING_INTERVAL_MS (10 000)
   */
  pingIntervalMs?: number
  /**
   * Extra libp2p options, merged over the ones built here (e.g. `connectionManager`). Merged
   * deeply where replacing would break the node: `services` are added next to identify, ping and
   * hearsay (yours win for identify and ping; `hearsay` is reserved), `peerDiscovery` is added to
   * mDNS (each sighting it reports is forwarded to the sync service, like mDNS's), `connectionMonitor` fields override ours, and a `connectionGater` is composed with the
   * `allowPeers` gater (a connection must pass both).
   */
  libp2p?: HearsayLibp2pOptions
  /** Start the node before returning. @default true */
  start?: boolean
}

/** libp2p options accepted by `createHearsayNode` (`services` may add any service). */
export type HearsayLibp2pOptions = Omit<Partial<Libp2pOptions<HearsayServices>>, 'services'> & {
  services?: Record<string, (components: any) => unknown>
}

export interface HearsayServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  hearsay: HearsaySync
  relaySlots: RelaySlots
  /** Present on a relay (`relay: true`). */
  circuitRelay?: CircuitRelayService
}

/** Relays, as `status().relay` shows them. */
export interface RelayStatus {
  /** This node serves as a relay for its swarm's members. */
  serving: boolean
  /** On a relay: members holding a reservation on it now. */
  reservationsServed: number
  /** Relays this node wants a reservation on: configured, then learned from members. */
  relays: Array<{ id: string, connected: boolean, reserved: boolean }>
  /** Addresses members at other sites reach this node at, through its relays. */
  addresses: string[]
  /** Bytes sent and received over relayed channels since start. */
  bytesSent: number
  bytesReceived: number
}

export interface HearsayNodeStatus {
  peerId: string
  started: boolean
  /** Addresses this node listens on, with `/p2p/<id>`. */
  multiaddrs: string[]
  /** Private swarm (swarm key) in use. */
  privateSwarm: boolean
  /** Size of the allow-list, or undefined when everyone may connect. */
  allowList: number | undefined
  discovery: DiscoveryStatus
  connections: number
  channels: ChannelStatus[]
  peers: PeerStatus[]
  /**
   * Peers (by id) and hosts (inbound, by address) whose connections failed on a swarm key
   * mismatch: a different key, or a key on one side only. Most recent first.
   */
  swarmMismatches: SwarmMismatch[]
  relay: RelayStatus
}

/** A Hearsay node on libp2p: the core engine's API plus the libp2p node and its status. */
export interface HearsayLibp2pNode extends HearsayNode {
  /** The libp2p peer id (also `id`). */
  readonly peerId: string
  readonly libp2p: Libp2p<HearsayServices>
  /** The sync service (transport, peer and channel status). */
  readonly sync: HearsaySync
  /** Listen addresses with `/p2p/<id>`, for `bootstrap` lists. */
  multiaddrs(): string[]
  /** Whether LAN discovery can work, and why not. */
  discovery(): DiscoveryStatus
  /** Re-check discovery now. */
  checkDiscovery(): Promise<DiscoveryStatus>
  status(): HearsayNodeStatus
}

export async function createHearsayNode (options: HearsayNodeOptions = {}): Promise<HearsayLibp2pNode> {
  const logger = options.logger ?? silentLogger()
  const log = logger.forComponent('hearsay:libp2p:node')
  // validate everything before touching the disk or the network
  const psk = options.swarmKey === undefined ? undefined : parseSwarmKey(options.swarmKey)
  const mdnsOpts: MdnsOptions | undefined = options.mdns === false ? undefined : (options.mdns === true || options.mdns === undefined ? {} : options.mdns)
  const privateKey = options.privateKey ?? (options.dataDir !== undefined ? await loadOrCreatePrivateKey(options.dataDir, log) : await generateKeyPair('Ed25519'))

  const peerDiscovery: Libp2pOptions['peerDiscovery'] = []
  if (mdnsOpts !== undefined) {
    peerDiscovery.push(mdns({ interval: mdnsOpts.intervalMs ?? MDNS_INTERVAL_MS, serviceTag: mdnsOpts.serviceTag ?? MDNS_SERVICE_TAG }))
  }

  const { engineOptions, extra } = splitOptions(options)
  const serveRelay = options.relay !== undefined && options.relay !== false
  if (serveRelay && psk === undefined && options.allowPeers === undefined) {
    throw new ConfigError('relay: a relay needs a swarm key (or allowPeers), so that it serves only this swarm\'s members; an open relay would carry anyone\'s traffic')
  }
  const relays = [...new Map((options.relays ?? []).map(a => { const r = parseRelayAddress(a); return [r.id, a] as const })).entries()]
  // a relay is reachable itself: it holds no reservations
  const slots = serveRelay ? 0 : Math.min(relays.length, RELAY_MAX_CLIENT_RESERVATIONS)
  const diagnosis = swarmDiagnosis(psk !== undefined, log)
  const guard = psk === undefined ? undefined : swarmGuard(psk, log, diagnosis)
  const { services: extraServices = {}, connectionGater: extraGater, peerDiscovery: extraDiscovery = [], connectionMonitor: extraMonitor, ...rest } = extra
  if ('hearsay' in extraServices) throw new ConfigError('options.libp2p.services.hearsay is reserved: createHearsayNode mounts the Hearsay service itself')
  const listed = options.allowPeers !== undefined
    ? allowListGater(options.allowPeers, { logger, ...(extraGater !== undefined ? { inner: extraGater } : {}) })
    : extraGater
  // revoked devices (by the roster) get no connection either way; bound once the engine exists
  let revoked = (_peer: string): boolean => false
  const gater = revokedGater(peer => revoked(peer), listed)
  const libp2pOptions: Libp2pOptions<HearsayServices> = {
    privateKey,
    addresses: { listen: [...(options.listen ?? LISTEN_ADDRESSES), ...Array.from({ length: slots }, () => '/p2p-circuit')] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [guard === undefined ? noise() : guard.encrypter(noise())],
    // no yamux keep-alive: its pings cannot close a dead link (liveness.ts does) and cost bytes on idle links
    streamMuxers: [yamux({ enableKeepAlive: false })],
    ...(guard !== undefined ? { connectionProtector: guard.protector } : {}),
    ...(gater !== undefined ? { connectionGater: gater } : {}),
    // liveness.ts probes silent channels instead; libp2p's monitor only when asked for
    connectionMonitor: extraMonitor === undefined ? { enabled: false } : { pingInterval: options.pingIntervalMs ?? PING_INTERVAL_MS, ...extraMonitor },
    // every sighting reaches the sync service, not only a peer's first one: a peer in backoff that
    // was unreachable is redialled as soon as it is announced again
    peerDiscovery: [...peerDiscovery, ...extraDiscovery].map(d => forwardSightings(d)),
    services: {
      identify: identify(),
      ping: ping(),
      ...(options.dcutr === false ? {} : { dcutr: dcutr() }),
      ...(serveRelay ? { circuitRelay: relayServer(options.relay === true ? {} : options.relay as RelayServerOptions) } : {}),
      relaySlots: relaySlots({ configured: serveRelay ? [] : relays.map(([id]) => id).slice(0, slots), log: logger.forComponent('hearsay:libp2p:relay') }),
      ...extraServices,
      hearsay: hearsaySync({
        livenessMinSilenceMs: options.pingIntervalMs ?? PING_INTERVAL_MS,
        ...options.sync,
        onDialFailure: (peer: string, err: unknown) => { diagnosis.dialFailed(peer, err); options.sync?.onDialFailure?.(peer, err) },
        logger,
        bootstrap: [...new Set([...(options.bootstrap ?? []), ...relays.map(([, a]) => a)])],
        ...(options.allowPeers !== undefined ? { allowPeers: options.allowPeers } : {}),
        ...(options.maxFrameBytes !== undefined ? { maxFrameBytes: options.maxFrameBytes } : {})
      }) as any
    },
    ...rest,
    start: false
  }
  const libp2p = await createLibp2p<HearsayServices>(libp2pOptions)
  const sync = libp2p.services.hearsay
  const peerId = libp2p.peerId.toString()
  const trust: TrustOptions | undefined = options.trust === false || privateKey.type !== 'Ed25519'
    ? undefined
    : { ...options.trust, crypto: trustCrypto(), signer: libp2pSigner(privateKey) }
  if (trust === undefined && options.trust !== false && options.trust !== undefined) throw new ConfigError(`trust needs an Ed25519 identity, this node has a ${privateKey.type} key`)
  const engine = createNode({ ...engineOptions, trust, logger, id: peerId, transport: sync.transport })
  revoked = peer => engine.trust.isRevoked(peer)
  // a device revoked while connected is hung up on at once (the engine closed its session)
  engine.trust.on('change', ({ revoked: gone }) => {
    for (const p of gone) void libp2p.hangUp(peerIdFromString(p)).catch(() => {})
  })

  // the discovery probe runs on the engine's clock, so a node on virtual time probes on it too
  const timers = engineOptions.timers ?? realTimers
  const announcer = new Announcer({
    libp2p,
    engine,
    sync,
    relay: serveRelay,
    // a relay is reachable itself: it takes no reservation on other relays
    onRelay: id => { if (!serveRelay) libp2p.services.relaySlots.learned(id) },
    timers,
    log: logger.forComponent('hearsay:libp2p:announce')
  })
  let discovery: DiscoveryStatus = mdnsOpts === undefined
    ? { mdns: 'disabled', detail: 'mDNS is turned off (options.mdns = false)', interfaces: [], checkedAt: timers.now() }
    : { mdns: 'unknown', detail: 'not checked yet: the node probes mDNS when it starts', interfaces: [], checkedAt: 0 }
  let probeTimer: unknown
  let started = false

  const checkDiscovery = async (): Promise<DiscoveryStatus> => {
    if (mdnsOpts === undefined) return discovery
    const next = await probeMulticast({ serviceTag: mdnsOpts.serviceTag ?? MDNS_SERVICE_TAG, now: timers.now })
    if (next.mdns !== discovery.mdns) {
      if (next.mdns === 'ok') log(`discovery: ${next.detail}`)
      else log.warn(`discovery: ${next.detail}`)
    }
    discovery = next
    return next
  }

  const node: HearsayLibp2pNode = withEngine<HearsayNode, OwnMembers>(engine, {
    peerId,
    libp2p,
    sync,
    id: peerId,
    async start (): Promise<void> {
      if (started) return
      started = true
      await libp2p.start()
      await engine.start()
      announcer.start()
      if (mdnsOpts !== undefined) {
        await checkDiscovery()
        const every = mdnsOpts.probeIntervalMs ?? DISCOVERY_PROBE_INTERVAL_MS
        const probeLater = (): void => {
          const t = timers.setTimeout(() => { void checkDiscovery().finally(() => { if (started && probeTimer === t) probeLater() }) }, every)
          probeTimer = t
        }
        probeLater()
      }
      log(`node ${peerId} started on ${node.multiaddrs().join(', ')}`)
    },
    async stop (): Promise<void> {
      if (!started) return
      started = false
      if (probeTimer !== undefined) timers.clearTimeout(probeTimer)
      probeTimer = undefined
      announcer.stop()
      await engine.stop()
      await libp2p.stop()
    },
    multiaddrs: () => libp2p.getMultiaddrs().map(a => a.toString()),
    discovery: () => discovery,
    checkDiscovery,
    status: (): HearsayNodeStatus => ({
      peerId,
      started,
      multiaddrs: libp2p.getMultiaddrs().map(a => a.toString()),
      privateSwarm: psk !== undefined,
      allowList: options.allowPeers?.length,
      discovery,
      connections: libp2p.getConnections().length,
      channels: sync.channels(),
      peers: sync.peers(),
      swarmMismatches: diagnosis.mismatches(),
      relay: relayStatus(libp2p, serveRelay)
    })
  })
  if (options.start ?? true) await node.start()
  return node
}

function relayStatus (libp2p: Libp2p<HearsayServices>, serving: boolean): RelayStatus {
  const addresses = libp2p.getMultiaddrs().filter(a => isRelayed(a)).map(a => a.toString())
  const bytes = libp2p.services.hearsay.relayedBytes()
  return {
    serving,
    reservationsServed: libp2p.services.circuitRelay?.reservations.size ?? 0,
    relays: libp2p.services.relaySlots.relays().map(id => ({
      id,
      connected: libp2p.getConnections(peerIdFromString(id)).some(c => c.status === 'open'),
      reserved: addresses.some(a => a.includes(`/p2p/${id}/p2p-circuit`))
    })),
    addresses,
    bytesSent: bytes.sent,
    bytesReceived: bytes.received
  }
}

/** Refuse connections from and to devices the roster revoked, then ask `inner`. */
function revokedGater (isRevoked: (peer: string) => boolean, inner: ConnectionGater = {}): ConnectionGater {
  return {
    ...inner,
    denyDialPeer: async peer => isRevoked(peer.toString()) || (await inner.denyDialPeer?.(peer) ?? false),
    denyInboundEncryptedConnection: async (peer, maConn) => isRevoked(peer.toString()) || (await inner.denyInboundEncryptedConnection?.(peer, maConn) ?? false),
    denyOutboundEncryptedConnection: async (peer, maConn) => isRevoked(peer.toString()) || (await inner.denyOutboundEncryptedConnection?.(peer, maConn) ?? false)
  }
}

/** What this package adds to the engine's API, and the members it replaces (`start`/`stop` run libp2p too). */
type OwnMembers = Omit<HearsayLibp2pNode, Exclude<keyof HearsayNode, 'id' | 'start' | 'stop'>>

/**
 * The engine's API with `own` on top: every engine member `own` does not replace is forwarded
 * (methods bound to the engine, other members read through), so the node keeps the whole engine
 * API as it grows, with no list to keep in step.
 */
function withEngine<E extends object, O extends object> (engine: E, own: O): Omit<E, keyof O> & O {
  const out: Record<PropertyKey, unknown> = {}
  const source = engine as unknown as Record<PropertyKey, unknown>
  for (let o: object | null = engine; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Reflect.ownKeys(o)) {
      if (key === 'constructor' || key in own || Object.prototype.hasOwnProperty.call(out, key)) continue
      const value = Object.getOwnPropertyDescriptor(o, key)?.value as unknown
      if (typeof value === 'function') out[key] = value.bind(engine)
      else Object.defineProperty(out, key, { get: () => source[key], enumerable: true })
    }
  }
  Object.defineProperties(out, Object.getOwnPropertyDescriptors(own))
  return out as Omit<E, keyof O> & O
}

/** Separate the engine's options from this package's own. */
function splitOptions (options: HearsayNodeOptions): { engineOptions: Omit<NodeOptions, 'id' | 'transport'>, extra: HearsayLibp2pOptions } {
  const {
    dataDir: _d, privateKey: _k, listen: _l, swarmKey: _s, allowPeers: _a, mdns: _m, bootstrap: _b,
    relays: _r, relay: _rs, dcutr: _dc, sync: _y, pingIntervalMs: _p, libp2p, start: _st, trust: _t, ...engineOptions
  } = options
  return { engineOptions, extra: libp2p ?? {} }
}
