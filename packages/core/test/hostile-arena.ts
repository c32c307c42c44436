/**
 * A victim node, an honest peer connected to it, and hostile peers on the memory network, for
 * tests that feed the victim crafted frames and check it survives: still running, still syncing
 * with the honest peer, its documents untouched, and the reason in its metrics and its log.
 */
import { expect } from 'vitest'
import * as Y from 'yjs'
import { createMemoryNetwork, createNode, writerLogger, type HearsayNode, type MemoryNetwork, type NodeOptions } from '../src/index.js'
import { encodeLive } from '../src/protocol.js'
import { createHostilePeer, waitFor, type HostilePeer } from '../src/testing/index.js'

export const SHARED = 'notes/shared'

export interface Arena {
  net: MemoryNetwork
  victim: HearsayNode
  honest: HearsayNode
  /** Log lines of the victim (warn and above). */
  lines: string[]
  /** A new hostile peer linked to the victim (Hello sent unless `hello: false`). */
  evil(options?: { hello?: boolean }): Promise<HostilePeer>
  /** The honest peer edits the shared document and the edit reaches the victim; the content is as expected. */
  checkSyncing(): Promise<void>
  /** Send a valid Live frame for a probe document and wait until the victim applied it: every frame before it was handled. */
  probe(evil: HostilePeer): Promise<void>
  stop(): Promise<void>
}

let probes = 0

/** A valid Yjs update writing `text` into text "t" of a fresh document. */
export function validUpdate (text = 'x'): Uint8Array {
  const d = new Y.Doc()
  d.getText('t').insert(0, text)
  const u = Y.encodeStateAsUpdate(d)
  d.destroy()
  return u
}

export async function arena (seed: number, options: Partial<NodeOptions> = {}): Promise<Arena> {
  const net = createMemoryNetwork({ seed, autoConnect: false })
  const lines: string[] = []
  const victim = createNode({ id: 'victim', transport: net.transport('victim'), seed, logger: writerLogger({ level: 'warn', write: l => { lines.push(l) } }), ...options })
  // the honest peer shares the victim's settings but never its store
  const { storage: _victimStore, ...shared } = options
  const honest = createNode({ id: 'honest', transport: net.transport('honest'), seed: seed + 1, ...shared })
  const hostile: HostilePeer[] = []
  await victim.start()
  await honest.start()
  net.connect('victim', 'honest')
  const mine = await honest.open(SHARED)
  mine.getText('t').insert(0, 'start')
  const theirs = await victim.open(SHARED)
  await waitFor(() => theirs.getText('t').toString() === 'start', { message: 'the shared document to reach the victim' })
  let edits = 0
  return {
    net,
    victim,
    honest,
    lines,
    async evil (o = {}) {
      const e = await createHostilePeer(net.transport(`evil-${hostile.length}`))
      hostile.push(e)
      await e.link('victim', o)
      return e
    },
    async checkSyncing () {
      const word = ` e${++edits}`
      mine.getText('t').insert(mine.getText('t').length, word)
      const expected = mine.getText('t').toString()
      await waitFor(() => theirs.getText('t').toString() === expected, { message: 'an honest edit to reach the victim' })
      expect(victim.metrics().sessions).toBeGreaterThanOrEqual(1)
      expect(victim.peers().find(p => p.id === 'honest')?.connected).toBe(true)
    },
    async probe (evil) {
      const docId = `probe/${++probes}`
      let seen = false
      const off = victim.on('doc:update', ev => { if (ev.docId === docId) seen = true })
      try {
        await evil.send('victim', encodeLive([{ docId, update: validUpdate('p') }]))
        await waitFor(() => seen, { message: `the victim to apply ${docId}` })
      } finally {
        off()
      }
    },
    async stop () {
      for (const e of hostile) await e.stop()
      await honest.stop()
      await victim.stop()
    }
  }
}
