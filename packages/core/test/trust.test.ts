import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { createMemoryNetwork, createMemoryStorage, createNode, parseGrant, type HearsayNode, type MemoryNetwork, type Storage } from '../src/index.js'
import { createHostilePeer, createTestKeyring, waitFor, wire, type TestKeyring } from '../src/testing/index.js'
import { signStatement, StatementKind } from '../src/statements.js'
import { content } from './helpers.js'

interface Swarm { net: MemoryNetwork, keys: TestKeyring, transports?: Map<string, ReturnType<MemoryNetwork['transport']>>, nodes: Map<string, HearsayNode>, stores: Map<string, Storage>, genesis: Uint8Array }

const running: HearsayNode[] = []
afterEach(async () => {
  for (const n of running.splice(0)) await n.stop()
})

async function startNode (s: Omit<Swarm, 'genesis' | 'nodes'> & { nodes?: Map<string, HearsayNode> }, id: string, genesis: Uint8Array | undefined, extra: { statements?: Uint8Array[], adopt?: boolean } = {}): Promise<HearsayNode> {
  const storage = s.stores.get(id) ?? createMemoryStorage()
  s.stores.set(id, storage)
  s.transports ??= new Map()
  const transport = s.transports.get(id) ?? s.net.transport(id)
  s.transports.set(id, transport)
  const node = createNode({ id, transport, storage, seed: id.charCodeAt(0), trust: { crypto: s.keys.crypto, signer: s.keys.signer(id), genesis, ...extra } })
  await node.start()
  running.push(node)
  s.nodes?.set(id, node)
  return node
}

/** admin, a writer and a reader of notes/, and a device with no grant, all connected. */
async function swarm (): Promise<Swarm> {
  const net = createMemoryNetwork({ seed: 11, autoConnect: true })
  const keys = createTestKeyring()
  const stores = new Map<string, Storage>()
  const nodes = new Map<string, HearsayNode>()
  const base = { net, keys, stores, nodes }
  const admin = await startNode(base, 'admin', undefined)
  const genesis = await admin.trust.createSwarm()
  await admin.trust.name('writer', 'Laptop')
  await admin.trust.grant('writer', [parseGrant('notes/:write')])
  await admin.trust.grant('reader', [parseGrant('notes/:read')])
  for (const id of ['writer', 'reader', 'nogrant']) await startNode(base, id, genesis)
  await converged([...nodes.values()])
  return { ...base, genesis }
}

async function converged (nodes: HearsayNode[]): Promise<void> {
  await waitFor(() => {
    const n = nodes[0]?.trust.statements().length
    return nodes.every(x => x.trust.statements().length === n && x.peers().filter(p => p.connected).length === nodes.length - 1)
  }, { message: 'rosters and sessions converged' })
}

async function write (node: HearsayNode, docId: string, text: string): Promise<void> {
  const doc = await node.open(docId)
  doc.getText('t').insert(0, text)
  node.close(docId)
  await node.flush()
}

const text = async (node: HearsayNode, docId: string): Promise<string> => ((await content(node, docId)) as { t: string }).t

describe('trust: who may read and write what', () => {
  it('sends each device only what it may read, and takes updates only from writers', async () => {
    const s = await swarm()
    const [admin, writer, reader, nogrant] = ['admin', 'writer', 'reader', 'nogrant'].map(id => s.nodes.get(id) as HearsayNode) as [HearsayNode, HearsayNode, HearsayNode, HearsayNode]
    expect(admin.trust.may('writer', 'notes/a', 'write')).toBe(true)
    expect(reader.trust.may('reader', 'notes/a', 'write')).toBe(false)
    expect(nogrant.trust.may('nogrant', 'notes/a', 'read')).toBe(false)
    expect(admin.peers().find(p => p.id === 'writer')?.name).toBe('Laptop')

    await write(writer, 'notes/a', 'from writer')
    await write(admin, 'secret/1', 'admin only')
    await waitFor(async () => admin.docs().includes('notes/a') && reader.docs().includes('notes/a'), { message: 'notes/a at admin and reader' })
    expect(await text(reader, 'notes/a')).toBe('from writer')
    // a reader edits its copy: nobody takes it from it
    await write(reader, 'notes/a', 'reader! ')
    expect(reader.metrics().localEditsUnshared).toBeGreaterThanOrEqual(1)
    // repair passes from every side: everything that may move has moved
    for (const n of [admin, writer, reader, nogrant]) await n.repairPass()
    expect(await text(admin, 'notes/a')).toBe('from writer')
    expect(await text(writer, 'notes/a')).toBe('from writer')
    expect(nogrant.docs()).toEqual([])
    expect(writer.docs()).not.toContain('secret/1')
    expect(reader.docs()).not.toContain('secret/1')
    // pairs that share the same documents compare equal roots for them
    expect(admin.peers().find(p => p.id === 'writer')?.inSync).toBe(true)
  })

  it('shares presence and acknowledgements of a document only between devices that may read it', async () => {
    const s = await swarm()
    const [writer, reader, nogrant] = ['writer', 'reader', 'nogrant'].map(id => s.nodes.get(id)!) as [HearsayNode, HearsayNode, HearsayNode]
    const who = (n: HearsayNode, docId: string): string[] => [...n.awareness(docId).getStates().values()].map(st => (st as { user?: { name: string } }).user?.name ?? '').filter(x => x !== '').sort()
    writer.awareness('notes/1').setLocalStateField('user', { name: 'w' })
    reader.awareness('notes/1').setLocalStateField('user', { name: 'r' })
    nogrant.awareness('notes/1').setLocalStateField('user', { name: 'n' })
    // a reader shares its cursor like a writer; the device without a grant neither sees nor shows one
    await waitFor(() => who(writer, 'notes/1').join() === 'r,w' && who(reader, 'notes/1').join() === 'r,w')
    expect(who(nogrant, 'notes/1')).toEqual(['n'])
    expect(nogrant.metrics().presenceReceived).toBe(0)
    // who holds notes/1: the reader (it may read it), not the device without a grant
    await write(writer, 'notes/1', 'hello')
    await expect(writer.replicated('notes/1', { peers: ['reader'], durable: true })).resolves.toMatchObject({ peers: ['reader'] })
    const err = await writer.replicated('notes/1', { peers: ['nogrant'], timeoutMs: 500 }).then(() => new Error('resolved'), (e: unknown) => e as Error)
    expect(err.name).toBe('ReplicationTimeoutError')
    expect(writer.syncState('notes/1').peers.map(p => p.peerId)).not.toContain('nogrant')
    expect(nogrant.metrics().acksSent).toBe(0)
  })

  it('refuses well-formed updates, self-signed statements and forged ones from a member without grants', async () => {
    const s = await swarm()
    const admin = s.nodes.get('admin') as HearsayNode
    // a hostile device the roster names with a read grant only
    await admin.trust.grant('evil', [parseGrant('notes/:read')])
    const evil = await createHostilePeer(s.net.transport('evil'))
    running.push({ stop: async () => { await evil.stop() } } as unknown as HearsayNode)
    await evil.link('admin')
    const doc = new Y.Doc()
    doc.getText('t').insert(0, 'evil was here')
    await evil.send('admin', wire.encodeLive([{ docId: 'notes/a', update: Y.encodeStateAsUpdate(doc) }]))
    await waitFor(() => admin.metrics().updatesRefused >= 1, { message: 'update refused' })
    expect(admin.docs()).not.toContain('notes/a')

    // a statement it signed itself: it is no admin
    const self = signStatement({ kind: StatementKind.Grant, swarm: admin.trust.swarm as string, issuer: 'evil', subject: 'evil', at: 1, expires: 0, name: '', target: new Uint8Array(0), grants: [parseGrant('*:write')] }, s.keys.signer('evil'))
    await evil.send('admin', wire.encodeRoster({ kind: 'statements', hash: new Uint8Array(16), count: 0, statements: [self.bytes] }))
    await waitFor(() => admin.metrics().statementsRefused >= 1, { message: 'statement refused' })
    expect(admin.trust.may('evil', 'notes/a', 'write')).toBe(false)

    // a statement with the admin as issuer but its own signature: forged, and its session closes
    const forged = signStatement({ kind: StatementKind.Grant, swarm: admin.trust.swarm as string, issuer: 'evil', subject: 'evil', at: 2, expires: 0, name: '', target: new Uint8Array(0), grants: [parseGrant('*:write')] }, s.keys.signer('evil'))
    const tampered = signStatement({ ...forged, issuer: 'admin' }, { id: 'admin', sign: () => forged.sig })
    await evil.send('admin', wire.encodeRoster({ kind: 'statements', hash: new Uint8Array(16), count: 0, statements: [tampered.bytes] }))
    expect(await evil.waitClosed('admin')).toBeDefined()
    expect(admin.trust.may('evil', 'notes/a', 'write')).toBe(false)
    expect(admin.metrics().statementsRefused).toBeGreaterThanOrEqual(2)
  })

  it('a member that keeps sending statements nobody authorised is hung up on', async () => {
    const s = await swarm()
    const admin = s.nodes.get('admin') as HearsayNode
    const evil = await createHostilePeer(s.net.transport('spammer'))
    running.push({ stop: async () => { await evil.stop() } } as unknown as HearsayNode)
    await evil.link('admin')
    const key = s.keys.signer('spammer')
    const junk = Array.from({ length: 1001 }, (_, i) => signStatement({ kind: StatementKind.Name, swarm: admin.trust.swarm as string, issuer: 'spammer', subject: 'spammer', at: i, expires: 0, name: `n${i}`, target: new Uint8Array(0), grants: [] }, key).bytes)
    for (let i = 0; i < junk.length; i += 250) await evil.send('admin', wire.encodeRoster({ kind: 'statements', hash: new Uint8Array(16), count: 0, statements: junk.slice(i, i + 250) }))
    expect(await evil.waitClosed('admin')).toBeDefined()
    expect(admin.metrics().statementsRefused).toBeGreaterThan(1000)
    expect(admin.trust.statements().length).toBe(s.nodes.get('reader')?.trust.statements().length)
  })

  it('a revoked device is hung up on everywhere, refused when it comes back, and its updates go nowhere', async () => {
    const s = await swarm()
    const [admin, writer, reader] = ['admin', 'writer', 'reader'].map(id => s.nodes.get(id) as HearsayNode) as [HearsayNode, HearsayNode, HearsayNode]
    await write(writer, 'notes/before', 'written before revocation')
    await waitFor(() => reader.docs().includes('notes/before'), { message: 'notes/before at reader' })
    await admin.trust.revoke('writer')
    await waitFor(() => [admin, reader].every(n => n.trust.may('writer', 'notes/x', 'write') === false && !n.peers().some(p => p.id === 'writer' && p.connected)), { message: 'writer refused everywhere' })
    // it keeps trying: each connection is refused
    const refusedBefore = admin.metrics().revokedSessions
    s.net.disconnect('writer', 'admin')
    s.net.connect('writer', 'admin')
    await waitFor(() => admin.metrics().revokedSessions > refusedBefore, { message: 'reconnect refused' })
    await write(writer, 'notes/after', 'written after revocation')
    for (const n of [admin, reader]) await n.repairPass()
    expect(admin.docs()).not.toContain('notes/after')
    expect(reader.docs()).not.toContain('notes/after')
    // what it wrote before stays: it is document history
    expect(await text(reader, 'notes/before')).toBe('written before revocation')
    expect(admin.trust.devices().find(d => d.id === 'writer')?.revoked).toBe(true)
  })

  it('an invite admits one device; a second use is refused with a clear reason', async () => {
    const s = await swarm()
    const admin = s.nodes.get('admin') as HearsayNode
    const { invite, secret } = await admin.trust.invite({ name: 'kitchen-pi', grants: [parseGrant('telemetry/kitchen-pi/:write')], expiresAt: Date.now() + 60_000 })
    const pi = await startNode(s, 'pi', s.genesis)
    await pi.trust.claim(invite, secret)
    await waitFor(() => admin.trust.may('pi', 'telemetry/kitchen-pi/t1', 'write'), { message: 'pi admitted' })
    expect(admin.trust.nameOf('pi')).toBe('kitchen-pi')
    await write(pi, 'telemetry/kitchen-pi/t1', 'reading')
    await waitFor(() => admin.docs().includes('telemetry/kitchen-pi/t1'), { message: 'telemetry at admin' })

    // the same token on another device
    const thief = await startNode(s, 'thief', s.genesis)
    const reasons: string[] = []
    thief.on('peer:disconnect', ({ reason }) => { reasons.push(reason) })
    await waitFor(() => thief.peers().filter(p => p.connected).length === 5, { message: 'thief connected' })
    await thief.trust.claim(invite, secret)
    await waitFor(() => reasons.length >= 5, { message: 'thief hung up on by every member' })
    expect(reasons.every(r => r.includes('invite already used'))).toBe(true)
    expect(admin.trust.may('thief', 'telemetry/kitchen-pi/t1', 'read')).toBe(false)
    expect(admin.trust.may('pi', 'telemetry/kitchen-pi/t1', 'write')).toBe(true)
    expect(admin.metrics().statementsRefused).toBeGreaterThanOrEqual(1)
  })

  it('keeps the roster across a restart and an unmanaged node adopts it from a member', async () => {
    const s = await swarm()
    const reader = s.nodes.get('reader') as HearsayNode
    const n = reader.trust.statements().length
    await reader.stop()
    const again = await startNode(s, 'reader', undefined)
    expect(again.trust.managed).toBe(true)
    expect(again.trust.statements().length).toBe(n)
    expect(again.trust.may('reader', 'notes/a', 'read')).toBe(true)

    const stubborn = await startNode(s, 'stubborn', undefined, { adopt: false })
    const fresh = await startNode(s, 'fresh', undefined)
    await waitFor(() => fresh.trust.managed && fresh.trust.statements().length === n, { message: 'fresh adopted the roster' })
    expect(fresh.trust.may('fresh', 'notes/a', 'read')).toBe(false)
    // offered the same roster on connect, a node with adoption off keeps none
    await (s.nodes.get('admin') as HearsayNode).repairPass()
    expect(stubborn.trust.managed).toBe(false)

    // a node with trust off ignores roster traffic, new statements flooded to it included
    const plain = createNode({ id: 'plain', transport: s.net.transport('plain'), seed: 9 })
    await plain.start()
    running.push(plain)
    const admin = s.nodes.get('admin') as HearsayNode
    await waitFor(() => admin.peers().some(p => p.id === 'plain' && p.connected), { message: 'plain connected' })
    const closes: string[] = []
    plain.on('peer:disconnect', ({ reason }) => { closes.push(reason) })
    await admin.trust.name('plain', 'Plain')
    await waitFor(() => stubborn.trust.managed === false && fresh.trust.nameOf('plain') === 'Plain', { message: 'the name flooded' })
    expect(closes).toEqual([])
    expect(plain.trust.managed).toBe(false)
  })

  it('an idle reconnect costs the same few bytes whatever the number of shared documents', async () => {
    const costs: number[] = []
    for (const count of [50, 1000]) {
      const s = await swarm()
      const [admin, reader] = ['admin', 'reader'].map(id => s.nodes.get(id) as HearsayNode) as [HearsayNode, HearsayNode]
      for (let i = 0; i < count; i++) {
        const d = await admin.open(`notes/${i}`)
        d.getText('t').insert(0, `n${i}`)
        admin.close(`notes/${i}`)
        const x = await admin.open(`private/${i}`)
        x.getText('t').insert(0, `p${i}`)
        admin.close(`private/${i}`)
      }
      await admin.flush()
      await waitFor(() => reader.docs().length === count, { timeoutMs: 30_000, message: 'reader has every note' })
      await admin.repairPass()
      s.net.disconnect('admin', 'reader')
      await waitFor(() => !admin.peers().some(p => p.id === 'reader' && p.connected), { message: 'disconnected' })
      const before = admin.metrics().bytesSent
      const exchanged = admin.metrics().exchangesCompleted + reader.metrics().exchangesCompleted
      s.net.connect('admin', 'reader')
      await waitFor(() => admin.peers().some(p => p.id === 'reader' && p.connected && p.inSync), { message: 'reconnected in sync' })
      costs.push(admin.metrics().bytesSent - before)
      expect(admin.metrics().exchangesCompleted + reader.metrics().exchangesCompleted).toBe(exchanged)
      for (const node of running.splice(0)) await node.stop()
    }
    // (cluster gossip may add a few bytes to either)
    expect(Math.abs((costs[1] as number) - (costs[0] as number))).toBeLessThan(150)
    expect(Math.max(...costs)).toBeLessThan(600)
  })
})
