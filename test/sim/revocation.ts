/**
 * How fast a revocation shuts a device out of the whole swarm: `n` real nodes with a roster on the
 * memory network and a virtual clock, every frame lost with probability `loss`. The root admin
 * (p0) revokes the last node half way to a gossip round; we count gossip rounds (1 s, the default
 * `cluster.intervalMs`, ± 25% jitter) until every other node holds the revocation and has no
 * session with the revoked device.
 *
 * A new statement floods at once: each node that learns it passes it to every session. What a lost
 * frame misses, the roster summary each node sends one random peer per gossip round repairs, as
 * push-pull anti-entropy would (theory for n = 20 and 100: 4.4 and 6.5 rounds).
 */
import { createMemoryNetwork, createNode, createRandom, createVirtualClock, type HearsayNode } from '@hearsay/core'
import { createTestKeyring } from '@hearsay/core/testing'

export interface RevocationRun {
  /** Gossip rounds after the revocation until the last node refused the device. */
  rounds: number
  /** Nodes that held the revocation within the first round. */
  firstRound: number
  /** Virtual ms after the revocation until the last node refused the device (10 ms steps). */
  ms: number
}

const INTERVAL_MS = 1000
const STEP_MS = 10

/**
 * `degree` set: a sparse mesh instead of every pair connected — a ring (so the mesh is connected)
 * plus (degree − 2) / 2 links from each node to random ones, as in epidemic.ts.
 */
export async function revocationRun (n: number, loss: number, seed: number, degree?: number): Promise<RevocationRun> {
  const clock = createVirtualClock()
  const net = createMemoryNetwork({ seed, timers: clock, latency: () => 1, autoConnect: degree === undefined })
  const keys = createTestKeyring()
  const make = (i: number, genesis?: Uint8Array): HearsayNode => createNode({
    id: `p${i}`,
    transport: net.transport(`p${i}`),
    timers: clock,
    seed: seed * 10_000 + i,
    antiEntropy: { enabled: false },
    cluster: { intervalMs: INTERVAL_MS },
    trust: { crypto: keys.crypto, signer: keys.signer(`p${i}`), genesis }
  })
  const admin = make(0)
  await admin.start()
  const genesis = await admin.trust.createSwarm()
  const nodes = [admin, ...Array.from({ length: n - 1 }, (_, i) => make(i + 1, genesis))]
  for (const node of nodes.slice(1)) await node.start()
  if (degree !== undefined) {
    const rng = createRandom(seed ^ 0x5eed)
    const link = (a: number, b: number): void => { if (a !== b && !net.connected(`p${a}`, `p${b}`)) net.connect(`p${a}`, `p${b}`) }
    for (let i = 0; i < n; i++) link(i, (i + 1) % n)
    for (let i = 0; i < n; i++) for (let k = 2; k < degree; k += 2) link(i, rng.int(n))
  }
  const victim = `p${n - 1}`
  // sessions open (frames lost on the way are retried by reconnects of the memory network)
  await clock.advanceTo(5 * INTERVAL_MS)
  net.setFaults({ loss })
  const t0 = clock.now() + INTERVAL_MS / 2
  await clock.advanceTo(t0)
  await admin.trust.revoke(victim)
  const others = nodes.slice(0, n - 1)
  const refused = (node: HearsayNode): boolean => !node.trust.may(victim, 'x', 'read') && !node.peers().some(p => p.id === victim && p.connected)
  let ms = 0
  let firstRound = 0
  while (!others.every(refused)) {
    ms += STEP_MS
    await clock.advanceTo(t0 + ms)
    if (ms === INTERVAL_MS) firstRound = others.filter(refused).length
    if (ms > 100 * INTERVAL_MS) throw new Error(`revocation did not reach every node in 100 rounds (n=${n}, loss ${loss}, seed ${seed})`)
  }
  for (const node of nodes) await node.stop()
  return { rounds: Math.ceil(ms / INTERVAL_MS), firstRound: ms <= INTERVAL_MS ? others.length : firstRound, ms }
}

/** Mean and worst rounds over `trials` seeded runs. */
export async function revocationRounds (n: number, loss: number, trials: number, seed = 1, degree?: number): Promise<{ mean: number, worst: number, meanMs: number }> {
  let sum = 0
  let worst = 0
  let ms = 0
  for (let t = 0; t < trials; t++) {
    const r = await revocationRun(n, loss, seed + t, degree)
    sum += r.rounds
    ms += r.ms
    worst = Math.max(worst, r.rounds)
  }
  return { mean: sum / trials, worst, meanMs: ms / trials }
}
