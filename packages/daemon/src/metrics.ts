/**
 * `GET /metrics`: the daemon's Prometheus registry (`prom-client`). Every metric is read from its
 * source when scraped: the node's counters, the transport's status (relays, paths), the y-websocket
 * rooms and the daemon's own count of updates from peers.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { DaemonNode, RelayReport } from './status.js'
import type { YWebsocketRooms } from './ywebsocket.js'

export interface MetricsSources {
  node: DaemonNode
  rooms: Pick<YWebsocketRooms, 'snapshot'>
  /** Bytes of document updates applied from peers, counted by the daemon. */
  fromPeers: { bytes: number }
  startedAt: number
}

export function daemonMetrics ({ node, rooms, fromPeers, startedAt }: MetricsSources): Registry {
  const registry = new Registry()
  const metric = (name: string, help: string, kind: 'counter' | 'gauge', value: () => number): void => {
    if (kind === 'counter') {
      // eslint-disable-next-line no-new
      new Counter({ name, help, registers: [registry], collect () { this.reset(); this.inc(value()) } })
    } else {
      // eslint-disable-next-line no-new
      new Gauge({ name, help, registers: [registry], collect () { this.set(value()) } })
    }
  }
  const m = (): ReturnType<typeof node.metrics> => node.metrics()
  metric('hearsay_bytes_sent_total', 'Bytes sent to peers', 'counter', () => m().bytesSent)
  metric('hearsay_bytes_received_total', 'Bytes received from peers', 'counter', () => m().bytesReceived)
  metric('hearsay_update_bytes_received_total', 'Bytes of document updates applied from peers', 'counter', () => fromPeers.bytes)
  metric('hearsay_messages_sent_total', 'Frames sent to peers', 'counter', () => m().messagesSent)
  metric('hearsay_messages_received_total', 'Frames received from peers', 'counter', () => m().messagesReceived)
  metric('hearsay_frames_rejected_total', 'Frames from peers that failed to decode', 'counter', () => m().framesRejected)
  metric('hearsay_gossip_entries_rejected_total', 'Cluster state entries from peers dropped by the trust rules (implausible, forged or over a limit)', 'counter', () => m().gossipEntriesRejected)
  metric('hearsay_docs_refused_total', 'New documents from peers refused by the per-peer creation quota (a later exchange brings them)', 'counter', () => m().docsRefused)
  metric('hearsay_receive_aborts_total', 'Exchanges aborted because the receive buffer was full (retried later)', 'counter', () => m().receiveAborts)
  metric('hearsay_sessions_stalled_total', 'Peer sessions closed because the peer stopped reading', 'counter', () => m().stalledSessions)
  metric('hearsay_session_faults_total', 'Peer sessions closed because handling their input threw (each is logged)', 'counter', () => m().sessionFaults)
  metric('hearsay_timer_faults_total', 'Exceptions caught in the node\'s timers (each is logged)', 'counter', () => m().timerFaults)
  metric('hearsay_statements_refused_total', 'Roster statements refused: malformed, forged, unauthorised, or a used invite (TRUST.md)', 'counter', () => m().statementsRefused)
  metric('hearsay_updates_refused_total', 'Updates from peers refused because the roster does not let them write the document', 'counter', () => m().updatesRefused)
  metric('hearsay_revoked_sessions_total', 'Sessions refused or closed because the device is revoked', 'counter', () => m().revokedSessions)
  metric('hearsay_local_edits_unshared_total', 'Local changes to documents this device may not write (they stay on this device)', 'counter', () => m().localEditsUnshared)
  metric('hearsay_presence_sent_total', 'Presence (awareness) states sent to peers', 'counter', () => m().presenceSent)
  metric('hearsay_presence_received_total', 'Presence (awareness) states received from peers and applied', 'counter', () => m().presenceReceived)
  metric('hearsay_presence_dropped_total', 'Presence states from peers dropped by a rate, client, document or byte cap', 'counter', () => m().presenceDropped)
  metric('hearsay_acks_sent_total', 'Reports on held documents sent to peers that watch them', 'counter', () => m().acksSent)
  metric('hearsay_live_updates_sent_total', 'Live updates sent', 'counter', () => m().liveUpdatesSent)
  metric('hearsay_live_updates_received_total', 'Live updates received', 'counter', () => m().liveUpdatesReceived)
  metric('hearsay_live_frames_shed_total', 'Live frames not sent because a peer fell behind (an exchange repairs them)', 'counter', () => m().liveFramesShed)
  metric('hearsay_live_frames_dropped_total', 'Live frames from peers dropped while earlier ones were applied (an exchange repairs them)', 'counter', () => m().liveFramesDropped)
  metric('hearsay_exchanges_completed_total', 'Anti-entropy exchanges completed', 'counter', () => m().exchangesCompleted)
  metric('hearsay_exchanges_failed_total', 'Anti-entropy exchanges failed', 'counter', () => m().exchangesFailed)
  metric('hearsay_docs_received_total', 'Documents received in exchanges', 'counter', () => m().docsReceived)
  metric('hearsay_docs', 'Documents with content', 'gauge', () => m().docs)
  metric('hearsay_stored_bytes', 'Bytes of documents stored (an estimate, see status sync.bytesDone)', 'gauge', () => m().storedBytes)
  metric('hearsay_docs_quarantined', 'Documents whose stored data could not be read (see status problems)', 'gauge', () => m().docsQuarantined)
  metric('hearsay_docs_lost', 'Documents the store lost since the last clean close, found at open and not yet restored by a peer (see status problems)', 'gauge', () => m().docsLost)
  metric('hearsay_docs_in_memory', 'Documents loaded in memory', 'gauge', () => m().docsInMemory)
  metric('hearsay_peers_connected', 'Connected peers', 'gauge', () => node.peers().filter(p => p.connected).length)
  metric('hearsay_peers_in_sync', 'Connected peers whose digest equals ours', 'gauge', () => node.peers().filter(p => p.connected && p.inSync).length)
  metric('hearsay_websocket_clients', 'y-websocket clients connected to this daemon', 'gauge', () => rooms.snapshot().clients)
  const relay = (): RelayReport | undefined => node.status?.().relay
  metric('hearsay_relayed_bytes_sent_total', 'Bytes sent to peers over relayed connections (RELAY.md)', 'counter', () => relay()?.bytesSent ?? 0)
  metric('hearsay_relayed_bytes_received_total', 'Bytes received from peers over relayed connections', 'counter', () => relay()?.bytesReceived ?? 0)
  metric('hearsay_relay_reservations', 'Relays this device holds a reservation on', 'gauge', () => relay()?.relays.filter(r => r.reserved).length ?? 0)
  metric('hearsay_relay_reservations_served', 'On a relay: members holding a reservation on it', 'gauge', () => relay()?.reservationsServed ?? 0)
  metric('hearsay_peers_relayed', 'Connected peers reached through a relay', 'gauge', () => (node.status?.().peers ?? []).filter(p => p.path === 'relayed').length)
  // eslint-disable-next-line no-new
  new Counter({
    name: 'hearsay_websocket_clients_closed_total',
    help: 'y-websocket clients the endpoint closed: slow (fell behind), too_large (message too big), bad_message',
    labelNames: ['reason'],
    registers: [registry],
    collect () {
      this.reset()
      for (const [reason, n] of Object.entries(rooms.snapshot().closed)) this.inc({ reason }, n)
    }
  })
  metric('hearsay_uptime_seconds', 'Seconds since the daemon started', 'gauge', () => (Date.now() - startedAt) / 1000)
  return registry
}
