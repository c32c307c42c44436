/**
 * A managed swarm on real libp2p (TCP on 127.0.0.1, Noise, yamux, a swarm key): an admin, a writer
 * and a reader of `notes/`, and a device with no grant, plus a hostile device with the swarm key.
 * Each is its own libp2p identity; roster statements are signed with those Ed25519 keys.
 */
import { StatementKind, parseGrant, signStatement } from '@hearsay/core'
import { createHostilePeer, waitFor, wire, type HostilePeer } from '@hearsay/core/testing'
import * as Y from 'yjs'
import { afterEach, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { generateSwarmKey, libp2pSigner } from '../src/index.js'
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

async function write (n: HearsayLibp2pNode, docId: string, text: string): Promise<void> {
  const doc = await n.open(docId)
  doc.getText('t').insert(0, text)
  n.close(docId)
  await n.flush()
}

const connected = (n: HearsayLibp2pNode, peer: string): boolean => n.peers().some(p => p.id === peer && p.connected)

describe('a managed swarm on libp2p', () => {
  it('four devices: reads, writes, a hostile member, a used invite, and a revocation', async () => {
    const swarmKey = generateSwarmKey()
    const admin = await node({ swarmKey, sync: { closeCooldownMs: 100 } })
    const genesis = await admin.trust.createSwarm()
    const boot = { swarmKey, bootstrap: admin.multiaddrs(), trust: { genesis }, sync: { closeCooldownMs: 100 } }
    const writer = await node(boot)
    const reader = await node(boot)
    const nogrant = await node(boot)
    await admin.trust.name(writer.peerId, 'Laptop')
    await admin.trust.grant(writer.peerId, [parseGrant('notes/:write')])
    await admin.trust.name(reader.peerId, 'Tablet')
    await admin.trust.grant(reader.peerId, [parseGrant('notes/:read')])
    const all = [admin, writer, reader, nogrant]
    await waitFor(() => all.every(n => n.trust.statements().length === admin.trust.statements().length), { timeoutMs: 15_000, message: 'every device holds the roster' })
    await waitFor(() => reader.peers().find(p => p.id === writer.peerId)?.name === 'Laptop', { timeoutMs: 15_000, message: 'the reader lists the writer by name' })

    // reads and writes follow the grants
    await write(writer, 'notes/shopping', 'milk')
    await write(admin, 'admin/keys', 'secret')
    await waitFor(() => reader.docs().includes('notes/shopping') && admin.docs().includes('notes/shopping'), { timeoutMs: 15_000, message: 'the note at the reader and the admin' })
    await write(reader, 'notes/shopping', 'reader edit ')
    for (const n of all) await n.repairPass()
    expect((await admin.open('notes/shopping')).getText('t').toString()).toBe('milk')
    expect(nogrant.docs()).toEqual([])
    expect(writer.docs()).not.toContain('admin/keys')

    // a hostile device with the swarm key, named with a read grant
    const attackerKey = await generateKeyPair('Ed25519')
    const attacker = await node({ swarmKey, start: false, privateKey: attackerKey })
    await admin.trust.grant(attacker.peerId, [parseGrant('notes/:read')])
    await attacker.libp2p.start()
    evil = await createHostilePeer(attacker.sync.transport)
    await attacker.libp2p.dial(admin.libp2p.getMultiaddrs())
    await evil.link(admin.peerId, { timeoutMs: 15_000 })
    const forged = new Y.Doc()
    forged.getText('t').insert(0, 'pwned ')
    await evil.send(admin.peerId, wire.encodeLive([{ docId: 'notes/shopping', update: Y.encodeStateAsUpdate(forged) }]))
    await waitFor(() => admin.metrics().updatesRefused >= 1, { timeoutMs: 15_000, message: 'the update refused' })
    expect(admin.lines.some(l => l.includes('PermissionError') && l.includes(attacker.peerId) && l.includes('notes/shopping'))).toBe(true)
    // a statement it signed itself, granting itself everything
    const self = signStatement({ kind: StatementKind.Grant, swarm: admin.trust.swarm as string, issuer: attacker.peerId, subject: attacker.peerId, at: Date.now(), expires: 0, name: '', target: new Uint8Array(0), grants: [parseGrant('*:write')] }, libp2pSigner(attackerKey))
    await evil.send(admin.peerId, wire.encodeRoster({ kind: 'statements', hash: new Uint8Array(16), count: 0, statements: [self.bytes] }))
    await waitFor(() => admin.metrics().statementsRefused >= 1, { timeoutMs: 15_000, message: 'the statement refused' })
    expect(admin.trust.may(attacker.peerId, 'notes/shopping', 'write')).toBe(false)
    expect((await admin.open('notes/shopping')).getText('t').toString()).toBe('milk')
    await evil.stop()
    evil = undefined

    // an invite, used once, then replayed by another device
    const { invite, secret } = await admin.trust.invite({ name: 'kitchen-pi', grants: [parseGrant('telemetry/kitchen-pi/:write')], expiresAt: Date.now() + 60_000 })
    const pi = await node(boot)
    await pi.trust.claim(invite, secret)
    await waitFor(() => admin.trust.may(pi.peerId, 'telemetry/kitchen-pi/1', 'write'), { timeoutMs: 15_000, message: 'the pi admitted' })
    const thief = await node(boot)
    const reasons: string[] = []
    thief.on('peer:disconnect', ({ reason }) => { reasons.push(reason) })
    await waitFor(() => connected(thief, admin.peerId), { timeoutMs: 15_000, message: 'the thief connected' })
    await thief.trust.claim(invite, secret)
    await waitFor(() => reasons.some(r => r.includes('invite already used')), { timeoutMs: 15_000, message: 'the replayed token refused' })
    expect(admin.trust.may(thief.peerId, 'telemetry/kitchen-pi/1', 'read')).toBe(false)
    expect(admin.trust.may(pi.peerId, 'telemetry/kitchen-pi/1', 'write')).toBe(true)

    // revocation: every member hangs up on the writer within the documented 5 s
    await admin.trust.revoke(writer.peerId)
    const members = [admin, reader, nogrant, pi]
    await waitFor(() => members.every(n => n.trust.isRevoked(writer.peerId) && !connected(n, writer.peerId)), { timeoutMs: 5_000, message: 'every member refuses the writer' })
    // it keeps dialling and writing: nothing gets through, directly or through a member
    for (const m of [reader, pi]) await writer.libp2p.dial(m.libp2p.getMultiaddrs()).catch(() => undefined)
    await write(writer, 'notes/after', 'written after revocation')
    for (const n of members) await n.repairPass()
    for (const n of members) expect(n.docs()).not.toContain('notes/after')
    expect(members.every(n => !connected(n, writer.peerId))).toBe(true)
    // what it wrote before stays
    expect((await reader.open('notes/shopping')).getText('t').toString()).toContain('milk')
  }, 120_000)
})
