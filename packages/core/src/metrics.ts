/**
 * The node's counters and its `metrics()` view. Every subsystem increments the one `Counters`
 * object it is given; `NodeMetrics` adds the gauges read from documents, peers and flow control.
 */

export interface Counters {
  bytesSent: number
  bytesReceived: number
  messagesSent: number
  messagesReceived: number
  framesRejected: number
  liveUpdatesSent: number
  liveUpdatesReceived: number
  liveFramesShed: number
  /** Received live and rumor frames dropped past `receiveQueueBytes` (an exchange repairs them). */
  liveFramesDropped: number
  /** Updates sent in rumors, first-hand and forwarded. */
  rumorUpdatesSent: number
  rumorUpdatesReceived: number
  exchangesStarted: number
  exchangesCompleted: number
  exchangesFailed: number
  docsSent: number
  docsReceived: number
  /**
   * Untyped exceptions (bugs) raised while handling a peer's input, caught by the last-resort
   * guard (guard.ts): each closed only that peer's session.
   */
  sessionFaults: number
  /** New documents from peers refused by the creation quota (receive-limits.ts); a later exchange brings them. */
  docsRefused: number
  /** Exchanges aborted because a receive limit was reached (queued frames or half-received updates); retried later. */
  receiveAborts: number
  /** Sessions closed because the peer stopped reading (its backlog passed 2 × sendQueueBytes). */
  stalledSessions: number
  /** Live updates dropped from retry queues that overflowed. */
  retryQueueOverflows: number
  /** Times a peer's flow control window was halved because frames waited too long. */
  flowCongestions: number
  /** Outboxes of held-back updates that overflowed (anti-entropy repaired instead). */
  flowOutboxOverflows: number
  /** Cluster state entries from peers dropped by the trust rules (cluster.ts): implausible, forged or over a limit. */
  gossipEntriesRejected: number
  /** Exceptions caught by the last-resort guard (guard.ts) in the node's timers; each is logged. */
  timerFaults: number
  /** Roster statements taken (trust.ts). */
  statementsAccepted: number
  /** Roster statements refused: malformed, forged, of another swarm, unauthorised, or a used invite. */
  statementsRefused: number
  /** Updates from peers refused because the peer may not write the document (before anything was touched). */
  updatesRefused: number
  /** Sessions refused or closed because the device is revoked. */
  revokedSessions: number
  /** Local changes to documents the roster does not let this device write: they stay on this device. */
  localEditsUnshared: number
  /** Presence (awareness) states sent to peers, and received and applied from them (presence.ts). */
  presenceSent: number
  presenceReceived: number
  /** Presence states from peers dropped: over the rate, client, document or byte caps. */
  presenceDropped: number
  /** Reports on held documents sent to peers that watch them, and received from peers we watch (acks.ts). */
  acksSent: number
  acksReceived: number
}

export interface NodeMetrics extends Counters {
  /** Documents with content. */
  docs: number
  /** Documents currently in memory. */
  docsInMemory: number
  /** Documents read from storage into a Y.Doc since start. */
  docsLoaded: number
  /** Exchange answers computed from stored updates without loading the document. */
  docsReadStored: number
  /**
   * Bytes of document updates stored: the sizes the store listed at start plus what was appended
   * since, set again to what the store holds whenever a document's updates are read (loaded, or
   * an exchange answered from storage). The store's own compaction is seen only then, so this can
   * overstate it.
   */
  storedBytes: number
  /** Documents quarantined because their stored data cannot be read back (see `problems()`). */
  docsQuarantined: number
  /**
   * Documents the store found lost when it opened (see `problems()`, kind `missing` or
   * `damaged`); a missing one stops counting once it is stored again (restored by a peer).
   */
  docsLost: number
  sessions: number
  /** Bytes of live updates held back for slow peers right now. */
  flowHeldBytes: number
}

export function createCounters (): Counters {
  return {
    bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0, framesRejected: 0, liveUpdatesSent: 0, liveUpdatesReceived: 0,
    liveFramesShed: 0, liveFramesDropped: 0, rumorUpdatesSent: 0, rumorUpdatesReceived: 0, exchangesStarted: 0, exchangesCompleted: 0,
    exchangesFailed: 0, docsSent: 0, docsReceived: 0, sessionFaults: 0, docsRefused: 0, receiveAborts: 0, stalledSessions: 0,
    retryQueueOverflows: 0, flowCongestions: 0, flowOutboxOverflows: 0, gossipEntriesRejected: 0, timerFaults: 0,
    statementsAccepted: 0, statementsRefused: 0, updatesRefused: 0, revokedSessions: 0, localEditsUnshared: 0,
    presenceSent: 0, presenceReceived: 0, presenceDropped: 0, acksSent: 0, acksReceived: 0
  }
}
