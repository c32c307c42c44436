import { afterEach, describe, expect, it } from 'vitest'
import { Compactor } from '../src/compaction.js'
import type { Db } from '../src/database.js'
import { GroupCommit } from '../src/group-commit.js'
import { HeadCache, headOp } from '../src/heads.js'
import type { DocState } from '../src/heads.js'
import { encodeUtf8, seal, unseal, updateKey, updateRange } from '../src/layout.js'
import { resolveLevelOptions } from '../src/options.js'
import type { LevelStorageOptions } from '../src/options.js'
import { fp, smallUpdates, textOf } from './helpers.js'
import { bareDb, log } from './store-parts.js'

const disposers: Array<() => Promise<void>> = []
afterEach(async () => { for (const d of disposers.splice(0)) await d() })

interface Rig { db: Db, heads: HeadCache, compactor: Compactor, open: { calls: number, until: number } }

/** A compactor on a real database; `open.until` is how many `openDb()` calls see it open. */
async function rig (options: Partial<LevelStorageOptions> = {}): Promise<Rig> {
  const b = await bareDb()
  disposers.push(b.dispose)
  const settings = resolveLevelOptions({ path: b.path, ...options })
  const heads = new HeadCache(log)
  const open = { calls: 0, until: Infinity }
  const openDb = (): Db | undefined => ++open.calls <= open.until ? b.db : undefined
  const commits = new GroupCommit({ path: b.path, sync: false, maxCommitBytes: settings.maxCommitBytes, db: () => b.db, failed: () => {}, log })
  return { db: b.db, heads, open, compactor: new Compactor({ settings, heads, commits, openDb, log }) }
}

/** Stores `updates` of `docId` as one record each, with a head; returns the cached head. */
async function storeDoc (r: Rig, docId: string, updates: Uint8Array[]): Promise<DocState> {
  const id = encodeUtf8(docId)
  for (const [i, u] of updates.entries()) {
    const k = updateKey(id, i)
    await r.db.put(k, seal(k, u))
  }
  const n = updates.reduce((s, u) => s + u.length, 0)
  const op = headOp({ id, nextSeq: updates.length, records: updates.length, bytes: n, tailBytes: n } as DocState, fp(1))
  if (op.type === 'put') await r.db.put(op.key, op.value)
  return await r.heads.state(r.db, docId, id)
}

async function records (db: Db, docId: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const [k, v] of db.iterator({ ...updateRange(encodeUtf8(docId)) })) out.push(unseal(k, v) as Uint8Array)
  return out
}

const head = (over: Partial<DocState>): DocState => ({ id: encodeUtf8('d'), exists: true, nextSeq: 0, records: 2, bytes: 0, tailBytes: 0, fingerprint: fp(1), lastWrite: Promise.resolve(), pending: 0, stale: false, runs: 0, appended: 0, ...over })

describe('Compactor', () => {
  it('a document needs compaction past the record count, or once its tail outgrows both the byte threshold and its snapshot', async () => {
    const { compactor } = await rig({ compactAfterUpdates: 10, compactAfterBytes: 100 })
    expect(compactor.needs(head({ records: 10 }))).toBe(false)
    expect(compactor.needs(head({ records: 11 }))).toBe(true)
    expect(compactor.needs(head({ records: 11, exists: false }))).toBe(false)
    expect(compactor.needs(head({ bytes: 150, tailBytes: 101 }))).toBe(true)
    expect(compactor.needs(head({ bytes: 300, tailBytes: 101 }))).toBe(false) // the snapshot is larger than the tail
    expect(compactor.needs(head({ bytes: 100, tailBytes: 100 }))).toBe(false)
    expect(compactor.needs(head({ records: 1, bytes: 10_000, tailBytes: 10_000 }))).toBe(false)
  })

  it('compacts a scheduled document in the background into one record with the same content', async () => {
    const r = await rig({ compactAfterUpdates: 10 })
    const updates = smallUpdates(50)
    const st = await storeDoc(r, 'doc', updates)
    r.compactor.schedule('doc', st)
    await r.compactor.idle()
    const after = await records(r.db, 'doc')
    expect(after).toHaveLength(1)
    expect(textOf(after)).toBe(textOf(updates))
    expect(st).toMatchObject({ records: 1, tailBytes: 0, nextSeq: 51 })
  })

  it('schedules nothing when automatic compaction is off, below the thresholds, or once forgotten', async () => {
    const off = await rig({ compactAfterUpdates: 10, autoCompact: false })
    off.compactor.schedule('doc', await storeDoc(off, 'doc', smallUpdates(50)))
    await off.compactor.idle()
    expect(await records(off.db, 'doc')).toHaveLength(50)

    const on = await rig({ compactAfterUpdates: 100 })
    on.compactor.schedule('small', await storeDoc(on, 'small', smallUpdates(50)))
    const big = await storeDoc(on, 'big', smallUpdates(150))
    on.compactor.schedule('big', big)
    on.compactor.forget('big')
    await on.compactor.idle()
    expect(await records(on.db, 'small')).toHaveLength(50)
    expect(await records(on.db, 'big')).toHaveLength(150)
  })

  it('a store closing during the merge stops it and leaves every record as it was', async () => {
    const r = await rig({ compactAfterUpdates: 10, compactionMergeBatch: 2 })
    const updates = smallUpdates(200)
    const st = await storeDoc(r, 'doc', updates)
    r.open.until = 4 // the queue's check and a few merge steps see it open, then it closes
    r.compactor.schedule('doc', st)
    await r.compactor.idle()
    expect(r.open.calls).toBeGreaterThan(4)
    expect(await records(r.db, 'doc')).toHaveLength(200)
    expect(st.records).toBe(200)
  })

  it('compactNow compacts whatever the thresholds say and reports the stats', async () => {
    const r = await rig({ compactAfterUpdates: 1000 })
    const updates = smallUpdates(5)
    await storeDoc(r, 'doc', updates)
    const stats = await r.compactor.compactNow(r.db, 'doc', encodeUtf8('doc'))
    expect(stats).toMatchObject({ records: 1, tailBytes: 0 })
    expect(textOf(await records(r.db, 'doc'))).toBe(textOf(updates))
    expect(await r.compactor.compactNow(r.db, 'none', encodeUtf8('none'))).toBeUndefined()
  })
})
