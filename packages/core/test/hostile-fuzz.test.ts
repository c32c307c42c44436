/**
 * Fuzzing at the node level: a hostile member feeds a victim node mutated frames of every type
 * (seeded, fast-check) over the memory network, reconnecting whenever the victim hangs up. The
 * victim stays up, nothing escapes its last-resort guard, an honest peer keeps syncing with it,
 * and the shared document is untouched.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../src/testing/index.js'
import { mutatedFrame } from './frame-arbitraries.js'
import { arena, SHARED, type Arena } from './hostile-arena.js'

const frames = Number(process.env.HEARSAY_NODE_FUZZ_FRAMES ?? 1000)
const seed = Number(process.env.HEARSAY_FUZZ_SEED ?? 20261203)

describe('node-level fuzzing', () => {
  let a: Arena
  beforeAll(async () => { a = await arena(31, { cluster: { intervalMs: 50 }, antiEntropy: { intervalMs: 200 } }) })
  afterAll(async () => { await a?.stop() })

  it(`${frames} mutated frames from a member: the victim survives and keeps syncing`, async () => {
    const before = await a.victim.open(SHARED)
    const expected = before.getText('t').toString()
    const evil = await a.evil()
    let link = await evil.link('victim', { hello: false })
    let relinks = 0
    for (const f of fc.sample(mutatedFrame, { numRuns: frames, seed })) {
      if (link.closed !== undefined) {
        // the victim hung up on an earlier frame: connect again and go on
        await waitFor(() => !a.net.connected('victim', evil.id), { message: 'the closed link to clear' })
        link = await evil.link('victim')
        relinks++
      }
      await evil.send('victim', f)
      // the victim judges each frame before the next, so every one meets an open session
      await a.net.settled()
    }
    await a.net.settled()
    const m = a.victim.metrics()
    process.stdout.write(`node fuzz: ${frames} frames, ${m.framesRejected} rejected, ${relinks} reconnects\n`)
    expect(m.framesRejected).toBeGreaterThan(frames / 10)
    expect(m.sessionFaults).toBe(0)
    expect(m.timerFaults).toBe(0)
    // documents untouched: the shared one is as the honest peer left it
    expect((await a.victim.open(SHARED)).getText('t').toString()).toBe(expected)
    await a.checkSyncing()
  }, 60_000)
})
