/**
 * The wire protocol: numbered message types with paired encode/decode functions.
 * The grammar is written down in ../PROTOCOL.md; keep the two in step.
 *
 * Frame: version:u8 type:u8 payload crc32:u32be (CRC over version, type and payload).
 */
import { Reader, Writer, crc32 } from './bytes.js'
import { MAX_ANNOUNCED_FRAME_BYTES, MAX_DOC_ID_BYTES, MAX_ROSTER_STATEMENTS, MAX_STATEMENT_BYTES, MAX_WIRE_COUNT, MAX_WIRE_COUNTER, PROTOCOL_VERSION } from './constants.js'
import { FrameError, FrameTooLargeError, ProtocolVersionError } from './errors.js'
import { FRAME_OVERHEAD, MessageType, frame, readDocId } from './frame.js'

export { FRAME_OVERHEAD, MessageType } from './frame.js'

export const ItemKind = {
  RangeFingerprint: 1,
  RangeList: 2,
  DocRequest: 3,
  DocUpdate: 4,
  Abort: 5
} as const

export type AntiEntropyMode = 'push' | 'pull' | 'push-pull'
const MODES: AntiEntropyMode[] = ['push', 'pull', 'push-pull']

/** Length of a document fingerprint and of a digest range fingerprint. */
export const FINGERPRINT_BYTES = 16
/** Deepest digest prefix, in nibbles (the document key is 8 bytes). */
export const MAX_PREFIX_DEPTH = 16

/** A digest tree position: the first `depth` nibbles of a document key. */
export interface Prefix { depth: number, bits: Uint8Array }

export interface HelloMessage {
  type: typeof MessageType.Hello
  nodeId: string
  maxFrameBytes: number
  root: Uint8Array
  docCount: number
}

export interface LiveEntry { docId: string, update: Uint8Array }
export interface LiveMessage { type: typeof MessageType.Live, entries: LiveEntry[] }

export interface ListedDoc { docId: string, fingerprint: Uint8Array, stateVector: Uint8Array }

export type SyncItem =
  | { kind: typeof ItemKind.RangeFingerprint, prefix: Prefix, fingerprint: Uint8Array, count: number }
  | { kind: typeof ItemKind.RangeList, prefix: Prefix, docs: ListedDoc[] }
  | { kind: typeof ItemKind.DocRequest, docId: string, stateVector: Uint8Array, fingerprint: Uint8Array }
  | { kind: typeof ItemKind.DocUpdate, docId: string, update: Uint8Array, partial: boolean }
  | { kind: typeof ItemKind.Abort, reason: string }

export interface SyncMessage {
  type: typeof MessageType.Sync
  exchangeId: number
  /** Sent by the side that started the exchange. */
  fromInitiator: boolean
  /** More frames of this message follow; the peer answers only after the last one. */
  more: boolean
  mode: AntiEntropyMode
  items: SyncItem[]
}

/** Updates spread by rumor mongering; `hops` counts the nodes it passed through (1 from its origin). */
export interface RumorMessage { type: typeof MessageType.Rumor, hops: number, entries: LiveEntry[] }
/** Cluster state (cluster.ts): a member's highest known version, and one owned entry. */
/** `generation` names one run of the owner (a restarted node has a higher one); `version` counts within it. */
export interface GossipDigestEntry { nodeId: string, generation: number, version: number }
export interface GossipEntry { nodeId: string, generation: number, key: string, value: Uint8Array, version: number }
/** Scuttlebutt: `request` asks for the peer's digest and the entries we lack; `answer` asks only for the entries. */
export interface GossipMessage {
  type: typeof MessageType.Gossip
  request: boolean
  answer: boolean
  digest: GossipDigestEntry[]
  entries: GossipEntry[]
}
export interface StatusMessage { type: typeof MessageType.Status, root: Uint8Array, docCount: number }
export interface CloseMessage { type: typeof MessageType.Close, reason: string }

/**
 * Roster spreading (trust.ts): `ask` carries the sender's roster summary and asks for every
 * statement if ours differs; `answer` is the summary sent back with them; `statements` carries
 * statements (with the sender's summary).
 */
export type RosterKind = 'ask' | 'answer' | 'statements'
export interface RosterMessage { type: typeof MessageType.Roster, kind: RosterKind, hash: Uint8Array, count: number, statements: Uint8Array[] }

import { readAck, readPresence, type AckMessage, type PresenceMessage } from './protocol-ephemeral.js'
export type { AckBody, AckKind, AckMessage, HeldDoc, PresenceEntry, PresenceMessage, PresenceState, StateVector } from './protocol-ephemeral.js'
export { encodeAck, encodePresence, heldSizeEstimate } from './protocol-ephemeral.js'

const ROSTER_KINDS: RosterKind[] = ['ask', 'answer', 'statements']

export type Message = HelloMessage | LiveMessage | SyncMessage | StatusMessage | CloseMessage | RumorMessage | GossipMessage | RosterMessage | PresenceMessage | AckMessage
const GOSSIP_REQUEST = 1
const GOSSIP_ANSWER = 2
/** Longest cluster state key, in UTF-8 bytes. */
export const MAX_GOSSIP_KEY_BYTES = 64

const SYNC_FROM_INITIATOR = 1
const SYNC_MORE = 2
const UPDATE_PARTIAL = 1

function writePrefix (w: Writer, p: Prefix): void {
  w.u8(p.depth).raw(p.bits.subarray(0, Math.ceil(p.depth / 2)))
}

function readPrefix (r: Reader): Prefix {
  const depth = r.u8('prefix depth')
  if (depth > MAX_PREFIX_DEPTH) throw new FrameError(`malformed prefix: depth ${depth} exceeds ${MAX_PREFIX_DEPTH}`)
  const bits = new Uint8Array(8)
  bits.set(r.raw(Math.ceil(depth / 2), 'prefix'))
  if (depth % 2 === 1 && ((bits[(depth - 1) >> 1] as number) & 0x0f) !== 0) throw new FrameError('malformed prefix: bits set past its depth')
  return { depth, bits }
}

export function encodeHello (m: Omit<HelloMessage, 'type'>): Uint8Array {
  return frame(MessageType.Hello, w => w.string(m.nodeId).varuint(m.maxFrameBytes).raw(m.root).varuint(m.docCount))
}

export function encodeLive (entries: LiveEntry[]): Uint8Array {
  let size = 8
  for (const e of entries) size += e.docId.length * 3 + e.update.length + 10
  return frame(MessageType.Live, w => {
    w.varuint(entries.length)
    for (const e of entries) w.string(e.docId).bytes(e.update)
  }, size)
}

export function encodeRumor (hops: number, entries: LiveEntry[]): Uint8Array {
  if (!Number.isInteger(hops) || hops < 1 || hops > 255) throw new RangeError(`rumor hops must be 1..255, got ${hops}`)
  let size = 9
  for (const e of entries) size += e.docId.length * 3 + e.update.length + 10
  return frame(MessageType.Rumor, w => {
    w.u8(hops).varuint(entries.length)
    for (const e of entries) w.string(e.docId).bytes(e.update)
  }, size)
}

export function encodeGossip (m: Omit<GossipMessage, 'type'>): Uint8Array {
  let size = 16
  for (const d of m.digest) size += d.nodeId.length * 3 + 20
  for (const e of m.entries) size += e.nodeId.length * 3 + e.key.length * 3 + e.value.length + 40
  return frame(MessageType.Gossip, w => {
    w.u8((m.request ? GOSSIP_REQUEST : 0) | (m.answer ? GOSSIP_ANSWER : 0))
    w.varuint(m.digest.length)
    for (const d of m.digest) w.string(d.nodeId).varuint(d.generation).varuint(d.version)
    w.varuint(m.entries.length)
    for (const e of m.entries) w.string(e.nodeId).varuint(e.generation).string(e.key).bytes(e.value).varuint(e.version)
  }, size)
}

export function encodeSync (m: Omit<SyncMessage, 'type'>): Uint8Array {
  return frame(MessageType.Sync, w => {
    w.varuint(m.exchangeId).u8((m.fromInitiator ? SYNC_FROM_INITIATOR : 0) | (m.more ? SYNC_MORE : 0)).u8(MODES.indexOf(m.mode))
    w.varuint(m.items.length)
    for (const item of m.items) writeItem(w, item)
  }, m.items.reduce((n, i) => n + itemSizeEstimate(i), 16))
}

export function encodeStatus (m: Omit<StatusMessage, 'type'>): Uint8Array {
  return frame(MessageType.Status, w => w.raw(m.root).varuint(m.docCount))
}

export function encodeRoster (m: Omit<RosterMessage, 'type'>): Uint8Array {
  return frame(MessageType.Roster, w => {
    w.u8(ROSTER_KINDS.indexOf(m.kind) + 1).raw(m.hash).varuint(m.count).varuint(m.statements.length)
    for (const st of m.statements) w.bytes(st)
  }, 32 + m.statements.reduce((n, st) => n + st.length + 2, 0))
}

/** Bytes a roster frame adds around its statements (each also takes its length, at most 2 bytes). */
export const ROSTER_HEADER_BYTES = FRAME_OVERHEAD + 1 + FINGERPRINT_BYTES + 8 + 4

export function encodeClose (reason: string): Uint8Array {
  return frame(MessageType.Close, w => w.string(reason.slice(0, 1000)))
}

function writeItem (w: Writer, item: SyncItem): void {
  w.u8(item.kind)
  switch (item.kind) {
    case ItemKind.RangeFingerprint:
      writePrefix(w, item.prefix)
      w.raw(item.fingerprint).varuint(item.count)
      break
    case ItemKind.RangeList:
      writePrefix(w, item.prefix)
      w.varuint(item.docs.length)
      for (const d of item.docs) w.string(d.docId).raw(d.fingerprint).bytes(d.stateVector)
      break
    case ItemKind.DocRequest:
      w.string(item.docId).bytes(item.stateVector).raw(item.fingerprint)
      break
    case ItemKind.DocUpdate:
      w.string(item.docId).u8(item.partial ? UPDATE_PARTIAL : 0).bytes(item.update)
      break
    case ItemKind.Abort:
      w.string(item.reason.slice(0, 1000))
      break
  }
}

/** An upper bound of the bytes `item` takes on the wire (used to split messages into frames). */
export function itemSizeEstimate (item: SyncItem): number {
  switch (item.kind) {
    case ItemKind.RangeFingerprint: return 1 + 9 + FINGERPRINT_BYTES + 8
    case ItemKind.RangeList: return 1 + 9 + 8 + item.docs.reduce((n, d) => n + d.docId.length * 3 + 8 + FINGERPRINT_BYTES + d.stateVector.length + 8, 0)
    case ItemKind.DocRequest: return 1 + item.docId.length * 3 + 8 + item.stateVector.length + 8 + FINGERPRINT_BYTES
    case ItemKind.DocUpdate: return 1 + item.docId.length * 3 + 8 + 1 + item.update.length + 8
    case ItemKind.Abort: return 1 + item.reason.length * 3 + 8
  }
}

/** Bytes of a sync frame around its items. */
export const SYNC_HEADER_BYTES = FRAME_OVERHEAD + 8 + 2 + 8

function readItem (r: Reader): SyncItem {
  const kind = r.u8('item kind')
  switch (kind) {
    case ItemKind.RangeFingerprint:
      return { kind, prefix: readPrefix(r), fingerprint: r.raw(FINGERPRINT_BYTES, 'range fingerprint'), count: r.varuint('range count', MAX_WIRE_COUNT) }
    case ItemKind.RangeList: {
      const prefix = readPrefix(r)
      const n = r.varuint('list length')
      if (n > r.remaining) throw new FrameError(`malformed list: ${n} documents cannot fit in ${r.remaining} bytes`)
      const docs: ListedDoc[] = []
      for (let i = 0; i < n; i++) docs.push({ docId: readDocId(r), fingerprint: r.raw(FINGERPRINT_BYTES, 'document fingerprint'), stateVector: r.bytes('state vector') })
      return { kind, prefix, docs }
    }
    case ItemKind.DocRequest:
      return { kind, docId: readDocId(r), stateVector: r.bytes('state vector'), fingerprint: r.raw(FINGERPRINT_BYTES, 'document fingerprint') }
    case ItemKind.DocUpdate: {
      const docId = readDocId(r)
      const flags = r.u8('update flags')
      if ((flags & ~UPDATE_PARTIAL) !== 0) throw new FrameError(`malformed update flags: ${flags}`)
      return { kind, docId, partial: (flags & UPDATE_PARTIAL) !== 0, update: r.bytes('update') }
    }
    case ItemKind.Abort:
      return { kind, reason: r.string('abort reason') }
    default:
      throw new FrameError(`unknown sync item kind ${kind}`)
  }
}

function readNodeId (r: Reader): string {
  const id = r.string('node id', MAX_DOC_ID_BYTES)
  if (id.length === 0) throw new FrameError('malformed node id: empty')
  return id
}

function readEntries (r: Reader, what: string): LiveEntry[] {
  const n = r.varuint('entry count')
  if (n > r.remaining) throw new FrameError(`malformed ${what} frame: ${n} entries cannot fit in ${r.remaining} bytes`)
  const entries: LiveEntry[] = []
  for (let i = 0; i < n; i++) entries.push({ docId: readDocId(r), update: r.bytes('update') })
  return entries
}

/**
 * Decode one frame. Throws `FrameTooLargeError` past `maxFrameBytes`, `ProtocolVersionError` for
 * another version, and `FrameError` for anything else that is not exactly a valid message.
 */
export function decodeFrame (bytes: Uint8Array, maxFrameBytes: number): Message {
  if (bytes.length > maxFrameBytes) throw new FrameTooLargeError(bytes.length, maxFrameBytes)
  if (bytes.length < FRAME_OVERHEAD) throw new FrameError(`truncated frame: ${bytes.length} bytes`)
  const end = bytes.length - 4
  const expected = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(end)
  if (crc32(bytes.subarray(0, end)) !== expected) throw new FrameError('corrupted frame: checksum mismatch')
  const r = new Reader(bytes, 0, end)
  const version = r.u8('version')
  if (version !== PROTOCOL_VERSION) throw new ProtocolVersionError(version, PROTOCOL_VERSION)
  const type = r.u8('type')
  let message: Message
  switch (type) {
    case MessageType.Hello: {
      const nodeId = r.string('node id', MAX_DOC_ID_BYTES)
      message = { type, nodeId, maxFrameBytes: r.varuint('max frame', MAX_ANNOUNCED_FRAME_BYTES), root: r.raw(FINGERPRINT_BYTES, 'root'), docCount: r.varuint('document count', MAX_WIRE_COUNT) }
      break
    }
    case MessageType.Live:
      message = { type, entries: readEntries(r, 'live') }
      break
    case MessageType.Rumor: {
      const hops = r.u8('hops')
      if (hops === 0) throw new FrameError('malformed rumor: 0 hops')
      message = { type, hops, entries: readEntries(r, 'rumor') }
      break
    }
    case MessageType.Sync: {
      const exchangeId = r.varuint('exchange id', MAX_WIRE_COUNTER)
      const flags = r.u8('sync flags')
      if ((flags & ~(SYNC_FROM_INITIATOR | SYNC_MORE)) !== 0) throw new FrameError(`malformed sync flags: ${flags}`)
      const modeIndex = r.u8('mode')
      const mode = MODES[modeIndex]
      if (mode === undefined) throw new FrameError(`unknown anti-entropy mode ${modeIndex}`)
      const n = r.varuint('item count')
      if (n > r.remaining) throw new FrameError(`malformed sync frame: ${n} items cannot fit in ${r.remaining} bytes`)
      const items: SyncItem[] = []
      for (let i = 0; i < n; i++) items.push(readItem(r))
      message = { type, exchangeId, fromInitiator: (flags & SYNC_FROM_INITIATOR) !== 0, more: (flags & SYNC_MORE) !== 0, mode, items }
      break
    }
    case MessageType.Gossip: {
      const flags = r.u8('gossip flags')
      if ((flags & ~(GOSSIP_REQUEST | GOSSIP_ANSWER)) !== 0) throw new FrameError(`malformed gossip flags: ${flags}`)
      const nd = r.varuint('digest length')
      if (nd > r.remaining) throw new FrameError(`malformed gossip frame: ${nd} digest entries cannot fit in ${r.remaining} bytes`)
      const digest: GossipDigestEntry[] = []
      for (let i = 0; i < nd; i++) digest.push({ nodeId: readNodeId(r), generation: r.varuint('generation', MAX_WIRE_COUNTER), version: r.varuint('version', MAX_WIRE_COUNTER) })
      const ne = r.varuint('entry count')
      if (ne > r.remaining) throw new FrameError(`malformed gossip frame: ${ne} entries cannot fit in ${r.remaining} bytes`)
      const entries: GossipEntry[] = []
      for (let i = 0; i < ne; i++) {
        const nodeId = readNodeId(r)
        const generation = r.varuint('generation', MAX_WIRE_COUNTER)
        const key = r.string('key', MAX_GOSSIP_KEY_BYTES)
        const value = r.bytes('value')
        const version = r.varuint('version', MAX_WIRE_COUNTER)
        if (version === 0) throw new FrameError('malformed gossip entry: version 0')
        entries.push({ nodeId, generation, key, value, version })
      }
      message = { type, request: (flags & GOSSIP_REQUEST) !== 0, answer: (flags & GOSSIP_ANSWER) !== 0, digest, entries }
      break
    }
    case MessageType.Status:
      message = { type, root: r.raw(FINGERPRINT_BYTES, 'root'), docCount: r.varuint('document count', MAX_WIRE_COUNT) }
      break
    case MessageType.Close:
      message = { type, reason: r.string('close reason') }
      break
    case MessageType.Roster: {
      const k = r.u8('roster kind')
      const kind = ROSTER_KINDS[k - 1]
      if (kind === undefined) throw new FrameError(`unknown roster message kind ${k}`)
      const hash = r.raw(FINGERPRINT_BYTES, 'roster hash')
      const count = r.varuint('roster count', MAX_ROSTER_STATEMENTS)
      const n = r.varuint('statement count', MAX_ROSTER_STATEMENTS)
      if (n > r.remaining) throw new FrameError(`malformed roster frame: ${n} statements cannot fit in ${r.remaining} bytes`)
      if (kind !== 'statements' && n > 0) throw new FrameError(`malformed roster ${kind}: it carries statements`)
      const statements: Uint8Array[] = []
      for (let i = 0; i < n; i++) statements.push(r.bytes('statement', MAX_STATEMENT_BYTES).slice())
      message = { type, kind, hash: hash.slice(), count, statements }
      break
    }
    case MessageType.Presence: {
      const hops = r.u8('hops')
      if (hops === 0) throw new FrameError('malformed presence: 0 hops')
      message = { type, hops, ...readPresence(r) }
      break
    }
    case MessageType.Ack:
      message = readAck(r)
      break
    default:
      throw new FrameError(`unknown message type ${type}`)
  }
  r.done(`message type ${type}`)
  return message
}
