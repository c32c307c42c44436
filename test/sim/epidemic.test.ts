import { describe, expect, it } from 'vitest'
import { THEORY, idleNodeRun, modelRounds, nodeRounds, sparseNodeRun } from './epidemic.js'

describe('propagation rounds against theory', () => {
  it('the round-based model gives the primer\'s numbers for n = 20 and 100', () => {
    for (const mode of ['push', 'pull', 'push-pull'] as const) {
      for (const n of [20, 100]) expect(Math.abs(modelRounds(n, mode, 1, 300) - (THEORY[mode][n] as number))).toBeLessThan(0.5)
    }
  })

  it('20 real nodes spread one update within one round of theory, and fanout 3 is faster', async () => {
    for (const mode of ['push', 'pull', 'push-pull'] as const) {
      const one = await nodeRounds(20, mode, 1, 10, 5)
      expect(Math.abs(one.rounds - (THEORY[mode][20] as number))).toBeLessThanOrEqual(1)
      const three = await nodeRounds(20, mode, 3, 5, 5)
      expect(three.rounds).toBeLessThan(one.rounds)
    }
  })

  it('20 idle nodes (gossip backed off, anti-entropy paused) spread one update within one round of theory', async () => {
    let rounds = 0
    let idleFrames = 0
    const trials = 10
    for (let seed = 1; seed <= trials; seed++) {
      const r = await idleNodeRun(20, 'push-pull', seed)
      rounds += r.rounds / trials
      idleFrames += r.idleFramesPerNodeMinute / trials
    }
    expect(rounds).toBeLessThanOrEqual((THEORY['push-pull'][20] as number) + 1)
    // quiet before the update: a gossip round trip a minute or so per node, not a round a second
    expect(idleFrames).toBeLessThan(10)
  })

  it("100 real nodes on a sparse mesh with reach 'members' spread one update about as fast as on a full mesh", async () => {
    const r = await sparseNodeRun(100, 'push-pull', 1, 3)
    // full-mesh theory for n = 100 is 6.5 rounds; rounds over the mesh links alone would take about one per hop
    expect(Math.abs(r.rounds - (THEORY['push-pull'][100] as number))).toBeLessThanOrEqual(2)
    expect(r.linksBefore).toBeLessThanOrEqual(200)
    expect(r.linksAfter).toBeGreaterThan(r.linksBefore)
  })
})
