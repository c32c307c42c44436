import { describe, expect, it } from 'vitest'
import { REPLAY_ENV, REPLAY_TEST, runPlan, simulate, type SimOptions, type SimResult } from './sim.js'

const RUNS = Number(process.env.HEARSAY_SIM_RUNS ?? 200)
const ONLY = process.env.HEARSAY_SIM_SEED
const REPLAY = process.env[REPLAY_ENV]

/** What every run must end with: every acknowledged edit everywhere, and agreement on the membership. */
function expectSound (r: SimResult): void {
  expect(r.converged, r.replay).toBe(true)
  expect(r.missing, r.replay).toEqual([])
  expect(r.membership, r.replay).toEqual([])
}
const FIRST_SEED = 1000

describe('simulator', () => {
  it.runIf(REPLAY !== undefined)(REPLAY_TEST, async () => {
    const r = await simulate(JSON.parse(REPLAY as string) as SimOptions)
    process.stdout.write(`${JSON.stringify({ ...r, replay: undefined })}\n`)
    expectSound(r)
  })

  it('the replay line of a run carries its whole setup and replays it', async () => {
    const o: SimOptions = { seed: 5, nodes: 10, degree: 3, onConnect: false, loss: 0.3, duplicate: 0.02, crashes: true }
    const r = await simulate(o)
    expect(r.replay).toContain('npx vitest run test/sim/sim.test.ts -t ')
    expect(r.replay).toContain(REPLAY_TEST)
    const json = /^HEARSAY_SIM_REPLAY='([^']*)'/.exec(r.replay)?.[1]
    expect(JSON.parse(json as string)).toEqual(o)
    expect(await simulate(JSON.parse(json as string) as SimOptions)).toEqual(r)
    expectSound(r)
  })

  it('replays a run exactly from its seed', async () => {
    const o = { seed: 7, nodes: 8, loss: 0.3, duplicate: 0.02, partitions: true, crashes: true }
    const a = await simulate(o)
    const b = await simulate(o)
    expect(b).toEqual(a)
    expectSound(a)
  })

  it('without faults, an edit reaches everyone by direct mail before the first round', async () => {
    const r = await simulate({ seed: 3, nodes: 12, edits: 10 })
    expectSound(r)
    expect(r.framesLost).toBe(0)
    expect(r.rounds).toBeLessThan(1)
  })

  it('with no exchange on connect, periodic rounds alone repair what faults left behind', async () => {
    const results = []
    for (const o of runPlan(77, 10)) results.push(await simulate({ ...o, onConnect: false }))
    for (const r of results) expectSound(r)
    const mean = results.reduce((s, r) => s + r.rounds, 0) / results.length
    process.stdout.write(`sim (no exchange on connect): mean ${mean.toFixed(2)} rounds to converge, max ${Math.max(...results.map(r => r.rounds)).toFixed(2)}\n`)
  })

  it('on a clean sparse mesh, rumors carry edits to nodes their authors are not connected to', async () => {
    const r = await simulate({ seed: 11, nodes: 20, degree: 3, edits: 20 })
    expectSound(r)
    expect(r.rumorUpdatesSent).toBeGreaterThan(0)
    expect(r.rounds).toBeLessThan(1)
  })

  it('on a sparse mesh (3 links per node) with the same faults, rumors and anti-entropy still lose nothing', async () => {
    const results = []
    for (const o of runPlan(500, 20)) results.push(await simulate({ ...o, degree: 3 }))
    for (const r of results) expectSound(r)
    const mean = results.reduce((s, r) => s + r.rounds, 0) / results.length
    process.stdout.write(`sim (sparse mesh, degree 3): mean ${mean.toFixed(2)} rounds to converge, max ${Math.max(...results.map(r => r.rounds)).toFixed(2)}\n`)
  })

  const plan = ONLY !== undefined
    ? runPlan(FIRST_SEED, 200).filter(o => o.seed === Number(ONLY)).concat(runPlan(Number(ONLY), 1)).slice(0, 1)
    : runPlan(FIRST_SEED, RUNS)

  it(`${plan.length} seeded runs of 10–30 nodes with 30% loss, duplicates, reordering, partitions and crashes converge with no lost update`, async () => {
    const started = Date.now()
    const results: SimResult[] = []
    const failed: string[] = []
    for (const o of plan) {
      const r = await simulate(o)
      results.push(r)
      if (!r.converged || r.missing.length > 0 || r.membership.length > 0) {
        const what = !r.converged
          ? 'did not converge'
          : r.missing.length > 0
            ? `${r.missing.length} acknowledged edits missing, e.g. ${r.missing.slice(0, 3).join(', ')}`
            : `members disagree, e.g. ${r.membership.slice(0, 3).join('; ')}`
        failed.push(`seed ${r.seed} (${r.nodes} nodes): ${what}; replay: ${r.replay}`)
      }
    }
    const rounds = results.map(r => r.rounds).sort((a, b) => a - b)
    const pick = (q: number): number => rounds[Math.min(rounds.length - 1, Math.floor(q * rounds.length))] as number
    const sum = (f: (r: SimResult) => number): number => results.reduce((s, r) => s + f(r), 0)
    process.stdout.write(`sim: ${results.length} runs in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `rounds to converge after faults: median ${pick(0.5).toFixed(2)}, p95 ${pick(0.95).toFixed(2)}, max ${pick(1).toFixed(2)}; ` +
      `${sum(r => r.acknowledged)} acknowledged edits, ${sum(r => r.crashes)} crashes, ${sum(r => r.partitions)} partitions, ` +
      `${sum(r => r.linkResets)} link resets, ${sum(r => r.messages)} frames, ${(sum(r => r.bytes) / 2 ** 20).toFixed(1)} MiB\n`)
    expect(failed).toEqual([])
  }, 300_000)
})
