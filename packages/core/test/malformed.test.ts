import { describe, expect, it } from 'vitest'
import { crc32 } from '../src/bytes.js'
import { PROTOCOL_VERSION } from '../src/constants.js'
import { createMemoryNetwork, createNode, type HearsayNode, type MemoryNetwork } from '../src/index.js'
import {
  ItemKind, decodeFrame, encodeClose, encodeGossip, encodeHello, encodeLive, encodeRumor, encodeStatus, encodeSync
} from '../src/protocol.js'
import { waitFor } from '../src/testing/index.js'
import { content } from './helpers.js'

const MAX = 64 * 1024
const fp = new Uint8Array(16).fill(3)

/** One valid frame of every message type. */
const samples: Record<string, () => Uint8Array> = {
  hello: () => encodeHello({ nodeId: 'x', maxFrameBytes: MAX, root: fp, docCount: 3 }),
  live: () => encodeLive([{ docId: 'notes/1', update: validUpdate() }, { docId: 'notes/2', update: validUpdate() }]),
  sync: () => encodeSync({
    exchangeId: 9,
    fromInitiator: true,
    more: false,
    mode: 'push-pull',
    items: [
      { kind: ItemKind.RangeFingerprint, prefix: { depth: 3, bits: new Uint8Array([0x12, 0x30, 0, 0, 0, 0, 0, 0]) }, fingerprint: fp, count: 40 },
      { kind: ItemKind.RangeList, prefix: { depth: 1, bits: new Uint8Array(8) }, docs: [{ docId: 'a', fingerprint: fp, stateVector: new Uint8Array([1, 2, 3]) }] },
      { kind: ItemKind.DocRequest, docId: 'a', stateVector: new Uint8Array([0]), fingerprint: fp },
      { kind: ItemKind.DocUpdate, docId: 'a', update: validUpdate(), partial: false }
    ]
  }),
  status: () => encodeStatus({ root: fp, docCount: 7 }),
  close: () => encodeClose('bye'),
  rumor: () => encodeRumor(3, [{ docId: 'notes/1', update: validUpdate() }]),
  gossip: () => encodeGossip({
    request: true,
    answer: false,
    digest: [{ nodeId: 'x', generation: 0, version: 12 }, { nodeId: 'y', generation: 1_764_633_600_000, version: 300 }],
    entries: [{ nodeId: 'y', generation: 1_764_633_600_000, key: 'hearsay/docs', value: new Uint8Array([52, 50]), version: 299 }]
  })
}

function validUpdate (): Uint8Array {
  // a real Yjs update inserting "hi" into text "t"
  return new Uint8Array([1, 1, 200, 1, 0, 4, 1, 1, 116, 2, 104, 105, 0])
}

/** Recompute the CRC so a change gets past the checksum and reaches the decoder. */
function reseal (frame: Uint8Array): Uint8Array {
  const out = frame.slice()
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)))
  return out
}

describe('frame decoding', () => {
  for (const [name, make] of Object.entries(samples)) {
    describe(name, () => {
      it('round-trips', () => {
        expect(() => decodeFrame(make(), MAX)).not.toThrow()
      })
      it('truncated: FrameError at every length', () => {
        const f = make()
        for (let n = 0; n < f.length; n++) {
          expect(() => decodeFrame(f.subarray(0, n), MAX)).toThrowError(expect.objectContaining({ name: expect.stringMatching(/Frame|Version/) }))
          // truncated payload with a valid checksum reaches the strict decoder
          if (n >= 6) expect(() => decodeFrame(reseal(new Uint8Array([...f.subarray(0, n - 4), 0, 0, 0, 0])), MAX)).toThrowError(expect.objectContaining({ name: expect.stringMatching(/Frame/) }))
        }
      })
      it('bit-flipped: every single-bit flip is rejected', () => {
        const f = make()
        for (let i = 0; i < f.length * 8; i++) {
          const g = f.slice()
          g[i >> 3] = (g[i >> 3] as number) ^ (1 << (i & 7))
          expect(() => decodeFrame(g, MAX)).toThrowError(expect.objectContaining({ name: expect.stringMatching(/Frame|Version/) }))
        }
      })
      it('oversized: FrameTooLargeError', () => {
        const f = make()
        expect(() => decodeFrame(f, f.length - 1)).toThrowError(expect.objectContaining({ name: 'FrameTooLargeError' }))
      })
      it('wrong version: ProtocolVersionError', () => {
        const f = make()
        f[0] = PROTOCOL_VERSION + 1
        expect(() => decodeFrame(reseal(f), MAX)).toThrowError(expect.objectContaining({ name: 'ProtocolVersionError' }))
      })
      it('trailing bytes: FrameError', () => {
        const f = make()
        const g = new Uint8Array(f.length + 1)
        g.set(f.subarray(0, f.length - 4))
        expect(() => decodeFrame(reseal(g), MAX)).toThrowError(expect.objectContaining({ name: 'FrameError' }))
      })
    })
  }
  it('a rumor with 0 hops: FrameError', () => {
    const f = samples.rumor?.() as Uint8Array
    f[2] = 0
    expect(() => decodeFrame(reseal(f), MAX)).toThrowError(/0 hops/)
  })
  it('gossip with unknown flags or a version 0 entry: FrameError', () => {
    const f = samples.gossip?.() as Uint8Array
    f[2] = 4
    expect(() => decodeFrame(reseal(f), MAX)).toThrowError(/gossip flags/)
    const g = encodeGossip({ request: false, answer: false, digest: [], entries: [{ nodeId: 'y', generation: 5, key: 'k', value: new Uint8Array(), version: 0 }] })
    expect(() => decodeFrame(g, MAX)).toThrowError(/version 0/)
  })
  it('unknown message type: FrameError', () => {
    const f = samples.status?.() as Uint8Array
    f[1] = 99
    expect(() => decodeFrame(reseal(f), MAX)).toThrowError(/unknown message type 99/)
  })
})

describe('a peer sending bad frames', () => {
  async function setup (): Promise<{ net: MemoryNetwork, a: HearsayNode, b: HearsayNode, c: HearsayNode }> {
    const net = createMemoryNetwork({ seed: 4 })
    const opts = { antiEntropy: { enabled: false }, maxFrameBytes: MAX }
    const a = createNode({ id: 'a', transport: net.transport('a'), ...opts })
    const b = createNode({ id: 'b', transport: net.transport('b'), ...opts })
    const c = createNode({ id: 'c', transport: net.transport('c'), ...opts })
    for (const n of [a, b, c]) await n.start()
    await waitFor(() => a.peers().filter(p => p.connected).length === 2 && b.peers().every(p => p.connected))
    const doc = await a.open('shared')
    doc.getText('t').insert(0, 'hello')
    await waitFor(async () => (await content(b, 'shared') as { t: string }).t === 'hello' && (await content(c, 'shared') as { t: string }).t === 'hello')
    return { net, a, b, c }
  }

  const bad: Record<string, (f: Uint8Array) => Uint8Array> = {
    truncated: f => f.subarray(0, f.length - 3),
    'bit-flipped': f => { const g = f.slice(); g[g.length >> 1] = (g[g.length >> 1] as number) ^ 0x10; return g },
    oversized: () => new Uint8Array(MAX + 1),
    'wrong version': f => { const g = f.slice(); g[0] = 7; return reseal(g) }
  }

  for (const type of ['live', 'sync', 'status', 'close', 'hello', 'rumor', 'gossip']) {
    for (const [how, mangle] of Object.entries(bad)) {
      it(`${how} ${type} frame: session closed with a reason, documents untouched, others still served`, async () => {
        const { net, a, b, c } = await setup()
        const before = await content(a, 'shared')
        const rootBefore = a.digest().root
        const closed = new Promise<string>(resolve => a.on('peer:disconnect', e => { if (e.peerId === 'b') resolve(e.reason) }))
        net.inject('b', 'a', mangle(samples[type]?.() as Uint8Array))
        const reason = await closed
        expect(reason).toMatch(/Frame|Version|TooLarge/)
        expect(a.metrics().framesRejected).toBe(1)
        expect(await content(a, 'shared')).toEqual(before)
        expect(a.digest().root).toEqual(rootBefore)
        // a keeps serving c
        const doc = await c.open('shared')
        doc.getText('t').insert(0, 'still ')
        await waitFor(async () => (await content(a, 'shared') as { t: string }).t === 'still hello')
        expect((await a.syncWith('c')).bytesSent).toBeGreaterThan(0)
        for (const n of [a, b, c]) await n.stop()
      })
    }
  }

  it('an invalid Yjs update in a well-formed frame is rejected before any document changes', async () => {
    const { net, a, b, c } = await setup()
    const before = await content(a, 'shared')
    const closed = new Promise<string>(resolve => a.on('peer:disconnect', e => { if (e.peerId === 'b') resolve(e.reason) }))
    // first entry valid, second garbage: the whole frame is refused
    const garbage = new Uint8Array([5, 200, 1, 7, 7, 7, 255, 255, 255, 255, 1])
    net.inject('b', 'a', encodeLive([{ docId: 'shared', update: validUpdate() }, { docId: 'other', update: garbage }]))
    expect(await closed).toMatch(/InvalidUpdateError/)
    expect(await content(a, 'shared')).toEqual(before)
    expect(a.docs()).toEqual(['shared'])
    for (const n of [a, b, c]) await n.stop()
  })

  it('an update whose delete set is broken is rejected before its structs touch a document', async () => {
    const { net, a, b, c } = await setup()
    const closed = new Promise<string>(resolve => a.on('peer:disconnect', e => { if (e.peerId === 'b') resolve(e.reason) }))
    // valid structs, then a delete set announcing one client and ending there
    const broken = new Uint8Array([...validUpdate().subarray(0, -1), 1])
    net.inject('b', 'a', encodeLive([{ docId: 'fresh', update: broken }]))
    expect(await closed).toMatch(/InvalidUpdateError/)
    expect(a.docs()).toEqual(['shared'])
    for (const n of [a, b, c]) await n.stop()
  })

  it('a sync frame with a valid update and a bad one changes no document', async () => {
    const { net, a, b, c } = await setup()
    const before = await content(a, 'shared')
    const rootBefore = a.digest().root
    const closed = new Promise<string>(resolve => a.on('peer:disconnect', e => { if (e.peerId === 'b') resolve(e.reason) }))
    const garbage = new Uint8Array([5, 200, 1, 7, 7, 7, 255, 255, 255, 255, 1])
    net.inject('b', 'a', encodeSync({
      exchangeId: 77,
      fromInitiator: true,
      more: false,
      mode: 'push',
      items: [
        { kind: ItemKind.DocUpdate, docId: 'shared', update: validUpdate(), partial: false },
        { kind: ItemKind.DocUpdate, docId: 'other', update: garbage, partial: false }
      ]
    }))
    expect(await closed).toMatch(/InvalidUpdateError/)
    expect(await content(a, 'shared')).toEqual(before)
    expect(a.digest().root).toEqual(rootBefore)
    expect(a.docs()).toEqual(['shared'])
    for (const n of [a, b, c]) await n.stop()
  })

  it('a hello naming another node is refused', async () => {
    const { net, a, b, c } = await setup()
    const closed = new Promise<string>(resolve => a.on('peer:disconnect', e => { if (e.peerId === 'b') resolve(e.reason) }))
    net.inject('b', 'a', encodeHello({ nodeId: 'mallory', maxFrameBytes: MAX, root: fp, docCount: 0 }))
    expect(await closed).toMatch(/ProtocolError/)
    for (const n of [a, b, c]) await n.stop()
  })
})

