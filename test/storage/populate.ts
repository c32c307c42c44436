/** Fills a store with many small documents, as a node would have written them. */
import type { Storage } from '@hearsay/core'
import * as Y from 'yjs'

export const docIdOf = (i: number): string => `notes/${String(i).padStart(5, '0')}`

/** A stand-in fingerprint (the document number) for tests that run without the engine. */
const numbered = (i: number): Uint8Array => {
  const f = new Uint8Array(16)
  new DataView(f.buffer).setUint32(0, i)
  return f
}

/**
 * `count` documents, each written as `updatesPerDoc` appends of a small text edit, with the
 * fingerprint of the state each append leads to (`fingerprint`, e.g. core's `docFingerprint`), or
 * the document number. Content is deterministic: two stores populated alike hold the same documents.
 */
export async function populate (store: Storage, count: number, updatesPerDoc = 3, fingerprint?: (doc: Y.Doc) => Uint8Array): Promise<void> {
  const CHUNK = 500
  for (let start = 0; start < count; start += CHUNK) {
    const jobs: Array<Promise<void>> = []
    for (let i = start; i < Math.min(count, start + CHUNK); i++) {
      const doc = new Y.Doc()
      doc.clientID = i + 1
      const writes: Array<{ update: Uint8Array, fp: Uint8Array }> = []
      let last: Uint8Array | undefined
      doc.on('update', (u: Uint8Array) => { last = u })
      const text = doc.getText('t')
      for (let k = 0; k < updatesPerDoc; k++) {
        text.insert(text.length, `line ${k} of document ${i}\n`)
        writes.push({ update: last as Uint8Array, fp: fingerprint === undefined ? numbered(i) : fingerprint(doc) })
      }
      jobs.push((async () => { for (const w of writes) await store.append(docIdOf(i), [w.update], w.fp) })())
    }
    await Promise.all(jobs)
  }
}
