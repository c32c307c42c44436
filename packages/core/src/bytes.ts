/**
 * Strict binary encoding helpers for the wire protocol: unsigned LEB128 varints, length-prefixed
 * byte strings and UTF-8 strings, and CRC-32. Every read is bounds-checked and throws `FrameError`.
 */
import { FrameError } from './errors.js'

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export class Writer {
  private buf: Uint8Array
  private view: DataView
  length = 0

  constructor (capacity = 256) {
    this.buf = new Uint8Array(capacity)
    this.view = new DataView(this.buf.buffer)
  }

  private reserve (n: number): void {
    if (this.length + n <= this.buf.length) return
    let cap = this.buf.length * 2
    while (cap < this.length + n) cap *= 2
    const next = new Uint8Array(cap)
    next.set(this.buf.subarray(0, this.length))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u8 (n: number): this {
    this.reserve(1)
    this.buf[this.length++] = n & 0xff
    return this
  }

  u32 (n: number): this {
    this.reserve(4)
    this.view.setUint32(this.length, n >>> 0)
    this.length += 4
    return this
  }

  varuint (n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varuint out of range: ${n}`)
    this.reserve(8)
    while (n > 0x7f) {
      this.buf[this.length++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    this.buf[this.length++] = n
    return this
  }

  raw (bytes: Uint8Array): this {
    this.reserve(bytes.length)
    this.buf.set(bytes, this.length)
    this.length += bytes.length
    return this
  }

  bytes (bytes: Uint8Array): this {
    return this.varuint(bytes.length).raw(bytes)
  }

  string (s: string): this {
    return this.bytes(utf8.encode(s))
  }

  finish (): Uint8Array {
    return this.buf.slice(0, this.length)
  }
}

export class Reader {
  pos: number
  constructor (readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start
  }

  get remaining (): number {
    return this.end - this.pos
  }

  private need (n: number, what: string): void {
    if (this.pos + n > this.end) throw new FrameError(`truncated frame: ${what} needs ${n} bytes, ${this.end - this.pos} left`)
  }

  u8 (what = 'byte'): number {
    this.need(1, what)
    return this.buf[this.pos++] as number
  }

  u32 (what = 'u32'): number {
    this.need(4, what)
    const v = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(this.pos)
    this.pos += 4
    return v
  }

  /** A minimal LEB128 varint; above `max` (a documented bound of the field) is a `FrameError`. */
  varuint (what = 'varint', max = Number.MAX_SAFE_INTEGER): number {
    let result = 0
    let mult = 1
    for (let i = 0; i < 8; i++) {
      const b = this.u8(what)
      result += (b & 0x7f) * mult
      if (b < 0x80) {
        if (i > 0 && b === 0) throw new FrameError(`malformed ${what}: non-minimal varint`)
        if (!Number.isSafeInteger(result)) throw new FrameError(`malformed ${what}: varint too large`)
        if (result > max) throw new FrameError(`malformed ${what}: ${result} exceeds the limit of ${max}`)
        return result
      }
      mult *= 0x80
    }
    throw new FrameError(`malformed ${what}: varint too long`)
  }

  raw (n: number, what = 'bytes'): Uint8Array {
    this.need(n, what)
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  bytes (what = 'bytes', max = Number.MAX_SAFE_INTEGER): Uint8Array {
    const n = this.varuint(`${what} length`)
    if (n > max) throw new FrameError(`malformed ${what}: ${n} bytes exceeds the limit of ${max}`)
    // a length is checked against what is left before it is added to anything
    if (n > this.remaining) throw new FrameError(`truncated frame: ${what} claims ${n} bytes, ${this.remaining} left`)
    return this.raw(n, what)
  }

  string (what = 'string', maxBytes = Number.MAX_SAFE_INTEGER): string {
    const b = this.bytes(what, maxBytes)
    try {
      return utf8Strict.decode(b)
    } catch {
      throw new FrameError(`malformed ${what}: not valid UTF-8`)
    }
  }

  /** Throws when bytes are left over: a message must use its frame exactly. */
  done (what: string): void {
    if (this.pos !== this.end) throw new FrameError(`malformed ${what}: ${this.end - this.pos} trailing bytes`)
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

/** CRC-32 (IEEE 802.3), incremental: pass the previous result as `crc` to continue over more bytes. */
export function crc32 (bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0
  for (let i = 0; i < bytes.length; i++) c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function toHex (b: Uint8Array): string {
  let s = ''
  for (const x of b) s += x.toString(16).padStart(2, '0')
  return s
}

/** The bytes of a hex string (pairs of hex digits; callers check the string's shape). */
export function fromHex (h: string): Uint8Array {
  return Uint8Array.from(h.match(/../g) ?? [], x => parseInt(x, 16))
}

export function utf8Length (s: string): number {
  return utf8.encode(s).length
}
