/** A minimal typed event emitter (no dependency on Node's `events`). */
export class Emitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<(e: never) => void>>()

  on<K extends keyof Events>(name: K, fn: (e: Events[K]) => void): () => void {
    let set = this.listeners.get(name)
    if (set === undefined) this.listeners.set(name, set = new Set())
    set.add(fn as (e: never) => void)
    return () => { this.off(name, fn) }
  }

  off<K extends keyof Events>(name: K, fn: (e: Events[K]) => void): void {
    this.listeners.get(name)?.delete(fn as (e: never) => void)
  }

  emit<K extends keyof Events>(name: K, e: Events[K]): void {
    for (const fn of this.listeners.get(name) ?? []) (fn as (e: Events[K]) => void)(e)
  }
}
