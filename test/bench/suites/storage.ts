/**
 * Storage benchmark (@hearsay/leveldb): cold start with 10,000 stored documents, memory with
 * 10,000 stored and 100 open (memory network and libp2p), write throughput under each durability
 * setting, for the store alone and for edits through a node.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { docFingerprint } from '@hearsay/core'
import { createLevelStorage } from '@hearsay/leveldb'
import type { Durability } from '@hearsay/leveldb'
import * as Y from 'yjs'
import { populate } from '../../storage/populate.js'

interface Table { title: string, columns: string[], rows: Array<Array<string | number>> }

const here = dirname(fileURLToPath(import.meta.url))
const CHILD = join(here, '..', 'storage-child.mjs')
/** Built packages run on plain node (a clean process); otherwise the sources run through tsx. */
const BUILT = existsSync(join(here, '..', '..', '..', 'packages', 'leveldb', 'dist', 'index.js'))
const LOADER = BUILT ? [] : ['--import', 'tsx', '--conditions=hearsay-source']
const DOCS = 10_000
const run$ = promisify(execFile)

async function child (args: string[], nodeFlags: string[] = []): Promise<Record<string, number>> {
  const { stdout } = await run$(process.execPath, [...nodeFlags, ...LOADER, CHILD, ...args], { cwd: here, timeout: 60_000 })
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const round = (x: number, digits = 1): number => Number(x.toFixed(digits))

function smallUpdates (n: number): Uint8Array[] {
  const doc = new Y.Doc()
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => out.push(u))
  for (let i = 0; i < n; i++) doc.getText('t').insert(i, 'x')
  return out
}

async function throughput (durability: Durability, inFlight: number, total: number): Promise<{ opsPerSec: number, p50: number, p99: number }> {
  const path = await mkdtemp(join(tmpdir(), 'hearsay-bench-w-'))
  const store = createLevelStorage({ path, durability, autoCompact: false })
  await store.open()
  const updates = smallUpdates(total)
  const fp = new Uint8Array(16)
  const latencies: number[] = []
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
    while (next < total) {
      const i = next++
      const s = performance.now()
      await store.append(`doc-${w}`, [updates[i] as Uint8Array], fp)
      latencies.push(performance.now() - s)
    }
  }))
  const ms = performance.now() - t0
  await store.close()
  await rm(path, { recursive: true, force: true })
  latencies.sort((a, b) => a - b)
  return { opsPerSec: Math.round(total / (ms / 1000)), p50: round(latencies[Math.floor(total * 0.5)] as number, 2), p99: round(latencies[Math.floor(total * 0.99)] as number, 2) }
}

export async function run (): Promise<Table[]> {
  const path = await mkdtemp(join(tmpdir(), 'hearsay-bench-'))
  try {
    const writer = createLevelStorage({ path, durability: 'process' })
    await writer.open()
    const tw = performance.now()
    await populate(writer, DOCS, 3, docFingerprint)
    const populateMs = performance.now() - tw
    await writer.close()

    // in-process: open + list, 5 times
    const inProc: number[] = []
    for (let i = 0; i < 5; i++) {
      const s = createLevelStorage({ path })
      const t = performance.now()
      await s.open()
      const n = (await s.list()).length
      inProc.push(performance.now() - t)
      await s.close()
      if (n !== DOCS) throw new Error(`listed ${n} documents, expected ${DOCS}`)
    }
    const colds: Array<Record<string, number>> = []
    const nodeColds: Array<Record<string, number>> = []
    for (let i = 0; i < 3; i++) {
      colds.push(await child(['cold', path]))
      nodeColds.push(await child(['node-cold', path]))
    }
    const rss = await child(['rss', path, '100'], ['--expose-gc'])
    const nodeRss = await child(['node-rss', path, '100'], ['--expose-gc'])
    const p2pRss = await child(['libp2p-rss', path, '100'], ['--expose-gc'])
    const ms = (runs: Array<Record<string, number>>, key: string): string => `${round(median(runs.map(c => c[key] as number)))} ms`

    const cold: Table = {
      title: `Storage: cold start with ${DOCS.toLocaleString('en')} stored documents (LevelDB)`,
      columns: ['measure', 'value', 'target'],
      rows: [
        ['open + list(), in process (median of 5)', `${round(median(inProc))} ms`, '≤ 1000 ms'],
        ['new process: start → createNode + start() done, digest ready (median of 3)', ms(nodeColds, 'readyMs'), '≤ 1000 ms'],
        [`  of which module import (${BUILT ? 'built packages' : 'sources through tsx'})`, ms(nodeColds, 'importMs'), ''],
        ['new process: start → store open + listed, no engine (median of 3)', ms(colds, 'readyMs'), '≤ 1000 ms'],
        ['RSS: node on 10,000 stored, 100 open (node.open)', `${round(nodeRss.rssMB as number)} MB`, '≤ 130 MB'],
        ['  JS heap used', `${round(nodeRss.heapMB as number)} MB`, ''],
        ['RSS: createHearsayNode (libp2p, TCP on 127.0.0.1, mDNS off) on 10,000 stored, 100 open', `${round(p2pRss.rssMB as number)} MB`, '≤ 130 MB'],
        ['  JS heap used', `${round(p2pRss.heapMB as number)} MB`, ''],
        ['RSS: store only, 10,000 stored, 100 loaded into Y.Docs', `${round(rss.rssMB as number)} MB`, '≤ 130 MB'],
        [`populate ${DOCS.toLocaleString('en')} documents × 3 appends ('process')`, `${Math.round(populateMs)} ms`, '']
      ]
    }

    const rows: Array<Array<string | number>> = []
    for (const durability of ['process', 'power'] as const) {
      for (const inFlight of [1, 16, 64]) {
        const total = durability === 'power' && inFlight === 1 ? 300 : 3000
        const r = await throughput(durability, inFlight, total)
        rows.push([durability, inFlight, total, r.opsPerSec, r.p50, r.p99])
      }
    }
    const writes: Table = {
      title: 'Storage: append throughput by durability (one small update per append, group commit)',
      columns: ['durability', 'appends in flight', 'appends', 'appends/s', 'p50 ms', 'p99 ms'],
      rows
    }
    const nodeRows: Array<Array<string | number>> = []
    for (const durability of ['process', 'power'] as const) {
      const wpath = await mkdtemp(join(tmpdir(), 'hearsay-bench-nw-'))
      try {
        const edits = durability === 'power' ? 1000 : 3000
        const r = await child(['node-writes', wpath, durability, String(edits)])
        nodeRows.push([durability, edits, Math.round(r.editsPerSec as number), round(r.p50 as number, 2), round(r.p99 as number, 2)])
      } finally {
        await rm(wpath, { recursive: true, force: true })
      }
    }
    const nodeWrites: Table = {
      title: 'Storage: edits through a node, one at a time (node.open, one text insert, await node.flush())',
      columns: ['durability', 'edits', 'edits/s', 'p50 ms', 'p99 ms'],
      rows: nodeRows
    }
    return [cold, writes, nodeWrites]
  } finally {
    await rm(path, { recursive: true, force: true })
  }
}
