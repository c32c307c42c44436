/**
 * A hostile member over real libp2p (TCP on 127.0.0.1, Noise, yamux) holding the right swarm key:
 * it sends the Gossip frame that used to end a node's process (a generation of 2^53 − 1 for the
 * victim's own map) and one with a plausible-looking generation far in the future. The victim
 * refuses both with reasons, stays up, and keeps syncing with an honest node. And a member that
 * stops reading (its yamux stream paused) while asking for cluster state is hung up on.
 */
import { createHostilePeer, waitFor, wire, type HostileLink, type HostilePeer } from '@hearsay/core/testing'
import type * as Y from 'yjs'
import { afterEach, describe, expect, it } from 'vitest'
import { generateSwarmKey } from '../src/index.js'
import type { HearsayLibp2pNode, HearsayNodeOptions } from '../src/index.js'
import { loopbackNode } from './helpers.js'

const running: HearsayLibp2pNode[] = []
let evil: HostilePeer | undefined
afterEach(async () => {
  await evil?.stop()
  evil = undefined
  for (const n of running.splice(0)) await n.stop()
})

const node = async (options: HearsayNodeOptions): ReturnType<typeof loopbackNode> => await loopbackNode(options, running)

/**
 * A victim with an honest peer syncing `notes/1` with it, and a hostile member linked to the
 * victim: libp2p with the swarm key, its engine never started; the hostile kit drives its transport.
 */
async function scene (victimOptions: HearsayNodeOptions = {}, prepare: (victim: HearsayLibp2pNode) => void = () => {}): Promise<{
  victim: HearsayLibp2pNode & { lines: string[] }, honest: HearsayLibp2pNode, mine: Y.Text, theirs: Y.Text, link: HostileLink, hostile: HostilePeer
}> {
  const key = generateSwarmKey()
  const victim = await node({ swarmKey: key, ...victimOptions })
  prepare(victim)
  const honest = await node({ swarmKey: key, bootstrap: victim.multiaddrs() })
  const mine = (await honest.open('notes/1')).getText('t')
  mine.insert(0, 'before')
  const theirs = (await victim.open('notes/1')).getText('t')
  await waitFor(() => theirs.toString() === 'before', { timeoutMs: 15_000, message: 'the honest edit to reach the victim' })
  const attacker = await node({ swarmKey: key, start: false })
  await attacker.libp2p.start()
  const hostile = await createHostilePeer(attacker.sync.transport)
  evil = hostile
  await attacker.libp2p.dial(victim.libp2p.getMultiaddrs())
  const link = await hostile.link(victim.peerId, { timeoutMs: 15_000 })
  return { victim, honest, mine, theirs, link, hostile }
}

describe('a hostile member on libp2p', () => {
  it('a Gossip frame with generation 2^53 - 1 for the victim is refused; the victim survives and keeps syncing', async () => {
    // fixed gossip timers (no idle backoff), so "ten more frames" is a matter of rounds, not of how quiet the pair got
    const { victim, honest, mine, theirs, hostile } = await scene({ cluster: { intervalMs: 100, idleMaxMs: 0 } })

    const gossip = (generation: number): Uint8Array => wire.encodeGossip({
      request: false,
      answer: false,
      digest: [],
      entries: [{ nodeId: victim.peerId, generation, key: 'hearsay/hb', value: new TextEncoder().encode('1'), version: 1 }]
    })
    // within the wire bound, but a day past the victim's clock: dropped, counted, the session stays open
    await hostile.send(victim.peerId, gossip(Date.now() + 2 * 24 * 3600_000))
    await waitFor(() => victim.metrics().gossipEntriesRejected === 1, { timeoutMs: 15_000, message: 'the forged entry to be dropped' })
    expect(victim.lines.some(l => l.includes('generation ahead of our clock'))).toBe(true)

    await hostile.send(victim.peerId, gossip(Number.MAX_SAFE_INTEGER))
    await hostile.waitClosed(victim.peerId, 15_000)
    expect(victim.metrics().framesRejected).toBe(1)
    expect(victim.lines.some(l => l.includes('generation: 9007199254740991 exceeds the limit') && l.includes(hostile.id))).toBe(true)

    // several gossip rounds later the victim is up, unharmed, and syncing
    const rounds = victim.metrics().messagesSent
    await waitFor(() => victim.metrics().messagesSent > rounds + 10, { timeoutMs: 15_000, message: 'the victim to keep gossiping' })
    mine.insert(6, ' and after')
    await waitFor(() => theirs.toString() === 'before and after', { timeoutMs: 15_000, message: 'an honest edit after the attack' })
    expect(victim.metrics().sessionFaults + victim.metrics().timerFaults).toBe(0)
    expect(honest.metrics().gossipEntriesRejected).toBe(0)
  }, 60_000)
})

describe('a member that stops reading, on libp2p', () => {
  it('is hung up on once its backlog passes the stall bound; the victim stays up and keeps syncing', async () => {
    // seven 1000-byte entries make every cluster state answer about 7 KB
    const { victim, mine, theirs, link, hostile } = await scene({ sendQueueBytes: 64 * 1024, maxFrameBytes: 64 * 1024 }, v => {
      for (let i = 0; i < 7; i++) v.setMeta(`pad/${i}`, 'x'.repeat(1000))
    })
    // stop reading: yamux stops granting the victim window, as a peer that never reads does
    const stream = (link.channel as unknown as { stream: { pause: () => void, maxReadBufferLength: number } }).stream
    stream.maxReadBufferLength = Number.MAX_SAFE_INTEGER
    stream.pause()
    const ask = wire.encodeGossip({ request: true, answer: false, digest: [], entries: [] })
    for (let i = 0; i < 3_000 && victim.metrics().stalledSessions === 0; i++) {
      await hostile.send(victim.peerId, ask).catch(() => {})
      if (i % 20 === 19) await new Promise(resolve => setTimeout(resolve, 1))
    }
    await waitFor(() => victim.metrics().stalledSessions === 1, { timeoutMs: 15_000, message: 'the victim to hang up on the peer that stopped reading' })
    expect(victim.lines.some(l => l.includes(`closing session with ${hostile.id}: it stopped reading`))).toBe(true)

    mine.insert(6, ' and after')
    await waitFor(() => theirs.toString() === 'before and after', { timeoutMs: 15_000, message: 'an honest edit after the attack' })
    expect(victim.metrics().sessionFaults + victim.metrics().timerFaults).toBe(0)
  }, 60_000)
})
