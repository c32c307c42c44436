/**
 * Property-based fuzzing of the wire decoder at full length: 100,000 mutated frames of every
 * message type (and 100,000 random payloads with a valid checksum), seeded. A case fails when
 * anything but a typed decode error escapes, or a decoded number is outside its documented bound
 * (packages/core/test/frame-arbitraries.ts). `pnpm test` runs the same properties with fewer cases.
 */
import fc from 'fast-check'
import { seal } from '@hearsay/core/testing'
import { decodeChecked, mutatedFrame } from '../../../packages/core/test/frame-arbitraries.js'
import type { Table } from '../run.js'

const MAX = 64 * 1024
const SEED = 20261203
const RUNS = Number(process.env.HEARSAY_FUZZ_RUNS ?? 100_000)

interface Outcome { decoded: number, refused: number, failure: string | undefined, seconds: number }

function fuzz<T> (arb: fc.Arbitrary<T>, frame: (t: T) => Uint8Array, seed: number): Outcome {
  let decoded = 0
  let refused = 0
  const started = performance.now()
  const r = fc.check(fc.property(arb, t => {
    if (decodeChecked(frame(t), MAX) === 'decoded') decoded++
    else refused++
    return true
  }), { numRuns: RUNS, seed })
  const failure = r.failed ? `seed ${seed}, path ${r.counterexamplePath ?? ''}: ${String(r.errorInstance)}` : undefined
  return { decoded, refused, failure, seconds: (performance.now() - started) / 1000 }
}

export async function run (): Promise<Table[]> {
  const cases: Array<[string, Outcome]> = [
    ['mutated frames of every type (flips, insertions, deletions, varints over bytes; 9 in 10 resealed)', fuzz(mutatedFrame, f => f, SEED)],
    ['random payloads of every type, valid checksum', fuzz(fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 8 })), ([p, t]) => seal(t, p), SEED + 2)]
  ]
  return [{
    title: 'Decoder fuzzing (fast-check, seeded)',
    columns: ['frames', 'cases', 'decoded', 'refused (typed)', 'failures', 'cases/s'],
    rows: cases.map(([label, o]) => [label, RUNS, o.decoded, o.refused, o.failure === undefined ? 0 : 1, Math.round(RUNS / o.seconds)]),
    notes: [
      `seed ${SEED}; a failure stops its property at the first counterexample and is printed here with its seed and path`,
      ...cases.flatMap(([label, o]) => o.failure === undefined ? [] : [`${label}: ${o.failure}`])
    ]
  }]
}
