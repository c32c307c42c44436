// Child process of the storage benchmark, so start-up time and memory are measured clean.
// Plain JavaScript so that it runs on the built packages (dist) with no loader in the process;
// with `--conditions=hearsay-source --import tsx` it runs on the sources instead.
// argv: <mode> <path> [openDocs]
//   cold: open the store and list it; prints {"importMs","readyMs","docs"} (ms since process start)
//   rss:  open, list, load `openDocs` documents into Y.Docs and keep them; prints {"rssMB","heapMB","docs","open"}
import { performance } from 'node:perf_hooks'

const [mode, path, openArg] = process.argv.slice(2)
if (path === undefined) throw new Error('usage: storage-child <cold|rss> <path> [openDocs]')
const Y = await import('yjs')
const { createLevelStorage } = await import('@hearsay/leveldb')
const importMs = performance.now()
const store = createLevelStorage({ path })
await store.open()
const list = await store.list()
const readyMs = performance.now()
if (mode === 'cold') {
  process.stdout.write(JSON.stringify({ importMs, readyMs, docs: list.length }) + '\n')
} else {
  const open = []
  for (const info of list.slice(0, Number(openArg ?? 100))) {
    const doc = new Y.Doc()
    for (const u of await store.load(info.id)) Y.applyUpdate(doc, u)
    open.push(doc)
  }
  globalThis.gc?.()
  const m = process.memoryUsage()
  process.stdout.write(JSON.stringify({ rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20, docs: list.length, open: open.length }) + '\n')
}
await store.close()
