/**
 * fast-check arbitraries for the wire protocol: valid frames of every message type, with numeric
 * fields drawn from ordinary values and from the edges (0, each bound, bound + 1, 2^53 − 1), then
 * mutated (bit flips, byte insertions and deletions, varints written over the bytes: lying
 * lengths and counts) and usually resealed so the checksum passes and the decoder judges them.
 * `checkDecoded` is the oracle: what decodes must be within the documented bounds.
 */
import fc from 'fast-check'
import { utf8Length } from '../src/bytes.js'
import { MAX_ANNOUNCED_FRAME_BYTES, MAX_DOC_ID_BYTES, MAX_ROSTER_STATEMENTS, MAX_STATEMENT_BYTES, MAX_WIRE_COUNT, MAX_WIRE_COUNTER, PRESENCE_MAX_CLIENTS_PER_DOC, PRESENCE_MAX_STATE_BYTES } from '../src/constants.js'
import {
  ItemKind, MAX_GOSSIP_KEY_BYTES, MAX_PREFIX_DEPTH, MessageType, decodeFrame, encodeAck, encodeClose, encodeGossip, encodeHello, encodeLive, encodePresence, encodeRoster, encodeRumor, encodeStatus, encodeSync,
  type Message, type SyncItem
} from '../src/protocol.js'
import { reseal } from '../src/testing/index.js'

const TOP = Number.MAX_SAFE_INTEGER
/** The edges every numeric field is tried at. */
export const EDGES = [0, 1, 255, 256, MAX_WIRE_COUNT - 1, MAX_WIRE_COUNT, MAX_WIRE_COUNT + 1, MAX_WIRE_COUNTER - 1, MAX_WIRE_COUNTER, MAX_WIRE_COUNTER + 1, TOP - 1, TOP]

const num = (): fc.Arbitrary<number> => fc.oneof(fc.nat(1000), fc.constantFrom(...EDGES), fc.integer({ min: 0, max: TOP }))
const bytes = (max = 64): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max })
const fp = fc.uint8Array({ minLength: 16, maxLength: 16 })
const id = fc.string({ minLength: 1, maxLength: 24 })
const prefix = fc.integer({ min: 0, max: MAX_PREFIX_DEPTH }).map(depth => ({ depth, bits: new Uint8Array(8) }))
/** A real Yjs update ("hi" into text "t"). */
const UPDATE = new Uint8Array([1, 1, 200, 1, 0, 4, 1, 1, 116, 2, 104, 105, 0])
const update = fc.oneof(fc.constant(UPDATE), bytes())
const entries = fc.array(fc.record({ docId: id, update }), { maxLength: 4 })

const item: fc.Arbitrary<SyncItem> = fc.oneof(
  fc.record({ prefix, fingerprint: fp, count: num() }).map(r => ({ kind: ItemKind.RangeFingerprint, ...r })),
  fc.record({ prefix, docs: fc.array(fc.record({ docId: id, fingerprint: fp, stateVector: bytes(16) }), { maxLength: 3 }) }).map(r => ({ kind: ItemKind.RangeList, ...r })),
  fc.record({ docId: id, stateVector: bytes(16), fingerprint: fp }).map(r => ({ kind: ItemKind.DocRequest, ...r })),
  fc.record({ docId: id, update, partial: fc.boolean() }).map(r => ({ kind: ItemKind.DocUpdate, ...r })),
  fc.string({ maxLength: 20 }).map(reason => ({ kind: ItemKind.Abort, reason }))
) as fc.Arbitrary<SyncItem>

const sv = fc.array(fc.tuple(fc.oneof(fc.nat(1000), fc.constant(0xffffffff)), num()), { maxLength: 4 }).map(pairs => new Map(pairs))

/** One encoded frame of each message type, fields drawn from ordinary values and edges. */
export const validFrame: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({ nodeId: id, maxFrameBytes: num(), root: fp, docCount: num() }).map(encodeHello),
  entries.map(encodeLive),
  fc.record({ exchangeId: num(), fromInitiator: fc.boolean(), more: fc.boolean(), mode: fc.constantFrom('push' as const, 'pull' as const, 'push-pull' as const), items: fc.array(item, { maxLength: 4 }) }).map(encodeSync),
  fc.record({ root: fp, docCount: num() }).map(encodeStatus),
  fc.string({ maxLength: 40 }).map(encodeClose),
  fc.tuple(fc.integer({ min: 1, max: 255 }), entries).map(([hops, e]) => encodeRumor(hops, e)),
  fc.record({
    request: fc.boolean(),
    answer: fc.boolean(),
    digest: fc.array(fc.record({ nodeId: id, generation: num(), version: num() }), { maxLength: 3 }),
    entries: fc.array(fc.record({ nodeId: id, generation: num(), key: fc.string({ maxLength: 10 }), value: bytes(16), version: num() }), { maxLength: 3 })
  }).map(encodeGossip),
  fc.record({ kind: fc.constantFrom('ask' as const, 'answer' as const), hash: fp, count: fc.nat(MAX_ROSTER_STATEMENTS), statements: fc.constant([] as Uint8Array[]) }).map(encodeRoster),
  fc.record({ kind: fc.constant('statements' as const), hash: fp, count: fc.nat(MAX_ROSTER_STATEMENTS), statements: fc.array(bytes(64), { maxLength: 3 }) }).map(encodeRoster),
  fc.tuple(fc.integer({ min: 1, max: 255 }), fc.array(fc.record({
    docId: id,
    states: fc.array(fc.record({ clientID: fc.oneof(fc.nat(1000), fc.constant(0xffffffff)), clock: num(), state: fc.constantFrom('null', '{}', '{"user":{"name":"a"}}', '[1]', '"x"', 'nope') }), { maxLength: 3 })
  }), { maxLength: 2 })).map(([hops, e]) => encodePresence(hops, hops % 2 === 0, e)),
  fc.record({ kind: fc.constantFrom('watch' as const, 'unwatch' as const), docIds: fc.array(id, { maxLength: 3 }) }).map(encodeAck),
  fc.array(fc.record({ docId: id, applied: sv, stored: fc.option(sv, { nil: undefined }) }), { maxLength: 3 }).map(held => encodeAck({ kind: 'held', held }))
)

/** Write `n` as a varint (up to 8 bytes, like the protocol's) into a list of bytes at `at`. */
function varintBytes (n: number): number[] {
  const out: number[] = []
  while (n > 0x7f && out.length < 7) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(Math.min(n, 0xff))
  return out
}

type Mutation =
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'insert', at: number, byte: number }
  | { kind: 'delete', at: number }
  | { kind: 'varint', at: number, value: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('varint' as const), at: fc.nat(), value: fc.constantFrom(...EDGES, 2, 127, 128, 16_383, 16_384) })
)

function mutate (frame: Uint8Array, ms: Mutation[]): Uint8Array {
  const b = [...frame]
  for (const m of ms) {
    if (b.length === 0) break
    const at = m.at % b.length
    if (m.kind === 'flip') b[at] = (b[at] as number) ^ (1 << m.bit)
    else if (m.kind === 'insert') b.splice(at, 0, m.byte)
    else if (m.kind === 'delete') b.splice(at, 1)
    else b.splice(at, Math.min(b.length - at, 1), ...varintBytes(m.value))
  }
  return Uint8Array.from(b)
}

/** A valid frame, mutated 0–4 times, resealed nine times in ten. */
export const mutatedFrame: fc.Arbitrary<Uint8Array> = fc.tuple(validFrame, fc.array(mutation, { maxLength: 4 }), fc.nat(9))
  .map(([f, ms, r]) => {
    const out = mutate(f, ms)
    return r === 0 || out.length < 6 ? out : reseal(out)
  })

/** The typed decode errors; anything else escaping `decodeFrame` is a bug. */
export const DECODE_ERRORS = new Set(['FrameError', 'FrameTooLargeError', 'ProtocolVersionError'])

/** Throws unless every number and length of a decoded message is within the documented bounds. */
export function checkDecoded (m: Message): void {
  const bound = (what: string, v: number, max: number, min = 0): void => {
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new Error(`${what} ${v} outside ${min}..${max}`)
  }
  const docId = (s: string): void => bound('document id bytes', utf8Length(s), MAX_DOC_ID_BYTES, 1)
  const fingerprint = (f: Uint8Array): void => bound('fingerprint bytes', f.length, 16, 16)
  switch (m.type) {
    case MessageType.Hello:
      bound('maxFrameBytes', m.maxFrameBytes, MAX_ANNOUNCED_FRAME_BYTES)
      bound('docCount', m.docCount, MAX_WIRE_COUNT)
      bound('node id bytes', utf8Length(m.nodeId), MAX_DOC_ID_BYTES)
      fingerprint(m.root)
      break
    case MessageType.Status:
      bound('docCount', m.docCount, MAX_WIRE_COUNT)
      fingerprint(m.root)
      break
    case MessageType.Live:
    case MessageType.Rumor:
      if (m.type === MessageType.Rumor) bound('hops', m.hops, 255, 1)
      for (const e of m.entries) docId(e.docId)
      break
    case MessageType.Sync:
      bound('exchangeId', m.exchangeId, MAX_WIRE_COUNTER)
      for (const i of m.items) {
        if (i.kind === ItemKind.RangeFingerprint) { bound('range count', i.count, MAX_WIRE_COUNT); bound('depth', i.prefix.depth, MAX_PREFIX_DEPTH); fingerprint(i.fingerprint) }
        if (i.kind === ItemKind.RangeList) for (const d of i.docs) { docId(d.docId); fingerprint(d.fingerprint) }
        if (i.kind === ItemKind.DocRequest || i.kind === ItemKind.DocUpdate) docId(i.docId)
      }
      break
    case MessageType.Gossip:
      for (const d of m.digest) { bound('generation', d.generation, MAX_WIRE_COUNTER); bound('version', d.version, MAX_WIRE_COUNTER) }
      for (const e of m.entries) {
        bound('generation', e.generation, MAX_WIRE_COUNTER)
        bound('version', e.version, MAX_WIRE_COUNTER, 1)
        bound('key bytes', utf8Length(e.key), MAX_GOSSIP_KEY_BYTES)
      }
      break
    case MessageType.Roster:
      fingerprint(m.hash)
      bound('roster count', m.count, MAX_ROSTER_STATEMENTS)
      bound('statements', m.statements.length, MAX_ROSTER_STATEMENTS)
      for (const st of m.statements) bound('statement bytes', st.length, MAX_STATEMENT_BYTES)
      break
    case MessageType.Presence:
      bound('hops', m.hops, 255, 1)
      for (const e of m.entries) {
        docId(e.docId)
        bound('presence states', e.states.length, PRESENCE_MAX_CLIENTS_PER_DOC)
        for (const st of e.states) {
          bound('client id', st.clientID, 0xffffffff)
          bound('clock', st.clock, MAX_WIRE_COUNTER)
          bound('state bytes', utf8Length(st.state), PRESENCE_MAX_STATE_BYTES)
          const v: unknown = JSON.parse(st.state)
          if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`presence state ${st.state} is not an object or null`)
        }
      }
      break
    case MessageType.Ack:
      if (m.kind !== 'held') for (const d of m.docIds) docId(d)
      else {
        for (const h of m.held) {
          docId(h.docId)
          for (const v of [h.applied, h.stored ?? new Map<number, number>()]) for (const [c, k] of v) { bound('client id', c, 0xffffffff); bound('clock', k, MAX_WIRE_COUNTER) }
        }
      }
      break
    case MessageType.Close:
      break
  }
}

/**
 * Decode `frame` and check what decodes against the bounds: 'decoded' or 'refused' (a typed decode
 * error). Anything else thrown, or a number out of bounds, throws: the property fails.
 */
export function decodeChecked (frame: Uint8Array, maxFrameBytes: number): 'decoded' | 'refused' {
  let m: Message
  try {
    m = decodeFrame(frame, maxFrameBytes)
  } catch (err) {
    if (err instanceof Error && DECODE_ERRORS.has(err.name)) return 'refused'
    throw err
  }
  checkDecoded(m)
  return 'decoded'
}
