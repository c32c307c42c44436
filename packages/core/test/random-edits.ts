/** Seeded random edits of a Y.Doc, for tests that compare the engine's view of a document with Yjs's own. */
import * as Y from 'yjs'
import type { Random } from '../src/random.js'

/** One random edit: text, map, array, nested types, formatting, deletes. */
export function edit (doc: Y.Doc, rng: Random, origin: unknown): void {
  const t = doc.getText('t')
  const m = doc.getMap('m')
  const a = doc.getArray<unknown>('a')
  doc.transact(() => {
    const ops = 1 + rng.int(3)
    for (let i = 0; i < ops; i++) {
      switch (rng.int(8)) {
        case 0: case 1: t.insert(rng.int(t.length + 1), 'abcdefgh'.slice(0, 1 + rng.int(8))); break
        case 2: if (t.length > 0) { const at = rng.int(t.length); t.delete(at, 1 + rng.int(Math.min(5, t.length - at))) } break
        case 3: if (t.length > 0) t.format(rng.int(t.length), 1, { bold: rng.int(2) === 0 ? true : null }); break
        case 4: m.set(`k${rng.int(6)}`, rng.int(2) === 0 ? rng.int(1000) : new Y.Map([['x', rng.int(10)]])); break
        case 5: m.delete(`k${rng.int(6)}`); break
        case 6: a.insert(rng.int(a.length + 1), [rng.int(100), new Y.Array()]); break
        case 7: if (a.length > 0) a.delete(rng.int(a.length), 1); break
      }
    }
  }, origin)
}
