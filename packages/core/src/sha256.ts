/**
 * SHA-256 without allocations: one fixed working state, reused by every call. The digest and
 * fingerprints of a node hash every stored document at start (two hashes each); a general-purpose
 * hasher that allocates its state per call makes start-up on 10,000 documents cost ~15 MB more
 * memory (young-generation pages and off-heap buffers that stay resident).
 */

const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
])
const H0 = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19])
const H = new Uint32Array(8)
const W = new Uint32Array(64)
const TAIL = new Uint8Array(128)

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n))

function compress (block: Uint8Array, off: number): void {
  for (let t = 0; t < 16; t++) {
    const i = off + 4 * t
    W[t] = ((block[i] as number) << 24) | ((block[i + 1] as number) << 16) | ((block[i + 2] as number) << 8) | (block[i + 3] as number)
  }
  for (let t = 16; t < 64; t++) {
    const w15 = W[t - 15] as number
    const w2 = W[t - 2] as number
    const s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >>> 3)
    const s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >>> 10)
    W[t] = (s1 + (W[t - 7] as number) + s0 + (W[t - 16] as number)) >>> 0
  }
  let a = H[0] as number
  let b = H[1] as number
  let c = H[2] as number
  let d = H[3] as number
  let e = H[4] as number
  let f = H[5] as number
  let g = H[6] as number
  let h = H[7] as number
  for (let t = 0; t < 64; t++) {
    const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + (K[t] as number) + (W[t] as number)) >>> 0
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0
    h = g
    g = f
    f = e
    e = (d + t1) >>> 0
    d = c
    c = b
    b = a
    a = (t1 + t2) >>> 0
  }
  H[0] = (H[0] as number) + a
  H[1] = (H[1] as number) + b
  H[2] = (H[2] as number) + c
  H[3] = (H[3] as number) + d
  H[4] = (H[4] as number) + e
  H[5] = (H[5] as number) + f
  H[6] = (H[6] as number) + g
  H[7] = (H[7] as number) + h
}

/** The first `n` bytes (at most 32) of the SHA-256 digest of `data`, in a new array. */
export function sha256 (data: Uint8Array, n = 32): Uint8Array {
  H.set(H0)
  const len = data.length
  let off = 0
  for (; off + 64 <= len; off += 64) compress(data, off)
  const rest = len - off
  TAIL.fill(0)
  for (let i = 0; i < rest; i++) TAIL[i] = data[off + i] as number
  TAIL[rest] = 0x80
  const blocks = rest < 56 ? 1 : 2
  const end = blocks * 64
  // message length in bits, 64-bit big-endian
  const hi = Math.floor(len / 0x20000000)
  const lo = (len * 8) >>> 0
  TAIL[end - 8] = hi >>> 24
  TAIL[end - 7] = hi >>> 16
  TAIL[end - 6] = hi >>> 8
  TAIL[end - 5] = hi
  TAIL[end - 4] = lo >>> 24
  TAIL[end - 3] = lo >>> 16
  TAIL[end - 2] = lo >>> 8
  TAIL[end - 1] = lo
  for (let b = 0; b < blocks; b++) compress(TAIL, b * 64)
  const out = new Uint8Array(Math.min(32, n))
  for (let i = 0; i < out.length; i++) out[i] = ((H[i >> 2] as number) >>> (24 - 8 * (i & 3))) & 0xff
  return out
}
