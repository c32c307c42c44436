/**
 * The frame around every message: version, type, payload, CRC (grammar in ../PROTOCOL.md), and
 * what every message codec shares.
 */
import { Reader, Writer, crc32 } from './bytes.js'
import { MAX_DOC_ID_BYTES, PROTOCOL_VERSION } from './constants.js'
import { FrameError } from './errors.js'

export const MessageType = {
  Hello: 1,
  Live: 2,
  Sync: 3,
  Status: 4,
  Close: 5,
  Rumor: 6,
  Gossip: 7,
  Roster: 8,
  Presence: 9,
  Ack: 10
} as const
export type MessageType = typeof MessageType[keyof typeof MessageType]

/** Bytes a frame adds around its payload: version, type, CRC. */
export const FRAME_OVERHEAD = 6

export function frame (type: MessageType, payload: (w: Writer) => void, sizeHint = 64): Uint8Array {
  const w = new Writer(sizeHint + FRAME_OVERHEAD)
  w.u8(PROTOCOL_VERSION).u8(type)
  payload(w)
  const body = w.finish()
  const out = new Uint8Array(body.length + 4)
  out.set(body)
  new DataView(out.buffer).setUint32(body.length, crc32(body))
  return out
}

export function readDocId (r: Reader): string {
  const id = r.string('document id', MAX_DOC_ID_BYTES)
  if (id.length === 0) throw new FrameError('malformed document id: empty')
  return id
}
