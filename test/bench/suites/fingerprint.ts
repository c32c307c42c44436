/**
 * A loaded document's fingerprint as the document grows. The write queue reads it at every
 * storage batch (every 10 ms while someone types): `docFingerprint` has Yjs build the delete set
 * from every struct, `DocFingerprint` (what a node uses) keeps the deleted ranges as the
 * document changes.
 */
import { DocFingerprint, docFingerprint } from '@hearsay/core'
import * as Y from 'yjs'
import type { Table } from '../run.js'

/** Items the document holds at each row. */
const SIZES = [125_000, 250_000, 500_000, 1_000_000]
/** After one in this many inserts, the character typed before it is deleted (so deleted ranges do not touch). */
const RETYPED = 20
const READS = 20

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number

/** The median ms of `READS` reads of `read`, each after a one-character edit. */
function timed (text: Y.Text, read: () => Uint8Array): number {
  const times: number[] = []
  for (let i = 0; i < READS; i++) {
    text.insert(0, 'y')
    const t0 = performance.now()
    read()
    times.push(performance.now() - t0)
  }
  return median(times)
}

export async function run (): Promise<Table[]> {
  const doc = new Y.Doc()
  const text = doc.getText('t')
  const kept = new DocFingerprint(doc)
  const rows: Array<Array<string | number>> = []
  let items = 0
  for (const size of SIZES) {
    for (; items < size; items++) {
      text.insert(0, 'x')
      if (items % RETYPED === RETYPED - 1) text.delete(1, 1)
    }
    const whole = timed(text, () => docFingerprint(doc))
    const fast = timed(text, () => kept.value())
    if (!Buffer.from(kept.value()).equals(docFingerprint(doc))) throw new Error('the kept fingerprint differs from docFingerprint')
    const ranges = Y.createDeleteSetFromStructStore(doc.store).clients.get(doc.clientID)?.length ?? 0
    rows.push([size.toLocaleString('en'), ranges.toLocaleString('en'), whole, fast, whole / fast])
  }
  return [{
    title: 'A loaded document\'s fingerprint as the document grows (ms per read, after one edit)',
    columns: ['items', 'deleted ranges', 'docFingerprint (delete set from every struct)', 'DocFingerprint (kept ranges)', 'whole ÷ kept'],
    rows,
    notes: [
      `One text, typed backwards one character a transaction; after every ${RETYPED}th, the one typed before it is deleted. The median of ${READS} reads, each after a one-character edit. Both give the same bytes (checked on every row).`,
      'A node reads the fingerprint of each document in a storage batch, every 10 ms while it is edited. The kept one costs the state vector and the deleted ranges (encoded and hashed), not the items: a document with no deletes costs next to nothing at any size, one with many scattered deletes costs in proportion to them.'
    ]
  }]
}
