/**
 * The y-websocket protocol on a Hearsay node: any `WebsocketProvider` connecting to
 * `ws://host:port/<docId>` edits `node.open(docId)`. Client updates are applied with the client's
 * connection as transaction origin, so they are never echoed back to it; every other change of the
 * document (other clients, LAN peers) goes out to every client of the room.
 *
 * Awareness (cursors, names) lives in the node: each room uses `node.awareness(docId)`, which
 * the engine shares with peers over its sessions without storing anything. Client states are
 * applied to it with the client's connection as origin, and every change (other clients, peers)
 * goes out to every client of the room. A client that leaves takes its states with it, here and
 * on every peer.
 *
 * Clients are held to limits, each breach closing only that client with a logged reason: a client
 * that stops reading is cut off once its unsent backlog would pass `maxBufferedBytes` (4503), a
 * message larger than `maxMessageBytes` closes it (1009, enforced by `ws` as `maxPayload`), and so
 * does a message that does not decode or apply (4400).
 */
import { validateUpdate, type HearsayNode, type Log } from '@hearsay/core'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import type { WebSocket } from 'ws'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import { WS_CLOSE_GRACE_MS, WS_MAX_AWARENESS_CLIENTS, WS_MAX_BUFFERED_BYTES, WS_MAX_MESSAGE_BYTES } from './constants.js'
import type { DocHandle, DocHandles } from './handles.js'

/** y-websocket message types. */
export const MESSAGE_SYNC = 0
export const MESSAGE_AWARENESS = 1
export const MESSAGE_AUTH = 2
export const MESSAGE_QUERY_AWARENESS = 3

/** Close code for a bad message. 44xx: y-websocket's `WebsocketProvider` does not reconnect. */
export const CLOSE_BAD_MESSAGE = 4400
/** Close code for a client that fell behind. 45xx: `WebsocketProvider` reconnects, with backoff, and catches up with a fresh sync. */
export const CLOSE_TOO_SLOW = 4503
/** RFC 6455 "message too big", sent by `ws` itself when a message passes `maxPayload`. */
export const CLOSE_TOO_LARGE = 1009

/** Why the endpoint closed a client: the label of `hearsay_websocket_clients_closed_total`. */
export type ClientCloseReason = 'slow' | 'too_large' | 'bad_message'

/** A y-websocket client broke a limit or the protocol: it is closed, every other client carries on. */
export class WebSocketClientError extends Error {
  static readonly code = 'WebSocketClientError'
  override readonly name = 'WebSocketClientError'
  constructor (readonly reason: ClientCloseReason, readonly closeCode: number, message: string) { super(message) }
}

export interface YWebsocketLimits {
  /** @default WS_MAX_BUFFERED_BYTES (8 MiB) */
  maxBufferedBytes?: number
  /** Also the most a client may send before its document has loaded. @default WS_MAX_MESSAGE_BYTES (16 MiB) */
  maxMessageBytes?: number
  /** @default WS_CLOSE_GRACE_MS */
  closeGraceMs?: number
}

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
  /** Clients the endpoint closed since start, by reason. */
  closed: Record<ClientCloseReason, number>
}

export class YWebsocketRooms {
  private readonly rooms = new Map<string, Promise<Room>>()
  private readonly stats = { messagesIn: 0, messagesOut: 0 }
  private readonly closed: Record<ClientCloseReason, number> = { slow: 0, too_large: 0, bad_message: 0 }
  /** Clients already being closed by the endpoint (counted and logged once). */
  private readonly closing = new WeakSet<WebSocket>()
  private readonly limits: Required<YWebsocketLimits>

  constructor (private readonly handles: DocHandles, private readonly log: Log, private readonly awarenessOf: (docId: string) => awarenessProtocol.Awareness, limits: YWebsocketLimits = {}) {
    this.limits = {
      maxBufferedBytes: limits.maxBufferedBytes ?? WS_MAX_BUFFERED_BYTES,
      maxMessageBytes: limits.maxMessageBytes ?? WS_MAX_MESSAGE_BYTES,
      closeGraceMs: limits.closeGraceMs ?? WS_CLOSE_GRACE_MS
    }
  }

  snapshot (): YWebsocketStats {
    let clients = 0
    for (const r of this.settled.values()) clients += r.conns.size
    return { clients, rooms: this.settled.size, ...this.stats, closed: { ...this.closed } }
  }

  private readonly settled = new Map<string, Room>()

  /** Attach a WebSocket to the room of `docId`. */
  async join (docId: string, ws: WebSocket): Promise<void> {
    // at once: `ws` emits 'error' for a message past maxPayload, even while the document loads
    ws.on('error', err => { this.onSocketError(docId, ws, err) })
    // buffer messages that arrive while the document loads, up to one largest message in total
    const early: Uint8Array[] = []
    let earlyBytes = 0
    const onEarly = (data: Buffer): void => {
      earlyBytes += data.length
      if (earlyBytes > this.limits.maxMessageBytes) {
        this.cutOff(docId, ws, new WebSocketClientError('too_large', CLOSE_TOO_LARGE, `sent more than ${this.limits.maxMessageBytes} bytes before the document loaded`))
        return
      }
      early.push(new Uint8Array(data))
    }
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

    // sync step 1 from our side, and the awareness states we know
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(encoder, room.doc)
    this.send(room, ws, encoding.toUint8Array(encoder))
    const states = room.awareness.getStates()
    if (states.size > 0) {
      this.send(room, ws, awarenessMessage(room.awareness, Array.from(states.keys())))
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
    const awareness = this.awarenessOf(docId)
    awareness.setLocalState(null) // the daemon itself has no presence
    const room: Room = { docId, doc, awareness, conns: new Map(), release, offUpdate: () => {} }
    const onUpdate = (update: Uint8Array, origin: unknown): void => {
      const encoder = encoding.createEncoder()
      encoding.writeVarUint(encoder, MESSAGE_SYNC)
      syncProtocol.writeUpdate(encoder, update)
      const msg = encoding.toUint8Array(encoder)
      for (const ws of room.conns.keys()) if (ws !== origin) this.send(room, ws, msg)
    }
    doc.on('update', onUpdate)
    const onAwareness = ({ added, updated, removed }: { added: number[], updated: number[], removed: number[] }, origin: unknown): void => {
      const changed = added.concat(updated, removed)
      const controlled = origin instanceof Object ? room.conns.get(origin as WebSocket) : undefined
      if (controlled !== undefined) {
        for (const id of added) controlled.add(id)
        for (const id of removed) controlled.delete(id)
      }
      const msg = awarenessMessage(room.awareness, changed)
      // the client a change came from knows it already
      for (const ws of room.conns.keys()) if (ws !== origin) this.send(room, ws, msg)
    }
    awareness.on('update', onAwareness)
    room.offUpdate = () => {
      doc.off('update', onUpdate)
      awareness.off('update', onAwareness)
    }
    this.settled.set(docId, room)
    return room
  }

  private onMessage (room: Room, ws: WebSocket, data: Uint8Array): void {
    if (this.closing.has(ws)) return
    this.stats.messagesIn++
    try {
      const decoder = decoding.createDecoder(data)
      const type = decoding.readVarUint(decoder)
      switch (type) {
        case MESSAGE_SYNC: {
          const kind = decoding.readVarUint(decoder)
          if (kind === syncProtocol.messageYjsSyncStep1) {
            const encoder = encoding.createEncoder()
            encoding.writeVarUint(encoder, MESSAGE_SYNC)
            syncProtocol.readSyncStep1(decoder, encoder, room.doc)
            this.send(room, ws, encoding.toUint8Array(encoder))
          } else if (kind === syncProtocol.messageYjsSyncStep2 || kind === syncProtocol.messageYjsUpdate) {
            // checked whole before it touches the document: Yjs would integrate the structs of an
            // update whose delete set is broken before failing on it
            const update = decoding.readVarUint8Array(decoder)
            validateUpdate(room.docId, update)
            Y.applyUpdate(room.doc, update, ws)
          } else {
            throw new Error(`unknown sync message type ${kind}`)
          }
          break
        }
        case MESSAGE_AWARENESS: {
          const controlled = room.conns.get(ws)
          const { update, moved } = rejoined(room.awareness, controlled?.size ?? 0, decoding.readVarUint8Array(decoder))
          awarenessProtocol.applyAwarenessUpdate(room.awareness, update, ws)
          if (moved !== undefined && room.awareness.getStates().has(moved)) this.send(room, ws, awarenessMessage(room.awareness, [moved]))
          if ((controlled?.size ?? 0) > WS_MAX_AWARENESS_CLIENTS) throw new Error(`awareness for ${controlled?.size} clients; at most ${WS_MAX_AWARENESS_CLIENTS} per connection`)
          break
        }
        case MESSAGE_QUERY_AWARENESS:
          this.send(room, ws, awarenessMessage(room.awareness, Array.from(room.awareness.getStates().keys())))
          break
        default:
          // auth and unknown types: nothing to do on a local endpoint
          break
      }
    } catch (err) {
      this.cutOff(room.docId, ws, new WebSocketClientError('bad_message', CLOSE_BAD_MESSAGE, `bad message: ${(err as Error).message}`))
    }
  }


  /**
   * Queue `msg` for a client, unless its backlog would pass `maxBufferedBytes`: then the client is
   * cut off instead (it reconnects and resyncs). A client with nothing queued always gets the
   * message, so one message larger than the cap (a large document's sync step 2) still goes.
   */
  private send (room: Room, ws: WebSocket, msg: Uint8Array): void {
    if (ws.readyState !== ws.OPEN) return
    const backlog = ws.bufferedAmount
    if (backlog > 0 && backlog + msg.length > this.limits.maxBufferedBytes) {
      // it leaves the room on 'close'; from now on sends to it are skipped (readyState CLOSING)
      this.cutOff(room.docId, ws, new WebSocketClientError('slow', CLOSE_TOO_SLOW, `fell behind: ${backlog} bytes unsent, limit ${this.limits.maxBufferedBytes}`))
      return
    }
    this.stats.messagesOut++
    ws.send(msg, err => { if (err != null) ws.close() })
  }

  /** Close one client for `err`, with a log line naming the room; count it once. */
  private cutOff (docId: string, ws: WebSocket, err: WebSocketClientError): void {
    if (this.closing.has(ws)) return
    this.closing.add(ws)
    this.closed[err.reason]++
    this.log.warn(`closing a client of "${docId}" (${err.closeCode}): ${err.message}`)
    if (ws.readyState === ws.OPEN) ws.close(err.closeCode, err.message.slice(0, 120))
    // a client that does not read never completes the closing handshake: free its backlog soon
    const timer = setTimeout(() => { ws.terminate() }, this.limits.closeGraceMs)
    timer.unref()
    ws.once('close', () => { clearTimeout(timer) })
  }

  /** Errors of the socket itself; `ws` closes the connection after each. */
  private onSocketError (docId: string, ws: WebSocket, err: Error & { code?: string }): void {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      this.cutOff(docId, ws, new WebSocketClientError('too_large', CLOSE_TOO_LARGE, `message larger than ${this.limits.maxMessageBytes} bytes`))
    } else if (!this.closing.has(ws)) {
      this.log.warn(`client of "${docId}" failed: ${err.message}`)
    }
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

/**
 * A client that comes back (its connection dropped, or this daemon restarted) sends its state
 * with the clock it had when it left; everyone who saw it leave kept that clock and would ignore
 * the state until the client renews it, 15 s later. So the first client a connection adds, when
 * the room does not hold it, is taken one clock further, and the client is told its new clock
 * (y-protocols takes a higher clock for its own state). Returns the update to apply, and the
 * client whose clock moved.
 */
function rejoined (awareness: awarenessProtocol.Awareness, controlled: number, update: Uint8Array): { update: Uint8Array, moved: number | undefined } {
  if (controlled > 0) return { update, moved: undefined }
  const decoder = decoding.createDecoder(update)
  const n = decoding.readVarUint(decoder)
  const entries: Array<{ id: number, clock: number, state: string }> = []
  for (let i = 0; i < n; i++) entries.push({ id: decoding.readVarUint(decoder), clock: decoding.readVarUint(decoder), state: decoding.readVarString(decoder) })
  const first = entries.find(e => e.state !== 'null' && !awareness.getStates().has(e.id))
  if (first === undefined || first.clock >= Number.MAX_SAFE_INTEGER - 1) return { update, moved: undefined }
  first.clock = Math.max(first.clock, awareness.meta.get(first.id)?.clock ?? 0) + 1
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, entries.length)
  for (const e of entries) {
    encoding.writeVarUint(encoder, e.id)
    encoding.writeVarUint(encoder, e.clock)
    encoding.writeVarString(encoder, e.state)
  }
  return { update: encoding.toUint8Array(encoder), moved: first.id }
}

export type { HearsayNode }
