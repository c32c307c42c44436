import { afterEach, describe, expect, it } from 'vitest'
import { createLevelStorage } from '../src/index.js'
import type { LevelStorage } from '../src/index.js'
import { resolveLevelOptions } from '../src/options.js'
import { fp, smallUpdates, tempDir, textOf } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function store (): Promise<LevelStorage> {
  const d = await tempDir()
  cleanups.push(d.remove)
  const s = createLevelStorage({ path: d.path, durability: 'process' })
  cleanups.push(async () => { await s.close() })
  return s
}

describe('store lifecycle', () => {
  it('concurrent opens share one open, and a close asked during the open closes after it', async () => {
    const s = await store()
    const opens = [s.open(), s.open()]
    const closed = s.close()
    await Promise.all(opens)
    await closed
    await expect(s.list()).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining('not open') })
    await s.open()
    expect(await s.list()).toEqual([])
  })

  it('an open asked during a close opens again once the close is done, with the data it wrote', async () => {
    const s = await store()
    await s.open()
    const u = smallUpdates(3)
    const write = s.append('doc', u, fp(1))
    const closed = s.close()
    const reopened = s.open()
    await Promise.all([write, closed, reopened])
    expect(textOf(await s.load('doc'))).toBe('xxx')
  })

  it('a failed open leaves the store closed and a later open can succeed', async () => {
    const d = await tempDir()
    cleanups.push(d.remove)
    const a = createLevelStorage({ path: d.path })
    const b = createLevelStorage({ path: d.path })
    await a.open()
    await expect(b.open()).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining('locked') })
    await expect(b.list()).rejects.toMatchObject({ name: 'StorageError' })
    await a.close()
    await b.open()
    expect(await b.list()).toEqual([])
    await b.close()
  })
})

describe('options', () => {
  it('fills in the defaults and refuses bad values with a ConfigError naming the option and the rule', () => {
    const s = resolveLevelOptions({ path: '/tmp/x' })
    expect(s).toMatchObject({ durability: 'power', autoCompact: true, compactAfterUpdates: 500, compactionMergeBatch: 100, maxOpenFiles: 1000 })
    const bad = (o: object): unknown => { try { resolveLevelOptions({ path: '/tmp/x', ...o }) } catch (err) { return err } }
    expect(bad({ compactionMergeBatch: 1 })).toMatchObject({ name: 'ConfigError', message: 'compactionMergeBatch must be an integer >= 2, got 1' })
    expect(bad({ maxOpenFiles: 15.5 })).toMatchObject({ name: 'ConfigError', message: expect.stringContaining('maxOpenFiles must be an integer >= 16') })
    expect(bad({ cacheSizeBytes: -1 })).toMatchObject({ name: 'ConfigError', message: expect.stringContaining('cacheSizeBytes') })
    expect(bad({ autoCompact: 'yes' })).toMatchObject({ name: 'ConfigError', message: expect.stringContaining('autoCompact') })
    expect(bad({ durability: 'disk' })).toMatchObject({ name: 'ConfigError', message: expect.stringContaining("'process', 'power'") })
    expect(resolveLevelOptions({ path: '/tmp/x', cacheSizeBytes: 0 }).cacheSizeBytes).toBe(0)
  })
})
