/**
 * A `Storage` that passes everything to another and counts the writes made through it (appends,
 * replaces, deletes, metadata), to show that something wrote nothing (presence) or how much.
 */
import type { Storage } from '../storage.js'

export function countingStorage (inner: Storage): { storage: Storage, writes: () => number } {
  let writes = 0
  return {
    storage: {
      open: async () => { await inner.open() },
      close: async () => { await inner.close() },
      list: async () => await inner.list(),
      load: async id => await inner.load(id),
      append: async (id, u, fp) => { writes++; await inner.append(id, u, fp) },
      replace: async (id, s, fp) => { writes++; await inner.replace(id, s, fp) },
      delete: async id => { writes++; await inner.delete(id) },
      getMeta: async key => await inner.getMeta(key),
      setMeta: async (key, value) => { writes++; await inner.setMeta(key, value) },
      ...(inner.losses !== undefined ? { losses: () => inner.losses!() } : {})
    },
    writes: () => writes
  }
}
