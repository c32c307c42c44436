/**
 * How many anti-entropy rounds one update takes to reach every node, two ways:
 *
 * - `modelRounds`: the textbook round-based model (Demers et al.). Rounds are synchronous: in each
 *   round every node contacts `fanout` distinct random peers, and what moves is decided by who knew
 *   the update at the start of the round. push: an informed node informs the peers it contacts;
 *   pull: a node that contacts an informed peer learns it; push-pull: both.
 * - `nodeRounds`: real `createNode` nodes on the memory network and a virtual clock, with live
 *   mail and the exchange on connect switched off, so the update travels only by periodic
 *   anti-entropy. Rounds run in lock step (no jitter, every node started at the same instant),
 *   and a frame takes 1 ms against a 1 s interval, so a round is nearly instantaneous as in the
 *   model; an exchange may still relay what its node learnt a few ms earlier in the same round.
 */
import {
  createMemoryNetwork, createNode, createRandom, createVirtualClock, type AntiEntropyMode, type HearsayNode, type Random
} from '@hearsay/core'

/** Mean rounds for push, pull and push-pull with fanout 1 (primer, from Demers-style simulation). */
export const THEORY: Record<AntiEntropyMode, Record<number, number>> = {
  push: { 20: 8.0, 100: 12.3, 1000: 18.1, 10000: 23.7 },
  pull: { 20: 6.6, 100: 9.8, 1000: 13.8, 10000: 17.5 },
  'push-pull': { 20: 4.4, 100: 6.5, 1000: 9.2, 10000: 11.6 }
}

/** Rounds of one run of the round-based model. */
export function modelRun (n: number, mode: AntiEntropyMode, fanout: number, rng: Random): number {
  let informed = new Uint8Array(n)
  informed[0] = 1
  let count = 1
  let rounds = 0
  const k = Math.min(fanout, n - 1)
  const picked = new Set<number>()
  while (count < n) {
    rounds++
    const next = informed.slice()
    for (let i = 0; i < n; i++) {
      picked.clear()
      while (picked.size < k) {
        const j = rng.int(n - 1)
        picked.add(j >= i ? j + 1 : j)
      }
      for (const j of picked) {
        if (mode !== 'pull' && informed[i] === 1) next[j] = 1
        if (mode !== 'push' && informed[j] === 1) next[i] = 1
      }
    }
    informed = next
    count = 0
    for (const v of informed) count += v
  }
  return rounds
}

/** Mean rounds of the model over `trials` seeded runs. */
export function modelRounds (n: number, mode: AntiEntropyMode, fanout: number, trials: number, seed = 1): number {
  const rng = createRandom(seed)
  let sum = 0
  for (let t = 0; t < trials; t++) sum += modelRun(n, mode, fanout, rng)
  return sum / trials
}

export interface NodeRun { rounds: number, frames: number, bytes: number }

const INTERVAL_MS = 1000

/** Rounds one update takes to reach all `n` real nodes by anti-entropy alone. */
export async function nodeRun (n: number, mode: AntiEntropyMode, fanout: number, seed: number, selection: 'random' | 'ring' = 'random'): Promise<NodeRun> {
  const clock = createVirtualClock()
  const net = createMemoryNetwork({ seed, timers: clock, latency: () => 1 })
  let clientId = 1
  const nodes: HearsayNode[] = []
  for (let i = 0; i < n; i++) {
    const id = `p${i}`
    nodes.push(createNode({
      id,
      transport: net.transport(id),
      timers: clock,
      seed: seed * 10_000 + i,
      live: false,
      newClientId: () => clientId++,
      antiEntropy: { mode, fanout, selection, intervalMs: INTERVAL_MS, jitter: 0, onConnect: false },
      // only anti-entropy traffic is counted
      cluster: { enabled: false }
    }))
  }
  for (const node of nodes) await node.start()
  // sessions open, then the update appears on one node half way to the first round
  await clock.advanceTo(INTERVAL_MS / 2)
  const source = nodes[seed % n] as HearsayNode
  const doc = await source.open('news')
  doc.getText('t').insert(0, 'hello')
  await source.flush()
  const start = { frames: net.stats.framesDelivered, bytes: net.stats.bytesDelivered }
  let rounds = 0
  const informed = (node: HearsayNode): boolean => node.digest().count > 0
  while (!nodes.every(informed)) {
    rounds++
    // round k fires at k × interval; its exchanges end well within the interval
    await clock.advanceTo(rounds * INTERVAL_MS + INTERVAL_MS / 2)
    if (rounds > 200) throw new Error(`no convergence after 200 rounds (n=${n}, ${mode}, fanout ${fanout}, seed ${seed})`)
  }
  const result = { rounds, frames: net.stats.framesDelivered - start.frames, bytes: net.stats.bytesDelivered - start.bytes }
  for (const node of nodes) await node.stop()
  return result
}

/** Mean rounds (and traffic per run) of `trials` seeded runs with real nodes. */
export async function nodeRounds (n: number, mode: AntiEntropyMode, fanout: number, trials: number, seed = 1): Promise<NodeRun> {
  const sum = { rounds: 0, frames: 0, bytes: 0 }
  for (let t = 0; t < trials; t++) {
    const r = await nodeRun(n, mode, fanout, seed + t)
    sum.rounds += r.rounds
    sum.frames += r.frames
    sum.bytes += r.bytes
  }
  return { rounds: sum.rounds / trials, frames: sum.frames / trials, bytes: sum.bytes / trials }
}
