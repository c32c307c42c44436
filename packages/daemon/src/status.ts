/**
 * `GET /status`: peers and their liveness, whether we are in sync with each, initial-sync
 * progress, discovery diagnosis and counters.
 */
import type { DocProblem, HearsayNode, MemberState, NodeMetrics } from '@hearsay/core'
import type { PathKind, RelayStatus as RelayReport } from '@hearsay/libp2p'
import { displayName } from './device-name.js'
import { accessOf } from './trust-api.js'
import type { YWebsocketStats } from './ywebsocket.js'

/** What a libp2p-backed node adds; absent on other transports. */
export interface NetworkDiagnosis {
  discovery?: () => { mdns: string, detail: string, interfaces?: string[] }
  multiaddrs?: () => string[]
  status?: () => { privateSwarm: boolean, connections: number, peers: Array<DialReport & { path?: PathKind }>, swarmMismatches?: SwarmMismatchReport[], relay?: RelayReport }
}

/** How a peer is reached, and the relays (`@hearsay/libp2p`'s `RelayStatus`, RELAY.md). */
export type { PathKind, RelayStatus as RelayReport } from '@hearsay/libp2p'

/** The transport's view of a peer: how it was found and how dialling it goes. */
export interface DialReport {
  id: string
  source: string
  connected: boolean
  dialFailures: number
  /** How the last failure went, while `dialFailures` > 0: `unreachable` or `refused` (the link dropped before a channel opened, or the peer refused the handshake). */
  lastFailure?: string
  nextDialAt?: number
  /** Until when this node refuses the peer after closing its session for what it sent (ms since epoch). */
  refusedUntil?: number
  unsupported: boolean
}

/** A peer (or, for inbound connections, a host) whose connections fail on a swarm key mismatch. */
export interface SwarmMismatchReport {
  /** Peer id, or `/ip4/<host>` when only the address is known. */
  peer: string
  count: number
  firstAt: number
  lastAt: number
}

export type DaemonNode = HearsayNode & NetworkDiagnosis

/** The node's failure detector's verdict on a peer. */
export type PeerState = MemberState

export interface PeerReport {
  id: string
  /**
   * The device's name: the one the swarm's roster gives it (set by an admin), else the one it
   * announces (cluster state `name`), cleaned up for display; absent until known.
   */
  name?: string
  /** What the roster lets it do: `admin`, `revoked`, `notes/:write, …` or `no grant`; absent in an unmanaged swarm. */
  access?: string
  /**
   * The node's verdict (`PeerInfo.state`): `alive` while connected or heard from, directly or
   * through other peers' gossip, within `cluster.suspectMs`; `suspect`, then `dead` after
   * `cluster.deadMs` of silence. A peer can be alive without a connection to us.
   */
  state: PeerState
  /** We have a connection to it now. */
  connected: boolean
  /** The path of that connection: `lan`, `direct` or `relayed`; absent when not connected (or not libp2p). */
  path?: PathKind
  /** Our digest root equals the one this peer last announced. */
  inSync: boolean
  /** Documents the peer says it holds. */
  docCount: number
  /** Bytes of documents the peer announces storing (cluster state); absent until heard. An estimate. */
  bytes?: number
  /** Ms since we last heard from it. */
  lastSeenMsAgo: number
}

export interface SyncProgress {
  /** Every connected peer agrees with our digest. */
  inSync: boolean
  /** Documents we hold. */
  docsDone: number
  /**
   * Documents to hold: exact (equal to `docsDone`) when `docsTotalExact`; otherwise the largest
   * count a connected peer announces, a lower bound (peers announce counts, not their union).
   */
  docsTotal: number
  /** `docsTotal` is the real size of the collection: in sync with every connected peer, or alone. */
  docsTotalExact: boolean
  /**
   * Bytes of documents we store (`metrics().storedBytes`), at most `bytesTotal`. Like `bytesTotal`
   * an estimate: compaction and merging make replicas of the same documents differ in size.
   */
  bytesDone: number
  /**
   * Approximate size of the collection in bytes: the largest of ours and what connected peers
   * announce; while in sync (or alone), equal to `bytesDone`.
   */
  bytesTotal: number
  /** Bytes of document updates applied from peers since start (payload, not protocol frames). */
  bytesReceived: number
  /** Every byte received from peers since start: frames, including digests and gossip. */
  wireBytesReceived: number
  /** Distinct documents that peers changed since start. */
  docsReceived: number
  /** Exchanges running now. */
  exchangesRunning: number
}

/** What the daemon counts itself from the node's `doc:update` events. */
export interface ReceivedFromPeers {
  bytes: number
  docs: number
}

export interface DaemonStatus {
  id: string
  /** This device's name: its roster name in a managed swarm, else the one it announces to peers. */
  name: string
  version: string
  uptimeMs: number
  endpoint: string
  /** How this node reaches its peers. */
  transport: string
  peers: PeerReport[]
  sync: SyncProgress
  discovery: { mdns: string, detail: string, interfaces?: string[] } | { mdns: 'unavailable', detail: string }
  multiaddrs: string[]
  /** Transport details, when the transport has them (libp2p). */
  network: { privateSwarm: boolean, connections: number, dials: DialReport[], swarmMismatches: SwarmMismatchReport[], relay?: RelayReport } | undefined
  clients: YWebsocketStats
  /** `node.problems()`: documents quarantined (unreadable), missing from disk, or records the store dropped at open. */
  problems: DocProblem[]
  /** The swarm's roster as this device sees it (TRUST.md); `managed: false` when it has none. */
  trust: { managed: boolean, swarm?: string, access?: string, devices: number, agreeing: number }
  metrics: NodeMetrics
}

export function buildStatus (node: DaemonNode, extra: { name: string, version: string, startedAt: number, endpoint: string, clients: YWebsocketStats, transport: string, received?: ReceivedFromPeers }): DaemonStatus {
  const now = Date.now()
  const metrics = node.metrics()
  const devices = new Map(node.trust.devices().map(d => [d.id, d]))
  const net = node.status?.()
  const paths = new Map((net?.peers ?? []).flatMap(p => p.path !== undefined ? [[p.id, p.path] as const] : []))
  const peers = node.peers().map(p => {
    const path = p.connected ? paths.get(p.id) : undefined
    const name = displayName(p)
    const d = devices.get(p.id)
    return {
      id: p.id,
      ...(name !== undefined ? { name } : {}),
      ...(node.trust.managed ? { access: accessOf(d ?? { admin: false, revoked: false, grants: [] }) } : {}),
      state: p.state,
      connected: p.connected,
      ...(path !== undefined ? { path } : {}),
      inSync: p.inSync,
      docCount: p.docCount,
      ...(p.bytes !== undefined ? { bytes: p.bytes } : {}),
      lastSeenMsAgo: Math.max(0, now - p.lastSeen)
    }
  })
  const connected = peers.filter(p => p.connected)
  const inSync = connected.every(p => p.inSync)
  const docsTotal = inSync ? metrics.docs : Math.max(metrics.docs, ...connected.map(p => p.docCount))
  const stored = metrics.storedBytes ?? 0
  const bytesTotal = inSync ? stored : Math.max(stored, ...connected.map(p => p.bytes ?? 0))
  return {
    id: node.id,
    name: node.trust.nameOf(node.id) ?? extra.name,
    version: extra.version,
    uptimeMs: now - extra.startedAt,
    endpoint: extra.endpoint,
    transport: extra.transport,
    peers,
    sync: {
      inSync,
      docsDone: metrics.docs,
      docsTotal,
      docsTotalExact: inSync,
      bytesDone: Math.min(stored, bytesTotal),
      bytesTotal,
      bytesReceived: extra.received?.bytes ?? 0,
      wireBytesReceived: metrics.bytesReceived,
      docsReceived: extra.received?.docs ?? 0,
      exchangesRunning: Math.max(0, metrics.exchangesStarted - metrics.exchangesCompleted - metrics.exchangesFailed)
    },
    discovery: discoveryOf(node, extra.transport),
    multiaddrs: node.multiaddrs?.() ?? [],
    network: networkOf(net),
    clients: extra.clients,
    problems: node.problems(),
    trust: node.trust.managed
      ? { managed: true, swarm: node.trust.swarm as string, access: accessOf(devices.get(node.id) ?? { admin: false, revoked: false, grants: [] }), devices: devices.size, agreeing: node.trust.agreeing().length }
      : { managed: false, devices: 0, agreeing: 0 },
    metrics
  }
}

function discoveryOf (node: DaemonNode, transport: string): DaemonStatus['discovery'] {
  if (node.discovery === undefined) return { mdns: 'unavailable', detail: `the ${transport} transport has no LAN discovery` }
  const d = node.discovery()
  // say it with the daemon's setting names
  if (d.mdns === 'disabled') return { ...d, detail: 'mDNS is turned off ("mdns": false in the config, or HEARSAY_MDNS / --mdns); peers come only from bootstrap' }
  return d
}

function networkOf (st: ReturnType<NonNullable<DaemonNode['status']>> | undefined): DaemonStatus['network'] {
  if (st === undefined) return undefined
  return {
    privateSwarm: st.privateSwarm,
    connections: st.connections,
    dials: st.peers.map(p => ({ id: p.id, source: p.source, connected: p.connected, dialFailures: p.dialFailures, ...(p.lastFailure !== undefined ? { lastFailure: p.lastFailure } : {}), ...(p.nextDialAt !== undefined ? { nextDialAt: p.nextDialAt } : {}), ...(p.refusedUntil !== undefined ? { refusedUntil: p.refusedUntil } : {}), unsupported: p.unsupported })),
    swarmMismatches: st.swarmMismatches ?? [],
    ...(st.relay !== undefined ? { relay: st.relay } : {})
  }
}

/** Human-readable `hearsay status`. */
export function formatStatus (s: DaemonStatus): string {
  const lines: string[] = []
  lines.push(`node      ${s.id} (${s.transport})  name ${JSON.stringify(s.name)}`)
  lines.push(`endpoint  ${s.endpoint}   up ${Math.round(s.uptimeMs / 1000)} s   ${s.clients.clients} client(s)`)
  for (const a of s.multiaddrs) lines.push(`listen    ${a}`)
  lines.push(`discovery ${s.discovery.mdns}: ${s.discovery.detail}`)
  if (s.network !== undefined) lines.push(`swarm     ${s.network.privateSwarm ? 'private (swarm key)' : 'open (no swarm key)'}  ${s.network.connections} connection(s)`)
  const relay = s.network?.relay
  if (relay?.serving === true) lines.push(`relay     serving this swarm's members: ${relay.reservationsServed} reservation(s)`)
  for (const r of relay?.relays ?? []) lines.push(`relay     ${r.id}  ${r.reserved ? 'reserved: members at other sites reach this node through it' : r.connected ? 'connected, no reservation yet' : 'not connected'}`)
  if (relay !== undefined && (relay.relays.length > 0 || relay.bytesSent + relay.bytesReceived > 0)) lines.push(`relayed   sent ${formatBytes(relay.bytesSent)}, received ${formatBytes(relay.bytesReceived)} through relays`)
  if (s.trust?.managed === true) lines.push(`roster    swarm ${s.trust.swarm ?? ''}  this device: ${s.trust.access ?? ''}  ${s.trust.devices} device(s)  (\`hearsay devices\` lists them)`)
  const alone = !s.peers.some(p => p.connected)
  // with peers out of sync, their counts only bound the total from below: no percentage then
  const docs = s.sync.docsTotalExact ? `docs ${s.sync.docsDone}/${s.sync.docsTotal}` : `docs ${s.sync.docsDone} here, at least ${s.sync.docsTotal} in the swarm`
  // sizes differ between replicas (compaction, merging): the total is always approximate
  const bytes = s.sync.bytesTotal === undefined ? '' : `  bytes ${formatBytes(Math.min(s.sync.bytesDone ?? 0, s.sync.bytesTotal))}/~${formatBytes(s.sync.bytesTotal)}`
  lines.push(`sync      ${alone ? 'no peer connected' : s.sync.inSync ? 'in sync' : 'syncing'}  ${docs}${bytes}  received ${formatBytes(s.sync.bytesReceived)} of updates to ${s.sync.docsReceived} doc(s) (${formatBytes(s.sync.wireBytesReceived)} on the wire)  exchanges running ${s.sync.exchangesRunning}`)
  if (s.peers.length === 0) lines.push('peers     none yet')
  for (const p of s.peers) {
    lines.push(`peer      ${p.id}  ${p.state.padEnd(7)}  ${p.connected ? `connected${p.path !== undefined ? ` (${p.path})` : ''}, ${p.inSync ? 'in sync' : 'NOT in sync'}` : 'not connected'}  ${p.docCount} doc(s)${p.bytes !== undefined ? ` (~${formatBytes(p.bytes)})` : ''}  seen ${Math.round(p.lastSeenMsAgo / 1000)} s ago${p.name !== undefined ? `  name ${JSON.stringify(p.name)}` : ''}${p.access !== undefined ? `  ${p.access}` : ''}`)
  }
  const known = new Set(s.peers.map(p => p.id))
  const mismatch = new Map((s.network?.swarmMismatches ?? []).map(m => [m.peer, m]))
  const keyHint = s.network?.privateSwarm === true ? 'it has another swarm key, or none' : 'it has a swarm key, this node none'
  for (const d of s.network?.dials ?? []) {
    if (known.has(d.id) && d.dialFailures === 0) continue
    const m = mismatch.get(d.id)
    mismatch.delete(d.id)
    const why = m !== undefined && !d.connected ? `swarm key mismatch (${keyHint}), ${d.dialFailures} failed dial(s)` : d.unsupported ? 'does not speak Hearsay' : d.dialFailures > 0 ? `${d.dialFailures} failed dial(s)${d.nextDialAt !== undefined ? `, next in ${Math.max(0, Math.round((d.nextDialAt - Date.now()) / 1000))} s` : ''}` : d.connected ? 'connected' : 'dialling'
    lines.push(`dial      ${d.id}  (${d.source}) ${why}`)
  }
  for (const m of mismatch.values()) {
    lines.push(`mismatch  ${m.peer}  swarm key mismatch (${keyHint}): ${m.count} connection(s), last ${Math.max(0, Math.round((Date.now() - m.lastAt) / 1000))} s ago`)
  }
  for (const p of s.problems) lines.push(`problem   ${p.kind}${p.docId !== '' ? ` ${p.docId}` : ''}: ${p.message}`)
  return lines.join('\n')
}

export function formatBytes (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
