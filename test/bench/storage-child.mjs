// Child process of the storage benchmark, so start-up time and memory are measured clean.
// Plain JavaScript so that it runs on the built packages (dist) with no loader in the process;
// with `--conditions=hearsay-source --import tsx` it runs on the sources instead.
// argv: <mode> <path> [openDocs]
//   cold:      open the store and list it
//   node-cold: createNode + start() on the store (the node lists it and builds its digest)
//      both print {"importMs","readyMs","docs"} (ms since process start)
//   rss:       open, list, load `openDocs` documents into Y.Docs and keep them
//   node-rss:  createNode + start(), node.open() `openDocs` documents
//      both print {"rssMB","heapMB","docs","open","docsLoaded"}
import { performance } from 'node:perf_hooks'

const [mode, path, openArg] = process.argv.slice(2)
if (path === undefined) throw new Error('usage: storage-child <cold|node-cold|rss|node-rss> <path> [openDocs]')
const withNode = mode.startsWith('node-')
const Y = await import('yjs')
const { createLevelStorage } = await import('@hearsay/leveldb')
const core = withNode ? await import('@hearsay/core') : undefined
const importMs = performance.now()
const store = createLevelStorage({ path })
let ids
let node
if (withNode) {
  node = core.createNode({ id: 'bench', transport: core.createMemoryNetwork({ seed: 1 }).transport('bench'), storage: store, antiEntropy: { enabled: false } })
  await node.start()
  node.digest()
  ids = node.docs()
} else {
  await store.open()
  ids = (await store.list()).map(d => d.id)
}
const readyMs = performance.now()
if (mode.endsWith('cold')) {
  process.stdout.write(JSON.stringify({ importMs, readyMs, docs: ids.length }) + '\n')
} else {
  const open = []
  for (const id of ids.slice(0, Number(openArg ?? 100))) {
    if (node !== undefined) {
      open.push(await node.open(id))
    } else {
      const doc = new Y.Doc()
      for (const u of await store.load(id)) Y.applyUpdate(doc, u)
      open.push(doc)
    }
  }
  globalThis.gc?.()
  const m = process.memoryUsage()
  process.stdout.write(JSON.stringify({ rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20, docs: ids.length, open: open.length, docsLoaded: node?.metrics().docsLoaded ?? open.length }) + '\n')
}
if (node !== undefined) await node.stop()
else await store.close()
