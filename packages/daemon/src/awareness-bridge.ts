/**
 * Awareness across devices: a room's local clients are mirrored into the Hearsay document
 * `_awareness/<docId>` (map `states`: one entry per client, `<nodeId>/<clientID>` → its latest
 * state, written at most every AWARENESS_WRITE_MS), and the entries of other devices are applied to
 * the room. Peers apply those entries to their own rooms; awareness's 30 s timeout removes clients of
 * a device that went away, and entries older than AWARENESS_STALE_MS are pruned by whoever sees them.
 *
 * Any member of the swarm can write anything into that document, so every entry is checked before
 * use; states larger than AWARENESS_MAX_SHARED_BYTES are neither written nor applied.
 */
import type { Log } from '@hearsay/core'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import type * as Y from 'yjs'
import { AWARENESS_MAX_SHARED_BYTES, AWARENESS_STALE_MS, AWARENESS_WRITE_MS } from './constants.js'
import type { DocHandle } from './handles.js'

/** One client's awareness state in `_awareness/<docId>`. */
interface SharedState {
  clientID: number
  clock: number
  /** JSON of the state. */
  state: string
  /** ms since epoch of the write. */
  at: number
}

/**
 * An entry of `_awareness/<docId>` as a peer wrote it, if it is one: any member of the swarm can
 * write anything there, so entries are checked before use and others are ignored.
 */
function sharedState (e: unknown): SharedState | undefined {
  if (e === null || typeof e !== 'object') return undefined
  const { clientID, clock, state, at } = e as Record<string, unknown>
  if (typeof clientID !== 'number' || !Number.isSafeInteger(clientID) || clientID < 0) return undefined
  if (typeof clock !== 'number' || !Number.isSafeInteger(clock) || clock < 0 || clock >= Number.MAX_SAFE_INTEGER) return undefined
  if (typeof at !== 'number' || !Number.isFinite(at)) return undefined
  if (typeof state !== 'string' || Buffer.byteLength(state) > AWARENESS_MAX_SHARED_BYTES) return undefined
  return { clientID, clock, state, at }
}

/** Transaction origin of the bridge's own writes, and of states it applies from peers. */
export const BRIDGE = Symbol('hearsay awareness bridge')

function encodeStates (entries: Array<{ clientID: number, clock: number, state: string | null }>): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const e of entries) {
    encoding.writeVarUint(encoder, e.clientID)
    encoding.writeVarUint(encoder, e.clock)
    encoding.writeVarString(encoder, e.state ?? 'null')
  }
  return encoding.toUint8Array(encoder)
}

export interface AwarenessBridge {
  /** These local clients' states changed: write them for peers (batched). */
  local: (ids: number[]) => void
  /** Remove this daemon's entries and stop. */
  close: () => void
}

/** Mirror a room's local clients into `_awareness/<docId>` (`shared`), and peers' entries into the room. */
export function createAwarenessBridge (docId: string, awareness: awarenessProtocol.Awareness, shared: DocHandle, nodeId: string, log: Log): AwarenessBridge {
  const states = shared.doc.getMap<SharedState>('states')
  const prefix = `${nodeId}/`
  const dirty = new Set<number>()
  /** Clients whose state is too large to share, each logged once. */
  const oversized = new Set<number>()
  let timer: ReturnType<typeof setTimeout> | undefined
  const write = (): void => {
    timer = undefined
    const now = Date.now()
    shared.doc.transact(() => {
      for (const id of dirty) {
        const state = awareness.getStates().get(id)
        const key = prefix + String(id)
        const text = state === undefined ? undefined : JSON.stringify(state)
        if (text !== undefined && Buffer.byteLength(text) > AWARENESS_MAX_SHARED_BYTES) {
          // relayed to this daemon's clients, but not written for the whole swarm
          if (!oversized.has(id)) {
            if (oversized.size >= 1024) oversized.clear()
            oversized.add(id)
            log.warn(`awareness state of client ${id} in "${docId}" is larger than ${AWARENESS_MAX_SHARED_BYTES} bytes: not shared with peers`)
          }
        } else if (text !== undefined) {
          oversized.delete(id)
          states.set(key, { clientID: id, clock: awareness.meta.get(id)?.clock ?? 0, state: text, at: now })
          continue
        }
        if (states.has(key)) states.delete(key)
      }
      for (const [key, e] of states.entries()) {
        const entry = sharedState(e)
        if (entry === undefined || now - entry.at > AWARENESS_STALE_MS) states.delete(key)
      }
    }, BRIDGE)
    dirty.clear()
  }
  const apply = (entries: Array<{ clientID: number, clock: number, state: string | null }>): void => {
    if (entries.length === 0) return
    try {
      awarenessProtocol.applyAwarenessUpdate(awareness, encodeStates(entries), BRIDGE)
    } catch (err) {
      log.warn(`ignored awareness states from peers in "${docId}": ${(err as Error).message}`)
    }
  }
  const onShared = (event: Y.YMapEvent<SharedState>, tr: Y.Transaction): void => {
    if (tr.origin === BRIDGE) return
    const entries: Array<{ clientID: number, clock: number, state: string | null }> = []
    for (const [key, change] of event.changes.keys) {
      if (key.startsWith(prefix)) continue
      const e = sharedState(states.get(key))
      if (e !== undefined) entries.push(e)
      else if (change.action === 'delete') {
        const old = sharedState(change.oldValue)
        if (old !== undefined) entries.push({ clientID: old.clientID, clock: old.clock + 1, state: null })
      }
    }
    apply(entries)
  }
  states.observe(onShared)
  // what peers published before this room opened, and our own leftovers from a crash
  const now = Date.now()
  shared.doc.transact(() => {
    for (const key of Array.from(states.keys())) if (key.startsWith(prefix)) states.delete(key)
  }, BRIDGE)
  apply(Array.from(states.values()).map(sharedState).filter((e): e is SharedState => e !== undefined && now - e.at < awarenessProtocol.outdatedTimeout))
  return {
    local: ids => {
      for (const id of ids) dirty.add(id)
      timer ??= setTimeout(write, AWARENESS_WRITE_MS)
    },
    close: () => {
      if (timer !== undefined) clearTimeout(timer)
      for (const key of states.keys()) if (key.startsWith(prefix)) dirty.add(Number(key.slice(prefix.length)))
      for (const id of dirty) awareness.states.delete(id)
      write()
      states.unobserve(onShared)
    }
  }
}
