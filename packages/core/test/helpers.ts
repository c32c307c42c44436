import * as Y from 'yjs'
import { createMemoryNetwork, createMemoryStorage, createNode, createRandom, type HearsayNode, type MemoryNetwork, type NodeOptions, type Random, type Storage } from '../src/index.js'

export interface Cluster { net: MemoryNetwork, nodes: HearsayNode[], stop: () => Promise<void> }

/** Start nodes `ids` on one memory network. */
export async function cluster (ids: string[], options: Partial<NodeOptions> = {}, seed = 1, autoConnect = true): Promise<Cluster> {
  const net = createMemoryNetwork({ seed, autoConnect })
  const nodes = ids.map((id, i) => createNode({ id, transport: net.transport(id), seed: seed * 100 + i, ...options }))
  for (const n of nodes) await n.start()
  return { net, nodes, stop: async () => { for (const n of nodes) await n.stop() } }
}

/** Write random text into a document. */
export function scribble (doc: Y.Doc, rng: Random, edits = 3): void {
  const t = doc.getText('t')
  for (let i = 0; i < edits; i++) {
    if (t.length > 4 && rng.next() < 0.3) t.delete(rng.int(t.length - 2), 2)
    else t.insert(rng.int(t.length + 1), rng.next().toString(36).slice(2, 6))
  }
  doc.getMap('m').set(`k${rng.int(5)}`, rng.int(1000))
}

/** Content of a document as plain JSON (fetching the types first). */
export async function content (node: HearsayNode, docId: string): Promise<unknown> {
  const doc = await node.open(docId)
  doc.getText('t')
  doc.getMap('m')
  const json = doc.toJSON()
  node.close(docId)
  return json
}

export { createRandom }

/**
 * A memory store whose load of `gatedId` answers only once `open()` is called: a node's inbox backs
 * up behind that load, as behind a slow SD card.
 */
export function gatedStorage (gatedId: string): { storage: Storage, open: () => void } {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  const inner = createMemoryStorage()
  const storage: Storage = {
    open: async () => { await inner.open() },
    close: async () => { await inner.close() },
    list: async () => await inner.list(),
    load: async id => { if (id === gatedId) await gate; return await inner.load(id) },
    append: async (id, updates, fp) => { await inner.append(id, updates, fp) },
    replace: async (id, snapshot, fp) => { await inner.replace(id, snapshot, fp) },
    delete: async id => { await inner.delete(id) },
    getMeta: async key => await inner.getMeta(key),
    setMeta: async (key, value) => { await inner.setMeta(key, value) }
  }
  return { storage, open }
}
