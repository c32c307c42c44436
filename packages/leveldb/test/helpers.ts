import { ClassicLevel } from 'classic-level'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'

/** A fresh temp directory and its removal. */
export async function tempDir (prefix = 'hearsay-leveldb-'): Promise<{ path: string, remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, remove: async () => { await rm(path, { recursive: true, force: true }) } }
}

/** `n` small Yjs updates on text `t`, one per inserted character. */
export function smallUpdates (n: number, text = 'x'): Uint8Array[] {
  const doc = new Y.Doc()
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => out.push(u))
  for (let i = 0; i < n; i++) doc.getText('t').insert(i, text)
  return out
}

export function textOf (updates: Uint8Array[]): string {
  const doc = new Y.Doc()
  Y.transact(doc, () => { for (const u of updates) Y.applyUpdate(doc, u) })
  return doc.getText('t').toString()
}

export const fp = (n: number): Uint8Array => new Uint8Array(16).fill(n)

const utf8 = new TextEncoder()

/** Keys of the update records of `docId` (exactly that id, not one it prefixes). */
export const isUpdateOf = (docId: string) => (k: Uint8Array): boolean => k[0] === 0x64 && Buffer.from(k.subarray(3, 3 + utf8.encode(docId).length)).equals(utf8.encode(docId)) && k.length === 3 + utf8.encode(docId).length + 8
/** The key of the head record of `docId`. */
export const isHeadOf = (docId: string) => (k: Uint8Array): boolean => k[0] === 0x66 && Buffer.from(k.subarray(1)).equals(utf8.encode(docId))

/** Rewrite (or delete, when `change` returns undefined) raw LevelDB values under keys matching `pick`; the store must be closed. */
export async function tamper (path: string, pick: (key: Uint8Array) => boolean, change: (value: Uint8Array) => Uint8Array | undefined): Promise<number> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  let n = 0
  for await (const [k, v] of db.iterator()) {
    if (!pick(k)) continue
    const next = change(new Uint8Array(v))
    if (next === undefined) await db.del(k)
    else await db.put(k, next)
    n++
  }
  await db.close()
  return n
}
