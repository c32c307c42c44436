/**
 * The awareness bridge takes nothing on trust: a state too large to share stays on its own daemon,
 * and whatever a member of the swarm writes into `_awareness/<docId>` (null, numbers, bad clocks,
 * text that is not JSON) is ignored without harming the daemon or its clients.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork, createNode, writerLogger } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { AWARENESS_MAX_SHARED_BYTES, startDaemon } from '../src/index.js'
import type { Daemon } from '../src/index.js'
import { client } from './helpers.js'

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const fn of cleanup.splice(0).reverse()) await fn() })

async function pair (logs: string[]): Promise<[Daemon, Daemon]> {
  const net = createMemoryNetwork({ seed: 11 })
  const logger = writerLogger({ level: 'warn', write: line => { logs.push(line) } })
  const a = await startDaemon({ node: createNode({ id: 'a', transport: net.transport('a') }), transport: 'memory', logger })
  const b = await startDaemon({ node: createNode({ id: 'b', transport: net.transport('b') }), transport: 'memory' })
  cleanup.push(() => a.close(), () => b.close())
  await waitFor(() => a.node.peers().some(p => p.connected && p.inSync))
  return [a, b]
}

const names = (states: Map<number, any>): string[] => Array.from(states.values()).map(s => s.user?.name).filter(n => n !== undefined).sort()

describe('awareness bridge', () => {
  it('keeps a state larger than AWARENESS_MAX_SHARED_BYTES on its own daemon', async () => {
    const logs: string[] = []
    const [a, b] = await pair(logs)
    const big = await client(a.url, 'notes/aw')
    const small = await client(a.url, 'notes/aw')
    const local = await client(a.url, 'notes/aw')
    const remote = await client(b.url, 'notes/aw')
    cleanup.push(() => { for (const c of [big, small, local, remote]) c.provider.destroy() })

    big.provider.awareness.setLocalStateField('user', { name: 'big', blob: 'x'.repeat(AWARENESS_MAX_SHARED_BYTES) })
    await waitFor(() => names(local.provider.awareness.getStates()).includes('big'), { message: 'relayed locally' })
    small.provider.awareness.setLocalStateField('user', { name: 'small' })
    await waitFor(() => names(remote.provider.awareness.getStates()).includes('small'), { message: 'the small state crosses' })
    // written in the same batch or later than the big one: the big one would have crossed by now
    expect(names(remote.provider.awareness.getStates())).toEqual(['small'])
    expect(logs.join('\n')).toMatch(/awareness state of client \d+ in "notes\/aw" is larger than 65536 bytes: not shared with peers/)
  })

  it('ignores malformed entries a peer writes into _awareness/<docId>, and keeps working', async () => {
    const [a, b] = await pair([])
    const ca = await client(a.url, 'notes/evil')
    const cb = await client(b.url, 'notes/evil')
    cleanup.push(() => { ca.provider.destroy(); cb.provider.destroy() })
    ca.provider.awareness.setLocalStateField('user', { name: 'laptop' })
    await waitFor(() => names(cb.provider.awareness.getStates()).includes('laptop'), { message: 'bridge works' })

    // b's node writes what a hostile member could: every shape but the right one
    const shared = await b.node.open('_awareness/notes/evil')
    const states = shared.getMap<unknown>('states')
    const now = Date.now()
    shared.transact(() => {
      states.set('evil/1', null)
      states.set('evil/2', 42)
      states.set('evil/3', { clientID: -1, clock: 1, state: '{}', at: now })
      states.set('evil/4', { clientID: 77, clock: 2 ** 53, state: '{}', at: now })
      states.set('evil/5', { clientID: 78, clock: 1, state: 'not json', at: now })
      states.set('evil/6', { clientID: 79, clock: 1, state: JSON.stringify({ user: { name: 'x'.repeat(AWARENESS_MAX_SHARED_BYTES) } }), at: now })
      states.set('evil/7', { clientID: 80, clock: 1, state: '{"user":{"name":"fine"}}', at: 'yesterday' })
    })
    shared.transact(() => { states.delete('evil/2') })
    const onA = await a.node.open('_awareness/notes/evil')
    await waitFor(() => onA.getMap('states').has('evil/7'), { message: 'the garbage reached a' })
    // a's bridge writes (and prunes) on the next local change
    ca.provider.awareness.setLocalStateField('cursor', 3)
    cb.provider.awareness.setLocalStateField('user', { name: 'phone' })
    await waitFor(() => names(ca.provider.awareness.getStates()).includes('phone'), { message: 'b → a after the garbage' })
    await waitFor(() => Array.from(cb.provider.awareness.getStates().values()).some((s: any) => s.cursor === 3), { message: 'a → b after the garbage' })
    const seen = Array.from(ca.provider.awareness.getStates().keys())
    for (const id of [77, 78, 79, 80]) expect(seen).not.toContain(id)
    // a pruned the malformed entries from the shared document; one that is well formed but not
    // JSON is only ignored, until it is stale like any other
    const evil = (): string[] => Array.from(onA.getMap('states').keys()).filter(k => k.startsWith('evil/')).sort()
    await waitFor(() => evil().length === 1, { message: `malformed entries pruned: ${evil().join(', ')}` })
    expect(evil()).toEqual(['evil/5'])
  })
})
