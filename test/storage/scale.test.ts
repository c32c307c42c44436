/** A store holding 10,000 documents: listing them is what a cold start costs. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLevelStorage } from '@hearsay/leveldb'
import { afterAll, describe, expect, it } from 'vitest'
import { docIdOf, populate } from './populate.js'

const DOCS = 10_000
let path = ''
afterAll(async () => { if (path !== '') await rm(path, { recursive: true, force: true }) })

describe('10,000 stored documents', () => {
  it('are listed with their fingerprints, fast, after a reopen', async () => {
    path = await mkdtemp(join(tmpdir(), 'hearsay-scale-'))
    const writer = createLevelStorage({ path, durability: 'process' })
    await writer.open()
    const t0 = performance.now()
    await populate(writer, DOCS)
    const writeMs = performance.now() - t0
    // documents written long ago (their heads left the in-memory cache) take further appends
    for (const i of [0, 5000]) {
      await writer.append(docIdOf(i), [], new Uint8Array(16).fill(9))
      expect(await writer.stats(docIdOf(i))).toMatchObject({ records: 3 })
    }
    await writer.close()

    const store = createLevelStorage({ path })
    const t1 = performance.now()
    await store.open()
    const openMs = performance.now() - t1
    const list = await store.list()
    const listMs = performance.now() - t1 - openMs
    try {
      expect(list.length).toBe(DOCS)
      const byId = new Map(list.map(d => [d.id, d.fingerprint]))
      expect(new DataView(byId.get(docIdOf(1234))!.buffer).getUint32(0)).toBe(1234)
      expect(byId.get(docIdOf(5000))).toEqual(new Uint8Array(16).fill(9))
      // target: cold start to a listed collection well under 1 s (measured ~50 ms here)
      expect(openMs + listMs).toBeLessThan(1000)
      expect(await store.stats(docIdOf(9999))).toMatchObject({ records: 3 })
    } finally {
      await store.close()
    }
    // eslint-disable-next-line no-console -- test report
    console.log(`10k docs: written in ${writeMs.toFixed(0)} ms; open ${openMs.toFixed(1)} ms + list ${listMs.toFixed(1)} ms`)
  })
})
