/**
 * The messages about the moment, never stored: Presence (presence.ts) and Ack (acks.ts). Part of
 * the wire protocol of protocol.ts; the grammar is in ../PROTOCOL.md.
 */
import { Reader, Writer } from './bytes.js'
import { MAX_WIRE_COUNTER, PRESENCE_MAX_CLIENTS_PER_DOC, PRESENCE_MAX_STATE_BYTES } from './constants.js'
import { FrameError } from './errors.js'
import { MessageType, frame, readDocId } from './frame.js'

/** One client's presence (a y-protocols awareness entry): `state` is its JSON, `null` when it left. */
export interface PresenceState { clientID: number, clock: number, state: string }
export interface PresenceEntry { docId: string, states: PresenceState[] }
/**
 * Presence (presence.ts), never stored. `hops` counts the nodes it passed through: 1 for states of
 * the sender's own clients, more for states it passes on. `relay`: the states' origin asks
 * receivers to pass them on (some member is not connected to it).
 */
export interface PresenceMessage { type: typeof MessageType.Presence, hops: number, relay: boolean, entries: PresenceEntry[] }

/** A state vector: each Yjs client's count of operations. */
export type StateVector = Map<number, number>
/**
 * Acknowledgements (acks.ts): `watch` asks the peer to report what it holds of these documents
 * while the session lasts (and at once), `unwatch` ends that, `held` is the report: for each
 * document the state vector applied in memory and, when known, the one held in storage.
 */
export type AckKind = 'watch' | 'unwatch' | 'held'
export interface HeldDoc { docId: string, applied: StateVector, stored: StateVector | undefined }
export type AckBody = { kind: 'watch' | 'unwatch', docIds: string[] } | { kind: 'held', held: HeldDoc[] }
export type AckMessage = AckBody & { type: typeof MessageType.Ack }

const ACK_KINDS: AckKind[] = ['watch', 'unwatch', 'held']
const HELD_STORED_SAME = 1
const HELD_STORED_KNOWN = 2
/** Largest Yjs client id (they are 32-bit). */
const MAX_CLIENT_ID = 0xffffffff

const PRESENCE_RELAY = 1

export function encodePresence (hops: number, relay: boolean, entries: PresenceEntry[]): Uint8Array {
  if (!Number.isInteger(hops) || hops < 1 || hops > 255) throw new RangeError(`presence hops must be 1..255, got ${hops}`)
  let size = 9
  for (const e of entries) for (const st of e.states) size += st.state.length * 3 + 24 + e.docId.length * 3
  return frame(MessageType.Presence, w => {
    w.u8(hops).u8(relay ? PRESENCE_RELAY : 0).varuint(entries.length)
    for (const e of entries) {
      w.string(e.docId).varuint(e.states.length)
      for (const st of e.states) w.varuint(st.clientID).varuint(st.clock).string(st.state)
    }
  }, size)
}

function writeVector (w: Writer, sv: StateVector): void {
  w.varuint(sv.size)
  for (const [client, clock] of sv) w.varuint(client).varuint(clock)
}

export function encodeAck (m: AckBody): Uint8Array {
  return frame(MessageType.Ack, w => {
    w.u8(ACK_KINDS.indexOf(m.kind) + 1)
    if (m.kind !== 'held') {
      w.varuint(m.docIds.length)
      for (const id of m.docIds) w.string(id)
      return
    }
    w.varuint(m.held.length)
    for (const h of m.held) {
      const same = h.stored !== undefined && sameVector(h.applied, h.stored)
      w.string(h.docId).u8(same ? HELD_STORED_SAME : h.stored !== undefined ? HELD_STORED_KNOWN : 0)
      writeVector(w, h.applied)
      if (!same && h.stored !== undefined) writeVector(w, h.stored)
    }
  }, m.kind === 'held' ? m.held.reduce((n, h) => n + heldSizeEstimate(h), 16) : m.docIds.reduce((n, id) => n + id.length * 3 + 4, 16))
}

/** An upper bound of the bytes a held report takes in an Ack frame. */
export function heldSizeEstimate (h: HeldDoc): number {
  return h.docId.length * 3 + 4 + 1 + 8 + (h.applied.size + (h.stored?.size ?? 0)) * 16 + 8
}

function sameVector (a: StateVector, b: StateVector): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}

function readVector (r: Reader): StateVector {
  const n = r.varuint('state vector length')
  if (n > r.remaining) throw new FrameError(`malformed state vector: ${n} clients cannot fit in ${r.remaining} bytes`)
  const sv: StateVector = new Map()
  for (let i = 0; i < n; i++) {
    const client = r.varuint('client id', MAX_CLIENT_ID)
    if (sv.has(client)) throw new FrameError(`malformed state vector: client ${client} twice`)
    sv.set(client, r.varuint('clock', MAX_WIRE_COUNTER))
  }
  return sv
}

/** A presence state must be JSON of an object, or `null` (the client left). */
function readPresenceState (r: Reader): PresenceState {
  const clientID = r.varuint('presence client id', MAX_CLIENT_ID)
  const clock = r.varuint('presence clock', MAX_WIRE_COUNTER)
  const state = r.string('presence state', PRESENCE_MAX_STATE_BYTES)
  let value: unknown
  try {
    value = JSON.parse(state)
  } catch {
    throw new FrameError(`malformed presence state of client ${clientID}: not JSON`)
  }
  if (typeof value !== 'object' || Array.isArray(value)) throw new FrameError(`malformed presence state of client ${clientID}: not an object or null`)
  return { clientID, clock, state }
}

/** A Presence payload after its `hops`: flags and entries. */
export function readPresence (r: Reader): { relay: boolean, entries: PresenceEntry[] } {
  const flags = r.u8('presence flags')
  if ((flags & ~PRESENCE_RELAY) !== 0) throw new FrameError(`malformed presence flags: ${flags}`)
  return { relay: flags === PRESENCE_RELAY, entries: readPresenceEntries(r) }
}

function readPresenceEntries (r: Reader): PresenceEntry[] {
  const n = r.varuint('presence entry count')
  if (n > r.remaining) throw new FrameError(`malformed presence frame: ${n} entries cannot fit in ${r.remaining} bytes`)
  const entries: PresenceEntry[] = []
  for (let i = 0; i < n; i++) {
    const docId = readDocId(r)
    const count = r.varuint('presence state count', PRESENCE_MAX_CLIENTS_PER_DOC)
    const states: PresenceState[] = []
    for (let j = 0; j < count; j++) states.push(readPresenceState(r))
    entries.push({ docId, states })
  }
  return entries
}

export function readAck (r: Reader): AckMessage {
  const k = r.u8('ack kind')
  const kind = ACK_KINDS[k - 1]
  if (kind === undefined) throw new FrameError(`unknown ack kind ${k}`)
  const n = r.varuint('ack entry count')
  if (n > r.remaining) throw new FrameError(`malformed ack frame: ${n} entries cannot fit in ${r.remaining} bytes`)
  if (kind !== 'held') {
    const docIds: string[] = []
    for (let i = 0; i < n; i++) docIds.push(readDocId(r))
    return { type: MessageType.Ack, kind, docIds }
  }
  const held: HeldDoc[] = []
  for (let i = 0; i < n; i++) {
    const docId = readDocId(r)
    const flags = r.u8('held flags')
    if ((flags & ~(HELD_STORED_SAME | HELD_STORED_KNOWN)) !== 0 || flags === (HELD_STORED_SAME | HELD_STORED_KNOWN)) throw new FrameError(`malformed held flags: ${flags}`)
    const applied = readVector(r)
    const stored = flags === HELD_STORED_SAME ? applied : flags === HELD_STORED_KNOWN ? readVector(r) : undefined
    held.push({ docId, applied, stored })
  }
  return { type: MessageType.Ack, kind, held }
}
