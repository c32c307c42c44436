/**
 * The y-websocket protocol on a Hearsay node: any `WebsocketProvider` connecting to
 * `ws://host:port/<docId>` edits `node.open(docId)`. Client updates are applied with the client's
 * connection as transaction origin, so they are never echoed back to it; every other change of the
 * document (other clients, LAN peers) goes out to every client of the room.
 *
 * Awareness (cursors, names) is relayed between the clients of this daemon only.
 */
import type { HearsayNode, Log } from '@hearsay/core'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import type { WebSocket } from 'ws'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import type * as Y from 'yjs'
import type { DocHandles } from './handles.js'

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

export interface YWebsocketStats {
  clients: number
  rooms: number
  messagesIn: number
  messagesOut: number
}

export class YWebsocketRooms {
  private readonly rooms = new Map<string, Promise<Room>>()
  private readonly stats = { messagesIn: 0, messagesOut: 0 }

  constructor (private readonly handles: DocHandles, private readonly log: Log) {}

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
    const awareness = new awarenessProtocol.Awareness(doc)
    awareness.setLocalState(null) // the daemon itself has no presence
    const room: Room = { docId, doc, awareness, conns: new Map(), release, offUpdate: () => {} }
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

  private send (ws: WebSocket, msg: Uint8Array): void {
    if (ws.readyState !== ws.OPEN) return
    this.stats.messagesOut++
    ws.send(msg, err => { if (err != null) ws.close() })
  }

  private leave (room: Room, ws: WebSocket): void {
    const controlled = room.conns.get(ws)
    if (controlled === undefined) return
    room.conns.delete(ws)
    if (controlled.size > 0) awarenessProtocol.removeAwarenessStates(room.awareness, Array.from(controlled), null)
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
