/**
 * Rounds for one update to reach every node by anti-entropy, against theory (the gossip primer's
 * simulated means for fanout 1). Two measurements side by side:
 * - **model**: the synchronous round-based model of the protocol's peer choice (each node
 *   contacts `fanout` distinct random peers per round), for every n;
 * - **nodes**: real `createNode` nodes on the memory network and a virtual clock, live mail and
 *   the exchange on connect off, rounds in lock step (see test/sim/epidemic.ts), for n ≤ NODES_MAX.
 *
 * `HEARSAY_BENCH_NODES_MAX` raises the largest n run with real nodes on a full mesh (1000 takes
 * minutes). For n = 1000 the default run measures real nodes on a sparse mesh instead, with
 * `antiEntropy.reach: 'members'` (see `sparseNodeRun`), for the cases in SPARSE_CASES.
 */
import type { AntiEntropyMode } from '@hearsay/core'
import { THEORY, idleNodeRun, modelRounds, nodeRounds, nodeRun, sparseNodeRun } from '../../sim/epidemic.js'
import type { Table } from '../run.js'

const SIZES = [20, 100, 1000, 10_000]
const MODES: AntiEntropyMode[] = ['push', 'pull', 'push-pull']
const FANOUTS = [1, 3]
const NODES_MAX = Number(process.env.HEARSAY_BENCH_NODES_MAX ?? 100)

const modelTrials = (n: number): number => n >= 10_000 ? 30 : n >= 1000 ? 200 : 1000
const nodeTrials = (n: number): number => n <= 20 ? 30 : n <= 100 ? 10 : 1
/** n, trials and (mode, fanout) cases measured with real nodes on a sparse mesh with reach 'members'. */
const SPARSE_N = 1000
const SPARSE_TRIALS = 1
const SPARSE_DEGREE = 4
const SPARSE_CASES: Array<[AntiEntropyMode, number]> = [['push-pull', 1]]

export async function run (): Promise<Table[]> {
  const rows: Array<Array<string | number>> = []
  let worst = 0
  for (const n of SIZES) {
    for (const mode of MODES) {
      for (const fanout of FANOUTS) {
        const theory = fanout === 1 ? THEORY[mode][n] : undefined
        const model = modelRounds(n, mode, fanout, modelTrials(n), n * 31 + fanout)
        let nodes = '—'
        let traffic = '—'
        if (n <= NODES_MAX) {
          const r = await nodeRounds(n, mode, fanout, nodeTrials(n), n * 17 + fanout)
          nodes = r.rounds.toFixed(2)
          traffic = `${Math.round(r.frames / n)} / ${Math.round(r.bytes / n)}`
          if (theory !== undefined) worst = Math.max(worst, Math.abs(r.rounds - theory))
        } else if (n === SPARSE_N && SPARSE_CASES.some(([m, f]) => m === mode && f === fanout)) {
          const sum = { rounds: 0, frames: 0, bytes: 0 }
          for (let t = 0; t < SPARSE_TRIALS; t++) {
            const r = await sparseNodeRun(n, mode, fanout, n * 19 + fanout + t, SPARSE_DEGREE)
            sum.rounds += r.rounds
            sum.frames += r.frames
            sum.bytes += r.bytes
          }
          const rounds = sum.rounds / SPARSE_TRIALS
          nodes = `${rounds.toFixed(2)} (sparse)`
          traffic = `${Math.round(sum.frames / SPARSE_TRIALS / n)} / ${Math.round(sum.bytes / SPARSE_TRIALS / n)}`
          if (theory !== undefined) worst = Math.max(worst, Math.abs(rounds - theory))
        }
        if (theory !== undefined) worst = Math.max(worst, Math.abs(model - theory))
        rows.push([n, mode, fanout, theory === undefined ? '—' : theory.toFixed(1), model.toFixed(2), nodes, traffic])
      }
    }
  }
  const ring: Array<Array<string | number>> = []
  for (const n of [20, 100]) {
    for (const selection of ['random', 'ring'] as const) {
      const runs = []
      for (let t = 0; t < nodeTrials(n); t++) runs.push((await nodeRun(n, 'push-pull', 1, n * 13 + t, selection)).rounds)
      ring.push([n, selection, (runs.reduce((a, b) => a + b, 0) / runs.length).toFixed(2), Math.max(...runs), selection === 'ring' ? n - 1 : 'none'])
    }
  }
  const idle: Array<Array<string | number>> = []
  for (const n of [20, 100]) {
    const runs: Array<Awaited<ReturnType<typeof idleNodeRun>>> = []
    for (let t = 0; t < nodeTrials(n); t++) runs.push(await idleNodeRun(n, 'push-pull', n * 23 + t))
    const mean = (f: (r: typeof runs[number]) => number): number => runs.reduce((a, r) => a + f(r), 0) / runs.length
    const theory = THEORY['push-pull'][n] as number
    idle.push([n, theory.toFixed(1), mean(r => r.rounds).toFixed(2), (mean(r => r.rounds) - theory).toFixed(2), mean(r => r.idleFramesPerNodeMinute).toFixed(1)])
  }
  return [{
    title: 'Rounds for one update to reach every node (anti-entropy only)',
    columns: ['n', 'mode', 'fanout', 'theory (primer)', 'model', 'real nodes', 'frames / bytes per node (real)'],
    rows,
    notes: [
      'theory: the primer\'s simulated means for fanout 1 (Demers et al.); none is given for fanout 3',
      `model: synchronous round-based model of the peer choice, mean of ${modelTrials(20)} / ${modelTrials(100)} / ${modelTrials(1000)} / ${modelTrials(10_000)} runs for n = 20 / 100 / 1000 / 10000`,
      `real nodes: createNode on the memory network and a virtual clock, mean of ${nodeTrials(20)} / ${nodeTrials(100)}${NODES_MAX >= 1000 ? ` / ${nodeTrials(1000)}` : ''} runs for n = 20 / 100${NODES_MAX >= 1000 ? ' / 1000' : ''}; full mesh, 1 ms per frame, 1 s rounds without jitter, live mail and exchange on connect off; traffic counts every frame after the edit, status announcements included`,
      `real nodes (sparse), n = ${SPARSE_N}: ${SPARSE_TRIALS === 1 ? 'one run' : `mean of ${SPARSE_TRIALS} runs`} for ${SPARSE_CASES.map(([m, f]) => `${m} fanout ${f}`).join(', ')}, with antiEntropy.reach: 'members' on a sparse mesh (a ring plus ${(SPARSE_DEGREE - 2) / 2} link${SPARSE_DEGREE === 4 ? '' : 's'} from each node to a random one, average degree about ${SPARSE_DEGREE}); cluster gossip runs until every node lists every member, at least 99% of them alive, then is slowed down and lock-step 1 s rounds start without jitter, live mail and exchange on connect off; a round that picks a member without a session dials it first; traffic counts every frame after the edit, handshakes of the sessions rounds open included`,
      `largest gap between a measurement and theory: ${worst.toFixed(2)} rounds`
    ]
  }, {
    title: 'One update after 10 idle minutes (gossip backed off, anti-entropy paused): rounds against theory',
    columns: ['n', 'theory (push-pull, fanout 1)', 'real nodes', 'rounds over theory', 'frames per node in the last idle minute'],
    rows: idle,
    notes: [
      `real nodes as above (full mesh, 1 s rounds without jitter, live mail off), with cluster gossip on at 1 s; mean of ${nodeTrials(20)} / ${nodeTrials(100)} runs. The update resets every node's backoff (its Status reaches every peer), so the first anti-entropy round comes a base interval later, as without backoff. Target: within 1 round of theory.`,
      'frames: every frame delivered in the minute before the update, divided by n (gossip backed off to one round a minute per node; with fixed timers each node sends a gossip round and an anti-entropy exchange every second).'
    ]
  }, {
    title: 'Closed-loop ring selection against random peers (real nodes, push-pull, fanout 1)',
    columns: ['n', 'selection', 'mean rounds', 'max rounds', 'guaranteed bound'],
    rows: ring,
    notes: ['ring: each round reconciles with the next connected replica in a fixed ring order (antiEntropy.selection: \'ring\'); random has no bound, only a probable time']
  }]
}
