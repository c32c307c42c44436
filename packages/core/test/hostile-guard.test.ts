/**
 * The last-resort guard (guard.ts): an exception thrown while handling a peer's frames closes that
 * peer's session only, logged and counted, and never reaches the event loop.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { guarded } from '../src/guard.js'
import { writerLogger } from '../src/index.js'
import { arena, type Arena } from './hostile-arena.js'

describe('last-resort guard', () => {
  let a: Arena | undefined
  afterEach(async () => { await a?.stop(); a = undefined })

  it('logs what threw, hands the error to onFault, and returns instead of throwing', () => {
    const lines: string[] = []
    const log = writerLogger({ write: l => { lines.push(l) } }).forComponent('test')
    const faults: unknown[] = []
    expect(guarded(log, 'the work', () => { throw new RangeError('boom') }, err => { faults.push(err) })).toBeUndefined()
    expect(guarded(log, 'the work', () => 7, () => { faults.push('never') })).toBe(7)
    expect(faults).toHaveLength(1)
    expect(lines.join('\n')).toContain('the work threw: RangeError: boom')
    // a fault handler that throws too is logged, not raised
    expect(() => guarded(log, 'more work', () => { throw new Error('a') }, () => { throw new Error('b') })).not.toThrow()
    expect(lines.join('\n')).toContain('handling a fault in more work threw too: Error: b')
  })

  it('a callback that throws while a peer connects closes that session only; the node goes on', async () => {
    a = await arena(41)
    let armed = true
    const off = a.victim.on('peer:connect', () => {
      if (!armed) return
      armed = false
      throw new TypeError('a listener bug')
    })
    const evil = await a.evil()
    await evil.waitClosed('victim')
    expect(a.victim.metrics().sessionFaults).toBe(1)
    const logged = a.lines.join('\n')
    expect(logged).toContain('frame from evil-0 threw: TypeError: a listener bug')
    expect(logged).toMatch(/closing session with evil-0: TypeError: a listener bug/)
    off()
    await a.checkSyncing()
  })
})
