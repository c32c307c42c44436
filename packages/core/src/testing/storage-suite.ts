/**
 * Compliance suite for `Storage` implementations. `create` returns a store for a directory or
 * name; calling it again with the same argument must reopen the same data (for durable stores),
 * or return `undefined` from `reopen` when the store is not durable.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import type { Storage } from '../storage.js'

export interface StorageSetup {
  /** A fresh, unopened store. */
  create: () => Promise<Storage>
  /** A new instance over the same data as `store` (after it was closed), or undefined when not durable. */
  reopen?: (store: Storage) => Promise<Storage>
  cleanup?: () => Promise<void>
  /**
   * The store reports `StoredDocInfo.bytes`; set false to skip those checks for a store that
   * leaves it out. @default true
   */
  reportsBytes?: boolean
}

const fp = (n: number): Uint8Array => new Uint8Array(16).fill(n)

function updates (n: number, text = 'x'): Uint8Array[] {
  const doc = new Y.Doc()
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => out.push(u))
  for (let i = 0; i < n; i++) doc.getText('t').insert(i, text)
  return out
}

function apply (list: Uint8Array[]): string {
  const doc = new Y.Doc()
  for (const u of list) Y.applyUpdate(doc, u)
  return doc.getText('t').toString()
}

export function runStorageTests (name: string, setup: () => Promise<StorageSetup>): void {
  describe(`Storage compliance: ${name}`, () => {
    let s: StorageSetup | undefined
    const opened: Storage[] = []
    afterEach(async () => {
      for (const st of opened.splice(0)) await st.close()
      await s?.cleanup?.()
      s = undefined
    })

    async function fresh (): Promise<Storage> {
      s = await setup()
      const st = await s.create()
      await st.open()
      await st.open() // idempotent
      opened.push(st)
      return st
    }

    it('appends and loads updates in order, with the last fingerprint listed', async () => {
      const st = await fresh()
      const us = updates(20)
      await st.append('a', us.slice(0, 5), fp(1))
      await st.append('a', us.slice(5), fp(2))
      await st.append('b/ü/文', us.slice(0, 1), fp(3))
      expect(apply(await st.load('a'))).toBe('x'.repeat(20))
      expect(apply(await st.load('b/ü/文'))).toBe('x')
      const list = (await st.list()).sort((x, y) => x.id < y.id ? -1 : 1)
      expect(list.map(d => d.id)).toEqual(['a', 'b/ü/文'])
      expect(list[0]?.fingerprint).toEqual(fp(2))
      expect(list[1]?.fingerprint).toEqual(fp(3))
    })

    it('keeps a document id that starts with a byte order mark', async () => {
      const st = await fresh()
      await st.append('\uFEFFbom', updates(1), fp(4))
      expect((await st.list()).map(d => d.id)).toEqual(['\uFEFFbom'])
      expect(apply(await st.load('\uFEFFbom'))).toBe('x')
    })

    it('returns [] for an unknown document', async () => {
      const st = await fresh()
      expect(await st.load('nope')).toEqual([])
    })

    it('replace keeps content and leaves one record', async () => {
      const st = await fresh()
      const all = updates(51)
      const us = all.slice(0, 50)
      await st.append('a', us, fp(1))
      await st.replace('a', Y.mergeUpdates(us), fp(1))
      const loaded = await st.load('a')
      expect(loaded.length).toBe(1)
      expect(apply(loaded)).toBe('x'.repeat(50))
      await st.append('a', all.slice(50), fp(4))
      expect(apply(await st.load('a'))).toBe('x'.repeat(51))
    })

    const bytesOf = async (st: Storage, id: string): Promise<number | undefined> => (await st.list()).find(d => d.id === id)?.bytes

    it('reports stored bytes per document: growing on append, not growing on replace', async () => {
      const st = await fresh()
      if (s?.reportsBytes === false) return
      const us = updates(40, 'yy')
      await st.append('a', us.slice(0, 10), fp(1))
      const first = await bytesOf(st, 'a')
      expect(first).toBeTypeOf('number')
      expect(first).toBeGreaterThan(0)
      await st.append('a', us.slice(10), fp(2))
      const grown = await bytesOf(st, 'a') as number
      expect(grown).toBeGreaterThan(first as number)
      const snapshot = Y.mergeUpdates(us)
      await st.replace('a', snapshot, fp(2))
      const replaced = await bytesOf(st, 'a') as number
      expect(replaced).toBeLessThanOrEqual(grown)
      expect(replaced).toBeGreaterThan(0)
      await st.append('b', us.slice(0, 1), fp(3))
      expect(await bytesOf(st, 'b')).toBeGreaterThan(0)
      await st.delete('a')
      expect(await bytesOf(st, 'a')).toBeUndefined()
    })

    it('delete removes the document and its records', async () => {
      const st = await fresh()
      await st.append('a', updates(3), fp(1))
      await st.append('ab', updates(2), fp(1))
      await st.delete('a')
      expect(await st.load('a')).toEqual([])
      expect((await st.list()).map(d => d.id)).toEqual(['ab'])
      expect(apply(await st.load('ab'))).toBe('xx')
    })

    it('keeps metadata records apart from documents', async () => {
      const st = await fresh()
      expect(await st.getMeta('k')).toBeUndefined()
      await st.setMeta('k', new Uint8Array([1, 2]))
      await st.setMeta('k', new Uint8Array([3]))
      expect(await st.getMeta('k')).toEqual(new Uint8Array([3]))
      expect(await st.list()).toEqual([])
    })

    it('does not keep references to caller buffers', async () => {
      const st = await fresh()
      const [u] = updates(1)
      const f = fp(9)
      await st.append('a', [u as Uint8Array], f)
      f.fill(0)
      ;(u as Uint8Array).fill(0)
      expect((await st.list())[0]?.fingerprint).toEqual(fp(9))
      expect(apply(await st.load('a'))).toBe('x')
    })

    it('holds 2,000 documents', async () => {
      const st = await fresh()
      const [u] = updates(1)
      await Promise.all(Array.from({ length: 2000 }, (_, i) => st.append(`doc-${i}`, [u as Uint8Array], fp(i & 0xff))))
      const list = await st.list()
      expect(list.length).toBe(2000)
      expect(new Set(list.map(d => d.id)).size).toBe(2000)
      expect(apply(await st.load('doc-1999'))).toBe('x')
    })

    it('survives close and reopen (durable stores)', async () => {
      const st = await fresh()
      if (s?.reopen === undefined) return
      const us = updates(10)
      await st.append('a', us, fp(5))
      await st.setMeta('m', new Uint8Array([42]))
      await st.close()
      opened.splice(opened.indexOf(st), 1)
      const again = await s.reopen(st)
      await again.open()
      opened.push(again)
      expect(apply(await again.load('a'))).toBe('x'.repeat(10))
      expect((await again.list())[0]?.fingerprint).toEqual(fp(5))
      expect(await again.getMeta('m')).toEqual(new Uint8Array([42]))
      if (s.reportsBytes !== false) {
        const stored = us.reduce((n, u) => n + u.length, 0)
        // the store may have compacted the updates meanwhile: at most what was appended
        const bytes = (await again.list())[0]?.bytes as number
        expect(bytes).toBeGreaterThan(0)
        expect(bytes).toBeLessThanOrEqual(stored)
      }
    })
  })
}
