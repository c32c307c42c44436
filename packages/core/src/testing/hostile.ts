/**
 * A hostile peer for tests: it speaks the wire protocol with full control over every byte.
 *
 * It runs on any `Transport` (the memory network, or real libp2p with the swarm key), so a test
 * can play a member that is compromised, buggy or an old version. It decodes nothing it is not
 * asked to, answers nothing on its own, and sends exactly the bytes it is given: encode frames
 * with the functions of `protocol.ts`, or build them by hand and `seal` them so they pass the
 * checksum and reach the victim's strict decoder.
 */
import { crc32 } from '../bytes.js'
import { PROTOCOL_VERSION } from '../constants.js'
import { decodeFrame, encodeHello, FINGERPRINT_BYTES, type Message } from '../protocol.js'
import type { Channel, Transport } from '../transport.js'
import { waitFor } from './wait.js'

/** What the hostile peer saw on its channel to one victim. */
export interface HostileLink {
  readonly channel: Channel
  /** Raw frames received from the victim, in order. */
  readonly frames: Uint8Array[]
  /** Set once the channel closed, with the reason the transport gave. */
  closed: { reason: string | undefined } | undefined
}

export interface HostilePeer {
  readonly id: string
  /** Open (or wait for) the channel to `victim`; with `hello` (the default) a valid Hello goes first. */
  link(victim: string, options?: { hello?: boolean, timeoutMs?: number }): Promise<HostileLink>
  /** Send raw bytes on the channel to `victim`; resolves when the transport took them. */
  send(victim: string, frame: Uint8Array): Promise<void>
  /** Every frame received from `victim` that decodes (undecodable ones are skipped). */
  messages(victim: string): Message[]
  /** Resolves with the first decoded message from `victim` that `match` accepts. */
  waitMessage(victim: string, match: (m: Message) => boolean, timeoutMs?: number): Promise<Message>
  /** Resolves with the close reason once the channel to `victim` closed. */
  waitClosed(victim: string, timeoutMs?: number): Promise<string | undefined>
  stop(): Promise<void>
}

/** Give a hand-built frame (version, type, payload) its CRC, so only the decoder judges it. */
export function seal (type: number, payload: Uint8Array, version = PROTOCOL_VERSION): Uint8Array {
  const out = new Uint8Array(payload.length + 6)
  out[0] = version
  out[1] = type
  out.set(payload, 2)
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)))
  return out
}

/** Recompute the CRC of an existing frame after its bytes were changed. */
export function reseal (frame: Uint8Array): Uint8Array {
  const out = frame.slice()
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)))
  return out
}

/** Start a hostile peer on `transport` (not started yet). */
export async function createHostilePeer (transport: Transport, options: { maxFrameBytes?: number } = {}): Promise<HostilePeer> {
  const maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024
  const links = new Map<string, HostileLink>()
  await transport.start({
    onChannel (channel) {
      const link: HostileLink = { channel, frames: [], closed: undefined }
      links.set(channel.remoteId, link)
      return {
        onFrame: frame => { link.frames.push(frame) },
        onClose: reason => { link.closed = { reason } }
      }
    }
  })
  const open = (victim: string): HostileLink | undefined => {
    const l = links.get(victim)
    return l !== undefined && l.closed === undefined ? l : undefined
  }
  const peer: HostilePeer = {
    id: transport.localId,
    async link (victim, o = {}) {
      if (open(victim) === undefined && transport.connect !== undefined) {
        await transport.connect(victim, { signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) })
      }
      await waitFor(() => open(victim) !== undefined, { timeoutMs: o.timeoutMs ?? 10_000, message: `a channel to ${victim}` })
      const l = open(victim) as HostileLink
      if (o.hello ?? true) {
        await l.channel.send(encodeHello({ nodeId: transport.localId, maxFrameBytes, root: new Uint8Array(FINGERPRINT_BYTES), docCount: 0 }))
      }
      return l
    },
    async send (victim, frame) {
      const l = links.get(victim)
      if (l === undefined) throw new Error(`no channel to ${victim}`)
      await l.channel.send(frame)
    },
    messages (victim) {
      const out: Message[] = []
      for (const f of links.get(victim)?.frames ?? []) {
        try { out.push(decodeFrame(f, Number.MAX_SAFE_INTEGER)) } catch { /* the victim's frames are not under test here */ }
      }
      return out
    },
    async waitMessage (victim, match, timeoutMs = 10_000) {
      let found: Message | undefined
      await waitFor(() => (found = peer.messages(victim).find(match)) !== undefined, { timeoutMs, message: `a matching message from ${victim}` })
      return found as Message
    },
    async waitClosed (victim, timeoutMs = 10_000) {
      await waitFor(() => links.get(victim)?.closed !== undefined, { timeoutMs, message: `${victim} to close the channel` })
      return links.get(victim)?.closed?.reason
    },
    async stop () {
      await transport.stop()
    }
  }
  return peer
}
