/**
 * A `Channel` over one libp2p stream: varint-length-prefixed frames, in order, with the
 * stream's backpressure (`send()` false → wait for drain) passed on to the caller.
 */
import { PeerUnavailableError } from '@hearsay/core'
import type { Channel, ChannelHandler, Log, Timers } from '@hearsay/core'
import type { Connection, Stream } from '@libp2p/interface'
import { LIVENESS_RECENT_GAPS } from './constants.js'
import { FrameDecoder, encodeFrame } from './framing.js'
import type { Pacer } from './pacing.js'

interface Pending { bytes: Uint8Array, resolve: () => void, reject: (err: Error) => void }

export interface StreamChannelInit {
  remoteId: string
  stream: Stream
  connection: Connection
  maxFrameBytes: number
  log: Log
  /** Clock for `openedAt` and `lastReceived`. @default Date.now */
  now?: () => number
  /** Paces what this channel sends (relayed channels share one); waits run on `timers`. */
  pacer?: { pacer: Pacer, timers: Timers }
  /** Called once when the channel is closed, from either side. `local` is true when this side closed it. */
  onClosed: (channel: StreamChannel, reason: string | undefined, local: boolean, error: boolean) => void
}

export class StreamChannel implements Channel {
  readonly remoteId: string
  readonly stream: Stream
  readonly connection: Connection
  readonly openedAt: number
  /** Time of the last byte received, for liveness checks (liveness.ts). */
  lastReceived: number
  /** Gaps between the last arrivals (a ring of `LIVENESS_RECENT_GAPS`), for liveness checks. */
  private readonly gaps: number[] = []
  bytesSent = 0
  bytesReceived = 0
  framesSent = 0
  framesReceived = 0
  private handler: ChannelHandler | undefined
  private early: Uint8Array[] | undefined = []
  private readonly decoder: FrameDecoder
  private readonly queue: Pending[] = []
  private flushing = false
  private closed = false
  private closeReason: string | undefined
  private readonly log: Log
  private readonly onClosed: StreamChannelInit['onClosed']
  private readonly now: () => number
  private readonly pacer: StreamChannelInit['pacer']

  constructor (init: StreamChannelInit) {
    this.remoteId = init.remoteId
    this.stream = init.stream
    this.connection = init.connection
    this.decoder = new FrameDecoder(init.maxFrameBytes)
    this.log = init.log
    this.onClosed = init.onClosed
    this.now = init.now ?? Date.now
    this.pacer = init.pacer
    this.openedAt = this.now()
    this.lastReceived = this.openedAt
    const stream = init.stream
    stream.addEventListener('message', (evt) => {
      const data = evt.data
      this.receive(data instanceof Uint8Array ? data : data.subarray())
    })
    // 'end': the peer closed its side and every byte it sent has been read
    stream.addEventListener('end', () => {
      this.finish('closed by peer', false, false)
    })
    stream.addEventListener('close', (evt) => {
      const err = evt.error
      const reason = err === undefined ? 'stream closed' : `stream ${evt.local === true ? 'aborted' : 'reset by peer'}: ${err.message}`
      this.finish(reason, false, err !== undefined)
    })
  }

  get isOpen (): boolean {
    return !this.closed
  }

  /** Attach the engine's handler; frames that arrived before it are delivered now, in order. */
  attach (handler: ChannelHandler): void {
    if (this.closed) {
      queueMicrotask(() => { handler.onClose(this.closeReason) })
      return
    }
    this.handler = handler
    const early = this.early ?? []
    this.early = undefined
    for (const f of early) {
      if (this.closed && this.handler === undefined) return
      handler.onFrame(f)
    }
  }

  async send (frame: Uint8Array): Promise<void> {
    if (this.closed) throw new PeerUnavailableError(`channel to ${this.remoteId} is closed`)
    const bytes = encodeFrame(frame)
    this.framesSent++
    if (this.queue.length === 0 && !this.stream.writableNeedsDrain && (this.pacer?.pacer.take(bytes.length) ?? 0) === 0) {
      this.write(bytes)
      return
    }
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject })
      void this.flush()
    })
  }

  private write (bytes: Uint8Array): void {
    try {
      this.stream.send(bytes)
      this.bytesSent += bytes.length
    } catch (err) {
      this.finish(`send failed: ${(err as Error).message}`, true, true)
      throw new PeerUnavailableError(`channel to ${this.remoteId} is closed`, { cause: err })
    }
  }

  private async flush (): Promise<void> {
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.queue.length > 0 && !this.closed) {
        if (this.stream.writableNeedsDrain) {
          // Wait for the 'drain' event itself: in @libp2p/utils 7.4 `onDrain()` keeps returning the
          // promise of the first drain once it resolved, so awaiting it in a loop never yields.
          const ok = await this.drained()
          if (!ok) {
            this.finish('stream closed while waiting to send', false, true)
            break
          }
          continue
        }
        const wait = this.pacer?.pacer.take((this.queue[0] as Pending).bytes.length) ?? 0
        if (wait > 0) {
          await new Promise<void>(resolve => { this.pacer?.timers.setTimeout(resolve, wait) })
          continue
        }
        const next = this.queue.shift() as Pending
        try {
          this.write(next.bytes)
          next.resolve()
        } catch (err) {
          next.reject(err as Error)
        }
      }
    } finally {
      this.flushing = false
    }
  }

  /** Resolves true on the stream's next 'drain', false if it closes first. */
  private async drained (): Promise<boolean> {
    const stream = this.stream
    return await new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => (): void => {
        stream.removeEventListener('drain', onDrain)
        stream.removeEventListener('close', onClose)
        resolve(ok)
      }
      const onDrain = done(true)
      const onClose = done(false)
      stream.addEventListener('drain', onDrain)
      stream.addEventListener('close', onClose)
      if (stream.status !== 'open') onClose()
    })
  }

  close (reason?: string): void {
    if (this.closed) return
    this.finish(reason, true, false)
  }

  /** Close because the peer misbehaved: reset the stream (nothing more is read). */
  abort (reason: string): void {
    if (this.closed) return
    this.finish(reason, true, true)
  }

  /** The longest gap between this channel's recent arrivals, in ms (0 before any). */
  get recentMaxGap (): number {
    return this.gaps.length === 0 ? 0 : Math.max(...this.gaps)
  }

  private receive (bytes: Uint8Array): void {
    if (this.closed) return
    const now = this.now()
    this.gaps.push(now - this.lastReceived)
    if (this.gaps.length > LIVENESS_RECENT_GAPS) this.gaps.shift()
    this.lastReceived = now
    this.bytesReceived += bytes.length
    let frames: Uint8Array[]
    try {
      frames = this.decoder.push(bytes)
    } catch (err) {
      const reason = `bad frame from peer: ${(err as Error).message}`
      this.log.warn(`closing channel to ${this.remoteId}: ${reason}`)
      this.abort(reason)
      return
    }
    for (const f of frames) {
      this.framesReceived++
      if (this.handler !== undefined) this.handler.onFrame(f)
      else this.early?.push(f)
      if (this.closed) return
    }
  }

  private finish (reason: string | undefined, local: boolean, error: boolean): void {
    if (this.closed) return
    this.closed = true
    this.closeReason = reason
    const err = new PeerUnavailableError(`channel to ${this.remoteId} is closed`)
    for (const p of this.queue.splice(0)) p.reject(err)
    if (local) {
      if (error) {
        this.stream.abort(new Error(reason ?? 'channel closed'))
      } else {
        // graceful: frames already accepted are flushed, then the remote sees the end
        this.stream.close().catch((e: unknown) => {
          this.log.trace(`closing stream to ${this.remoteId} failed: ${(e as Error).message}`)
          this.stream.abort(e as Error)
        })
      }
    } else if (this.stream.writeStatus === 'writable') {
      // the peer ended its side: end ours too so the stream is released
      this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
    }
    const handler = this.handler
    this.handler = undefined
    this.early = undefined
    this.onClosed(this, reason, local, error)
    if (handler !== undefined) queueMicrotask(() => { handler.onClose(reason) })
  }
}
