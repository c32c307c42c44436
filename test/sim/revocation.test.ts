import { describe, expect, it } from 'vitest'
import { revocationRounds } from './revocation.js'
import { THEORY } from './epidemic.js'

describe('revocation across the swarm', () => {
  it('reaches every node of 20 within 2 gossip rounds, also with 20% of frames lost', async () => {
    const clean = await revocationRounds(20, 0, 3)
    expect(clean.worst).toBeLessThanOrEqual(1)
    const lossy = await revocationRounds(20, 0.2, 3)
    expect(lossy.worst).toBeLessThanOrEqual(2)
  })

  it('reaches every node of 100 faster than push-pull anti-entropy would, with 20% of frames lost', async () => {
    const lossy = await revocationRounds(100, 0.2, 1, 7)
    expect(lossy.worst).toBeLessThan(THEORY['push-pull'][100] as number)
  })
})
