/**
 * Deterministic simulator: real `createNode` nodes on the memory network, on a virtual clock,
 * with faults. A run replays exactly from its seed.
 *
 * Fault model (what a TCP-based transport such as libp2p over TCP can really do):
 * - **Loss** resets the link: the protocol assumes an ordered, reliable channel per peer, and TCP
 *   never hands an application a stream with a hole in it. A lost frame therefore closes the
 *   channel on both sides (like a reset or a timed-out connection), frames in flight are lost,
 *   and a reconnect loop dials again after a random backoff.
 * - **Reordering** happens across links only: every frame gets its own random latency, so frames
 *   on different links overtake each other, while each link stays in order (TCP).
 * - **Duplication** is not something TCP does; it is applied to frames anyway as an adversarial
 *   check (a duplicated handshake or exchange frame must fail safe: the session closes and the
 *   nodes reconnect and repair). Updates also arrive more than once in normal operation, by live
 *   mail and by anti-entropy, which Yjs absorbs.
 * - **Delay**: latency drawn per frame in `[latencyMs[0], latencyMs[1]]`.
 * - **Partitions** split the nodes into two groups for a while, then heal.
 * - **Crash and restart**: a node's timers are cancelled and its links reset mid-flight; it
 *   restarts later as a new node over the same storage. Edits it had not flushed may be lost;
 *   edits acknowledged by `await node.flush()` must not be.
 *
 * A run has a fault phase (edits and faults) and then a calm phase: faults stop, partitions heal,
 * crashed nodes restart; the run measures the virtual time and anti-entropy rounds until every node
 * holds the same documents, then checks that every acknowledged edit is present on every node.
 */
import * as Y from 'yjs'
import {
  createMemoryNetwork, createMemoryStorage, createNode, createRandom, createVirtualClock,
  type HearsayNode, type MemoryNetwork, type Random, type ScopedTimers, type Storage, type VirtualClock
} from '@hearsay/core'

export interface SimOptions {
  seed: number
  /** Number of nodes. */
  nodes: number
  /** Number of documents edited. @default 4 */
  docs?: number
  /** Edits made during the fault phase (most acknowledged with `flush()`). @default 30 */
  edits?: number
  /** Probability that a frame is lost (and its link reset). @default 0 */
  loss?: number
  /** Probability that a frame is delivered twice. @default 0 */
  duplicate?: number
  /** Per-frame latency range in ms. @default [1, 40] */
  latencyMs?: [number, number]
  /** Split the network in two now and then during the fault phase. @default false */
  partitions?: boolean
  /** Crash and later restart nodes during the fault phase. @default false */
  crashes?: boolean
  /** Virtual length of the fault phase, in ms. @default 8000 */
  faultMs?: number
  /** Anti-entropy interval of the nodes, in ms. @default 1000 */
  intervalMs?: number
  /**
   * Nodes run an exchange when a peer connects. Off, everything the live mail missed is repaired
   * by periodic rounds alone, which is what `rounds` then measures. @default true
   */
  onConnect?: boolean
  /**
   * Links per node of a sparse mesh (a ring plus random chords) instead of everyone connected to
   * everyone: direct mail then misses most nodes, rumors and anti-entropy carry updates across.
   * @default undefined (full mesh)
   */
  degree?: number
  /** Give up waiting for convergence after this much virtual time in the calm phase. @default 600000 */
  maxConvergeMs?: number
}

export interface SimResult {
  seed: number
  nodes: number
  converged: boolean
  /** Virtual ms from the end of faults until every node held the same documents. */
  convergeMs: number
  /** The same in anti-entropy intervals. */
  rounds: number
  /** Frames and bytes delivered over the whole run, and during the calm phase alone. */
  messages: number
  bytes: number
  calmMessages: number
  calmBytes: number
  framesLost: number
  linkResets: number
  crashes: number
  partitions: number
  acknowledged: number
  /** Updates sent in rumors by the nodes running at the end (counters restart with a node). */
  rumorUpdatesSent: number
  /** Acknowledged edits missing on some node at the end: `doc key@node`. */
  missing: string[]
  /** Virtual time of the whole run, in ms. */
  virtualMs: number
  /**
   * Membership problems left after the calm phase: a node whose `peers()` misses a member, or
   * shows one not `alive` or not `inSync` (`viewer: member state`). Empty when all agree.
   */
  membership: string[]
  /** Virtual ms after convergence until every node saw every member alive and in sync. */
  membershipMs: number
  /** How to run exactly this run again: its options as JSON in `HEARSAY_SIM_REPLAY`. */
  replay: string
}

/** Environment variable holding the options of one run to replay (see `replayCommand`). */
export const REPLAY_ENV = 'HEARSAY_SIM_REPLAY'

/** Name of the test in test/sim/sim.test.ts that replays the run in `HEARSAY_SIM_REPLAY`. */
export const REPLAY_TEST = 'replays the run given in HEARSAY_SIM_REPLAY'

/** A shell command that runs exactly this simulation again, whatever test it came from. */
export function replayCommand (o: SimOptions): string {
  return `${REPLAY_ENV}='${JSON.stringify(o)}' npx vitest run test/sim/sim.test.ts -t '${REPLAY_TEST}'`
}

interface SimNode { id: string, storage: Storage, node: HearsayNode | undefined, timers: ScopedTimers | undefined, up: boolean }

const CHECK_EVERY_MS = 50

/** After convergence, how long every node's view of the membership may take to agree (virtual ms). */
const MEMBERSHIP_SETTLE_MS = 60_000

export async function simulate (o: SimOptions): Promise<SimResult> {
  const seed = o.seed
  const rng = createRandom(seed)
  const docCount = o.docs ?? 4
  const edits = o.edits ?? 30
  const [latMin, latMax] = o.latencyMs ?? [1, 40]
  const faultMs = o.faultMs ?? 8000
  const intervalMs = o.intervalMs ?? 1000
  const maxConvergeMs = o.maxConvergeMs ?? 600_000
  const clock = createVirtualClock()
  const ids = Array.from({ length: o.nodes }, (_, i) => `n${String(i).padStart(2, '0')}`)
  const links = o.degree === undefined ? undefined : sparseMesh(ids, o.degree, createRandom(seed ^ 0x11e5))
  const net = createMemoryNetwork({
    autoConnect: links === undefined,
    seed: seed ^ 0x5eed,
    timers: clock,
    latency: (_from, _to, r) => latMin + r.int(latMax - latMin + 1),
    loss: o.loss ?? 0,
    duplicate: o.duplicate ?? 0,
    resetOnLoss: true
  })
  const sims: SimNode[] = ids.map(id => ({ id, storage: createMemoryStorage(), node: undefined, timers: undefined, up: false }))
  let incarnation = 0
  // unique across every node, restart and document load of the run, so Yjs content replays too
  let nextClientId = 1
  let crashes = 0
  let partitions = 0
  let partitioned = false
  const acked: Array<{ docId: string, key: string, value: number }> = []

  async function boot (s: SimNode): Promise<void> {
    s.timers = clock.scope()
    s.node = createNode({
      id: s.id,
      transport: net.transport(s.id),
      storage: s.storage,
      timers: s.timers,
      seed: seed * 1000 + incarnation++,
      antiEntropy: { intervalMs, timeoutMs: 5 * intervalMs, onConnect: o.onConnect ?? true },
      statusIntervalMs: 100,
      newClientId: () => nextClientId++
    })
    await s.node.start()
    s.up = true
  }

  function crash (s: SimNode): void {
    s.timers?.dispose()
    net.crash(s.id)
    s.up = false
    s.node = undefined
    crashes++
  }

  // a dialler: links that went down are dialled again after a random backoff
  const reconnect = clock.scope()
  const redial = (): void => {
    for (let i = 0; i < sims.length; i++) {
      for (let j = i + 1; j < sims.length; j++) {
        const a = sims[i] as SimNode
        const b = sims[j] as SimNode
        if (links !== undefined && !links.has(`${a.id} ${b.id}`)) continue
        if (a.up && b.up && !net.connected(a.id, b.id) && rng.next() < 0.3) net.connect(a.id, b.id)
      }
    }
    reconnect.setTimeout(redial, 100)
  }

  async function edit (s: SimNode, n: number, acknowledge: boolean): Promise<void> {
    const node = s.node as HearsayNode
    const docId = `doc/${rng.int(docCount)}`
    const doc = await node.open(docId)
    const key = `${s.id}#${n}`
    doc.transact(() => {
      doc.getMap('m').set(key, n)
      const t = doc.getText('t')
      t.insert(rng.int(t.length + 1), key)
    })
    if (acknowledge) {
      await node.flush()
      acked.push({ docId, key, value: n })
    }
    node.close(docId)
  }

  for (const s of sims) await boot(s)
  redial()

  // fault phase: edits, crashes, restarts and partitions at random virtual times
  const steps = edits * 2
  for (let step = 0; step < steps; step++) {
    await clock.advance(rng.int(Math.max(1, Math.floor(2 * faultMs / steps))))
    const up = sims.filter(s => s.up)
    const r = rng.next()
    if (r < 0.5) {
      if (up.length > 0) await edit(rng.pick(up), step, rng.next() < 0.85)
    } else if (r < 0.62 && o.crashes === true && up.length > 2) {
      const victim = rng.pick(up)
      crash(victim)
      const downFor = 200 + rng.int(3000)
      clock.setTimeout(() => { if (!victim.up) void boot(victim) }, downFor)
    } else if (r < 0.68 && o.partitions === true && !partitioned) {
      const shuffled = rng.shuffle(ids)
      const cut = 1 + rng.int(ids.length - 1)
      net.partition([shuffled.slice(0, cut), shuffled.slice(cut)])
      partitioned = true
      partitions++
      clock.setTimeout(() => { net.heal(); partitioned = false }, 500 + rng.int(4000))
    }
  }

  // calm phase: no more faults; everybody back
  net.setFaults({ loss: 0, duplicate: 0 })
  net.heal()
  partitioned = false
  for (const s of sims) if (!s.up) await boot(s)
  for (const s of sims) await s.node?.flush()
  const calmStart = clock.now()
  const before = { messages: net.stats.framesDelivered, bytes: net.stats.bytesDelivered }
  let converged = false
  while (clock.now() - calmStart <= maxConvergeMs) {
    if (sameRoots(sims)) {
      converged = true
      break
    }
    await clock.advance(CHECK_EVERY_MS)
  }
  const convergeMs = clock.now() - calmStart
  const missing = converged ? await missingEdits(sims, acked) : ['did not converge']
  // then every node should see every member alive and in sync with it
  const settleStart = clock.now()
  let membership = converged ? membershipIssues(sims) : ['did not converge']
  while (converged && membership.length > 0 && clock.now() - settleStart < MEMBERSHIP_SETTLE_MS) {
    await clock.advance(CHECK_EVERY_MS)
    membership = membershipIssues(sims)
  }
  const membershipMs = clock.now() - settleStart
  const result: SimResult = {
    seed,
    nodes: o.nodes,
    converged,
    convergeMs,
    rounds: convergeMs / intervalMs,
    messages: net.stats.framesDelivered,
    bytes: net.stats.bytesDelivered,
    calmMessages: net.stats.framesDelivered - before.messages,
    calmBytes: net.stats.bytesDelivered - before.bytes,
    framesLost: net.stats.framesLost,
    linkResets: net.stats.linkResets,
    crashes,
    partitions,
    acknowledged: acked.length,
    rumorUpdatesSent: sims.reduce((s, n) => s + (n.node?.metrics().rumorUpdatesSent ?? 0), 0),
    missing,
    membership,
    membershipMs,
    virtualMs: clock.now(),
    replay: replayCommand(o)
  }
  reconnect.dispose()
  await stopAll(sims, clock, net)
  return result
}

/** Pairs "a b" (a < b) of a connected sparse mesh: a ring, plus random chords up to `degree` links per node on average. */
function sparseMesh (ids: string[], degree: number, rng: Random): Set<string> {
  const links = new Set<string>()
  const add = (a: string, b: string): void => { if (a !== b) links.add(a < b ? `${a} ${b}` : `${b} ${a}`) }
  for (let i = 0; i < ids.length; i++) add(ids[i] as string, ids[(i + 1) % ids.length] as string)
  const target = Math.floor(ids.length * degree / 2)
  for (let tries = 0; links.size < target && tries < 10 * target; tries++) add(rng.pick(ids), rng.pick(ids))
  return links
}

function sameRoots (sims: SimNode[]): boolean {
  let first: Uint8Array | undefined
  for (const s of sims) {
    if (!s.up || s.node === undefined) return false
    const { root } = s.node.digest()
    if (first === undefined) first = root
    else if (!Buffer.from(root).equals(Buffer.from(first))) return false
  }
  return true
}

function membershipIssues (sims: SimNode[]): string[] {
  const issues: string[] = []
  for (const s of sims) {
    const seen = new Map((s.node?.peers() ?? []).map(p => [p.id, p]))
    for (const other of sims) {
      if (other.id === s.id) continue
      const p = seen.get(other.id)
      if (p === undefined) issues.push(`${s.id}: ${other.id} unknown`)
      else if (p.state !== 'alive' || !p.inSync) issues.push(`${s.id}: ${other.id} ${p.state}${p.inSync ? '' : ', not in sync'}`)
    }
  }
  return issues
}

async function missingEdits (sims: SimNode[], acked: Array<{ docId: string, key: string, value: number }>): Promise<string[]> {
  const missing: string[] = []
  for (const s of sims) {
    const node = s.node as HearsayNode
    const docs = new Map<string, Y.Doc>()
    for (const a of acked) {
      let doc = docs.get(a.docId)
      if (doc === undefined) {
        doc = await node.open(a.docId)
        docs.set(a.docId, doc)
      }
      if (doc.getMap('m').get(a.key) !== a.value) missing.push(`${a.docId} ${a.key}@${s.id}`)
    }
    for (const id of docs.keys()) node.close(id)
  }
  return missing
}

async function stopAll (sims: SimNode[], clock: VirtualClock, _net: MemoryNetwork): Promise<void> {
  await Promise.all(sims.map(async s => { await s.node?.stop() }))
  for (const s of sims) s.timers?.dispose()
  await clock.settle()
}

/** A seeded sample of run shapes: `count` runs from `seed`, each with 10–30 nodes. */
export function runPlan (seed: number, count: number): SimOptions[] {
  const r: Random = createRandom(seed)
  return Array.from({ length: count }, (_, i) => ({
    seed: seed + i,
    nodes: 10 + r.int(21),
    loss: 0.3,
    duplicate: 0.02,
    partitions: true,
    crashes: true
  }))
}
