/**
 * The engine on LevelDB: a node restarts on 10,000 stored documents and answers an idle digest
 * exchange without loading any document; flushed edits survive a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryNetwork, createNode, docFingerprint } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createLevelStorage } from '@hearsay/leveldb'
import { afterAll, describe, expect, it } from 'vitest'
import { docIdOf, populate } from './populate.js'

const DOCS = 10_000
const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
async function dir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hearsay-node-'))
  dirs.push(d)
  return d
}
const quiet = { enabled: false, onConnect: false }

describe('a node on @hearsay/leveldb', () => {
  it(`restarts on ${DOCS.toLocaleString('en')} stored documents and answers an idle digest exchange without loading any`, async () => {
    const [pa, pb] = [await dir(), await dir()]
    for (const path of [pa, pb]) {
      const store = createLevelStorage({ path, durability: 'process' })
      await store.open()
      await populate(store, DOCS, 3, docFingerprint)
      await store.close()
    }
    const net = createMemoryNetwork({ seed: 1 })
    const a = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path: pa }), antiEntropy: quiet })
    const b = createNode({ id: 'b', transport: net.transport('b'), storage: createLevelStorage({ path: pb }), antiEntropy: quiet })
    const t0 = performance.now()
    await a.start()
    const startMs = performance.now() - t0
    await b.start()
    try {
      expect(a.docs().length).toBe(DOCS)
      expect(a.digest().root).toEqual(b.digest().root)
      net.connect('a', 'b')
      await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
      const report = await b.syncWith('a')
      expect(report.docsSent + report.docsReceived).toBe(0)
      expect(a.metrics().docsLoaded).toBe(0)
      expect(b.metrics().docsLoaded).toBe(0)

      // one edit on b: the next exchange loads that document only
      const doc = await b.open(docIdOf(4321))
      doc.getText('t').insert(0, 'edited ')
      await b.flush()
      await b.syncWith('a', { mode: 'push-pull' })
      await waitFor(() => a.metrics().docsLoaded === 1, { message: 'a loads the edited document' })
      expect(a.metrics().docsLoaded).toBe(1)
      expect(startMs).toBeLessThan(3000)
      // eslint-disable-next-line no-console -- test report
      console.log(`node start on ${DOCS} stored documents: ${startMs.toFixed(0)} ms; idle exchange: ${report.roundTrips} round trips, ${report.bytesSent + report.bytesReceived} bytes`)
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('keeps flushed edits across a restart and serves them to a peer', async () => {
    const path = await dir()
    let a = createNode({ id: 'a', transport: createMemoryNetwork({ seed: 2 }).transport('a'), storage: createLevelStorage({ path }), antiEntropy: quiet })
    await a.start()
    const doc = await a.open('notes/1')
    doc.getText('t').insert(0, 'hello')
    doc.getMap('m').set('k', 1)
    await a.flush()
    await a.stop()

    const net = createMemoryNetwork({ seed: 3 })
    a = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path }), antiEntropy: quiet })
    const b = createNode({ id: 'b', transport: net.transport('b'), antiEntropy: quiet })
    await a.start()
    await b.start()
    try {
      expect(a.docs()).toEqual(['notes/1'])
      expect(a.metrics().docsLoaded).toBe(0)
      net.connect('a', 'b')
      await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
      await b.syncWith('a')
      const copy = await b.open('notes/1')
      expect(copy.getText('t').toString()).toBe('hello')
      expect(copy.getMap('m').toJSON()).toEqual({ k: 1 })
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
