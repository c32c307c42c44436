/**
 * Time for everything in a node: the `Timers` interface every subsystem takes, the real timers,
 * and a virtual clock for tests and simulations.
 *
 * The virtual clock is a `Timers` whose time moves only when the caller advances it.
 *
 * Pass it (or a `scope()` of it) as a node's `timers` and as the memory network's `timers`, and a
 * run of many nodes over minutes of virtual time takes as long as the work itself. Timers fire in
 * order of (due time, creation order); after the timers due at one instant have run, the clock
 * lets pending promise chains settle before moving on, so a run replays exactly from its seeds.
 *
 * Time is in whole milliseconds: due times are rounded up, so events that fall in the same
 * millisecond run together before the promise chains they started settle.
 */
/** Clock and timers, injected into every subsystem so tests and the simulator can run them on virtual time. */
export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
  now: () => number
}

/**
 * The process's clock; timers do not keep the process alive. A timer for 0 ms (or less) runs on
 * the next turn of the event loop (`setImmediate`): Node's `setTimeout(fn, 0)` waits at least
 * 1 ms, which would put a 1 ms floor under every hop of the live path.
 */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    if (!(ms > 0)) {
      const i = setImmediate(fn)
      i.unref?.()
      return { immediate: i }
    }
    const t = setTimeout(fn, ms)
    t.unref?.()
    return t
  },
  clearTimeout: h => {
    if (typeof h === 'object' && h !== null && 'immediate' in h) clearImmediate((h as { immediate: ReturnType<typeof setImmediate> }).immediate)
    else clearTimeout(h as ReturnType<typeof setTimeout>)
  },
  now: () => Date.now()
}

interface Entry { at: number, seq: number, fn: () => void, cancelled: boolean, scope: Scope | undefined }

interface Scope { disposed: boolean, live: Set<Entry> }

/** Timers of one component of a simulation; `dispose()` cancels them all (a crashed node). */
export interface ScopedTimers extends Timers {
  /** Cancel every pending timer of this scope and ignore any set later. */
  dispose(): void
}

export interface VirtualClock extends Timers {
  /** Timers that can all be cancelled at once. */
  scope(): ScopedTimers
  /** Run every timer due up to `time` (and the promise chains they start), then set the time to `time`. */
  advanceTo(time: number): Promise<void>
  /** `advanceTo(now() + ms)`. */
  advance(ms: number): Promise<void>
  /** Let pending promise chains settle without moving time. */
  settle(): Promise<void>
  /** Due time of the next pending timer. */
  nextAt(): number | undefined
  /** Timers fired so far. */
  readonly fired: number
}

export function createVirtualClock (start = 0): VirtualClock {
  let now = start
  let seq = 0
  let fired = 0
  const heap: Entry[] = []

  const before = (a: Entry, b: Entry): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)
  const push = (e: Entry): void => {
    heap.push(e)
    let i = heap.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(heap[i] as Entry, heap[p] as Entry)) break
      ;[heap[i], heap[p]] = [heap[p] as Entry, heap[i] as Entry]
      i = p
    }
  }
  const pop = (): Entry | undefined => {
    const top = heap[0]
    const last = heap.pop()
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && before(heap[l] as Entry, heap[m] as Entry)) m = l
        if (r < heap.length && before(heap[r] as Entry, heap[m] as Entry)) m = r
        if (m === i) break
        ;[heap[i], heap[m]] = [heap[m] as Entry, heap[i] as Entry]
        i = m
      }
    }
    return top
  }
  const peek = (): Entry | undefined => {
    while (heap.length > 0 && (heap[0] as Entry).cancelled) pop()
    return heap[0]
  }

  const set = (fn: () => void, ms: number, scope: Scope | undefined): unknown => {
    const e: Entry = { at: now + Math.max(0, Math.ceil(Number.isFinite(ms) ? ms : 0)), seq: seq++, fn, cancelled: scope?.disposed === true, scope }
    if (e.cancelled) return e
    scope?.live.add(e)
    push(e)
    return e
  }
  const clear = (h: unknown): void => {
    const e = h as Entry | undefined
    if (e === undefined || e === null) return
    e.cancelled = true
    e.scope?.live.delete(e)
  }
  // setImmediate runs after the microtask queue is empty, so every promise chain started by the
  // timers just fired has run as far as it can without time moving
  const settle = async (): Promise<void> => { await new Promise<void>(resolve => { setImmediate(resolve) }) }

  const clock: VirtualClock = {
    now: () => now,
    setTimeout: (fn, ms) => set(fn, ms, undefined),
    clearTimeout: clear,
    get fired () { return fired },
    scope () {
      const s: Scope = { disposed: false, live: new Set() }
      return {
        now: () => now,
        setTimeout: (fn, ms) => set(fn, ms, s),
        clearTimeout: clear,
        dispose () {
          s.disposed = true
          for (const e of s.live) e.cancelled = true
          s.live.clear()
        }
      }
    },
    async advanceTo (time) {
      await settle()
      for (;;) {
        const next = peek()
        if (next === undefined || next.at > time) break
        now = Math.max(now, next.at)
        // every timer due at this instant, including ones they set for 0 ms
        for (let e = peek(); e !== undefined && e.at <= now; e = peek()) {
          pop()
          e.scope?.live.delete(e)
          fired++
          e.fn()
        }
        await settle()
      }
      now = Math.max(now, time)
    },
    async advance (ms) { await clock.advanceTo(now + ms) },
    settle,
    nextAt: () => peek()?.at
  }
  return clock
}

/**
 * Work run once on the next turn of `timers`, however often it is asked for before then: what
 * changes within one turn is handled in one run. `cancel()` drops a run not made yet.
 */
export class NextTurn {
  private handle: unknown

  constructor (private readonly timers: Timers, private readonly fn: () => void) {}

  schedule (): void {
    if (this.handle !== undefined) return
    this.handle = this.timers.setTimeout(() => {
      this.handle = undefined
      this.fn()
    }, 0)
  }

  cancel (): void {
    if (this.handle === undefined) return
    this.timers.clearTimeout(this.handle)
    this.handle = undefined
  }
}
