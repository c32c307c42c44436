// Smoke test of @hearsay/leveldb on the built packages, for any Node binary, e.g. an arm64 Node under
// qemu (see packages/leveldb/README.md, "ARM"). Prints the platform, the prebuild in use and "ok".
//   node test/storage/smoke.mjs
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { createLevelStorage } from '@hearsay/leveldb'

const assert = (cond, what) => { if (!cond) throw new Error(`smoke test failed: ${what}`) }
const path = await mkdtemp(join(tmpdir(), 'hearsay-smoke-'))
const t0 = performance.now()
try {
  let store = createLevelStorage({ path, compactAfterUpdates: 50 })
  await store.open()
  const doc = new Y.Doc()
  const updates = []
  doc.on('update', u => updates.push(u))
  for (let i = 0; i < 300; i++) doc.getText('t').insert(i, 'x')
  for (const u of updates) await store.append('notes/ü', [u], new Uint8Array(16).fill(1))
  await Promise.all(Array.from({ length: 1000 }, (_, i) => store.append(`doc-${i}`, [updates[0]], new Uint8Array(16).fill(i & 0xff))))
  await store.idle()
  await store.setMeta('peer/a', new Uint8Array([7]))
  await store.close()

  store = createLevelStorage({ path })
  await store.open()
  assert((await store.list()).length === 1001, 'list')
  const copy = new Y.Doc()
  for (const u of await store.load('notes/ü')) Y.applyUpdate(copy, u)
  assert(copy.getText('t').toString() === 'x'.repeat(300), 'content after compaction and reopen')
  assert((await store.stats('notes/ü')).records < 300, 'compacted')
  assert((await store.getMeta('peer/a'))[0] === 7, 'meta')
  assert((await store.verify()).corrupt.length === 0, 'verify')
  const locked = await createLevelStorage({ path }).open().then(() => undefined, e => e)
  assert(locked?.name === 'StorageError', 'lock error')
  await store.close()
  console.log(`${process.platform}-${process.arch} node ${process.version}: ok in ${Math.round(performance.now() - t0)} ms`)
} finally {
  await rm(path, { recursive: true, force: true })
}
