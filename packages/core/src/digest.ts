/**
 * The collection digest: a hash tree over (document key → fingerprint).
 *
 * Documents sit at the leaves of a 16-ary trie keyed by the nibbles of their 8-byte key. Every
 * node holds the XOR of its documents' leaf hashes and their count, maintained incrementally, so
 * the root is known in O(1) and a change costs O(depth). Buckets hold up to `DIGEST_BUCKET_SIZE`
 * documents before splitting. Any range (prefix) can be asked for its hash, its 16 children, or
 * its documents; ranges below a bucket are computed from the bucket's few items.
 */
import { equalBytes } from './bytes.js'
import { DIGEST_BUCKET_SIZE, DIGEST_FANOUT } from './constants.js'
import { docKey, leafHash } from './fingerprint.js'
import { FINGERPRINT_BYTES, MAX_PREFIX_DEPTH, type Prefix } from './protocol.js'

const LEAF = 8
const FP = LEAF + FINGERPRINT_BYTES

/**
 * One document in the digest. Its key (`docKey`, bytes 0–7), leaf hash (`leafHash`, bytes 8–23)
 * and fingerprint (bytes 24–39) share one array: a node holding many documents keeps one small
 * object per document.
 */
export class DigestEntry {
  constructor (readonly docId: string, readonly keyLeaf: Uint8Array) {}
  /** The document's fingerprint (a copy). */
  get fingerprint (): Uint8Array {
    return this.keyLeaf.slice(FP, FP + FINGERPRINT_BYTES)
  }
}

interface TreeNode {
  depth: number
  hash: Uint8Array
  count: number
  children: TreeNode[] | undefined
  items: DigestEntry[] | undefined
}

export interface RangeDigest { prefix: Prefix, hash: Uint8Array, count: number }

export const ROOT_PREFIX: Prefix = Object.freeze({ depth: 0, bits: new Uint8Array(8) })

export function nibble (key: Uint8Array, i: number): number {
  const b = key[i >> 1] as number
  return (i & 1) === 0 ? b >> 4 : b & 0x0f
}

export function inPrefix (key: Uint8Array, p: Prefix): boolean {
  for (let i = 0; i < p.depth; i++) if (nibble(key, i) !== nibble(p.bits, i)) return false
  return true
}

export function childPrefix (p: Prefix, n: number): Prefix {
  const bits = p.bits.slice()
  const i = p.depth >> 1
  bits[i] = (p.depth & 1) === 0 ? (n << 4) : ((bits[i] as number) & 0xf0) | n
  return { depth: p.depth + 1, bits }
}

function xorInto (target: Uint8Array, x: Uint8Array, offset = 0): void {
  for (let i = 0; i < FINGERPRINT_BYTES; i++) target[i] = (target[i] as number) ^ (x[offset + i] as number)
}

function keyLeaf (docId: string, fingerprint: Uint8Array): Uint8Array {
  const kl = new Uint8Array(FP + FINGERPRINT_BYTES)
  kl.set(docKey(docId))
  kl.set(leafHash(docId, fingerprint), LEAF)
  kl.set(fingerprint.subarray(0, FINGERPRINT_BYTES), FP)
  return kl
}

const newNode = (depth: number): TreeNode => ({ depth, hash: new Uint8Array(FINGERPRINT_BYTES), count: 0, children: undefined, items: [] })

export class DigestTree {
  private readonly root = newNode(0)
  private readonly entries = new Map<string, DigestEntry>()
  /** Told of every set and delete (digest-views.ts keeps its trees up to date by it). */
  private readonly watchers = new Set<(docId: string, fingerprint: Uint8Array | undefined) => void>()

  /** Call `fn` after every change; returns the function that stops it. */
  watch (fn: (docId: string, fingerprint: Uint8Array | undefined) => void): () => void {
    this.watchers.add(fn)
    return () => { this.watchers.delete(fn) }
  }

  /** A new tree of the documents `keep` accepts, sharing no state with this one. */
  filtered (keep: (docId: string) => boolean): DigestTree {
    const t = new DigestTree()
    for (const e of this.entries.values()) if (keep(e.docId)) t.set(e.docId, e.fingerprint)
    return t
  }

  get size (): number { return this.entries.size }
  get rootHash (): Uint8Array { return this.root.hash.slice() }
  has (docId: string): boolean { return this.entries.has(docId) }
  get (docId: string): DigestEntry | undefined { return this.entries.get(docId) }
  ids (): IterableIterator<string> { return this.entries.keys() }

  /** Insert or update a document's fingerprint. */
  set (docId: string, fingerprint: Uint8Array): void {
    this.put(docId, fingerprint)
    for (const w of this.watchers) w(docId, fingerprint)
  }

  private put (docId: string, fingerprint: Uint8Array): void {
    const old = this.entries.get(docId)
    if (old !== undefined) {
      if (equalBytes(old.keyLeaf.subarray(FP), fingerprint)) return
      const leaf = leafHash(docId, fingerprint)
      const delta = old.keyLeaf.slice(LEAF, FP)
      xorInto(delta, leaf)
      old.keyLeaf.set(leaf, LEAF)
      old.keyLeaf.set(fingerprint.subarray(0, FINGERPRINT_BYTES), FP)
      for (let n: TreeNode | undefined = this.root; n !== undefined; n = n.children?.[nibble(old.keyLeaf, n.depth)]) xorInto(n.hash, delta)
      return
    }
    const entry = new DigestEntry(docId, keyLeaf(docId, fingerprint))
    this.entries.set(docId, entry)
    let n = this.root
    for (;;) {
      xorInto(n.hash, entry.keyLeaf, LEAF)
      n.count++
      if (n.children === undefined) break
      n = n.children[nibble(entry.keyLeaf, n.depth)] as TreeNode
    }
    n.items?.push(entry)
    if ((n.items?.length ?? 0) > DIGEST_BUCKET_SIZE && n.depth < MAX_PREFIX_DEPTH) this.split(n)
  }

  delete (docId: string): void {
    const entry = this.entries.get(docId)
    if (entry === undefined) return
    this.entries.delete(docId)
    for (const w of this.watchers) w(docId, undefined)
    let n: TreeNode | undefined = this.root
    while (n !== undefined) {
      xorInto(n.hash, entry.keyLeaf, LEAF)
      n.count--
      if (n.children === undefined) {
        const i = n.items?.indexOf(entry) ?? -1
        if (i >= 0) n.items?.splice(i, 1)
        break
      }
      n = n.children[nibble(entry.keyLeaf, n.depth)]
    }
  }

  private split (n: TreeNode): void {
    const items = n.items as DigestEntry[]
    n.children = Array.from({ length: DIGEST_FANOUT }, () => newNode(n.depth + 1))
    n.items = undefined
    for (const e of items) {
      const c = n.children[nibble(e.keyLeaf, n.depth)] as TreeNode
      xorInto(c.hash, e.keyLeaf, LEAF)
      c.count++
      c.items?.push(e)
    }
    for (const c of n.children) if ((c.items?.length ?? 0) > DIGEST_BUCKET_SIZE && c.depth < MAX_PREFIX_DEPTH) this.split(c)
  }

  /** The deepest stored node covering `p`. */
  private nodeFor (p: Prefix): TreeNode {
    let n = this.root
    while (n.depth < p.depth && n.children !== undefined) n = n.children[nibble(p.bits, n.depth)] as TreeNode
    return n
  }

  /** Hash and count of the documents under `p`. */
  range (p: Prefix): RangeDigest {
    const n = this.nodeFor(p)
    if (n.depth === p.depth) return { prefix: p, hash: n.hash.slice(), count: n.count }
    const hash = new Uint8Array(FINGERPRINT_BYTES)
    let count = 0
    for (const e of n.items ?? []) {
      if (inPrefix(e.keyLeaf, p)) {
        xorInto(hash, e.keyLeaf, LEAF)
        count++
      }
    }
    return { prefix: p, hash, count }
  }

  /** The 16 child ranges of `p` (empty ones included, so the peer learns what we lack). */
  children (p: Prefix): RangeDigest[] {
    return Array.from({ length: DIGEST_FANOUT }, (_, i) => this.range(childPrefix(p, i)))
  }

  /** Every document under `p`. */
  list (p: Prefix): DigestEntry[] {
    const out: DigestEntry[] = []
    const walk = (n: TreeNode): void => {
      if (n.children !== undefined) {
        if (n.depth < p.depth) walk(n.children[nibble(p.bits, n.depth)] as TreeNode)
        else for (const c of n.children) walk(c)
        return
      }
      for (const e of n.items ?? []) if (inPrefix(e.keyLeaf, p)) out.push(e)
    }
    walk(this.root)
    return out
  }
}
