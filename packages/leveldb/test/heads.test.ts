import { afterEach, describe, expect, it } from 'vitest'
import type { Db } from '../src/database.js'
import { HeadCache, headOp } from '../src/heads.js'
import type { DocState } from '../src/heads.js'
import { encodeUtf8, headKey, seal, updateKey } from '../src/layout.js'
import { fp } from './helpers.js'
import { bareDb, log } from './store-parts.js'

const disposers: Array<() => Promise<void>> = []
afterEach(async () => { for (const d of disposers.splice(0)) await d() })

async function db (): Promise<Db> {
  const b = await bareDb()
  disposers.push(b.dispose)
  return b.db
}

/** Stores `n` update records of `docId` (payload of 3 bytes each) and, unless `head` is false, a head listing them. */
async function storeDoc (d: Db, docId: string, n: number, head = true): Promise<void> {
  const id = encodeUtf8(docId)
  for (let i = 0; i < n; i++) {
    const k = updateKey(id, i)
    await d.put(k, seal(k, new Uint8Array([1, 2, 3])))
  }
  if (!head) return
  const st = { id, nextSeq: n, records: n, bytes: 3 * n, tailBytes: 3 * n } as DocState
  const op = headOp(st, fp(7))
  if (op.type === 'put') await d.put(op.key, op.value)
}

describe('HeadCache', () => {
  it('runs calls for one document one at a time in order, and calls for others alongside', async () => {
    const heads = new HeadCache(log)
    const order: string[] = []
    let releaseA!: () => void
    const gate = new Promise<void>(resolve => { releaseA = resolve })
    const a1 = heads.withLock('a', async () => { order.push('a1 start'); await gate; order.push('a1 end') })
    const a2 = heads.withLock('a', async () => { order.push('a2') })
    await heads.withLock('b', async () => { order.push('b') })
    releaseA()
    await Promise.all([a1, a2])
    expect(order).toEqual(['a1 start', 'b', 'a1 end', 'a2'])
  })

  it('reads a head on first use and then answers from memory', async () => {
    const d = await db()
    await storeDoc(d, 'doc', 4)
    const heads = new HeadCache(log)
    const st = await heads.state(d, 'doc', encodeUtf8('doc'))
    expect(st).toMatchObject({ exists: true, nextSeq: 4, records: 4, bytes: 12, fingerprint: fp(7) })
    await d.del(headKey(encodeUtf8('doc')))
    expect(await heads.state(d, 'doc', encodeUtf8('doc'))).toBe(st)
    expect(await heads.state(d, 'new', encodeUtf8('new'))).toMatchObject({ exists: false, nextSeq: 0, records: 0 })
  })

  it('rebuilds counters from the update records when the head is missing or corrupt, with the fingerprint unknown', async () => {
    const d = await db()
    await storeDoc(d, 'orphan', 3, false)
    await storeDoc(d, 'broken', 2)
    const k = headKey(encodeUtf8('broken'))
    const raw = (await d.get(k)) as Uint8Array
    raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 0xff
    await d.put(k, raw)
    const heads = new HeadCache(log)
    expect(await heads.state(d, 'orphan', encodeUtf8('orphan'))).toMatchObject({ exists: true, nextSeq: 3, records: 3, bytes: 9, tailBytes: 9, fingerprint: undefined })
    expect(await heads.state(d, 'broken', encodeUtf8('broken'))).toMatchObject({ exists: true, nextSeq: 2, records: 2, bytes: 6, fingerprint: undefined })
  })

  it('a head marked stale after a failed write is read again from disk', async () => {
    const d = await db()
    await storeDoc(d, 'doc', 2)
    const heads = new HeadCache(log)
    const st = await heads.state(d, 'doc', encodeUtf8('doc'))
    st.records = 99 // what the failed write had counted
    heads.markStale(['doc', 'unknown'])
    expect(await heads.state(d, 'doc', encodeUtf8('doc'))).toMatchObject({ records: 2, stale: false })
  })

  it('drops least recently used heads beyond its capacity, never one with a write in flight', async () => {
    const d = await db()
    const heads = new HeadCache(log, 2)
    let finish!: () => void
    const slow = new Promise<void>(resolve => { finish = resolve })
    const a = await heads.state(d, 'a', encodeUtf8('a'))
    heads.track(a, slow)
    for (const id of ['b', 'c', 'd']) {
      const st = await heads.state(d, id, encodeUtf8(id))
      heads.track(st, Promise.resolve())
      await st.lastWrite
    }
    expect(heads.size).toBe(2)
    expect(heads.peek('a')).toBe(a)
    expect(heads.peek('d')).toBeDefined()
    finish()
    await a.lastWrite
    expect(heads.size).toBe(2)
  })
})
