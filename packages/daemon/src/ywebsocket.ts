/**
 * The y-websocket protocol on a Hearsay node: any `WebsocketProvider` connecting to
 * `ws://host:port/<docId>` edits `node.open(docId)`. Client updates are applied with the client's
 * connection as transaction origin, so they are never echoed back to it; every other change of the
 * document (other clients, LAN peers) goes out to every client of the room.
 *
 * Awareness (cursors, names) is relayed between the clients of this daemon, and bridged to the
 * other devices through the Hearsay document `_awareness/<docId>` (map `states`: one entry per
 * client, `<nodeId>/<clientID>` → its latest state, written at most every AWARENESS_WRITE_MS).
 * Peers apply those entries to their own rooms; awareness's 30 s timeout removes clients of a
 * device that went away, and entries older than AWARENESS_STALE_MS are pruned by whoever sees them.
 */
import type { HearsayNode, Log } from '@hearsay/core'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import type { WebSocket } from 'ws'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import type * as Y from 'yjs'
import { AWARENESS_DOC_PREFIX, AWARENESS_STALE_MS, AWARENESS_WRITE_MS } from './constants.js'
import type { DocHandle, DocHandles } from './handles.js'

/** y-websocket message types. */
export const MESSAGE_SYNC = 0
export const MESSAGE_AWARENESS = 1
export const MESSAGE_AUTH = 2
export const MESSAGE_QUERY_AWARENESS = 3

interface Room {
  docId: string
  doc: Y.Doc
  awareness: awarenessProtocol.Awareness
  /** Each client and the awareness client ids it controls. */
  conns: Map<WebSocket, Set<number>>
  release: () => void
  offUpdate: () => void
}

/** One client's awareness state in `_awareness/<docId>`. */
interface SharedState {
  clientID: number
  clock: number
  /** JSON of the state. */
  state: string
  /** ms since epoch of the write. */
  at: number
}

/** Transaction origin of the bridge's own writes, and of states it applies from peers. */
const BRIDGE = Symbol('hearsay awareness bridge')

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

export interface YWebsocketStats {
  clients: number
  rooms: number
  messagesIn: number
  messagesOut: number
}

export class YWebsocketRooms {
  private readonly rooms = new Map<string, Promise<Room>>()
  private readonly stats = { messagesIn: 0, messagesOut: 0 }

  constructor (private readonly handles: DocHandles, private readonly log: Log, private readonly nodeId: string) {}

  snapshot (): YWebsocketStats {
    let clients = 0
    for (const r of this.settled.values()) clients += r.conns.size
    return { clients, rooms: this.settled.size, ...this.stats }
  }

  private readonly settled = new Map<string, Room>()

  /** Attach a WebSocket to the room of `docId`. */
  async join (docId: string, ws: WebSocket): Promise<void> {
    // buffer messages that arrive while the document loads
    const early: Uint8Array[] = []
    const onEarly = (data: Buffer): void => { early.push(new Uint8Array(data)) }
    ws.on('message', onEarly)
    let room: Room
    try {
      room = await this.room(docId)
    } catch (err) {
      this.log.warn(`client for "${docId}" refused: ${(err as Error).message}`)
      ws.close(4400, (err as Error).message.slice(0, 120))
      return
    }
    ws.off('message', onEarly)
    if (ws.readyState !== ws.OPEN) {
      this.leaveIfEmpty(room)
      return
    }
    room.conns.set(ws, new Set())
    ws.binaryType = 'arraybuffer'
    ws.on('message', (data: ArrayBuffer | Buffer) => { this.onMessage(room, ws, new Uint8Array(data as ArrayBuffer)) })
    ws.on('close', () => { this.leave(room, ws) })
    ws.on('error', () => { this.leave(room, ws) })

    // sync step 1 from our side, and the awareness states we know
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(encoder, room.doc)
    this.send(ws, encoding.toUint8Array(encoder))
    const states = room.awareness.getStates()
    if (states.size > 0) {
      this.send(ws, awarenessMessage(room.awareness, Array.from(states.keys())))
    }
    for (const m of early) this.onMessage(room, ws, m)
  }

  /** Disconnect every client and release every document. */
  async close (): Promise<void> {
    for (const p of this.rooms.values()) {
      const room = await p.catch(() => undefined)
      if (room === undefined) continue
      for (const ws of room.conns.keys()) ws.close(1001, 'daemon stopping')
      this.dispose(room)
    }
    this.rooms.clear()
    this.settled.clear()
  }

  private async room (docId: string): Promise<Room> {
    let p = this.rooms.get(docId)
    if (p === undefined) {
      p = this.createRoom(docId)
      this.rooms.set(docId, p)
      p.catch(() => { this.rooms.delete(docId) })
    }
    return await p
  }

  private async createRoom (docId: string): Promise<Room> {
    const { doc, release } = await this.handles.acquire(docId)
    let shared: DocHandle | undefined
    if (!docId.startsWith(AWARENESS_DOC_PREFIX)) {
      try {
        shared = await this.handles.acquire(AWARENESS_DOC_PREFIX + docId)
      } catch (err) {
        release()
        throw err
      }
    }
    const awareness = new awarenessProtocol.Awareness(doc)
    awareness.setLocalState(null) // the daemon itself has no presence
    const bridge = shared !== undefined ? this.bridge(awareness, shared) : undefined
    const room: Room = {
      docId,
      doc,
      awareness,
      conns: new Map(),
      release: () => {
        bridge?.close()
        shared?.release()
        release()
      },
      offUpdate: () => {}
    }
    const onUpdate = (update: Uint8Array, origin: unknown): void => {
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MESSAGE_SYNC)
      syncProtocol.writeUpdate(encoder, update)
      const msg = encoding.toUint8Array(encoder)
      for (const ws of room.conns.keys()) if (ws !== origin) this.send(ws, msg)
    }
    doc.on('update', onUpdate)
    const onAwareness = ({ added, updated, removed }: { added: number[], updated: number[], removed: number[] }, origin: unknown): void => {
      const changed = added.concat(updated, removed)
      const controlled = origin instanceof Object ? room.conns.get(origin as WebSocket) : undefined
      if (controlled !== undefined) {
        for (const id of added) controlled.add(id)
        for (const id of removed) controlled.delete(id)
      }
      if (origin !== BRIDGE) bridge?.local(changed)
      const msg = awarenessMessage(awareness, changed)
      for (const ws of room.conns.keys()) this.send(ws, msg)
    }
    awareness.on('update', onAwareness)
    room.offUpdate = () => {
      doc.off('update', onUpdate)
      awareness.off('update', onAwareness)
      awareness.destroy()
    }
    this.settled.set(docId, room)
    return room
  }

  private onMessage (room: Room, ws: WebSocket, data: Uint8Array): void {
    this.stats.messagesIn++
    try {
      const decoder = decoding.createDecoder(data)
      const type = decoding.readVarUint(decoder)
      switch (type) {
        case MESSAGE_SYNC: {
          const encoder = encoding.createEncoder()
          encoding.writeVarUint(encoder, MESSAGE_SYNC)
          syncProtocol.readSyncMessage(decoder, encoder, room.doc, ws)
          if (encoding.length(encoder) > 1) this.send(ws, encoding.toUint8Array(encoder))
          break
        }
        case MESSAGE_AWARENESS:
          awarenessProtocol.applyAwarenessUpdate(room.awareness, decoding.readVarUint8Array(decoder), ws)
          break
        case MESSAGE_QUERY_AWARENESS:
          this.send(ws, awarenessMessage(room.awareness, Array.from(room.awareness.getStates().keys())))
          break
        default:
          // auth and unknown types: nothing to do on a local endpoint
          break
      }
    } catch (err) {
      this.log.warn(`bad message from a client of "${room.docId}", closing it: ${(err as Error).message}`)
      ws.close(4400, 'bad message')
    }
  }

  /** Mirror this room's local clients into `_awareness/<docId>`, and peers' entries into the room. */
  private bridge (awareness: awarenessProtocol.Awareness, shared: DocHandle): { local: (ids: number[]) => void, close: () => void } {
    const states = shared.doc.getMap<SharedState>('states')
    const prefix = `${this.nodeId}/`
    const dirty = new Set<number>()
    let timer: ReturnType<typeof setTimeout> | undefined
    const write = (): void => {
      timer = undefined
      const now = Date.now()
      shared.doc.transact(() => {
        for (const id of dirty) {
          const state = awareness.getStates().get(id)
          const key = prefix + String(id)
          if (state === undefined) {
            if (states.has(key)) states.delete(key)
          } else {
            states.set(key, { clientID: id, clock: awareness.meta.get(id)?.clock ?? 0, state: JSON.stringify(state), at: now })
          }
        }
        for (const [key, e] of states.entries()) if (now - e.at > AWARENESS_STALE_MS) states.delete(key)
      }, BRIDGE)
      dirty.clear()
    }
    const apply = (entries: Array<{ clientID: number, clock: number, state: string | null }>): void => {
      if (entries.length > 0) awarenessProtocol.applyAwarenessUpdate(awareness, encodeStates(entries), BRIDGE)
    }
    const onShared = (event: Y.YMapEvent<SharedState>, tr: Y.Transaction): void => {
      if (tr.origin === BRIDGE) return
      const entries: Array<{ clientID: number, clock: number, state: string | null }> = []
      for (const [key, change] of event.changes.keys) {
        if (key.startsWith(prefix)) continue
        const e = states.get(key)
        if (e !== undefined) entries.push(e)
        else if (change.action === 'delete' && change.oldValue !== undefined) {
          const old = change.oldValue as SharedState
          entries.push({ clientID: old.clientID, clock: old.clock + 1, state: null })
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
    apply(Array.from(states.values()).filter(e => now - e.at < awarenessProtocol.outdatedTimeout))
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

  private send (ws: WebSocket, msg: Uint8Array): void {
    if (ws.readyState !== ws.OPEN) return
    this.stats.messagesOut++
    ws.send(msg, err => { if (err != null) ws.close() })
  }

  private leave (room: Room, ws: WebSocket): void {
    const controlled = room.conns.get(ws)
    if (controlled === undefined) return
    room.conns.delete(ws)
    if (controlled.size > 0) awarenessProtocol.removeAwarenessStates(room.awareness, Array.from(controlled), ws)
    this.leaveIfEmpty(room)
  }

  private leaveIfEmpty (room: Room): void {
    if (room.conns.size > 0) return
    if (this.settled.get(room.docId) === room) {
      this.settled.delete(room.docId)
      this.rooms.delete(room.docId)
      this.dispose(room)
    }
  }

  private dispose (room: Room): void {
    room.offUpdate()
    room.release()
  }
}

function awarenessMessage (awareness: awarenessProtocol.Awareness, clients: number[]): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, clients))
  return encoding.toUint8Array(encoder)
}

export type { HearsayNode }
