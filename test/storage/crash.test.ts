/**
 * Crash safety with a real child process: the child writes continuously and prints every
 * acknowledged write; we SIGKILL it at seeded random moments, 20 times, on the same directory, and
 * check after each kill that the store opens cleanly and holds every acknowledged write. Once with
 * the child appending to the storage itself, once with edits through a real node acknowledged by
 * `node.flush()`. Then a node receiving a large sync is killed mid-way, 3 times: nothing it had
 * flushed is lost, no loss is reported falsely, and the next exchange completes the sync.
 * Replay a failure with HEARSAY_SEED=<seed>.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMemoryNetwork, createMemoryStorage, createNode, createRandom, docFingerprint } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'
import { createLevelStorage } from '@hearsay/leveldb'
import { afterAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { populate } from './populate.js'

const here = dirname(fileURLToPath(import.meta.url))
const CHILD = join(here, 'crash-child.ts')
const SEED = Number(process.env.HEARSAY_SEED ?? 20240611)
const KILLS = 20

interface Run {
  child: ChildProcess
  lines: string[]
  exited: Promise<void>
  stderr: string[]
}

function start (path: string, gen: number, durability: string, mode: string, extra: string[] = []): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', CHILD, path, String(SEED), String(gen), durability, mode, ...extra], {
    cwd: here,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  const stderr: string[] = []
  let partial = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr.push(chunk) })
  // 'close' fires after the process exited AND its stdio streams ended: every printed line is in.
  const exited = new Promise<void>(resolve => child.on('close', () => { resolve() }))
  return { child, lines, exited, stderr }
}

/** The child failed to reach the kill moment: kill it and fail with what it printed. */
function failWith (run: Run, err: unknown): never {
  run.child.kill('SIGKILL')
  throw new Error(`${(err as Error).message}; child stderr: ${run.stderr.join('')}`)
}

/** The kill moment: the child must still be running; SIGKILL it and wait until it is gone. */
async function killNow (run: Run): Promise<void> {
  expect(run.child.exitCode, `child exited early: ${run.stderr.join('')}`).toBeNull()
  run.child.kill('SIGKILL')
  await run.exited
}

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

describe('a store held by another process', () => {
  it('fails to open with a StorageError naming the path and the lock', async () => {
    const path = await mkdtemp(join(tmpdir(), 'hearsay-lock-'))
    dirs.push(path)
    const run = start(path, 0, 'process', 'storage')
    try {
      await waitFor(() => run.lines.length > 0 || run.child.exitCode !== null, { timeoutMs: 20_000, message: 'child ready' })
      expect(run.lines[0], run.stderr.join('')).toBe('ready')
      const err = await createLevelStorage({ path }).open().then(() => undefined, (e: unknown) => e as Error)
      expect(err?.name).toBe('StorageError')
      expect(err?.message).toContain(path)
      expect(err?.message).toMatch(/locked/)
    } finally {
      run.child.kill('SIGKILL')
      await run.exited
    }
    // the lock dies with the process
    const store = createLevelStorage({ path })
    await store.open()
    await store.close()
  })
})

describe.each(['storage', 'node'])('crash safety (SIGKILL), writes through %s', mode => {
  it(`keeps every acknowledged write across ${KILLS} kills at random moments (seed ${SEED})`, async () => {
    const rnd = createRandom(SEED + (mode === 'node' ? 1 : 0))
    const path = await mkdtemp(join(tmpdir(), 'hearsay-crash-'))
    dirs.push(path)
    const acked = new Map<string, string[]>() // docId -> labels
    const meta = new Map<string, string[]>() // key -> values acknowledged, in order
    let totalAcks = 0
    const started = Date.now()

    for (let gen = 0; gen < KILLS; gen++) {
      const durability = gen % 2 === 0 ? 'process' : 'power'
      const run = start(path, gen, durability, mode)
      // the kill moment: mostly after a seeded number of acknowledged writes, sometimes right at
      // 'ready' (writers starting), sometimes during start-up and LevelDB recovery
      const roll = rnd.next()
      const countAcks = (): number => run.lines.filter(l => l.startsWith('ack ')).length
      const exitedEarly = (): boolean => run.child.exitCode !== null
      try {
        if (roll < 0.1) {
          const ms = 20 + rnd.int(400)
          await new Promise(resolve => setTimeout(resolve, ms))
        } else if (roll < 0.2) {
          await waitFor(() => run.lines.length > 0 || exitedEarly(), { timeoutMs: 20_000, intervalMs: 1, message: `generation ${gen}: ready` })
        } else {
          const target = 1 + rnd.int(gen % 4 === 0 ? 400 : 120)
          await waitFor(() => countAcks() >= target || exitedEarly(), { timeoutMs: 20_000, intervalMs: 2, message: `generation ${gen}: ${target} acks` })
          // a seeded extra moment inside the next writes, so kills do not all land right after an ack
          const extraMs = rnd.int(4)
          if (extraMs > 0) await new Promise(resolve => setTimeout(resolve, extraMs))
        }
      } catch (err) {
        failWith(run, err)
      }
      await killNow(run)
      expect(run.child.signalCode).toBe('SIGKILL')
      if (run.lines.length > 0) expect(run.lines[0]).toBe('ready')

      for (const line of run.lines) {
        const [kind, key, label] = line.split(' ')
        if (kind === 'ack' && key !== undefined && label !== undefined) {
          const list = acked.get(key) ?? []
          list.push(label)
          acked.set(key, list)
          totalAcks++
        } else if (kind === 'meta' && key !== undefined && label !== undefined) {
          meta.set(key, [...(meta.get(key) ?? []), label])
        }
      }

      // the store opens cleanly and holds every acknowledged write
      const store = createLevelStorage({ path, autoCompact: false })
      await store.open()
      try {
        // a kill is not a loss: nothing is reported
        expect(store.losses()).toEqual([])
        const listed = new Set((await store.list()).map(d => d.id))
        for (const [docId, labels] of acked) {
          expect(listed.has(docId), `${docId} listed after kill ${gen}`).toBe(true)
          const doc = new Y.Doc()
          for (const u of await store.load(docId)) Y.applyUpdate(doc, u)
          const present = new Set(doc.getText('t').toString().split(';'))
          const missing = labels.filter(l => !present.has(l))
          expect(missing, `acknowledged writes missing from ${docId} after kill ${gen}`).toEqual([])
        }
        for (const [key, labels] of meta) {
          const got = new TextDecoder().decode(await store.getMeta(key))
          // the last acknowledged value, or a newer one whose ack the kill cut off; never an older one
          expect(got === labels.at(-1) || !labels.includes(got), `meta ${key} after kill ${gen}: ${got}`).toBe(true)
        }
        expect((await store.verify()).corrupt).toEqual([])
      } finally {
        await store.close()
      }
    }
    expect(totalAcks).toBeGreaterThan(KILLS)
    // compactions ran (and so were interrupted by some kills): documents hold fewer records than writes
    const store = createLevelStorage({ path, autoCompact: false })
    await store.open()
    const compacted = []
    for (const [docId, labels] of acked) {
      const st = await store.stats(docId)
      if (st !== undefined && st.records < labels.length) compacted.push(docId)
    }
    await store.close()
    expect(compacted.length).toBeGreaterThan(0)
    // eslint-disable-next-line no-console -- test report
    console.log(`crash test (${mode}): ${KILLS} kills, ${totalAcks} acknowledged writes kept, ${Date.now() - started} ms`)
  })
})

describe('crash safety (SIGKILL) during a large incoming sync', () => {
  const DOCS = 4000
  const SYNC_KILLS = 3
  it(`keeps every flushed document of a ${DOCS.toLocaleString('en')}-document sync across ${SYNC_KILLS} kills, reports no loss, and the next exchange completes it (seed ${SEED})`, async () => {
    const rnd = createRandom(SEED + 2)
    const path = await mkdtemp(join(tmpdir(), 'hs-crash-sync-'))
    dirs.push(path)
    // what the source holds: populate() is deterministic
    const reference = createMemoryStorage()
    await reference.open()
    await populate(reference, DOCS, 3, docFingerprint)
    const textOf = async (store: { load: (id: string) => Promise<Uint8Array[]> }, id: string): Promise<string> => {
      const doc = new Y.Doc()
      for (const u of await store.load(id)) Y.applyUpdate(doc, u)
      return doc.getText('t').toString()
    }
    const acked = new Set<string>()
    let midway = 0
    for (let gen = 0; gen < SYNC_KILLS; gen++) {
      const run = start(path, gen, gen % 2 === 0 ? 'process' : 'power', 'sync', [String(DOCS)])
      const acks = (): number => run.lines.filter(l => l.startsWith('ack ')).reduce((n, l) => n + l.slice(4).split(',').length, 0)
      const target = 1 + rnd.int(Math.floor(DOCS / (SYNC_KILLS - gen + 1)))
      try {
        await waitFor(() => acks() >= target || run.lines.includes('done') || run.child.exitCode !== null, { timeoutMs: 60_000, intervalMs: 1, message: `generation ${gen}: ${target} documents stored` })
      } catch (err) {
        failWith(run, err)
      }
      await killNow(run)
      if (!run.lines.includes('done')) midway++
      expect(run.lines.filter(l => l.startsWith('problems ')), 'no loss reported after an earlier kill').toEqual([])
      for (const line of run.lines) if (line.startsWith('ack ')) for (const id of line.slice(4).split(',')) acked.add(id)

      const store = createLevelStorage({ path, autoCompact: false })
      await store.open()
      try {
        expect(store.losses()).toEqual([])
        const listed = new Set((await store.list()).map(d => d.id))
        for (const id of acked) {
          expect(listed.has(id), `${id} listed after kill ${gen}`).toBe(true)
          expect(await textOf(store, id)).toBe(await textOf(reference, id))
        }
        expect((await store.verify()).corrupt).toEqual([])
      } finally {
        await store.close()
      }
    }
    expect(midway).toBeGreaterThan(0)
    expect(acked.size).toBeGreaterThan(0)

    // the next exchange completes the sync
    const net = createMemoryNetwork({ seed: 21, autoConnect: false })
    const quiet = { enabled: false, onConnect: false }
    const source = createNode({ id: 'source', transport: net.transport('source'), storage: reference, antiEntropy: quiet })
    const receiver = createNode({ id: 'receiver', transport: net.transport('receiver'), storage: createLevelStorage({ path }), antiEntropy: quiet })
    await source.start()
    await receiver.start()
    try {
      expect(receiver.problems()).toEqual([])
      net.connect('source', 'receiver')
      await waitFor(() => receiver.metrics().sessions === 1, { message: 'session' })
      await receiver.syncWith('source')
      await receiver.flush()
      expect(receiver.docs().length).toBe(DOCS)
      expect(receiver.digest().root).toEqual(source.digest().root)
    } finally {
      await receiver.stop()
      await source.stop()
    }
    // eslint-disable-next-line no-console -- test report
    console.log(`crash during sync: ${SYNC_KILLS} kills (${midway} mid-sync), ${acked.size} flushed documents kept, sync completed after`)
  })
})
