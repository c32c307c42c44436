/**
 * Property-based fuzzing of the decoder (fast-check, seeded): random and mutated frames of every
 * message type never throw anything but the typed decode errors, and what decodes is within the
 * documented bounds. `pnpm bench fuzz` runs 100,000 cases; a failure prints its seed and path.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { seal } from '../src/testing/index.js'
import { decodeChecked, mutatedFrame, validFrame } from './frame-arbitraries.js'

const MAX = 64 * 1024
const runs = Number(process.env.HEARSAY_FUZZ_RUNS ?? 10_000)
const seed = Number(process.env.HEARSAY_FUZZ_SEED ?? 20261203)

const judge = (frame: Uint8Array): boolean => decodeChecked(frame, MAX) !== undefined

describe('decoder fuzzing', () => {
  it(`${runs} mutated frames of every type: only typed errors, decoded numbers within bounds`, () => {
    fc.assert(fc.property(mutatedFrame, judge), { numRuns: runs, seed })
  })

  it(`${Math.ceil(runs / 5)} unmutated frames with edge values: each decodes within bounds or is refused with a typed error`, () => {
    let decoded = 0
    fc.assert(fc.property(validFrame, f => {
      if (decodeChecked(f, MAX) === 'decoded') decoded++
      return true
    }), { numRuns: Math.ceil(runs / 5), seed: seed + 1 })
    // the generator does produce frames that decode, not only rejects
    expect(decoded).toBeGreaterThan(runs / 50)
  })

  it(`${runs / 5} random payloads of every type with a valid checksum`, () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 8 }), (payload, type) => judge(seal(type, payload))),
      { numRuns: runs / 5, seed: seed + 2 })
  })
})
