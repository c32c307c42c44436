/**
 * Closed-loop repair (the primer's InfluxDB example): instead of random peers, walk every known
 * replica in a fixed ring order, so a difference reaches every node in a bounded time rather than
 * a probable one.
 *
 * - `antiEntropy.selection: 'ring'`: each periodic round reconciles with the next connected
 *   replica (with `antiEntropy.reach: 'members'`, the next alive member) after the last one, in
 *   ring order (ids sorted, starting after this node). Every
 *   node meets every connected replica within n − 1 rounds, so with push-pull an update present on
 *   any node is everywhere within n − 1 rounds (random selection: about log n on average, with no
 *   bound).
 * - `node.repairPass()`: one full pass now, push-pull with each connected replica in ring order,
 *   then around again up to the one before last: the first lap gathers everything, the second
 *   hands it back. At most 2n − 3 exchanges, each bounded by `antiEntropy.timeoutMs`. Known
 *   members without an open session are reported as `unreachable`.
 */

/** Every id except `self`, sorted, starting with the first after `self`. */
export function ringOrder (self: string, ids: Iterable<string>): string[] {
  const sorted = [...new Set(ids)].filter(id => id !== self).sort()
  const start = sorted.findIndex(id => id > self)
  return start <= 0 ? sorted : [...sorted.slice(start), ...sorted.slice(0, start)]
}

/** The `count` replicas after `last` in `order` that `usable` accepts, wrapping around. */
export function nextInRing (order: string[], last: string | undefined, count: number, usable: (id: string) => boolean): string[] {
  if (order.length === 0) return []
  // after the last one; from the start when it is gone from the ring
  const from = last === undefined ? 0 : order.indexOf(last) + 1
  const out: string[] = []
  for (let i = 0; i < order.length && out.length < count; i++) {
    const id = order[(from + i) % order.length] as string
    if (usable(id)) out.push(id)
  }
  return out
}

/** The exchanges of one repair pass: the ring once, then again up to the one before last. */
export function passSequence (reachable: string[]): string[] {
  return reachable.length <= 1 ? reachable : [...reachable, ...reachable.slice(0, -1)]
}
