/**
 * On-disk layout: binary keys and checksummed values. See the package README ("Key layout").
 *
 *   s format                          -> [crc32][varuint format version]
 *   f <docId utf8>                    -> head: [crc32][u8 1][varuint nextSeq][varuint records]
 *                                        [varuint bytes][varuint tailBytes][fingerprint]
 *   d <u16 len> <docId utf8> <u64 seq> -> [crc32][Yjs update]
 *   m <key utf8>                      -> [crc32][value]
 *
 * Every crc32 covers the key followed by the rest of the value, so a flipped bit in either, or a
 * record that ends up under another key, fails the check.
 */
import { crc32 } from '@hearsay/core'

export const TAG_FORMAT = 0x73 // 's'
export const TAG_HEAD = 0x66 // 'f'
export const TAG_UPDATE = 0x64 // 'd'
export const TAG_META = 0x6d // 'm'

const HEAD_VERSION = 1
const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export function encodeUtf8 (s: string): Uint8Array {
  return utf8.encode(s)
}

/** Decodes strictly; undefined when the bytes are not valid UTF-8. */
export function decodeUtf8 (b: Uint8Array): string | undefined {
  try {
    return utf8Strict.decode(b)
  } catch {
    return undefined
  }
}

function tagged (tag: number, body: Uint8Array, extra = 0): Uint8Array {
  const k = new Uint8Array(1 + body.length + extra)
  k[0] = tag
  k.set(body, 1)
  return k
}

export const formatKey = (): Uint8Array => tagged(TAG_FORMAT, utf8.encode('format'))
export const headKey = (id: Uint8Array): Uint8Array => tagged(TAG_HEAD, id)
export const metaKey = (key: Uint8Array): Uint8Array => tagged(TAG_META, key)

/** All head keys lie in [HEADS_START, HEADS_END). */
export const HEADS_START = new Uint8Array([TAG_HEAD])
export const HEADS_END = new Uint8Array([TAG_HEAD + 1])

/** Key of one update record: `d`, the id length (u16 BE), the id, the sequence (u64 BE). */
export function updateKey (id: Uint8Array, seq: number): Uint8Array {
  const k = new Uint8Array(3 + id.length + 8)
  k[0] = TAG_UPDATE
  k[1] = id.length >>> 8
  k[2] = id.length & 0xff
  k.set(id, 3)
  const view = new DataView(k.buffer)
  view.setUint32(3 + id.length, Math.floor(seq / 0x1_0000_0000))
  view.setUint32(7 + id.length, seq >>> 0)
  return k
}

/** Inclusive bounds of a document's update records. */
export function updateRange (id: Uint8Array): { gte: Uint8Array, lte: Uint8Array } {
  const lte = updateKey(id, 0)
  lte.fill(0xff, lte.length - 8)
  return { gte: updateKey(id, 0), lte }
}

/** Sequence number of an update key (the last 8 bytes). */
export function seqOf (key: Uint8Array): number {
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength)
  return view.getUint32(key.length - 8) * 0x1_0000_0000 + view.getUint32(key.length - 4)
}

/** `[crc32(key ‖ body)][body]` */
export function seal (key: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length)
  new DataView(out.buffer).setUint32(0, crc32(body, crc32(key)))
  out.set(body, 4)
  return out
}

/** The body of a sealed value (a copy), or undefined when its checksum does not match. */
export function unseal (key: Uint8Array, value: Uint8Array): Uint8Array | undefined {
  const body = checked(key, value)
  return body === undefined ? undefined : new Uint8Array(body) // a plain copy (LevelDB hands out Buffers)
}

/** The body of a sealed value as a view into it (no copy), or undefined when its checksum does not match. */
export function checked (key: Uint8Array, value: Uint8Array): Uint8Array | undefined {
  if (value.length < 4) return undefined
  const stored = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0)
  const body = value.subarray(4)
  if (crc32(body, crc32(key)) !== stored) return undefined
  return body
}

/** Per-document summary stored under `f<docId>`. */
export interface Head {
  /** Sequence number the next update record gets. */
  nextSeq: number
  /** Update records stored. */
  records: number
  /** Bytes of all stored updates (payloads only). */
  bytes: number
  /** Bytes appended since the last compaction or replace. */
  tailBytes: number
  /** Fingerprint after the last write. */
  fingerprint: Uint8Array
}

function writeVaruint (out: number[], n: number): void {
  while (n > 0x7f) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
}

export function encodeHead (h: Head): Uint8Array {
  const out: number[] = [HEAD_VERSION]
  writeVaruint(out, h.nextSeq)
  writeVaruint(out, h.records)
  writeVaruint(out, h.bytes)
  writeVaruint(out, h.tailBytes)
  const b = new Uint8Array(out.length + h.fingerprint.length)
  b.set(out)
  b.set(h.fingerprint, out.length)
  return b
}

/** Undefined when malformed (the checksum matched but the layout does not: a newer version). */
export function decodeHead (b: Uint8Array): Head | undefined {
  let pos = 0
  const varuint = (): number | undefined => {
    let result = 0
    let mult = 1
    for (let i = 0; i < 8 && pos < b.length; i++) {
      const x = b[pos++] as number
      result += (x & 0x7f) * mult
      if (x < 0x80) return result
      mult *= 0x80
    }
    return undefined
  }
  if (b[pos++] !== HEAD_VERSION) return undefined
  const nextSeq = varuint()
  const records = varuint()
  const bytes = varuint()
  const tailBytes = varuint()
  if (nextSeq === undefined || records === undefined || bytes === undefined || tailBytes === undefined) return undefined
  return { nextSeq, records, bytes, tailBytes, fingerprint: new Uint8Array(b.subarray(pos)) }
}

export function encodeVersion (v: number): Uint8Array {
  const out: number[] = []
  writeVaruint(out, v)
  return new Uint8Array(out)
}

export function decodeVersion (b: Uint8Array): number | undefined {
  if (b.length !== 1 || (b[0] as number) >= 0x80) return undefined
  return b[0]
}
