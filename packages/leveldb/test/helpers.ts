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
