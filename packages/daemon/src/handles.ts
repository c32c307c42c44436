/**
 * Access to the node's documents for the endpoint: a client, a watcher or a request opens a
 * document while it uses it. Each handle is one `node.open()` and its release one `node.close()`;
 * the node counts the holds and unloads the document once none is left.
 */
import type { HearsayNode } from '@hearsay/core'
import type * as Y from 'yjs'

export interface DocHandle {
  doc: Y.Doc
  /** Give the document back. A second call does nothing. */
  release: () => void
}

export class DocHandles {
  constructor (private readonly node: HearsayNode) {}

  /** Opens the document; a failed open holds nothing. */
  async acquire (docId: string): Promise<DocHandle> {
    const doc = await this.node.open(docId)
    let released = false
    return {
      doc,
      release: () => {
        if (released) return
        released = true
        this.node.close(docId)
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
