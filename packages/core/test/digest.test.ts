import { describe, expect, it } from 'vitest'
import { DigestTree, ROOT_PREFIX, childPrefix, inPrefix } from '../src/digest.js'
import { docKey, leafHash } from '../src/fingerprint.js'
import type { Prefix } from '../src/protocol.js'
import { createRandom } from '../src/random.js'

/** The same digest computed the slow way: XOR of leaf hashes of every document in the range. */
function brute (docs: Map<string, Uint8Array>, p: Prefix): { hash: Uint8Array, count: number } {
  const hash = new Uint8Array(16)
  let count = 0
  for (const [id, fp] of docs) {
    if (!inPrefix(docKey(id), p)) continue
    const leaf = leafHash(id, fp)
    for (let i = 0; i < 16; i++) hash[i] = (hash[i] as number) ^ (leaf[i] as number)
    count++
  }
  return { hash, count }
}

describe('digest tree', () => {
  it('agrees with a brute-force digest on every range after random inserts, updates and deletes', () => {
    const rng = createRandom(99)
    const tree = new DigestTree()
    const model = new Map<string, Uint8Array>()
    for (let step = 0; step < 3000; step++) {
      const id = `d${rng.int(1500)}`
      if (rng.next() < 0.15) {
        tree.delete(id)
        model.delete(id)
      } else {
        const fp = new Uint8Array(16).map(() => rng.int(256))
        tree.set(id, fp)
        model.set(id, fp)
      }
    }
    expect(tree.size).toBe(model.size)
    // walk three levels of ranges, and a few deep ones
    const check = (p: Prefix, depth: number): void => {
      const want = brute(model, p)
      const got = tree.range(p)
      expect(got.count, `count at depth ${p.depth}`).toBe(want.count)
      expect(got.hash).toEqual(want.hash)
      expect(tree.list(p).map(e => e.docId).sort()).toEqual([...model.keys()].filter(id => inPrefix(docKey(id), p)).sort())
      if (depth > 0) for (let n = 0; n < 16; n++) check(childPrefix(p, n), depth - 1)
    }
    check(ROOT_PREFIX, 2)
    let deep: Prefix = ROOT_PREFIX
    const key = docKey([...model.keys()][0] as string)
    for (let d = 0; d < 12; d++) {
      deep = childPrefix(deep, (key[d >> 1] as number) >> ((d & 1) === 0 ? 4 : 0) & 0x0f)
      check(deep, 0)
    }
  })

  it('the root depends on every document and its fingerprint, not on insertion order', () => {
    const a = new DigestTree()
    const b = new DigestTree()
    const fp = (n: number): Uint8Array => new Uint8Array(16).fill(n)
    for (let i = 0; i < 100; i++) a.set(`x${i}`, fp(i))
    for (let i = 99; i >= 0; i--) b.set(`x${i}`, fp(i))
    expect(a.rootHash).toEqual(b.rootHash)
    b.set('x5', fp(200))
    expect(a.rootHash).not.toEqual(b.rootHash)
    b.set('x5', fp(5))
    expect(a.rootHash).toEqual(b.rootHash)
    // swapping two documents' contents changes the root
    b.set('x1', fp(2))
    b.set('x2', fp(1))
    expect(a.rootHash).not.toEqual(b.rootHash)
  })
})
