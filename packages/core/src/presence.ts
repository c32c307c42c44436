/**
 * Presence: a y-protocols `Awareness` per document (cursors, selections, who is here), shared
 * with peers over the open sessions and never stored: not in storage, not in digests, not in
 * exchanges.
 *
 * - A change made on this node (the app's own state, or clients a daemon bridges in) goes at once
 *   to every connected peer that may read the document, in a Presence frame.
 * - A state from a peer is applied with y-protocols' rules (a higher clock wins), so a state seen
 *   twice changes nothing. With some member not connected (rumor mode, live.ts), what changed is
 *   passed on to the other peers, one hop further, up to `maxHops`.
 * - A new session gets every state this node knows at once.
 * - When a session closes, the states that peer brought are removed here (not passed on: the
 *   client may still be reachable through others, and its next renewal brings it back). States
 *   nobody renews expire after y-protocols' 30 s, on each node by itself.
 *
 * Everything from a peer is bounded: a state's size (decoder), clients per document, documents
 * held for peers, bytes in total, and states per second per peer. What is over a cap is dropped,
 * counted in `presenceDropped` and logged once a minute per reason; the session stays open.
 */
import * as encoding from 'lib0/encoding'
import { Awareness, applyAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness'
import * as Y from 'yjs'
import { utf8Length } from './bytes.js'
import type { Timers } from './clock.js'
import { PRESENCE_MAX_BYTES, PRESENCE_MAX_CLIENTS_PER_DOC, PRESENCE_MAX_DOCS, PRESENCE_MAX_STATE_BYTES, PRESENCE_STATES_BURST, PRESENCE_STATES_PER_SECOND } from './constants.js'
import { LogThrottle, type Log } from './logger.js'
import type { Counters } from './metrics.js'
import type { PeerTable } from './peers.js'
import { PeerRate } from './receive-limits.js'
import { FRAME_OVERHEAD, type PresenceEntry, type PresenceMessage, type PresenceState } from './protocol.js'
import type { Session } from './session.js'

/** Origin of states removed because the session that brought them closed: not passed on. */
const DISCONNECTED = Symbol('hearsay:presence:disconnected')
/** y-protocols' origin of states it expired. */
const TIMEOUT = 'timeout'

/** Origin of states applied from a peer. */
class FromPeer {
  constructor (readonly peerId: string, readonly hops: number, readonly relay: boolean, readonly bytes: Map<number, number>) {}
}

interface Room {
  docId: string
  awareness: Awareness
  /** Asked for on this node (`node.awareness`); otherwise held for peers only, and dropped once empty. */
  local: boolean
  /** Clients whose state came from a peer: which peer, and the bytes of its state. */
  remote: Map<number, { peerId: string, bytes: number }>
  off: () => void
}

type Changes = { added: number[], updated: number[], removed: number[] }

export interface PresenceDeps {
  peers: PeerTable
  log: Log
  counters: Counters
  timers: Timers
  /** Whether this node and the peer may both read the document. */
  readable: (peerId: string, docId: string) => boolean
  /** Whether presence from a peer is passed on to the others (some member is not connected). */
  relays: () => boolean
  /** Most hops presence travels. */
  maxHops: number
  /** The client id of the document if it is loaded (an Awareness shares its document's). */
  clientIdOf: (docId: string) => number | undefined
}

export class Presence {
  private readonly rooms = new Map<string, Room>()
  /** Rooms held for peers only. */
  private peerRooms = 0
  /** Bytes of states from peers held, in total. */
  private bytes = 0
  private readonly rate: PeerRate
  private readonly logs: LogThrottle
  private stopped = false

  constructor (private readonly d: PresenceDeps) {
    this.rate = new PeerRate(PRESENCE_STATES_PER_SECOND, PRESENCE_STATES_BURST, d.timers)
    this.logs = new LogThrottle(() => d.timers.now())
  }

  /** The document's Awareness, made on first use; kept until the node stops. */
  awareness (docId: string): Awareness {
    const room = this.rooms.get(docId)
    if (room === undefined) return this.open(docId, true).awareness
    if (!room.local) {
      // held for peers until now: it becomes this node's, as a new Awareness would be
      this.peerRooms--
      room.local = true
      const { awareness } = room
      const clientId = this.d.clientIdOf(docId)
      if (clientId !== undefined && !awareness.getStates().has(clientId)) awareness.clientID = clientId
      if (awareness.getLocalState() === null) awareness.setLocalState({})
    }
    return room.awareness
  }

  private open (docId: string, local: boolean): Room {
    const doc = new Y.Doc({ guid: docId })
    const clientId = this.d.clientIdOf(docId)
    if (clientId !== undefined) doc.clientID = clientId
    const awareness = new Awareness(doc)
    // held for peers only: this node has no presence of its own there
    if (!local) awareness.setLocalState(null)
    const room: Room = { docId, awareness, local, remote: new Map(), off: () => {} }
    const onUpdate = (changes: Changes, origin: unknown): void => { this.changed(room, changes, origin) }
    awareness.on('update', onUpdate)
    room.off = () => {
      awareness.off('update', onUpdate)
      awareness.destroy()
      doc.destroy()
    }
    this.rooms.set(docId, room)
    if (!local) this.peerRooms++
    return room
  }

  /** A room's states changed: keep track of what peers brought, and send what changed here (or pass on). */
  private changed (room: Room, { added, updated, removed }: Changes, origin: unknown): void {
    for (const id of removed) this.untrack(room, id)
    if (origin instanceof FromPeer) {
      for (const id of added.concat(updated)) {
        this.untrack(room, id)
        const bytes = origin.bytes.get(id) ?? 0
        room.remote.set(id, { peerId: origin.peerId, bytes })
        this.bytes += bytes
      }
      if (origin.hops < this.d.maxHops && (origin.relay || this.d.relays())) this.send(room, added.concat(updated, removed), origin.hops + 1, true, origin.peerId)
      return
    }
    if (origin === DISCONNECTED || origin === TIMEOUT) return
    for (const id of added.concat(updated)) this.untrack(room, id)
    this.send(room, added.concat(updated, removed), 1, this.d.relays(), undefined)
  }

  private untrack (room: Room, clientId: number): void {
    const r = room.remote.get(clientId)
    if (r === undefined) return
    this.bytes -= r.bytes
    room.remote.delete(clientId)
  }

  /** The states of `clients` as sent on the wire; states too large to share are left out (logged). */
  private statesOf (room: Room, clients: number[]): PresenceState[] {
    const { awareness } = room
    const out: PresenceState[] = []
    for (const clientID of clients) {
      const meta = awareness.meta.get(clientID)
      if (meta === undefined) continue
      const value = awareness.getStates().get(clientID)
      const state = JSON.stringify(value ?? null)
      if (state.length > PRESENCE_MAX_STATE_BYTES / 3 && utf8Length(state) > PRESENCE_MAX_STATE_BYTES) {
        this.note('oversized', `presence state of client ${clientID} in "${room.docId}" is larger than ${PRESENCE_MAX_STATE_BYTES} bytes: not shared with peers`)
        continue
      }
      out.push({ clientID, clock: meta.clock, state })
    }
    return out
  }

  /** Send the states of `clients` to every open session that may read the room's document, except `except`. */
  private send (room: Room, clients: number[], hops: number, relay: boolean, except: string | undefined): void {
    if (this.stopped || clients.length === 0) return
    let states: PresenceState[] | undefined
    for (const p of this.d.peers.connected()) {
      if (p.id === except || !this.d.readable(p.id, room.docId)) continue
      states ??= this.statesOf(room, clients)
      if (states.length === 0) return
      this.sendEntries(p.session as Session, hops, relay, [{ docId: room.docId, states }])
    }
  }

  /**
   * A session opened: the peer gets at once every state we know of the documents it may read:
   * those of this node's own clients with `hops` 1, those that came from other peers with 2. A
   * receiver credits a state to the peer that sent it with `hops` 1 (its own client) whatever it
   * held before, so on a full mesh each state stays with the session of the node it comes from,
   * and goes when that session closes.
   */
  opened (session: Session): void {
    const own: PresenceEntry[] = []
    const relayed: PresenceEntry[] = []
    for (const room of this.rooms.values()) {
      if (room.awareness.getStates().size === 0 || !this.d.readable(session.remoteId, room.docId)) continue
      const ids = [...room.awareness.getStates().keys()]
      const mine = this.statesOf(room, ids.filter(id => !room.remote.has(id)))
      const others = this.statesOf(room, ids.filter(id => room.remote.has(id)))
      if (mine.length > 0) own.push({ docId: room.docId, states: mine })
      if (others.length > 0) relayed.push({ docId: room.docId, states: others })
    }
    const relay = this.d.relays()
    this.sendEntries(session, 1, relay, own)
    this.sendEntries(session, 2, relay, relayed)
  }

  /**
   * Send entries in frames that fit the session, at most `PRESENCE_MAX_CLIENTS_PER_DOC` states
   * per entry (what a peer's decoder takes); a state too large for any frame is left out.
   */
  private sendEntries (session: Session, hops: number, relay: boolean, entries: PresenceEntry[]): void {
    const budget = session.frameLimit - FRAME_OVERHEAD - 16
    let batch: PresenceEntry[] = []
    let size = 0
    let current: PresenceEntry | undefined
    const flush = (): void => {
      if (batch.length > 0 && session.sendPresence(hops, relay, batch)) this.d.counters.presenceSent += batch.reduce((n, e) => n + e.states.length, 0)
      batch = []
      size = 0
      current = undefined
    }
    for (const { docId, states } of entries) {
      const head = docId.length * 3 + 8
      current = undefined
      for (const st of states) {
        const n = st.state.length * 3 + 24
        if (n + head > budget) continue
        if (current === undefined || current.states.length >= PRESENCE_MAX_CLIENTS_PER_DOC || size + n > budget) {
          if (size + n + head > budget) flush()
          current = { docId, states: [] }
          batch.push(current)
          size += head
        }
        current.states.push(st)
        size += n
      }
    }
    flush()
  }

  /** A Presence frame from a peer (decoded strictly): applied within the caps. */
  received (session: Session, msg: PresenceMessage): void {
    if (this.stopped) return
    const peerId = session.remoteId
    for (const { docId, states } of msg.entries) {
      if (!this.d.readable(peerId, docId)) {
        this.drop(states.length, 'unreadable', `presence from ${peerId} for "${docId}", which it or this node may not read: dropped`)
        continue
      }
      if (!this.rate.take(peerId, states.length)) {
        this.drop(states.length, 'rate', `presence from ${peerId} over ${PRESENCE_STATES_PER_SECOND} states a second: dropped`)
        continue
      }
      let room = this.rooms.get(docId)
      if (room === undefined) {
        if (this.peerRooms >= PRESENCE_MAX_DOCS) {
          this.drop(states.length, 'docs', `presence for more than ${PRESENCE_MAX_DOCS} documents from peers: "${docId}" dropped`)
          continue
        }
        room = this.open(docId, false)
      }
      this.apply(room, peerId, msg.hops, msg.relay, states)
    }
  }

  private apply (room: Room, peerId: string, hops: number, relay: boolean, states: PresenceState[]): void {
    const known = room.awareness.getStates()
    const encoder = encoding.createEncoder()
    const bytes = new Map<number, number>()
    let clients = known.size
    let total = this.bytes
    const accepted: PresenceState[] = []
    for (const st of states) {
      const size = st.state === 'null' ? 0 : st.state.length
      const isNew = !known.has(st.clientID) && size > 0
      const before = room.remote.get(st.clientID)?.bytes ?? 0
      if (isNew && clients >= PRESENCE_MAX_CLIENTS_PER_DOC) {
        this.drop(1, 'clients', `more than ${PRESENCE_MAX_CLIENTS_PER_DOC} presence clients in "${room.docId}": a state from ${peerId} dropped`)
        continue
      }
      if (total - before + size > PRESENCE_MAX_BYTES) {
        this.drop(1, 'bytes', `presence from peers holds ${PRESENCE_MAX_BYTES} bytes: a state from ${peerId} dropped`)
        continue
      }
      if (isNew) clients++
      total += size - before
      bytes.set(st.clientID, size)
      accepted.push(st)
    }
    if (accepted.length === 0) return
    encoding.writeVarUint(encoder, accepted.length)
    for (const st of accepted) {
      encoding.writeVarUint(encoder, st.clientID)
      encoding.writeVarUint(encoder, st.clock)
      encoding.writeVarString(encoder, st.state)
    }
    this.d.counters.presenceReceived += accepted.length
    applyAwarenessUpdate(room.awareness, encoding.toUint8Array(encoder), new FromPeer(peerId, hops, relay, bytes))
    // the sender's own clients are its to answer for, even when another peer told us of them first
    if (hops === 1) {
      for (const st of accepted) {
        const r = room.remote.get(st.clientID)
        if (r !== undefined && r.peerId !== peerId) r.peerId = peerId
      }
    }
  }

  private drop (n: number, reason: string, message: string): void {
    this.d.counters.presenceDropped += n
    this.note(reason, message)
  }

  /** Log once a minute per reason. */
  private note (reason: string, message: string): void {
    if (!this.logs.allows(reason)) return
    this.d.log.warn('%s (further ones are counted in presenceDropped, logged once a minute)', message)
  }

  /** A session closed: the states its peer brought go (here only). */
  closed (peerId: string): void {
    for (const room of [...this.rooms.values()]) {
      const gone: number[] = []
      for (const [id, r] of room.remote) if (r.peerId === peerId) gone.push(id)
      if (gone.length > 0) removeAwarenessStates(room.awareness, gone, DISCONNECTED)
    }
  }

  /** Rooms held for peers that have no state left are dropped (each gossip round). */
  sweep (): void {
    for (const room of [...this.rooms.values()]) {
      if (room.local || room.awareness.getStates().size > 0) continue
      room.off()
      this.rooms.delete(room.docId)
      this.peerRooms--
    }
  }

  /** The peer was forgotten. */
  forget (peerId: string): void {
    this.rate.forget(peerId)
  }

  /** Presence held right now: documents, and states from peers with their bytes. */
  get size (): { docs: number, remoteStates: number, remoteBytes: number } {
    let remoteStates = 0
    for (const r of this.rooms.values()) remoteStates += r.remote.size
    return { docs: this.rooms.size, remoteStates, remoteBytes: this.bytes }
  }

  stop (): void {
    this.stopped = true
    for (const room of this.rooms.values()) room.off()
    this.rooms.clear()
    this.peerRooms = 0
    this.bytes = 0
  }
}
