/**
 * Every numeric field of every message type at 0, its maximum, its maximum + 1 and 2^53 − 1, and
 * every length field lying, sent by a hostile member to a victim node. Each case checks that the
 * victim is still running and syncing with an honest peer, that its documents are untouched, and
 * that a refused frame is counted and its reason logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  MAX_ANNOUNCED_FRAME_BYTES, MAX_ROSTER_STATEMENTS, MAX_WIRE_COUNT, MAX_WIRE_COUNTER, MIN_FRAME_BYTES
} from '../src/index.js'
import { Writer } from '../src/bytes.js'
import {
  ItemKind, MessageType, encodeAck, encodeGossip, encodeHello, encodePresence, encodeRoster, encodeRumor, encodeStatus, encodeSync, type SyncItem
} from '../src/protocol.js'
import { seal, waitFor } from '../src/testing/index.js'
import { arena, validUpdate, type Arena } from './hostile-arena.js'

const TOP = Number.MAX_SAFE_INTEGER
const fp = new Uint8Array(16).fill(7)
const root = { depth: 0, bits: new Uint8Array(8) }
const now = (): number => Date.now()

/** What the victim must do with a frame: take it, refuse it (session closed), or drop gossip entries from it. */
type Outcome = 'accept' | 'reject' | 'drop'

interface Case {
  name: string
  /** Frames from the hostile peer; with `hello: false` the first of them is its Hello. */
  frames: () => Uint8Array[]
  outcome: Outcome
  hello?: boolean
  /** Substring of the log line naming the reason (reject and drop). */
  reason?: string
}

const hello = (maxFrameBytes: number, docCount = 0): Uint8Array => encodeHello({ nodeId: 'evil-X', maxFrameBytes, root: fp, docCount })
const sync = (exchangeId: number, items: SyncItem[]): Uint8Array => encodeSync({ exchangeId, fromInitiator: true, more: false, mode: 'push-pull', items })
const gossipEntry = (generation: number, version: number, nodeId = 'ghost'): Uint8Array =>
  encodeGossip({ request: false, answer: false, digest: [], entries: [{ nodeId, generation, key: 'app/x', value: new Uint8Array([1]), version }] })
const gossipDigest = (generation: number, version: number): Uint8Array =>
  encodeGossip({ request: true, answer: false, digest: [{ nodeId: 'ghost', generation, version }], entries: [] })

/** Build the cases; Hello cases name the hostile peer, so their frames are made per peer. */
function cases (): Case[] {
  const out: Case[] = []
  const four = (name: string, max: number, make: (v: number) => Uint8Array[], zero: Outcome, atMax: Outcome, reason: string, extra: Partial<Case> = {}, maxReason = reason): void => {
    out.push({ name: `${name} = 0`, frames: () => make(0), outcome: zero, reason, ...extra })
    out.push({ name: `${name} = max (${max})`, frames: () => make(max), outcome: atMax, reason: maxReason, ...extra })
    out.push({ name: `${name} = max + 1`, frames: () => make(max + 1), outcome: 'reject', reason: 'exceeds the limit', ...extra })
    out.push({ name: `${name} = 2^53 - 1`, frames: () => make(TOP), outcome: 'reject', reason: 'exceeds the limit', ...extra })
  }
  four('Hello maxFrameBytes', MAX_ANNOUNCED_FRAME_BYTES, v => [hello(v)], 'reject', 'accept', 'below the minimum', { hello: false })
  four('Hello docCount', MAX_WIRE_COUNT, v => [hello(MIN_FRAME_BYTES, v)], 'accept', 'accept', '', { hello: false })
  four('Status docCount', MAX_WIRE_COUNT, v => [encodeStatus({ root: fp, docCount: v })], 'accept', 'accept', '')
  four('Sync exchangeId', MAX_WIRE_COUNTER, v => [sync(v, [{ kind: ItemKind.RangeFingerprint, prefix: root, fingerprint: fp, count: 1 }])], 'accept', 'accept', '')
  four('Sync range count', MAX_WIRE_COUNT, v => [sync(1_000 + v % 1000, [{ kind: ItemKind.RangeFingerprint, prefix: root, fingerprint: fp, count: v }])], 'accept', 'accept', '')
  four('Gossip digest generation', MAX_WIRE_COUNTER, v => [gossipDigest(v, 1)], 'accept', 'accept', '')
  four('Gossip digest version', MAX_WIRE_COUNTER, v => [gossipDigest(1, v)], 'accept', 'accept', '')
  four('Gossip entry generation', MAX_WIRE_COUNTER, v => [gossipEntry(v, 1, `ghost-g${v}`)], 'accept', 'drop', '', {}, 'generation ahead of our clock')
  four('Gossip entry version', MAX_WIRE_COUNTER, v => v === 0 ? [seal(MessageType.Gossip, gossipEntry(now(), 1).subarray(2, -4).map((b, i, a) => i === a.length - 1 ? 0 : b))] : [gossipEntry(now(), v, `ghost-v${v}`)],
    'reject', 'drop', 'version 0', {}, 'could have counted')
  // the victim's own entries: the attack that used to end the process from a timer
  four('Gossip entry about the victim, generation', MAX_WIRE_COUNTER, v => [gossipEntry(v, 1, 'victim')], 'accept', 'drop', '', {}, 'generation ahead of our clock')
  // a roster summary from a member of an unmanaged swarm: read, and answered or ignored
  four('Roster count', MAX_ROSTER_STATEMENTS, v => [encodeRoster({ kind: 'ask', hash: fp, count: v, statements: [] })], 'accept', 'accept', '')
  // presence: a clock at every edge is taken or refused, never used in arithmetic past its bound
  four('Presence clock', MAX_WIRE_COUNTER, v => [encodePresence(1, false, [{ docId: `p/${v}`, states: [{ clientID: 7, clock: v, state: '{"a":1}' }] }])], 'accept', 'accept', '')
  four('Presence client id', 0xffffffff, v => [encodePresence(1, false, [{ docId: 'p/c', states: [{ clientID: v, clock: 1, state: '{}' }] }])], 'accept', 'accept', '')
  four('Ack held clock', MAX_WIRE_COUNTER, v => [encodeAck({ kind: 'held', held: [{ docId: 'a/1', applied: new Map([[1, v]]), stored: undefined }] })], 'accept', 'accept', '')
  // u8 fields: max + 1 does not fit the byte
  out.push({ name: 'Rumor hops = 0', frames: () => [encodeRumor(1, [{ docId: 'r/0', update: validUpdate() }]).map((b, i) => i === 2 ? 0 : b)].map(f => seal(f[1] as number, f.subarray(2, -4))), outcome: 'reject', reason: '0 hops' })
  out.push({ name: 'Rumor hops = max (255)', frames: () => [encodeRumor(255, [{ docId: 'r/255', update: validUpdate() }])], outcome: 'accept' })
  out.push({ name: 'Sync prefix depth = 17', frames: () => [sync(3_000, [{ kind: ItemKind.RangeFingerprint, prefix: { depth: 17, bits: new Uint8Array(9) }, fingerprint: fp, count: 1 }])], outcome: 'reject', reason: 'depth 17' })
  out.push({ name: 'Sync prefix depth = 255', frames: () => [sync(3_001, [{ kind: ItemKind.RangeFingerprint, prefix: { depth: 255, bits: new Uint8Array(128) }, fingerprint: fp, count: 1 }])], outcome: 'reject', reason: 'depth 255' })
  // lying lengths and counts: each claims more than the frame holds
  const lying = (name: string, type: number, write: (w: Writer) => void): void => {
    out.push({ name: `lying length: ${name}`, frames: () => { const w = new Writer(); write(w); return [seal(type, w.finish())] }, outcome: 'reject', reason: 'FrameError' })
  }
  for (const claim of [1, 1000, MAX_WIRE_COUNT, TOP - 3]) {
    lying(`Live entry count ${claim}`, MessageType.Live, w => w.varuint(claim).string('a').bytes(validUpdate()).u8(0))
    lying(`Live update length ${claim}`, MessageType.Live, w => w.varuint(1).string('a').varuint(claim + 3).raw(new Uint8Array(3)))
    lying(`document id length ${claim}`, MessageType.Live, w => w.varuint(1).varuint(claim + 1).raw(new Uint8Array([97])))
    lying(`Sync item count ${claim}`, MessageType.Sync, w => w.varuint(5).u8(1).u8(2).varuint(claim + 1).u8(5).string('x'))
    lying(`RangeList length ${claim}`, MessageType.Sync, w => w.varuint(6).u8(1).u8(2).varuint(1).u8(2).u8(0).varuint(claim).u8(0))
    lying(`Gossip digest length ${claim}`, MessageType.Gossip, w => w.u8(1).varuint(claim).varuint(0))
    lying(`Gossip value length ${claim}`, MessageType.Gossip, w => w.u8(0).varuint(0).varuint(1).string('g').varuint(1).string('k').varuint(claim + 1).u8(1).varuint(1))
    lying(`Roster statement count ${claim}`, MessageType.Roster, w => w.u8(3).raw(fp).varuint(0).varuint(Math.min(claim, MAX_ROSTER_STATEMENTS)).varuint(5).u8(1))
    lying(`Presence state count ${claim}`, MessageType.Presence, w => w.u8(1).u8(0).varuint(1).string('p').varuint(claim).varuint(1))
    lying(`Ack entry count ${claim}`, MessageType.Ack, w => w.u8(1).varuint(claim + 1).string('a'))
    lying(`Ack state vector length ${claim}`, MessageType.Ack, w => w.u8(3).varuint(1).string('a').u8(0).varuint(claim).varuint(1))
    lying(`Close reason length ${claim}`, MessageType.Close, w => w.varuint(claim + 3).raw(new Uint8Array([98, 121, 101])))
  }
  return out
}

describe('hostile numbers: every numeric field at 0, max, max + 1 and 2^53 - 1; every length lying', () => {
  let a: Arena
  // fixed gossip timers (no idle backoff): the last case counts the victim's rounds
  beforeAll(async () => { a = await arena(11, { cluster: { idleMaxMs: 0 } }) })
  afterAll(async () => { await a?.stop() })

  for (const c of cases()) {
    it(`${c.name}: ${c.outcome}`, async () => {
      const before = a.victim.metrics()
      const lines = a.lines.length
      const evil = await a.evil({ hello: c.hello ?? true })
      const frames = c.frames().map(f => c.hello === false && f[1] === MessageType.Hello ? helloFor(evil.id, f) : f)
      for (const f of frames) await evil.send('victim', f)
      if (c.outcome === 'reject') {
        await evil.waitClosed('victim')
        await waitFor(() => a.victim.metrics().framesRejected === before.framesRejected + 1, { message: 'the frame to be counted as rejected' })
        const logged = a.lines.slice(lines).join('\n')
        expect(logged).toContain(c.reason as string)
        expect(logged).toContain(evil.id)
      } else {
        await a.probe(evil)
        expect(a.victim.metrics().framesRejected).toBe(before.framesRejected)
        if (c.outcome === 'drop') {
          expect(a.victim.metrics().gossipEntriesRejected).toBe(before.gossipEntriesRejected + 1)
          expect(a.lines.slice(lines).join('\n')).toContain(c.reason as string)
        } else {
          expect(a.victim.metrics().gossipEntriesRejected).toBe(before.gossipEntriesRejected)
        }
      }
      expect(a.victim.metrics().sessionFaults).toBe(0)
      expect(a.victim.metrics().timerFaults).toBe(0)
      await a.checkSyncing()
    })
  }

  it('the victim keeps running its timers (gossip, status) with what it accepted', async () => {
    const hb = a.victim.metrics().messagesSent
    await waitFor(() => a.victim.metrics().messagesSent > hb + 2, { timeoutMs: 5000, message: 'the victim to keep gossiping' })
    expect(a.victim.metrics().timerFaults).toBe(0)
    expect(a.victim.peers().length).toBeLessThan(200)
    await a.checkSyncing()
  })
})

/** Re-encode a Hello case's frame with the hostile peer's real id (its fields unchanged). */
function helloFor (id: string, frame: Uint8Array): Uint8Array {
  const w = new Writer()
  // decode the varints the case wrote after the placeholder id
  const r = { pos: 2 + 1 + 'evil-X'.length }
  const readVar = (): number => { let v = 0; let m = 1; for (;;) { const b = frame[r.pos++] as number; v += (b & 0x7f) * m; if (b < 0x80) return v; m *= 128 } }
  const maxFrame = readVar()
  r.pos += 16
  const docCount = readVar()
  w.string(id)
  return encodeHello({ nodeId: id, maxFrameBytes: maxFrame, root: fp, docCount })
}
