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
  createMemoryNetwork, createNode, createRandom, createVirtualClock, type AntiEntropyMode, type HearsayNode, type MemoryNetwork,
  type NodeOptions, type Random, type VirtualClock
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

/** `n` real nodes on `net` with live mail off, deterministic client ids and the given settings. */
function createNodes (n: number, net: MemoryNetwork, clock: VirtualClock, seed: number, settings: Pick<NodeOptions, 'antiEntropy' | 'cluster'>): HearsayNode[] {
  let clientId = 1
  return Array.from({ length: n }, (_, i) => createNode({
    id: `p${i}`,
    transport: net.transport(`p${i}`),
    timers: clock,
    seed: seed * 10_000 + i,
    live: false,
    newClientId: () => clientId++,
    ...settings
  }))
}

/**
 * The update appears on node `seed` mod n half way to the round after `t0`; rounds then fire at
 * `t0` + k × interval until every node holds it. Returns rounds and the traffic since the update.
 */
async function spreadOne (nodes: HearsayNode[], net: MemoryNetwork, clock: VirtualClock, t0: number, seed: number, what: string): Promise<NodeRun> {
  await clock.advanceTo(t0 + INTERVAL_MS / 2)
  const source = nodes[seed % nodes.length] as HearsayNode
  const doc = await source.open('news')
  doc.getText('t').insert(0, 'hello')
  await source.flush()
  const start = { frames: net.stats.framesDelivered, bytes: net.stats.bytesDelivered }
  let rounds = 0
  const informed = (node: HearsayNode): boolean => node.digest().count > 0
  while (!nodes.every(informed)) {
    rounds++
    // round k fires at k × interval; its exchanges end well within the interval
    await clock.advanceTo(t0 + rounds * INTERVAL_MS + INTERVAL_MS / 2)
    if (rounds > 200) throw new Error(`no convergence after 200 rounds (${what})`)
  }
  return { rounds, frames: net.stats.framesDelivered - start.frames, bytes: net.stats.bytesDelivered - start.bytes }
}

/** Rounds one update takes to reach all `n` real nodes by anti-entropy alone. */
export async function nodeRun (n: number, mode: AntiEntropyMode, fanout: number, seed: number, selection: 'random' | 'ring' = 'random'): Promise<NodeRun> {
  const clock = createVirtualClock()
  const net = createMemoryNetwork({ seed, timers: clock, latency: () => 1 })
  const nodes = createNodes(n, net, clock, seed, {
    antiEntropy: { mode, fanout, selection, intervalMs: INTERVAL_MS, jitter: 0, onConnect: false },
    // only anti-entropy traffic is counted
    cluster: { enabled: false }
  })
  for (const node of nodes) await node.start()
  // sessions open, then the update appears on one node half way to the first round
  const result = await spreadOne(nodes, net, clock, 0, seed, `n=${n}, ${mode}, fanout ${fanout}, seed ${seed}`)
  for (const node of nodes) await node.stop()
  return result
}

/** Virtual time nodes stay idle before the update in `idleNodeRun`, in ms: long past the backoff's maximum. */
const IDLE_WARMUP_MS = 10 * 60_000

/**
 * Like `nodeRun`, but with cluster gossip on and the nodes idle for 10 minutes first, so gossip
 * has backed off to its maximum and anti-entropy rounds are paused (idle.ts) when the update
 * appears. Also returns the frames each node sent per minute over the last idle minute.
 */
export async function idleNodeRun (n: number, mode: AntiEntropyMode, seed: number): Promise<NodeRun & { idleFramesPerNodeMinute: number }> {
  const clock = createVirtualClock()
  const net = createMemoryNetwork({ seed, timers: clock, latency: () => 1 })
  const nodes = createNodes(n, net, clock, seed, {
    antiEntropy: { mode, fanout: 1, intervalMs: INTERVAL_MS, jitter: 0, onConnect: false },
    cluster: { intervalMs: INTERVAL_MS }
  })
  for (const node of nodes) await node.start()
  await clock.advanceTo(IDLE_WARMUP_MS - 60_000)
  const before = net.stats.framesDelivered
  await clock.advanceTo(IDLE_WARMUP_MS)
  const idleFramesPerNodeMinute = (net.stats.framesDelivered - before) / n
  const result = await spreadOne(nodes, net, clock, IDLE_WARMUP_MS, seed, `idle n=${n}, ${mode}, seed ${seed}`)
  for (const node of nodes) await node.stop()
  return { ...result, idleFramesPerNodeMinute }
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

/**
 * Cluster settings of sparse runs: heartbeats every second while membership spreads, answers
 * large enough to carry every member's state at once.
 */
const SPARSE_CLUSTER = { intervalMs: 1000, suspectMs: 120_000, deadMs: 240_000, maxMessageBytes: 256 * 1024 }
/** Share of the other members a node must hold alive before the measured rounds start. */
const SPARSE_ALIVE = 0.99
/** Cluster gossip interval once membership is known, so measured rounds carry anti-entropy traffic almost only. */
const SPARSE_QUIET_GOSSIP_MS = 600_000

export interface SparseRun extends NodeRun {
  /** Virtual seconds of cluster gossip before every node knew every member alive. */
  warmupS: number
  /** Sessions open at the start of the measured rounds, and at the end. */
  linksBefore: number
  linksAfter: number
}

/**
 * Rounds one update takes to reach all `n` real nodes on a sparse mesh with
 * `antiEntropy.reach: 'members'`. The memory network does not connect every pair: each node gets
 * a link to the next (a ring, so the mesh is connected) and (`degree` − 2) / 2 more to random
 * nodes, so the average degree is about `degree`.
 * Cluster gossip runs until every node's `peers()` lists every other member, at least 99% of them
 * alive (members only heard of count as alive once a newer heartbeat arrives); then cluster
 * gossip is slowed right down (members stay alive: `suspectMs` is 120 s), periodic rounds start in
 * lock step on every node, and the update appears half way to the first. A round that picks a
 * member with no session dials it (the memory transport's `connect`) and reconciles once it opens.
 */
export async function sparseNodeRun (n: number, mode: AntiEntropyMode, fanout: number, seed: number, degree = 4): Promise<SparseRun> {
  const clock = createVirtualClock()
  const net = createMemoryNetwork({ seed, timers: clock, latency: () => 1, autoConnect: false })
  const rng = createRandom(seed ^ 0x5eed)
  const nodes = createNodes(n, net, clock, seed, {
    antiEntropy: { mode, fanout, reach: 'members', intervalMs: INTERVAL_MS, jitter: 0, onConnect: false, enabled: false },
    cluster: SPARSE_CLUSTER
  })
  for (const node of nodes) await node.start()
  let links = 0
  const link = (a: number, b: number): void => {
    if (a === b || net.connected(`p${a}`, `p${b}`)) return
    net.connect(`p${a}`, `p${b}`)
    links++
  }
  for (let i = 0; i < n; i++) link(i, (i + 1) % n)
  for (let i = 0; i < n; i++) for (let k = 2; k < degree; k += 2) link(i, rng.int(n))
  const linksBefore = links
  // membership spreads by cluster gossip over the sparse mesh
  // the last few first-heard members take long to confirm alive (a heartbeat newer than the first
  // one heard must arrive): every member listed and 99% alive is enough for rounds to pick from
  const knowsEveryone = (node: HearsayNode): boolean => {
    const listed = node.peers()
    return listed.length === n - 1 && listed.filter(p => p.state === 'alive').length >= Math.ceil(SPARSE_ALIVE * (n - 1))
  }
  // a cheap look at a few nodes before the full check
  const everyoneKnown = (): boolean => nodes.filter((_, i) => i % 97 === 0).every(knowsEveryone) && nodes.every(knowsEveryone)
  let warmup = 0
  do {
    warmup += 3000
    await clock.advanceTo(warmup)
    if (warmup > 600_000) throw new Error(`membership did not spread within 600 s (n=${n}, seed ${seed})`)
  } while (!everyoneKnown())
  for (const node of nodes) node.configure({ cluster: { intervalMs: SPARSE_QUIET_GOSSIP_MS }, antiEntropy: { enabled: true } })
  const result = await spreadOne(nodes, net, clock, clock.now(), seed, `n=${n}, ${mode}, fanout ${fanout}, seed ${seed}`)
  let linksAfter = 0
  for (const node of nodes) linksAfter += node.peers().filter(p => p.connected).length
  for (const node of nodes) await node.stop()
  return { ...result, warmupS: warmup / 1000, linksBefore, linksAfter: linksAfter / 2 }
}
