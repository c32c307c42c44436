/**
 * In-memory `Storage`: the default when a node is given none. Nothing survives the process.
 */
import * as Y from 'yjs'
import { MEMORY_COMPACT_UPDATES } from './constants.js'
import { StorageError } from './errors.js'
import type { Storage, StoredDocInfo } from './storage.js'

export interface MemoryStorageOptions {
  /** Merge a document's updates into one past this many. @default MEMORY_COMPACT_UPDATES (500) */
  compactAfterUpdates?: number
}

interface Entry { updates: Uint8Array[], fingerprint: Uint8Array }

const sizeOf = (updates: Uint8Array[]): number => {
  let n = 0
  for (const u of updates) n += u.length
  return n
}

export function createMemoryStorage (options: MemoryStorageOptions = {}): Storage {
  const compactAfter = options.compactAfterUpdates ?? MEMORY_COMPACT_UPDATES
  const docs = new Map<string, Entry>()
  const meta = new Map<string, Uint8Array>()
  let open = false
  const check = (): void => {
    if (!open) throw new StorageError('memory storage is not open')
  }
  return {
    async open () { open = true },
    async close () { open = false },
    async list (): Promise<StoredDocInfo[]> {
      check()
      return [...docs].map(([id, e]) => ({ id, fingerprint: e.fingerprint.slice(), bytes: sizeOf(e.updates) }))
    },
    async load (docId) {
      check()
      return docs.get(docId)?.updates.slice() ?? []
    },
    async append (docId, updates, fingerprint) {
      check()
      const e = docs.get(docId) ?? { updates: [], fingerprint }
      e.updates.push(...updates.map(u => u.slice()))
      e.fingerprint = fingerprint.slice()
      if (e.updates.length > compactAfter) e.updates = [Y.mergeUpdates(e.updates)]
      docs.set(docId, e)
    },
    async replace (docId, snapshot, fingerprint) {
      check()
      docs.set(docId, { updates: [snapshot.slice()], fingerprint: fingerprint.slice() })
    },
    async delete (docId) {
      check()
      docs.delete(docId)
    },
    async getMeta (key) {
      check()
      return meta.get(key)?.slice()
    },
    async setMeta (key, value) {
      check()
      meta.set(key, value.slice())
    }
  }
}
