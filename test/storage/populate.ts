/** Fills a store with many small documents, as a node would have written them. */
import type { Storage } from '@hearsay/core'
import * as Y from 'yjs'

export const docIdOf = (i: number): string => `notes/${String(i).padStart(5, '0')}`

/** `count` documents, each written as `updatesPerDoc` appends of a small text edit. */
export async function populate (store: Storage, count: number, updatesPerDoc = 3): Promise<void> {
  const CHUNK = 500
  for (let start = 0; start < count; start += CHUNK) {
    const jobs: Array<Promise<void>> = []
    for (let i = start; i < Math.min(count, start + CHUNK); i++) {
      const doc = new Y.Doc()
      doc.clientID = i + 1
      const updates: Uint8Array[] = []
      doc.on('update', (u: Uint8Array) => updates.push(u))
      const text = doc.getText('t')
      for (let k = 0; k < updatesPerDoc; k++) text.insert(text.length, `line ${k} of document ${i}\n`)
      const fingerprint = new Uint8Array(16)
      new DataView(fingerprint.buffer).setUint32(0, i)
      jobs.push((async () => { for (const u of updates) await store.append(docIdOf(i), [u], fingerprint) })())
    }
    await Promise.all(jobs)
  }
}
