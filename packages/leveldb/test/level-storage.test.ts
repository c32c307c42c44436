import { ClassicLevel } from 'classic-level'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { createLevelStorage, repairLevelStorage } from '../src/index.js'
import type { LevelStorage, LevelStorageOptions } from '../src/index.js'
import { fp, isHeadOf, isUpdateOf, smallUpdates, tamper, tempDir, textOf } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function dir (): Promise<string> {
  const d = await tempDir()
  cleanups.push(d.remove)
  return d.path
}

async function openStore (path: string, options: Partial<LevelStorageOptions> = {}): Promise<LevelStorage> {
  const s = createLevelStorage({ path, durability: 'process', ...options })
  await s.open()
  cleanups.push(async () => { await s.close() })
  return s
}

/** Bytes of every file in a store's directory. */
async function dirBytes (path: string): Promise<number> {
  let n = 0
  for (const f of await readdir(path)) n += (await stat(join(path, f))).size
  return n
}

describe('createLevelStorage', () => {
  it('validates options and document ids with typed errors', async () => {
    expect(() => createLevelStorage({ path: '' })).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    expect(() => createLevelStorage({ path: '/tmp/x', durability: 'disk' as never })).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    expect(() => createLevelStorage({ path: '/tmp/x', compactAfterUpdates: 0 })).toThrow(expect.objectContaining({ name: 'ConfigError' }))
    const s = await openStore(await dir())
    await expect(s.append('', [], fp(1))).rejects.toMatchObject({ name: 'InvalidDocIdError' })
    await expect(s.append('x'.repeat(513), [], fp(1))).rejects.toMatchObject({ name: 'InvalidDocIdError' })
    await expect(s.load('bad\uD800')).rejects.toMatchObject({ name: 'InvalidDocIdError' })
    const longest = 'é'.repeat(256) // 512 bytes
    await s.append(longest, smallUpdates(1), fp(1))
    expect((await s.list()).map(d => d.id)).toEqual([longest])
  })

  it('keeps ids that are prefixes of each other, or contain NUL and separators, apart', async () => {
    const s = await openStore(await dir())
    const ids = ['a', 'a\u0000', 'a\u0000b', 'ab', 'a!', 'd!a', 'm!a', '\u0000', 'a'.repeat(300)]
    for (const [i, id] of ids.entries()) await s.append(id, smallUpdates(i + 1), fp(i))
    await s.setMeta('a', new Uint8Array([9]))
    for (const [i, id] of ids.entries()) expect(textOf(await s.load(id))).toBe('x'.repeat(i + 1))
    expect((await s.list()).map(d => d.id).sort()).toEqual([...ids].sort())
    await s.delete('a')
    expect(await s.load('a')).toEqual([])
    expect(textOf(await s.load('a\u0000'))).toBe('xx')
    expect((await s.list()).length).toBe(ids.length - 1)
  })

  it('rejects operations before open and after close with StorageError; open and close are idempotent', async () => {
    const path = await dir()
    const s = createLevelStorage({ path })
    await expect(s.list()).rejects.toMatchObject({ name: 'StorageError' })
    await Promise.all([s.open(), s.open()])
    await s.append('a', smallUpdates(2), fp(1))
    await Promise.all([s.close(), s.close()])
    await expect(s.load('a')).rejects.toMatchObject({ name: 'StorageError' })
    await expect(s.append('a', [], fp(1))).rejects.toMatchObject({ name: 'StorageError' })
    await s.open() // reopen the same instance
    expect(textOf(await s.load('a'))).toBe('xx')
    await s.close()
  })

  it('close waits for writes already accepted', async () => {
    const path = await dir()
    const s = createLevelStorage({ path, durability: 'power' })
    await s.open()
    const us = smallUpdates(200)
    const writes = us.map(async (u, i) => { await s.append(`d${i % 7}`, [u], fp(i & 0xff)) })
    await s.close()
    await Promise.all(writes)
    const again = await openStore(path)
    expect((await again.list()).length).toBe(7)
  })

  it('a second instance on the same path fails with a StorageError naming the path and the lock', async () => {
    const path = await dir()
    await openStore(path)
    const other = createLevelStorage({ path })
    const err = await other.open().then(() => undefined, (e: unknown) => e as Error)
    expect(err?.name).toBe('StorageError')
    expect(err?.message).toContain(path)
    expect(err?.message).toMatch(/locked/)
    expect(err?.message).toMatch(/Stop that process/)
  })

  it('refuses a directory holding a LevelDB database of someone else', async () => {
    const path = await dir()
    const db = new ClassicLevel(path)
    await db.put('foo', 'bar')
    await db.close()
    await expect(createLevelStorage({ path }).open()).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining('not written by @hearsay/leveldb') })
  })

  it('reports an unwritable path as a StorageError', async () => {
    const path = join(await dir(), 'file')
    await writeFile(path, 'not a directory')
    await expect(createLevelStorage({ path: join(path, 'db') }).open()).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining(path) })
  })

  it('serialises concurrent appends to one document; every update is kept with the last fingerprint', async () => {
    const s = await openStore(await dir())
    const us = smallUpdates(300)
    await Promise.all(us.map(async (u, i) => { await s.append('doc', [u], fp(i % 250)) }))
    expect(textOf(await s.load('doc'))).toBe('x'.repeat(300))
    expect((await s.list())[0]?.fingerprint).toEqual(fp(299 % 250))
    expect(await s.stats('doc')).toMatchObject({ records: 300 })
  })

  it('a failed write rejects with StorageError and leaves the document consistent for the next ones', async () => {
    const s = await openStore(await dir())
    const us = smallUpdates(4)
    await s.append('a', us.slice(0, 2), fp(1))
    const db = (s as unknown as { life: { db: { batch: (...args: unknown[]) => Promise<void> } } }).life.db
    const batch = db.batch.bind(db)
    db.batch = async () => { db.batch = batch; throw new Error('disk full (simulated)') }
    await expect(s.append('a', [us[2] as Uint8Array], fp(2))).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining('disk full') })
    await s.append('a', [us[2] as Uint8Array, us[3] as Uint8Array], fp(3))
    expect(textOf(await s.load('a'))).toBe('xxxx')
    expect(await s.stats('a')).toMatchObject({ records: 4 })
    expect((await s.verify()).corrupt).toEqual([])
  })

  it('an append with no updates only moves the fingerprint', async () => {
    const s = await openStore(await dir())
    await s.append('a', smallUpdates(1), fp(1))
    await s.append('a', [], fp(2))
    expect((await s.list())[0]?.fingerprint).toEqual(fp(2))
    expect(await s.stats('a')).toMatchObject({ records: 1 })
  })
})

describe('compaction', () => {
  it('merges 10,000 small updates into one record: content identical, stored size smaller', async () => {
    const path = await dir()
    const s = await openStore(path, { autoCompact: false })
    const doc = new Y.Doc()
    const us: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => us.push(u))
    const text = doc.getText('t')
    const map = doc.getMap('m')
    for (let i = 0; i < 10_000; i++) {
      if (i % 7 === 3 && text.length > 4) text.delete(i % text.length, 1)
      else text.insert((i * 31) % (text.length + 1), String.fromCharCode(97 + (i % 26)))
      if (i % 50 === 0) map.set(`k${i % 13}`, i)
    }
    expect(us.length).toBe(10_000 + 200)
    for (let i = 0; i < us.length; i += 500) await s.append('big', us.slice(i, i + 500), fp(1))
    const before = await s.stats('big')
    expect(before?.records).toBe(us.length)
    const diskBefore = await dirBytes(path)
    const started = performance.now()
    const after = await s.compact('big')
    const ms = performance.now() - started
    expect(after?.records).toBe(1)
    expect(after!.bytes).toBeLessThan(before!.bytes)
    // compact() reclaims the space of the removed records on disk at once
    const diskAfter = await dirBytes(path)
    expect(diskAfter).toBeLessThan(diskBefore * 0.75)
    const loaded = await s.load('big')
    expect(loaded.length).toBe(1)
    const copy = new Y.Doc()
    Y.applyUpdate(copy, loaded[0] as Uint8Array)
    expect(copy.getText('t').toString()).toBe(text.toString())
    expect(copy.getMap('m').toJSON()).toEqual(map.toJSON())
    expect(Y.encodeStateVector(copy)).toEqual(Y.encodeStateVector(doc))
    expect((await s.list())[0]?.fingerprint).toEqual(fp(1))
    // eslint-disable-next-line no-console -- test report
    console.log(`compaction of ${us.length} updates: ${before!.bytes} -> ${after!.bytes} bytes (directory ${diskBefore} -> ${diskAfter}) in ${ms.toFixed(0)} ms`)
  })

  it('compacts automatically past the update-count threshold, without losing concurrent appends', async () => {
    const path = await dir()
    const s = await openStore(path, { compactAfterUpdates: 50, compactionMergeBatch: 8 })
    const us = smallUpdates(1000)
    for (let i = 0; i < us.length; i += 10) {
      await Promise.all(us.slice(i, i + 10).map(async u => { await s.append('doc', [u], fp(i & 0xff)) }))
    }
    await s.idle()
    const st = await s.stats('doc')
    expect(st!.records).toBeLessThanOrEqual(51)
    expect(textOf(await s.load('doc'))).toBe('x'.repeat(1000))
    await s.close()
    const again = await openStore(path)
    expect(textOf(await again.load('doc'))).toBe('x'.repeat(1000))
    expect(await again.stats('doc')).toEqual(st)
  })

  it('merges small appends among themselves without rewriting a large snapshot; deletions get the document compacted', async () => {
    const path = await dir()
    const s = await openStore(path, { compactAfterUpdates: 100 })
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'z'.repeat(100_000))
    const snapshot = Y.encodeStateAsUpdate(doc)
    await s.replace('doc', snapshot, fp(1))
    const ups: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => ups.push(u))
    for (let i = 0; i < 1000; i++) doc.getText('t').insert(i, 'x')
    for (const u of ups.splice(0)) await s.append('doc', [u], fp(2))
    await s.idle()
    // 1,000 records against a 100 KB snapshot: merged in runs of ~100 (at most 100 recent ones
    // wait for the next run), the snapshot as it was
    const merged = await s.load('doc')
    expect(merged.length).toBeLessThanOrEqual(1 + 10 + 100)
    expect(merged[0]).toEqual(snapshot)
    expect(textOf(merged)).toBe(doc.getText('t').toString())
    // deletions add few bytes: past the snapshot's bytes / 8 updates, it is compacted
    for (let i = 0; i < 15_000; i++) doc.getText('t').delete(0, 1)
    for (let i = 0; i < ups.length; i += 50) await s.append('doc', ups.slice(i, i + 50), fp(3))
    await s.idle()
    const after = await s.load('doc')
    expect(after[0]!.length).toBeLessThan(snapshot.length)
    expect(textOf(after)).toBe(doc.getText('t').toString())
    await s.close()
    const again = await openStore(path)
    expect(textOf(await again.load('doc'))).toBe(doc.getText('t').toString())
  })

  it('compacts automatically past the byte threshold', async () => {
    const s = await openStore(await dir(), { compactAfterBytes: 4000 })
    const us = smallUpdates(10, 'y'.repeat(1000))
    for (const u of us) await s.append('doc', [u], fp(1))
    await s.idle()
    expect((await s.stats('doc'))!.records).toBeLessThan(10)
    expect(textOf(await s.load('doc'))).toBe('y'.repeat(10_000))
  })

  it('close during a background compaction leaves the document intact', async () => {
    const path = await dir()
    const s = createLevelStorage({ path, durability: 'process', compactAfterUpdates: 100, compactionMergeBatch: 2 })
    await s.open()
    const us = smallUpdates(2000)
    await s.append('doc', us, fp(3))
    await s.close()
    const again = await openStore(path, { autoCompact: false })
    expect(textOf(await again.load('doc'))).toBe('x'.repeat(2000))
  })
})

describe('corruption', () => {
  it('a bit flip in an update record fails with StorageCorruptionError naming the document; others keep working', async () => {
    const path = await dir()
    const s = createLevelStorage({ path })
    await s.open()
    await s.append('good', smallUpdates(3), fp(1))
    await s.append('bad/é', smallUpdates(5), fp(2))
    await s.close()
    const n = await tamper(path, isUpdateOf('bad/é'), v => { v[v.length - 2] = (v[v.length - 2] as number) ^ 0x10; return v })
    expect(n).toBe(5)
    const again = await openStore(path)
    const err = await again.load('bad/é').then(() => undefined, (e: unknown) => e as Error & { docId?: string })
    expect(err?.name).toBe('StorageCorruptionError')
    expect(err?.docId).toBe('bad/é')
    expect(err?.message).toContain('bad/é')
    expect(textOf(await again.load('good'))).toBe('xxx')
    expect((await again.list()).map(d => d.id).sort()).toEqual(['bad/é', 'good'])
    const report = await again.verify()
    expect(report.corrupt.length).toBe(5)
    expect(report.corrupt.every(c => c.docId === 'bad/é')).toBe(true)
    // compaction refuses to merge bad records
    await expect(again.compact('bad/é')).rejects.toMatchObject({ name: 'StorageCorruptionError' })
    // the way out: delete it (peers re-sync it), then it works again
    await again.delete('bad/é')
    await again.append('bad/é', smallUpdates(1), fp(4))
    expect(textOf(await again.load('bad/é'))).toBe('x')
    expect((await again.verify()).corrupt).toEqual([])
  })

  it('a missing update record is detected instead of loading a shorter document', async () => {
    const path = await dir()
    const s = createLevelStorage({ path })
    await s.open()
    await s.append('doc', smallUpdates(4), fp(1))
    await s.close()
    let first = true
    await tamper(path, isUpdateOf('doc'), v => { if (first) { first = false; return undefined } return v })
    const again = await openStore(path)
    await expect(again.load('doc')).rejects.toMatchObject({ name: 'StorageCorruptionError', docId: 'doc', message: expect.stringContaining('head lists 4') })
  })

  it('a corrupt head is left out of list(), rebuilt by the next write, and its updates still load', async () => {
    const path = await dir()
    const s = createLevelStorage({ path })
    await s.open()
    await s.append('a', smallUpdates(2), fp(1))
    await s.append('b', smallUpdates(3), fp(2))
    await s.close()
    await tamper(path, isHeadOf('b'), v => { v[5] = (v[5] as number) ^ 1; return v })
    const warnings: string[] = []
    const logger = { forComponent: () => Object.assign((m: string) => { warnings.push(m) }, { error: (m: string) => { warnings.push(m) }, warn: (m: string) => { warnings.push(m) }, trace: () => {} }) }
    const again = await openStore(path, { logger })
    expect((await again.list()).map(d => d.id)).toEqual(['a'])
    expect(warnings.some(w => w.includes('corrupt'))).toBe(true)
    expect(textOf(await again.load('b'))).toBe('xxx')
    expect((await again.verify()).corrupt).toEqual([{ docId: 'b', message: expect.stringContaining('head') }])
    await again.append('b', smallUpdates(4).slice(3), fp(7))
    expect((await again.list()).map(d => d.id).sort()).toEqual(['a', 'b'])
    expect(await again.stats('b')).toMatchObject({ records: 4 })
    expect((await again.verify()).corrupt).toEqual([])
  })

  it('a corrupt metadata record fails with StorageCorruptionError', async () => {
    const path = await dir()
    const s = createLevelStorage({ path })
    await s.open()
    await s.setMeta('peer/x', new Uint8Array([1, 2, 3]))
    await s.close()
    await tamper(path, k => k[0] === 0x6d, v => { v[4] = 9; return v })
    const again = await openStore(path)
    await expect(again.getMeta('peer/x')).rejects.toMatchObject({ name: 'StorageCorruptionError', message: expect.stringContaining('peer/x') })
  })

  it('a damaged LevelDB manifest fails open with a StorageError pointing to repairLevelStorage, which brings the data back', async () => {
    const path = await dir()
    let s = createLevelStorage({ path })
    await s.open()
    await s.append('a', smallUpdates(3), fp(1))
    await s.setMeta('k', new Uint8Array([5]))
    await s.close()
    await writeFile(join(path, 'CURRENT'), 'MANIFEST-garbage') // no trailing newline: LevelDB calls it corrupt
    s = createLevelStorage({ path })
    const err = await s.open().then(() => undefined, (e: unknown) => e as Error)
    expect(err?.name).toBe('StorageError')
    expect(err?.message).toContain(path)
    expect(err?.message).toContain('repairLevelStorage')
    await repairLevelStorage(path)
    const again = await openStore(path)
    expect(textOf(await again.load('a'))).toBe('xxx')
    expect(await again.getMeta('k')).toEqual(new Uint8Array([5]))
    expect((await again.verify()).corrupt).toEqual([])
  })

  it('a bit flipped inside a LevelDB table file is caught by the record checksum', async () => {
    const path = await dir()
    const marker = Array.from({ length: 48 }, (_, i) => 'QWERTYUIOPASDFGHJKLZXCVBNMqwertyuiopasdfghjklzxcv'[(i * 7) % 48]).join('')
    let s = createLevelStorage({ path })
    await s.open()
    await s.append('other', smallUpdates(2), fp(1))
    await s.append('victim', smallUpdates(1, marker), fp(2))
    await s.close()
    s = createLevelStorage({ path }) // reopening moves the log into a table file
    await s.open()
    await s.close()
    let flipped = 0
    for (const f of await readdir(path)) {
      if (!f.endsWith('.ldb')) continue
      const bytes = await readFile(join(path, f))
      const at = bytes.indexOf(marker.slice(10, 30))
      if (at < 0) continue
      bytes[at + 5] = (bytes[at + 5] as number) ^ 0x02
      await writeFile(join(path, f), bytes)
      flipped++
    }
    expect(flipped).toBe(1)
    const again = await openStore(path)
    await expect(again.load('victim')).rejects.toMatchObject({ name: 'StorageCorruptionError', docId: 'victim' })
    expect(textOf(await again.load('other'))).toBe('xx')
    expect((await again.list()).length).toBe(2)
  })
})
