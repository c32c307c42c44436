/** A small seeded PRNG (mulberry32) so every random choice replays from its seed. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [0, n). */
  int(n: number): number
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T
  /** A shuffled copy. */
  shuffle<T>(items: readonly T[]): T[]
}

export function createRandom (seed: number): Random {
  let s = seed >>> 0
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.floor(next() * n)
  return {
    next,
    int,
    pick: items => items[int(items.length)] as (typeof items)[number],
    shuffle (items) {
      const a = items.slice()
      for (let i = a.length - 1; i > 0; i--) {
        const j = int(i + 1)
        const t = a[i] as (typeof a)[number]
        a[i] = a[j] as (typeof a)[number]
        a[j] = t
      }
      return a
    }
  }
}
