/**
 * Liveness (src/liveness.ts) on core's virtual clock with fake channels: who gets probed when,
 * and a probe that fails closes the connection. The real thing is exercised by test/lan (a cut
 * link is found and redialled) and by the idle bench.
 */
import { createVirtualClock } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { echoStream } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { Liveness } from '../src/liveness.js'
import type { Audible } from '../src/liveness.js'
import { memoryLogger } from './helpers.js'

function fakeChannel (id: string, answers: boolean, lastReceived: number, recentMaxGap: number): Audible & { probes: number, aborted: boolean } {
  const ch = {
    remoteId: id,
    lastReceived,
    recentMaxGap,
    probes: 0,
    aborted: false,
    connection: {
      status: 'open',
      abort: () => { ch.aborted = true; (ch.connection as { status: string }).status = 'closed' },
      newStream: async () => {
        ch.probes++
        if (!answers) throw new Error('no answer')
        return await echoStream()
      }
    }
  }
  return ch as unknown as Audible & { probes: number, aborted: boolean }
}

describe('liveness', () => {
  it('probes only channels silent for longer than usual, and closes those that do not answer', async () => {
    const clock = createVirtualClock(1_000_000)
    const now = clock.now()
    const busy = fakeChannel('busy', false, now - 12_000, 1_000) // silent 12 s, usually every 1 s: probed
    const idle = fakeChannel('idle', false, now - 100_000, 60_000) // silent 100 s, usually every 60 s: not yet
    const fresh = fakeChannel('fresh', false, now - 1_000, 1_000)
    const channels = [busy, idle, fresh]
    const live = new Liveness({ channels: () => channels, timers: clock, log: memoryLogger().forComponent('t'), minSilenceMs: 10_000 })
    expect(live.threshold(busy)).toBe(10_000)
    expect(live.threshold(idle)).toBe(150_000) // 3 × 60 s, capped at LIVENESS_MAX_SILENCE_MS
    live.check()
    await clock.settle()
    expect(busy.probes).toBe(1)
    expect(busy.aborted).toBe(true)
    expect(idle.probes + fresh.probes).toBe(0)
    // 60 s later the idle channel has been silent 160 s: past its threshold
    await clock.advance(60_000)
    live.check()
    await clock.settle()
    expect(idle.probes).toBe(1)
    expect(idle.aborted).toBe(true)
  })

  it('a channel that answers stays open and is not probed again until it has been silent as long again', async () => {
    const clock = createVirtualClock(1_000_000)
    const alive = fakeChannel('alive', true, clock.now() - 12_000, 1_000)
    let done = 0
    const log = memoryLogger().forComponent('t')
    log.trace = () => { done++ } // the answered ping is logged at trace level
    const live = new Liveness({ channels: () => [alive], timers: clock, log, minSilenceMs: 10_000 })
    live.check()
    await waitFor(() => done > 0, { timeoutMs: 5_000, message: 'the ping answered' })
    live.check()
    await clock.advance(5_000)
    live.check()
    expect(alive.probes).toBe(1)
    expect(alive.aborted).toBe(false)
    await clock.advance(6_000) // 11 s since the answer
    live.check()
    expect(alive.probes).toBe(2)
  })
})
