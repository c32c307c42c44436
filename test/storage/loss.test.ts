/**
 * Losses on disk are never silent: bit flips in LevelDB's write-ahead log make it drop records
 * at the next open without an error; the node then names the documents that are gone in
 * `problems()`, counts them in `metrics().docsLost`, logs a warning, and a peer restores them.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMemoryNetwork, createNode, writerLogger } from '@hearsay/core'
import type { HearsayNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createLevelStorage } from '@hearsay/leveldb'
import { afterEach, describe, expect, it } from 'vitest'

const quiet = { enabled: false, onConnect: false }
const IDS = Array.from({ length: 60 }, (_, i) => `notes/${i}`)
const dirs: string[] = []
const nodes: HearsayNode[] = []
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop()
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})
async function dir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hs-loss-'))
  dirs.push(d)
  return d
}

/** Writes each document in its own flush (one write batch each), then closes cleanly. */
async function writeDocs (path: string, passes = 1): Promise<void> {
  const n = createNode({ id: 'w', transport: createMemoryNetwork({ seed: 5 }).transport('w'), storage: createLevelStorage({ path, durability: 'process' }), antiEntropy: quiet })
  await n.start()
  for (let pass = 0; pass < passes; pass++) {
    for (const id of IDS) {
      const doc = await n.open(id)
      doc.getText('t').insert(0, pass === 0 ? `text of ${id} `.repeat(20) : `edit ${pass} `.repeat(20))
      await n.flush()
    }
  }
  await n.stop()
}

/** Flips one bit at `at` (a fraction of its length) of every write-ahead log of the store; returns how many. */
async function flipWal (path: string, at = 0.5): Promise<number> {
  let n = 0
  for (const f of await readdir(path)) {
    if (!f.endsWith('.log')) continue
    const b = await readFile(join(path, f))
    if (b.length < 1024) continue
    const i = Math.floor(b.length * at)
    b[i] = (b[i] as number) ^ 0x08
    await writeFile(join(path, f), b)
    n++
  }
  return n
}

function started (path: string, net = createMemoryNetwork({ seed: 6 })): { node: HearsayNode, lines: string[], net: ReturnType<typeof createMemoryNetwork> } {
  const lines: string[] = []
  const node = createNode({ id: 'a', transport: net.transport('a'), storage: createLevelStorage({ path }), antiEntropy: quiet, logger: writerLogger({ level: 'warn', write: l => { lines.push(l) } }) })
  nodes.push(node)
  return { node, lines, net }
}

describe('documents lost from disk', () => {
  it('a clean restart reports nothing', async () => {
    const path = await dir()
    await writeDocs(path)
    const { node } = started(path)
    await node.start()
    expect(node.docs().length).toBe(IDS.length)
    expect(node.problems()).toEqual([])
    expect(node.metrics().docsLost).toBe(0)
  })

  it('a bit flip in the write-ahead log: the documents it dropped are named, counted, logged, and restored by a peer', async () => {
    const path = await dir()
    await writeDocs(path)
    expect(await flipWal(path)).toBeGreaterThan(0)
    const net = createMemoryNetwork({ seed: 6 })
    const { node: a, lines } = started(path, net)
    await a.start()
    const have = new Set(a.docs())
    const gone = IDS.filter(id => !have.has(id))
    expect(gone.length).toBeGreaterThan(0)
    const problems = a.problems()
    expect(problems.filter(p => p.kind === 'missing').map(p => p.docId).sort()).toEqual([...gone].sort())
    expect(a.metrics().docsLost).toBe(gone.length)
    expect(lines.some(l => /lost data/.test(l) && /gone/.test(l))).toBe(true)

    // a peer holding every document restores them, and the problems clear
    const b = createNode({ id: 'b', transport: net.transport('b'), antiEntropy: quiet })
    nodes.push(b)
    await b.start()
    for (const id of IDS) (await b.open(id)).getText('t').insert(0, `text of ${id} `.repeat(20))
    net.connect('a', 'b')
    await waitFor(() => a.metrics().sessions === 1 && b.metrics().sessions === 1, { message: 'session' })
    await a.syncWith('b', { mode: 'push-pull' })
    await a.flush()
    expect(a.docs().length).toBe(IDS.length)
    expect(a.problems()).toEqual([])
    expect(a.metrics().docsLost).toBe(0)
  })

  it('without a manifest (after a crash), LevelDB dropping records is still reported', async () => {
    const path = await dir()
    await writeDocs(path)
    await rm(join(path, 'HEARSAY-MANIFEST'))
    expect(await flipWal(path)).toBeGreaterThan(0)
    const { node: a } = started(path)
    await a.start()
    expect(a.docs().length).toBeLessThan(IDS.length)
    expect(a.problems()).toEqual([expect.objectContaining({ kind: 'damaged', error: 'StorageLossError', message: expect.stringMatching(/write-ahead log/) })])
  })

  it('a bit flip that drops later writes of documents that still exist names them too', async () => {
    const path = await dir()
    await writeDocs(path, 2)
    // in the second pass: the documents stay, their edits are dropped
    expect(await flipWal(path, 0.75)).toBeGreaterThan(0)
    const { node: a } = started(path)
    await a.start()
    expect(a.docs().length).toBe(IDS.length)
    const older: string[] = []
    for (const id of IDS) if (!(await a.open(id)).getText('t').toString().startsWith('edit 1')) older.push(id)
    expect(older.length).toBeGreaterThan(0)
    const problems = a.problems()
    expect(problems.map(p => p.docId).sort()).toEqual([...older].sort())
    expect(problems.every(p => p.kind === 'missing' && /latest writes are gone/.test(p.message))).toBe(true)
  })
})
