import { afterEach, describe, expect, it } from 'vitest'
import type { BatchOp, Db } from '../src/database.js'
import { GroupCommit } from '../src/group-commit.js'
import { bareDb, bytes, log } from './store-parts.js'

const disposers: Array<() => Promise<void>> = []
afterEach(async () => { for (const d of disposers.splice(0)) await d() })

/** A real database whose `batch` calls are recorded (operations per call), and a group commit on it. */
async function setup (maxCommitBytes = 1024): Promise<{ db: Db, batches: number[], failed: string[][], gc: GroupCommit, open: { db: Db | undefined } }> {
  const { db, dispose } = await bareDb()
  disposers.push(dispose)
  const batches: number[] = []
  const batch = db.batch.bind(db) as (ops: BatchOp[], o: { sync: boolean }) => Promise<void>
  ;(db as unknown as { batch: typeof batch }).batch = async (ops, o) => { batches.push(ops.length); await batch(ops, o) }
  const failed: string[][] = []
  const open: { db: Db | undefined } = { db }
  const gc = new GroupCommit({ path: 'test', sync: false, maxCommitBytes, db: () => open.db, failed: ids => { failed.push(ids) }, log })
  return { db, batches, failed, gc, open }
}

/** The value stored under `k`, as text. */
async function text (db: Db, k: string): Promise<string | undefined> {
  const v = await db.get(bytes(k))
  return v === undefined ? undefined : new TextDecoder().decode(v)
}

const put = (k: string, v = 'v'): BatchOp => ({ type: 'put', key: bytes(k), value: bytes(v) })

describe('GroupCommit', () => {
  it('writes queued while a batch is stored go out together as the next batch', async () => {
    const { db, batches, gc } = await setup()
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map(async k => { await gc.commit([put(k)], 1, [k]) }))
    expect(batches).toEqual([1, 4])
    for (const k of ['a', 'b', 'c', 'd', 'e']) expect(await text(db, k)).toBe('v')
  })

  it('a batch holds at most maxCommitBytes, except one write larger on its own', async () => {
    const { batches, gc } = await setup(10)
    const first = gc.commit([put('0')], 1, [])
    await Promise.all([first, ...[4, 4, 4, 30, 4].map(async (n, i) => { await gc.commit([put(`k${i}`)], n, []) })])
    expect(batches).toEqual([1, 2, 1, 1, 1])
  })

  it('a failed batch rejects every write in it with StorageError, names their documents, and the next writes go through', async () => {
    const { db, failed, gc } = await setup()
    const batch = db.batch.bind(db)
    ;(db as unknown as { batch: unknown }).batch = async () => { (db as unknown as { batch: unknown }).batch = batch; throw new Error('disk full (simulated)') }
    const results = await Promise.allSettled([gc.commit([put('a')], 1, ['a']), gc.commit([put('b')], 1, ['b'])])
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { name: 'StorageError', message: expect.stringContaining('disk full') } })
    expect(results[1]).toMatchObject({ status: 'fulfilled' })
    expect(failed).toEqual([['a']])
    await gc.commit([put('c')], 1, ['c'])
    expect(await text(db, 'a')).toBeUndefined()
    expect(await text(db, 'c')).toBe('v')
  })

  it('a write after the database is gone rejects with StorageError; settled() waits for the queue', async () => {
    const { gc, open } = await setup()
    const pending = gc.commit([put('a')], 1, ['a'])
    await gc.settled()
    await expect(pending).resolves.toBeUndefined()
    open.db = undefined
    await expect(gc.commit([put('b')], 1, ['b'])).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining('not open') })
  })
})
