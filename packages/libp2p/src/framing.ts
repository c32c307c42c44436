/**
 * Length-prefixed framing on a byte stream: each frame is `varint(length) bytes`, with the
 * unsigned LEB128 varint of multiformats/`it-length-prefixed`. The decoder enforces the frame
 * limit as soon as it has read the prefix, so an oversized frame is refused before its body is
 * buffered.
 */
import { FrameError, FrameTooLargeError } from '@hearsay/core'

/** Longest accepted length prefix: 2^53 needs 8 bytes; anything longer is malformed. */
const MAX_PREFIX_BYTES = 8

/** Bytes of the varint that encodes `n`. */
export function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 0x80)
    len++
  }
  return len
}

/** One buffer holding `varint(frame.length) frame` (a copy: the caller may reuse `frame`). */
export function encodeFrame (frame: Uint8Array): Uint8Array {
  let n = frame.length
  const out = new Uint8Array(varintLength(n) + n)
  let i = 0
  while (n >= 0x80) {
    out[i++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  out[i++] = n
  out.set(frame, i)
  return out
}

/**
 * Incremental decoder. `push` bytes as they arrive; it returns the whole frames completed so
 * far and throws `FrameTooLargeError` / `FrameError` on a bad prefix (the stream is then
 * unusable: close it).
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = []
  private offset = 0 // read position in chunks[0]
  private buffered = 0 // bytes in chunks, from offset
  private expected = -1 // length of the frame being read, -1 while reading the prefix

  constructor (readonly maxFrameBytes: number) {}

  /** Bytes received but not yet returned as frames. */
  get pending (): number {
    return this.buffered
  }

  push (bytes: Uint8Array): Uint8Array[] {
    if (bytes.length > 0) {
      this.chunks.push(bytes)
      this.buffered += bytes.length
    }
    const frames: Uint8Array[] = []
    for (;;) {
      if (this.expected < 0) {
        const prefix = this.readPrefix()
        if (prefix === undefined) break
        this.expected = prefix
      }
      if (this.buffered < this.expected) break
      frames.push(this.take(this.expected))
      this.expected = -1
    }
    return frames
  }

  /** Parses the varint at the read position; undefined when more bytes are needed. */
  private readPrefix (): number | undefined {
    let result = 0
    let mult = 1
    let ci = 0
    let pos = this.offset
    for (let i = 0; i < MAX_PREFIX_BYTES; i++) {
      let chunk = this.chunks[ci]
      while (chunk !== undefined && pos >= chunk.length) {
        chunk = this.chunks[++ci]
        pos = 0
      }
      if (chunk === undefined) {
        // incomplete: but a prefix already past the limit can be refused now
        if (result > this.maxFrameBytes) throw new FrameTooLargeError(result, this.maxFrameBytes)
        return undefined
      }
      const b = chunk[pos++] as number
      result += (b & 0x7f) * mult
      if (b < 0x80) {
        if (i > 0 && b === 0) throw new FrameError('malformed length prefix: non-minimal varint')
        if (result > this.maxFrameBytes) throw new FrameTooLargeError(result, this.maxFrameBytes)
        this.skip(i + 1)
        return result
      }
      mult *= 0x80
      if (result > this.maxFrameBytes) throw new FrameTooLargeError(result, this.maxFrameBytes)
    }
    throw new FrameError('malformed length prefix: varint too long')
  }

  private skip (n: number): void {
    this.buffered -= n
    while (n > 0) {
      const chunk = this.chunks[0] as Uint8Array
      const left = chunk.length - this.offset
      if (n < left) {
        this.offset += n
        return
      }
      n -= left
      this.chunks.shift()
      this.offset = 0
    }
  }

  private take (n: number): Uint8Array {
    this.buffered -= n
    const first = this.chunks[0]
    if (n === 0) return new Uint8Array(0)
    if (first !== undefined && first.length - this.offset >= n) {
      // the common case: the frame lies within one received chunk. Copy into a plain Uint8Array:
      // chunks are often Node Buffers, whose slice() is a view, not a copy.
      const out = new Uint8Array(n)
      out.set(first.subarray(this.offset, this.offset + n))
      this.offset += n
      if (this.offset === first.length) {
        this.chunks.shift()
        this.offset = 0
      }
      return out
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[0] as Uint8Array
      const part = Math.min(chunk.length - this.offset, n - filled)
      out.set(chunk.subarray(this.offset, this.offset + part), filled)
      filled += part
      this.offset += part
      if (this.offset === chunk.length) {
        this.chunks.shift()
        this.offset = 0
      }
    }
    return out
  }
}
