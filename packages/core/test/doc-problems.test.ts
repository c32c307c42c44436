/** Problems with stored data alone: quarantine, losses named and unnamed, restoration. */
import { describe, expect, it } from 'vitest'
import { DocProblems, STORAGE_LOSS_ERROR } from '../src/doc-problems.js'
import { InvalidUpdateError, StorageCorruptionError } from '../src/errors.js'

const lines: string[] = []
const log = Object.assign((m: string) => { lines.push(m) }, { error: () => {}, warn: (m: string) => { lines.push(`warn ${m}`) }, trace: () => {} })

describe('document problems', () => {
  it('quarantines a document on a corruption error only, once, and lists it as corrupt', () => {
    const p = new DocProblems(log)
    const err = new StorageCorruptionError('a', 'bad record')
    expect(p.note('a', err, 5)).toBe(err)
    p.note('a', new StorageCorruptionError('a', 'again'), 6)
    p.note('b', new InvalidUpdateError('b', 'not stored data'), 6)
    expect(p.quarantined('a')).toBe(err)
    expect(p.quarantined('b')).toBeUndefined()
    expect(p.quarantinedCount).toBe(1)
    expect(p.list()).toEqual([{ kind: 'corrupt', docId: 'a', error: 'StorageCorruptionError', message: err.message, since: 5 }])
  })

  it('lists named losses as missing until stored again, unnamed ones as damaged, and counts both', () => {
    const p = new DocProblems(log)
    p.losses([{ message: 'log truncated', docIds: ['x', 'y', ''], missing: 0 }, { message: 'records dropped', docIds: [], missing: 3 }] , 9)
    expect(p.lost).toBe(5)
    expect(p.list().map(e => [e.kind, e.docId, e.error])).toEqual([['missing', 'x', STORAGE_LOSS_ERROR], ['missing', 'y', STORAGE_LOSS_ERROR], ['damaged', '', STORAGE_LOSS_ERROR]])
    p.stored('x')
    expect(p.lost).toBe(4)
    // a missing document that is also corrupt is listed once, as corrupt
    p.note('y', new StorageCorruptionError('y', 'unreadable'), 10)
    expect(p.list().filter(e => e.docId === 'y').map(e => e.kind)).toEqual(['corrupt'])
    expect(p.lost).toBe(3)
  })
})
