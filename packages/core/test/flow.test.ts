import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { PeerFlow } from '../src/flow.js'

const settings = { targetDelayMs: 100, initialWindow: 64 * 1024, minWindow: 8 * 1024, maxWindow: 256 * 1024, increase: 4096, outboxBytes: 32 * 1024 }

describe('flow control window', () => {
  it('halves on slow frames at most once per target delay, grows additively on fast ones, within bounds', () => {
    const f = new PeerFlow(settings)
    expect(f.drained(1000, 500, 0)).toBe(true)
    expect(f.window).toBe(32 * 1024)
    expect(f.drained(1000, 500, 50)).toBe(false)
    expect(f.drained(1000, 500, 150)).toBe(true)
    for (let t = 300; t < 2000; t += 100) f.drained(1000, 500, t)
    expect(f.window).toBe(8 * 1024)
    f.drained(8 * 1024, 1, 3000)
    expect(f.window).toBe(12 * 1024)
    for (let i = 0; i < 10_000; i++) f.drained(64 * 1024, 1, 4000)
    expect(f.window).toBe(256 * 1024)
  })

  it('clamps the window into new bounds when the settings change', () => {
    const s = { ...settings }
    const f = new PeerFlow(s)
    expect(f.window).toBe(64 * 1024)
    Object.assign(s, { maxWindow: 32 * 1024 })
    f.clamp()
    expect(f.window).toBe(32 * 1024)
    Object.assign(s, { minWindow: 48 * 1024, maxWindow: 128 * 1024 })
    f.clamp()
    expect(f.window).toBe(48 * 1024)
  })

  it('admits while the backlog is under the window and nothing is held', () => {
    const f = new PeerFlow(settings)
    expect(f.admits(1000)).toBe(true)
    expect(f.admits(64 * 1024)).toBe(false)
    f.hold([{ docId: 'd', update: new Uint8Array(10) }])
    expect(f.admits(0)).toBe(false)
  })

  it('merges held updates per document and drops them past the bound', () => {
    const f = new PeerFlow(settings)
    const doc = new Y.Doc()
    const updates: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => updates.push(u))
    for (let i = 0; i < 20; i++) doc.getText('t').insert(0, 'ab')
    expect(f.hold(updates.map(update => ({ docId: 'd', update })))).toBe(true)
    const taken = f.take()
    expect(taken).toHaveLength(1)
    const copy = new Y.Doc()
    Y.applyUpdate(copy, (taken[0] as { update: Uint8Array }).update)
    expect(copy.getText('t').toString()).toBe('ab'.repeat(20))
    expect(f.holding).toBe(false)
    expect(f.hold([{ docId: 'big', update: new Uint8Array(40 * 1024) }])).toBe(false)
    expect(f.bytes).toBe(0)
  })
})
