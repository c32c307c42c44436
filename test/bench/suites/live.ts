/**
 * The live path side by side with the simplest relay: a stock `@y/websocket-server` relay with
 * `y-websocket` clients, Hearsay nodes (`createHearsayNode`, libp2p TCP + Noise + yamux) and
 * Hearsay daemons with y-websocket clients (client → daemon → libp2p → daemon → client). Every
 * endpoint is its own process (live-child.ts), started by this suite.
 *
 * - latency: one small edit in flight, echoed back by the other end; one way = round trip / 2;
 *   with the CPU all the path's processes spend a round trip, and one more path, a single daemon
 *   with both clients, to show the parts the daemon path is made of;
 * - throughput: 50,000 one-character edits typed one by one (yielding every 1,000), timed until
 *   the other end holds them all; 5 runs each, on the same processes and document;
 * - fan-out: 10,000 edits to 5 readers (a full mesh of 6 Hearsay nodes; 5 clients of the relay);
 * - memory: a daemon holding 10,000 stored documents with 100 of them open (right after reading
 *   them, and after a minute left alone), and the peaks of the daemon the writer edits through
 *   (and of the relay) over the first throughput run and over all five.
 *
 * Daemons run built (`pnpm build` first), as an installed package does.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@hearsay/core/testing'
import type { Table } from '../run.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..', '..')
/** The built daemon, as an installed package runs it (the checkout's `hearsay` runs the sources through tsx, which adds about 60 MB). */
const DAEMON = join(root, 'packages/daemon/dist/cli.js')
const RELAY = join(root, 'test/node_modules/@y/websocket-server/src/server.js')
const LATENCY_SAMPLES = 2000
const LATENCY_WARMUP = 1000
const EDITS = 50_000
const RUNS = 5
const FANOUT_READERS = 5
const FANOUT_EDITS = 10_000
const FANOUT_RUNS = 3
const STORED_DOCS = 10_000
const OPEN_DOCS = 100
/** How long the daemon with the stored documents is left alone before its RSS is read again. */
const SETTLE_MS = 60_000
/** Clock ticks a second, the unit of CPU times in /proc/<pid>/stat. */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

const cleanup: Array<() => void> = []

interface Proc { child: ChildProcessWithoutNullStreams, next: (key: string, timeoutMs?: number) => Promise<Record<string, any>>, send: (o: unknown) => void, log: () => string }

function start (cmd: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(cmd[0] as string, cmd.slice(1), { cwd: root, env: { ...process.env, NODE_OPTIONS: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  cleanup.push(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, any>> = []
  let log = ''
  createInterface({ input: child.stdout }).on('line', l => { try { lines.push(JSON.parse(l) as Record<string, any>) } catch { log += l + '\n' } })
  child.stderr.on('data', (d: Buffer) => { log += d.toString() })
  return {
    child,
    log: () => log,
    send: o => { child.stdin.write(JSON.stringify(o) + '\n') },
    next: async (key, timeoutMs = 120_000) => {
      await waitFor(() => {
        if (child.exitCode !== null && !lines.some(l => key in l)) throw new Error(`process exited before "${key}": ${log.slice(-2000)}`)
        return lines.some(l => key in l)
      }, { timeoutMs, intervalMs: 1, message: `"${key}" from ${cmd.slice(-1)[0] ?? ''}: ${log.slice(-500)}` })
      const i = lines.findIndex(l => key in l)
      return lines.splice(i, 1)[0] as Record<string, any>
    }
  }
}

/** An endpoint process (live-child.ts); `ready` is what it said when it was (its addresses, for a node). */
const endpoint = async (config: Record<string, unknown>): Promise<Proc & { ready: Record<string, any> }> => {
  const p = start([process.execPath, '--import', 'tsx', '--conditions=hearsay-source', join(here, '..', 'live-child.ts'), JSON.stringify(config)])
  return { ...p, ready: await p.next('ready', 60_000) }
}

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

async function relay (): Promise<{ ws: string, pid: number }> {
  const port = await freePort()
  const p = start([process.execPath, RELAY], { HOST: '127.0.0.1', PORT: String(port) })
  await waitFor(() => p.log().includes('running at'), { timeoutMs: 30_000, message: `relay up: ${p.log()}` })
  return { ws: `ws://127.0.0.1:${port}`, pid: p.child.pid as number }
}

function tempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'hs-bench-live-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

interface Daemon { url: string, ws: string, addr: string, pid: number, proc: Proc }

async function daemon (dir: string, bootstrap: string[] = []): Promise<Daemon> {
  const p = start([process.execPath, DAEMON, 'start'], {
    HEARSAY_DATA_DIR: dir, HEARSAY_HTTP_PORT: '0', HEARSAY_LISTEN: '/ip4/127.0.0.1/tcp/0', HEARSAY_MDNS: 'false', HEARSAY_LOG_LEVEL: 'warn', HEARSAY_BOOTSTRAP: bootstrap.join(',')
  })
  await waitFor(() => /serving (http:\/\/\S+)/.test(p.log()), { timeoutMs: 60_000, message: `daemon up: ${p.log()}` })
  const url = (/serving (http:\/\/\S+)/.exec(p.log()) as RegExpExecArray)[1] as string
  const status = await (await fetch(`${url}/status`)).json() as { multiaddrs: string[] }
  return { url, ws: url.replace(/^http/, 'ws'), addr: status.multiaddrs[0] as string, pid: p.child.pid as number, proc: p }
}

/**
 * A quiet process's RSS sampled every second for `SETTLE_MS`: the last sample, and when it last
 * fell by more than 1 MB.
 */
async function settledRss (pid: number): Promise<{ rss: number, settledMs: number }> {
  const start = Date.now()
  let rss = vm(pid, 'VmRSS')
  let settledMs = 0
  while (Date.now() - start < SETTLE_MS) {
    await new Promise(resolve => setTimeout(resolve, 1000))
    const now = vm(pid, 'VmRSS')
    if (now < rss - 1024 * 1024) settledMs = Date.now() - start
    rss = now
  }
  return { rss, settledMs }
}

const vm = (pid: number, field: string): number => Number(/(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith(field)) ?? '')?.[1] ?? 0) * 1024

/** The two ends of a path, a writer and a reader, each its own process. */
interface Path { name: string, writer: Proc, reader: Proc, writerDaemonPid?: number, stop?: Proc[] }

/** Stop a path's processes (the next measurement gets the machine to itself). */
function stopPath (p: Path): void {
  for (const x of [p.writer, p.reader, ...(p.stop ?? [])]) x.child.kill('SIGKILL')
}

async function nodePair (storage: 'memory' | 'leveldb', room: string): Promise<{ writer: Proc, reader: Proc }> {
  const writer = await endpoint({ kind: 'node', storage, dir: tempDir(), room })
  const reader = await endpoint({ kind: 'node', storage, dir: tempDir(), room, bootstrap: writer.ready.addrs })
  return { writer, reader }
}

/** The paths measured, each made just before it is measured and stopped after, so it runs alone. */
function paths (ws: string): Array<{ name: string, make: (room: string) => Promise<Path> }> {
  const nodes = (storage: 'memory' | 'leveldb'): { name: string, make: (room: string) => Promise<Path> } => ({
    name: `Hearsay nodes, ${storage} storage (node → libp2p → node)`,
    make: async room => ({ name: `Hearsay nodes, ${storage} storage (node → libp2p → node)`, ...await nodePair(storage, room) })
  })
  return [{
    name: 'y-websocket relay (client → relay → client)',
    make: async room => ({ name: 'y-websocket relay (client → relay → client)', writer: await endpoint({ kind: 'yws', url: ws, room }), reader: await endpoint({ kind: 'yws', url: ws, room }) })
  }, nodes('memory'), nodes('leveldb'), {
    name: 'Hearsay daemons (client → daemon → libp2p → daemon → client)',
    make: async room => {
      const a = await daemon(tempDir())
      const b = await daemon(tempDir(), [a.addr])
      await waitFor(async () => ((await (await fetch(`${b.url}/status`)).json()) as { peers: Array<{ connected: boolean }> }).peers.some(p => p.connected), { timeoutMs: 30_000, message: 'daemons connected' })
      return { name: 'Hearsay daemons (client → daemon → libp2p → daemon → client)', writer: await endpoint({ kind: 'yws', url: a.ws, room }), reader: await endpoint({ kind: 'yws', url: b.ws, room }), writerDaemonPid: a.pid, stop: [a.proc, b.proc] }
    }
  }]
}

/**
 * Latency only: one daemon with both clients (client → daemon → client), the daemon path without
 * its libp2p hop, to show what each part of the daemon path costs.
 */
const oneDaemon = {
  name: 'one Hearsay daemon (client → daemon → client)',
  make: async (room: string): Promise<Path> => {
    const a = await daemon(tempDir())
    return { name: 'one Hearsay daemon (client → daemon → client)', writer: await endpoint({ kind: 'yws', url: a.ws, room }), reader: await endpoint({ kind: 'yws', url: a.ws, room }), stop: [a.proc] }
  }
}

/** CPU time a process has used so far (user + system, all its threads), in ms. */
const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

/** `n` edits on the writer, timed until every reader holds `total` characters. */
async function timedEdits (writer: Proc, readers: Proc[], n: number, total: number): Promise<number> {
  for (const r of readers) r.send({ cmd: 'expect', n: total })
  const t0 = performance.now()
  writer.send({ cmd: 'type', n, yieldEvery: 1000 })
  await writer.next('typed')
  for (const r of readers) await r.next('reached')
  return performance.now() - t0
}

export async function run (): Promise<Table[]> {
  execFileSync('pnpm', ['build'], { cwd: root, stdio: 'ignore' })
  try {
    return await measure()
  } finally {
    for (const fn of cleanup.splice(0).reverse()) { try { fn() } catch {} }
  }
}

async function measure (): Promise<Table[]> {
  const relayProc = await relay()
  const ws = relayProc.ws
  const all = paths(ws)
  const latency: Array<Array<string | number>> = []
  const throughput: Array<Array<string | number>> = []
  let relayLatency = 0
  let relayRate = 0
  let writerDaemonPeak = 0
  let writerDaemonFirstPeak = 0
  let relayFirstPeak = 0
  for (const made of [...all, oneDaemon]) {
    const path = await made.make('latency')
    path.reader.send({ cmd: 'echo' })
    await path.reader.next('echoing')
    // the CPU every process of the path (the relay included) spent, per round trip
    const pids = [path.writer, path.reader, ...(path.stop ?? [])].map(p => p.child.pid as number)
    if (relayLatency === 0) pids.push(relayProc.pid)
    const cpu0 = pids.map(cpuMs)
    path.writer.send({ cmd: 'latency', n: LATENCY_SAMPLES, warmup: LATENCY_WARMUP })
    const l = await path.writer.next('p50')
    const cpuPerTrip = pids.reduce((sum, pid, i) => sum + cpuMs(pid) - (cpu0[i] as number), 0) / (LATENCY_SAMPLES + LATENCY_WARMUP) * 1000
    if (relayLatency === 0) relayLatency = l.p50 as number
    latency.push([path.name, l.p50 as number, l.p99 as number, (l.p50 as number) / relayLatency, Math.round(cpuPerTrip)])
    stopPath(path)
  }
  // throughput on fresh processes and a new document (the echoing readers above would answer every edit)
  for (const made of all) {
    const path = await made.make('throughput')
    const runs: number[] = []
    for (let r = 0; r < RUNS; r++) {
      runs.push(await timedEdits(path.writer, [path.reader], EDITS, (r + 1) * EDITS))
      // the peaks over one 50,000-edit run, on a 50,000-character document
      if (r === 0 && path.writerDaemonPid !== undefined) writerDaemonFirstPeak = vm(path.writerDaemonPid, 'VmHWM')
      if (r === 0 && relayRate === 0) relayFirstPeak = vm(relayProc.pid, 'VmHWM')
    }
    const med = median(runs)
    const rate = EDITS / (med / 1000)
    if (relayRate === 0) relayRate = rate
    throughput.push([path.name, med, Math.round(rate), Math.min(...runs), Math.max(...runs), Math.max(...runs) / Math.min(...runs), rate / relayRate])
    if (path.writerDaemonPid !== undefined) writerDaemonPeak = vm(path.writerDaemonPid, 'VmHWM')
    stopPath(path)
  }

  const relayPeak = vm(relayProc.pid, 'VmHWM')

  // fan-out: a writer and 5 readers
  const fan: Array<Array<string | number>> = []
  const relayWriter = await endpoint({ kind: 'yws', url: ws, room: 'fan' })
  const relayReaders: Proc[] = []
  for (let i = 0; i < FANOUT_READERS; i++) relayReaders.push(await endpoint({ kind: 'yws', url: ws, room: 'fan' }))
  const nodeWriter = await endpoint({ kind: 'node', storage: 'memory', room: 'fan' })
  const nodeReaders: Proc[] = []
  for (let i = 0; i < FANOUT_READERS; i++) nodeReaders.push(await endpoint({ kind: 'node', storage: 'memory', room: 'fan', bootstrap: nodeWriter.ready.addrs }))
  let relayFan = 0
  for (const [name, writer, readers] of [['y-websocket relay, 5 clients', relayWriter, relayReaders], ['Hearsay, 6 nodes in a full mesh', nodeWriter, nodeReaders]] as const) {
    const runs: number[] = []
    for (let r = 0; r < FANOUT_RUNS; r++) runs.push(await timedEdits(writer, [...readers], FANOUT_EDITS, (r + 1) * FANOUT_EDITS))
    const med = median(runs)
    if (relayFan === 0) relayFan = med
    fan.push([name, med, Math.round(FANOUT_EDITS / (med / 1000)), med / relayFan])
  }

  // memory: a daemon holding 10,000 stored documents, 100 of them open
  const dir = tempDir()
  const filler = await endpoint({ kind: 'node', storage: 'leveldb', dir, room: 'unused' })
  filler.send({ cmd: 'fill', n: STORED_DOCS })
  await filler.next('filled', 300_000)
  const big = await daemon(dir)
  for (let i = 0; i < OPEN_DOCS; i++) await (await fetch(`${big.url}/api/docs/${encodeURIComponent(`doc/${i}`)}`)).arrayBuffer()
  const docs = ((await (await fetch(`${big.url}/status`)).json()) as { metrics: { docs: number, docsInMemory: number } }).metrics
  const bigRss = vm(big.pid, 'VmRSS')
  // then left alone: V8 gives back the young generation it grew while starting once the process
  // has been quiet for a while (its memory reducer), which is what a long-running daemon holds
  const quiet = await settledRss(big.pid)

  const lat = latency.find(r => String(r[0]).startsWith('Hearsay nodes, memory'))
  const dae = latency.find(r => String(r[0]).startsWith('Hearsay daemons'))
  const one = latency.find(r => r[0] === oneDaemon.name)
  const nodeRate = throughput.filter(r => String(r[0]).startsWith('Hearsay nodes')).map(r => r[2] as number)
  const daeRow = throughput.find(r => String(r[0]).startsWith('Hearsay daemons'))
  const MB = 1024 * 1024
  return [{
    title: 'Live path latency: one small edit between two processes, side by side with a y-websocket relay (ms, one way)',
    columns: ['path', 'p50', 'p99', 'p50 ÷ relay p50', 'CPU µs per round trip'],
    rows: latency,
    notes: [
      `${LATENCY_SAMPLES} edits after ${LATENCY_WARMUP} to warm up, one in flight: the other end answers each with an edit of its own; one way = round trip / 2. Every endpoint and the relay (@y/websocket-server 0.1.1) is its own process, on loopback; each path runs alone (its processes start before it is measured and stop after).`,
      `CPU per round trip: user + system time of all the path's processes (the relay's included), over the ${(LATENCY_SAMPLES + LATENCY_WARMUP).toLocaleString('en')} round trips, on ${availableParallelism()} cores.`,
      ...(one !== undefined && lat !== undefined && dae !== undefined ? [`The daemon path is the one-daemon path (${(one[3] as number).toFixed(2)}×) with a libp2p hop between nodes (${(lat[3] as number).toFixed(2)}×) inside it: about ${((one[3] as number) + (lat[3] as number)).toFixed(2)}× before its four processes share the cores (measured ${(dae[3] as number).toFixed(2)}×).`] : []),
      `targets: nodes p50 ≤ 1.0× the relay (${lat !== undefined && (lat[3] as number) <= 1 ? 'met' : 'MISSED'}), p99 ≤ 2 ms (${lat !== undefined && (lat[2] as number) <= 2 ? 'met' : 'MISSED'}); daemons p50 ≤ 1.5× the relay (${dae !== undefined && (dae[3] as number) <= 1.5 ? 'met' : 'MISSED'})`
    ]
  }, {
    title: `Live path throughput: ${EDITS.toLocaleString('en')} small edits one by one, ${RUNS} runs`,
    columns: ['path', 'median ms', 'updates/s (median)', 'fastest ms', 'slowest ms', 'slowest ÷ fastest', 'rate ÷ relay'],
    rows: throughput,
    notes: [
      'One-character inserts typed one by one on the writer, yielding to the event loop every 1,000, timed until the reader holds them all; the same processes and document for every run (each run adds 50,000 characters).',
      `targets: nodes ≥ 100,000 updates/s (${nodeRate.every(r => r >= 100_000) ? 'met' : 'MISSED'}: ${nodeRate.join(' / ')}); daemons ≥ 2× the relay (${daeRow !== undefined && (daeRow[6] as number) >= 2 ? 'met' : 'MISSED'}) with the slowest run within 1.5× the fastest (${daeRow !== undefined && (daeRow[5] as number) <= 1.5 ? 'met' : 'MISSED'})`
    ]
  }, {
    title: `Fan-out: ${FANOUT_EDITS.toLocaleString('en')} edits to ${FANOUT_READERS} readers (median of ${FANOUT_RUNS})`,
    columns: ['setup', 'ms until every reader holds them', 'updates/s', '÷ relay'],
    rows: fan,
    notes: [`target: Hearsay ≤ 0.7× the relay's time (${(fan[1]?.[3] as number) <= 0.7 ? 'met' : 'MISSED'})`]
  }, {
    title: 'Daemon memory',
    columns: ['what', 'MB', 'target MB'],
    rows: [
      [`RSS with ${docs.docs.toLocaleString('en')} stored documents, ${docs.docsInMemory} in memory, right after ${OPEN_DOCS} were read through the HTTP API`, bigRss / MB, '—'],
      [`the same daemon ${SETTLE_MS / 1000} s later, left alone (settled ${Math.round(quiet.settledMs / 1000)} s after the reads)`, quiet.rss / MB, 100],
      [`peak RSS of the daemon the writer edits through, over the first ${EDITS.toLocaleString('en')}-edit run`, writerDaemonFirstPeak / MB, 150],
      [`peak RSS of the y-websocket relay over its first ${EDITS.toLocaleString('en')}-edit run (it holds the same document in memory only)`, relayFirstPeak / MB, '—'],
      [`peak RSS of the daemon the writer edits through, over the ${RUNS} throughput runs (the document grows to ${(RUNS * EDITS).toLocaleString('en')} characters)`, writerDaemonPeak / MB, '—'],
      [`peak RSS of the y-websocket relay over the same ${RUNS} runs`, relayPeak / MB, '—']
    ],
    notes: [
      'The daemon keeps the document in memory and in LevelDB (durability "power"), with the engine\'s write queue, live batches and libp2p buffers; the relay keeps only the Y.Doc.',
      'A daemon that has just started, or just worked hard, holds the young generation V8 grew meanwhile (up to 32 MB); V8 returns it once the process has been quiet for about half a minute. The target applies to the settled figure, what a long-running daemon holds.',
      `targets: 10,000 stored documents ≤ 100 MB once settled (${quiet.rss / MB <= 100 ? 'met' : 'MISSED'}); peak over the 50,000-edit run ≤ 150 MB (${writerDaemonFirstPeak / MB <= 150 ? 'met' : 'MISSED'})`
    ]
  }]
}
