/**
 * Reference-counted access to the node's documents: the endpoint opens a document while a client,
 * a watcher or a request uses it, and lets the node unload it once nobody does.
 */
import type { HearsayNode } from '@hearsay/core'
import type * as Y from 'yjs'

export interface DocHandle {
  doc: Y.Doc
  /** Give the document back; call exactly once. */
  release: () => void
}

export class DocHandles {
  private readonly open = new Map<string, { doc: Promise<Y.Doc>, refs: number }>()

  constructor (private readonly node: HearsayNode) {}

  async acquire (docId: string): Promise<DocHandle> {
    let entry = this.open.get(docId)
    if (entry === undefined) {
      entry = { doc: this.node.open(docId), refs: 0 }
      this.open.set(docId, entry)
    }
    entry.refs++
    const current = entry
    let doc: Y.Doc
    try {
      doc = await current.doc
    } catch (err) {
      if (--current.refs === 0 && this.open.get(docId) === current) this.open.delete(docId)
      throw err
    }
    let released = false
    return {
      doc,
      release: () => {
        if (released) return
        released = true
        if (--current.refs === 0 && this.open.get(docId) === current) {
          this.open.delete(docId)
          this.node.close(docId)
        }
      }
    }
  }

  /** Run `fn` with the document open. */
  async with<T> (docId: string, fn: (doc: Y.Doc) => T | Promise<T>): Promise<T> {
    const h = await this.acquire(docId)
    try {
      return await fn(h.doc)
    } finally {
      h.release()
    }
  }
}
