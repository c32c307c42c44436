// Child process of the storage benchmark, so start-up time and memory are measured clean.
// Plain JavaScript so that it runs on the built packages (dist) with no loader in the process;
// with `--conditions=hearsay-source --import tsx` it runs on the sources instead.
// argv: <mode> <path> [openDocs]
//   cold:      open the store and list it
//   node-cold: createNode + start() on the store (the node lists it and builds its digest)
//      both print {"importMs","readyMs","docs"} (ms since process start)
//   rss:       open, list, load `openDocs` documents into Y.Docs and keep them
//   node-rss:  createNode + start(), node.open() `openDocs` documents
//   libp2p-rss: the same with createHearsayNode (@hearsay/libp2p: TCP on 127.0.0.1, mDNS off)
//      all three print {"rssMB","heapMB","docs","open","docsLoaded"}
//   node-writes <path> <durability> <edits>: edits through node.open + await node.flush(), one
//      at a time, on a fresh store; prints {"editsPerSec","p50","p99"} (ms per edit + flush)
import { performance } from 'node:perf_hooks'

const [mode, path, openArg, countArg] = process.argv.slice(2)
if (path === undefined) throw new Error('usage: storage-child <cold|node-cold|rss|node-rss|libp2p-rss|node-writes> <path> [openDocs|durability] [edits]')
const withNode = mode.startsWith('node-') || mode.startsWith('libp2p-')
const Y = await import('yjs')
const { createLevelStorage } = await import('@hearsay/leveldb')
const core = withNode ? await import('@hearsay/core') : undefined
const p2p = mode.startsWith('libp2p-') ? await import('@hearsay/libp2p') : undefined
const importMs = performance.now()

if (mode === 'node-writes') {
  const total = Number(countArg ?? 2000)
  const node = core.createNode({ id: 'bench', transport: core.createMemoryNetwork({ seed: 1 }).transport('bench'), storage: createLevelStorage({ path, durability: openArg }), antiEntropy: { enabled: false } })
  await node.start()
  const docs = []
  for (let i = 0; i < 16; i++) docs.push(await node.open(`doc-${i}`))
  const latencies = []
  const t0 = performance.now()
  for (let i = 0; i < total; i++) {
    const s = performance.now()
    const text = docs[i % docs.length].getText('t')
    text.insert(text.length, 'x')
    await node.flush()
    latencies.push(performance.now() - s)
  }
  const ms = performance.now() - t0
  await node.stop()
  latencies.sort((a, b) => a - b)
  process.stdout.write(JSON.stringify({ editsPerSec: total / (ms / 1000), p50: latencies[Math.floor(total * 0.5)], p99: latencies[Math.floor(total * 0.99)] }) + '\n')
  process.exit(0)
}

const store = createLevelStorage({ path })
let ids
let node
if (p2p !== undefined) {
  node = await p2p.createHearsayNode({ storage: store, mdns: false, listen: ['/ip4/127.0.0.1/tcp/0'], antiEntropy: { enabled: false } })
  node.digest()
  ids = node.docs()
} else if (withNode) {
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
