import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork, createMemoryStorage, createNode, createVirtualClock } from '@hearsay/core'
import type { HearsayNode, VirtualClock } from '@hearsay/core'
import { DocHandles } from '../src/handles.js'

const nodes: HearsayNode[] = []
afterEach(async () => { for (const n of nodes.splice(0)) await n.stop() })

/** A started node that unloads every document nobody holds, on a virtual clock. */
async function node (): Promise<{ node: HearsayNode, clock: VirtualClock }> {
  const clock = createVirtualClock()
  const n = createNode({ id: 'a', transport: createMemoryNetwork({ seed: 1 }).transport('a'), storage: createMemoryStorage(), timers: clock, maxLoadedDocs: 0, seed: 1 })
  await n.start()
  nodes.push(n)
  return { node: n, clock }
}

describe('DocHandles', () => {
  it('keeps a document loaded while any handle holds it, and lets the node unload it after the last release', async () => {
    const { node: n, clock } = await node()
    const handles = new DocHandles(n)
    const first = await handles.acquire('notes/1')
    const second = await handles.acquire('notes/1')
    expect(second.doc).toBe(first.doc)
    first.release()
    first.release() // a second release of the same handle gives back nothing more
    await clock.advance(10)
    expect(first.doc.isDestroyed).toBe(false)
    second.release()
    await clock.advance(10)
    expect(first.doc.isDestroyed).toBe(true)
    const again = await handles.acquire('notes/1')
    expect(again.doc).not.toBe(first.doc)
    again.release()
  })

  it('a failed open holds nothing, and with() releases when its function throws', async () => {
    const { node: n, clock } = await node()
    const handles = new DocHandles(n)
    await expect(handles.acquire('')).rejects.toMatchObject({ name: 'InvalidDocIdError' })
    await expect(handles.with('notes/2', () => { throw new Error('boom') })).rejects.toThrow('boom')
    const h = await handles.acquire('notes/2')
    h.release()
    await clock.advance(10)
    expect(h.doc.isDestroyed).toBe(true)
  })
})
