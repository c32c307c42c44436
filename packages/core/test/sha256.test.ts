import { createHash } from 'node:crypto'
import { digest } from 'lib0/hash/sha256'
import { describe, expect, it } from 'vitest'
import { createRandom } from '../src/random.js'
import { sha256 } from '../src/sha256.js'
import { docKey, leafHash } from '../src/fingerprint.js'

const reference = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())

describe('sha256', () => {
  it('equals SHA-256 for every length across the padding boundaries, and for long inputs (seed 7)', () => {
    const rng = createRandom(7)
    const lengths = [...Array.from({ length: 200 }, (_, i) => i), 447, 448, 512, 1000, 4096, 65_537]
    for (const n of lengths) {
      const data = Uint8Array.from({ length: n }, () => Math.floor(rng.next() * 256))
      expect(sha256(data), `length ${n}`).toEqual(reference(data))
      expect(sha256(data, 8)).toEqual(reference(data).slice(0, 8))
    }
  })

  it('gives the document keys and leaf hashes of the wire protocol, as before', () => {
    const fp = Uint8Array.from({ length: 16 }, (_, i) => i * 7)
    for (const id of ['', 'notes/1', 'é/ü/日本', 'x'.repeat(512)]) {
      const utf8 = new TextEncoder().encode(id)
      if (id !== '') expect(docKey(id)).toEqual(new Uint8Array(digest(utf8).slice(0, 8)))
      const buf = new Uint8Array(4 + utf8.length + 4 + 16)
      const view = new DataView(buf.buffer)
      view.setUint32(0, utf8.length)
      buf.set(utf8, 4)
      view.setUint32(4 + utf8.length, 16)
      buf.set(fp, 8 + utf8.length)
      expect(leafHash(id, fp)).toEqual(new Uint8Array(digest(buf).slice(0, 16)))
    }
  })
})
