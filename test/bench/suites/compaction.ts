/**
 * Compaction benchmark: one map key overwritten 40 times with a 900 KB value through the real
 * `hearsay` daemon (child process, HTTP API, LevelDB). Reports the bytes stored before and after
 * compaction (the store's own records, and the directory) and the daemon's RSS against its
 * baseline once compaction has run.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLevelStorage } from '@hearsay/leveldb'
import { waitFor } from '@hearsay/core/testing'
import * as Y from 'yjs'

interface Table { title: string, columns: string[], rows: Array<Array<string | number>> }

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const CLI = join(ROOT, 'packages', 'daemon', 'src', 'cli.ts')
const OVERWRITES = 40
const VALUE_BYTES = 900 * 1024
const DOC = 'bench/overwrite'
const MB = 1024 * 1024
const round = (x: number, digits = 1): number => Number(x.toFixed(digits))

/** A deterministic value of `n` characters, different per round. */
function value (round: number, n = VALUE_BYTES): string {
  let s = ''
  let x = 0x2545f491 ^ round
  while (s.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    s += (x >>> 8).toString(36)
  }
  return s.slice(0, n)
}

async function rssMB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
  return kb / 1024
}

async function dirBytes (path: string): Promise<number> {
  let n = 0
  for (const f of await readdir(path)) n += (await stat(join(path, f))).size
  return n
}

/** The store's record bytes for the document and the live size of its content. */
async function storedOf (path: string): Promise<{ stored: number, live: number }> {
  const store = createLevelStorage({ path, autoCompact: false })
  await store.open()
  try {
    const stored = (await store.list()).find(d => d.id === DOC)?.bytes ?? 0
    const doc = new Y.Doc()
    for (const u of await store.load(DOC)) Y.applyUpdate(doc, u)
    return { stored, live: Y.encodeStateAsUpdate(doc).length }
  } finally {
    await store.close()
  }
}

export async function run (): Promise<Table[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-bench-compaction-'))
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', CLI, 'start', '--data-dir', dataDir,
    '--http-port', '0', '--log-level', 'warn', '--mdns', 'false', '--listen', '/ip4/127.0.0.1/tcp/0'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  try {
    await waitFor(() => /serving (http:\/\/\S+)/.test(err), { timeoutMs: 30_000, message: `daemon up: ${err}` })
    const url = (/serving (http:\/\/\S+)/.exec(err) as RegExpExecArray)[1] as string
    const pid = child.pid as number
    // baseline: one small write so the document and the write path exist
    const put = async (v: unknown): Promise<void> => {
      const res = await fetch(`${url}/api/docs/${encodeURIComponent(DOC)}/k`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(v) })
      if (!res.ok) throw new Error(`PUT failed: ${res.status} ${await res.text()}`)
    }
    await put('small')
    const baseline = await rssMB(pid)
    let peak = baseline
    const t0 = performance.now()
    for (let i = 0; i < OVERWRITES; i++) {
      await put(value(i))
      peak = Math.max(peak, await rssMB(pid))
    }
    const writeMs = performance.now() - t0
    const afterWrites = await rssMB(pid)
    // compaction runs in the background; RSS settles once it has and the garbage is collected
    let settled = afterWrites
    const settleStart = performance.now()
    try {
      await waitFor(async () => { settled = await rssMB(pid); return settled - baseline <= 50 }, { timeoutMs: 30_000, intervalMs: 250 })
    } catch {
      // reported as measured
    }
    const settleMs = performance.now() - settleStart
    const docsDir = join(dataDir, 'docs')
    const dirBefore = await dirBytes(docsDir)
    child.kill('SIGTERM')
    await exited
    const { stored, live } = await storedOf(docsDir)
    const dirAfter = await dirBytes(docsDir)
    const written = OVERWRITES * VALUE_BYTES
    return [{
      title: `Compaction: one map key overwritten ${OVERWRITES} times with a ${VALUE_BYTES / 1024} KB value through the daemon's HTTP API (LevelDB)`,
      columns: ['measure', 'value', 'target'],
      rows: [
        ['values written', `${round(written / MB)} MB`, ''],
        ['live content (encoded state of the document)', `${round(live / MB, 2)} MB`, ''],
        ['stored record bytes after compaction', `${round(stored / MB, 2)} MB`, '≤ 2 × live'],
        ['LevelDB directory while running / after close', `${round(dirBefore / MB, 1)} MB / ${round(dirAfter / MB, 1)} MB`, ''],
        ['daemon RSS: baseline / peak while writing', `${round(baseline)} MB / ${round(peak)} MB`, ''],
        ['daemon RSS after compaction', `${round(settled)} MB (+${round(settled - baseline)} MB, settled in ${Math.round(settleMs)} ms)`, '≤ baseline + 50 MB'],
        [`${OVERWRITES} PUTs (each flushed)`, `${Math.round(writeMs)} ms`, '']
      ]
    }]
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
  }
}
