/**
 * Child process of crash.test.ts. Writes documents continuously through the LevelDB storage and
 * prints one line per acknowledged write:
 *
 *   ready
 *   ack <docId> <label>        the append of `label` into document `docId` resolved
 *   meta <key> <value>         setMeta(key, value) resolved
 *
 * argv: <path> <seed> <generation> <process|power> <storage|node|sync> [documents, sync mode]. Runs until killed.
 * In `storage` mode it appends Yjs updates itself; in `node` mode it edits documents of a real
 * node (`createNode`) and acknowledges an edit once `node.flush()` resolved. In `sync` mode a
 * node on the store receives a large sync (`SYNC_DOCS` documents) from a source node in the same
 * process, and prints `ack <id>,<id>,...` for the documents a `node.flush()` stored, then `done`.
 */
import { createMemoryNetwork, createMemoryStorage, createNode, createRandom, docFingerprint } from '@hearsay/core'
import { createLevelStorage } from '@hearsay/leveldb'
import * as Y from 'yjs'
import { populate } from './populate.js'

const [path, seedArg, genArg, durabilityArg, modeArg, docsArg] = process.argv.slice(2)
if (path === undefined || seedArg === undefined || genArg === undefined) throw new Error('usage: crash-child <path> <seed> <generation> [durability]')
const gen = Number(genArg)
const rnd = createRandom(Number(seedArg) * 1000 + gen)
const durability = durabilityArg === 'power' ? 'power' : 'process'
const DOCS = Array.from({ length: 12 }, (_, i) => `doc/${i}/ü`)
const WRITERS = 4

const out = (line: string): void => { process.stdout.write(line + '\n') }
if (modeArg === 'sync') await receiveSync()

async function receiveSync (): Promise<never> {
  const net = createMemoryNetwork({ seed: gen + 1, autoConnect: false })
  const sourceStore = createMemoryStorage()
  await sourceStore.open()
  // content from `populate`: deterministic, so the parent knows what each document holds
  await populate(sourceStore, Number(docsArg ?? 1000), 3, docFingerprint)
  const quiet = { enabled: false, onConnect: false }
  const source = createNode({ id: 'source', transport: net.transport('source'), storage: sourceStore, antiEntropy: quiet })
  const receiver = createNode({ id: 'receiver', transport: net.transport('receiver'), storage: createLevelStorage({ path: path as string, durability }), antiEntropy: quiet })
  await source.start()
  await receiver.start()
  net.connect('source', 'receiver')
  out('ready')
  if (receiver.problems().length > 0) out(`problems ${JSON.stringify(receiver.problems())}`)
  const acked = new Set<string>()
  let done = false
  const sync = (async () => {
    while (receiver.metrics().sessions === 0) await new Promise(resolve => setTimeout(resolve, 2))
    await receiver.syncWith('source')
    done = true
  })()
  sync.catch((err: unknown) => { process.stderr.write(`sync failed: ${String(err)}\n`); process.exit(1) })
  for (;;) {
    const before = receiver.docs()
    await receiver.flush()
    const fresh = before.filter(id => !acked.has(id))
    for (const id of fresh) acked.add(id)
    if (fresh.length > 0) out(`ack ${fresh.join(',')}`)
    if (done) {
      out('done')
      await new Promise(() => {}) // until killed
    }
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

const storage = createLevelStorage({ path, durability, compactAfterUpdates: 40, compactionMergeBatch: 8 })
const node = modeArg === 'node'
  ? createNode({ id: 'crash', transport: createMemoryNetwork({ seed: 1 }).transport('crash'), storage, antiEntropy: { enabled: false } })
  : undefined
const docs = new Map<string, Promise<Y.Doc>>()

async function docFor (id: string): Promise<Y.Doc> {
  let p = docs.get(id)
  if (p === undefined && node !== undefined) {
    p = node.open(id)
    docs.set(id, p)
  }
  if (p === undefined) {
    p = storage.load(id).then(updates => {
      const doc = new Y.Doc()
      Y.transact(doc, () => { for (const u of updates) Y.applyUpdate(doc, u) })
      return doc
    })
    docs.set(id, p)
  }
  return await p
}

function fingerprintOf (doc: Y.Doc): Uint8Array {
  const sv = Y.encodeStateVector(doc)
  const f = new Uint8Array(16)
  for (let i = 0; i < sv.length; i++) f[i % 16] = ((f[i % 16] as number) * 31 + (sv[i] as number)) & 0xff
  return f
}

let n = 0
async function writer (): Promise<void> {
  for (;;) {
    const id = rnd.pick(DOCS)
    const doc = await docFor(id)
    const label = `g${gen}n${n++}`
    let update: Uint8Array | undefined
    const grab = (u: Uint8Array): void => { update = u }
    doc.on('update', grab)
    const text = doc.getText('t')
    text.insert(text.length, label + ';')
    doc.off('update', grab)
    if (update === undefined) throw new Error('no update')
    if (node !== undefined) await node.flush()
    else await storage.append(id, [update], fingerprintOf(doc))
    out(`ack ${id} ${label}`)
    if (rnd.int(10) === 0) {
      const key = `checkpoint/${rnd.int(3)}`
      await storage.setMeta(key, new TextEncoder().encode(label))
      out(`meta ${key} ${label}`)
    }
  }
}

if (node !== undefined) await node.start()
else await storage.open()
out('ready')
await Promise.all(Array.from({ length: WRITERS }, writer))
