/**
 * A chaos run on real hosts: `hearsay start` daemons in network namespaces on one bridge, one
 * private swarm, mDNS discovery, while clients write through each daemon's HTTP API and every
 * acknowledged write (2xx) is recorded. Faults, all drawn from one seed: SIGKILL of a daemon and a
 * restart over the same data directory, partitions (blackhole routes between two groups of hosts,
 * made and healed), a host cut off from all others and then killed (its latest acknowledged writes
 * exist only in its own store; always the first fault), and packet loss on every host (iptables
 * `statistic` match; skipped with a reason when iptables is missing). Afterwards every fault is healed and the run waits, with a
 * deadline, until every host holds every acknowledged write and all hosts hold the same documents.
 *
 * Used by test/chaos/chaos.test.ts (short) and test/bench/suites/chaos.ts (long).
 */
import { execFileSync } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRandom } from '@hearsay/core'
import type { Random } from '@hearsay/core'
import { iptablesUnavailable } from '../netns.js'
import type { Lan } from '../netns.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const CLI = join(ROOT, 'packages', 'daemon', 'src', 'cli.ts')
const HTTP_PORT = 4410
const P2P_PORT = 4001
/** Every daemon process is killed after this long whatever happens. */
const PROCESS_TIMEOUT_S = 900
/** A daemon must be serving this soon after it is started. */
const START_TIMEOUT_MS = 60_000
/** A write that gets no answer this soon counts as not acknowledged. */
const WRITE_TIMEOUT_MS = 3_000
/** Pause of each writer between writes: a steady load, not a flood. */
const WRITE_PACE_MS = 40
/** Storage batching of the daemons, in ms. */
const STORAGE_BATCH_MS = 250
/** How much of each daemon's stderr is kept for failure reports. */
const LOG_KEEP = 40

export interface ChaosOptions {
  /** Every random choice (faults, documents, loss) comes from it. */
  seed: number
  /** @default 5 */
  hosts?: number
  /** Documents the writes spread over. @default 6 */
  docs?: number
  /** How long faults are injected while clients write, in ms. */
  faultMs: number
  /** Upper bound of the packet loss drawn for the run (0.05 = 5 %). @default 0.1 */
  maxLoss?: number
  /** How long convergence may take once every fault is healed, in ms. */
  convergeTimeoutMs: number
  /** Progress lines. */
  log?: (line: string) => void
}

export interface ChaosReport {
  seed: number
  hosts: number
  faultMs: number
  writesAttempted: number
  writesAcked: number
  kills: number
  partitions: number
  /** Packet loss applied on every host, in percent; undefined when skipped. */
  lossPercent: number | undefined
  /** Why loss was not applied. */
  lossSkipped: string | undefined
  /** From the moment every fault was healed until every host held every acknowledged write. */
  convergeMs: number
  /** Every host holds exactly the same data in every document. */
  identical: boolean
}

export class ChaosError extends Error {
  static readonly code = 'ChaosError'
  override readonly name = 'ChaosError'
}

interface Write { doc: string, key: string, value: number }

class DaemonHost {
  proc: ChildProcessWithoutNullStreams | undefined
  up = false
  readonly logs: string[] = []
  constructor (readonly lan: Lan, readonly i: number, readonly dir: string) {}

  get url (): string { return `http://${this.lan.addr(this.i)}:${HTTP_PORT}` }

  async start (): Promise<void> {
    const proc = this.lan.spawnIn(this.i, [process.execPath, '--import', 'tsx', '--conditions=hearsay-source', CLI, 'start'], {
      timeoutS: PROCESS_TIMEOUT_S,
      cwd: ROOT,
      env: {
        // none of the caller's HEARSAY_* settings: the run decides every one
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HEARSAY_'))),
        NODE_OPTIONS: '',
        HEARSAY_DATA_DIR: this.dir,
        HEARSAY_HTTP_HOST: this.lan.addr(this.i),
        HEARSAY_HTTP_PORT: String(HTTP_PORT),
        HEARSAY_LISTEN: `/ip4/${this.lan.addr(this.i)}/tcp/${P2P_PORT}`,
        HEARSAY_LOG_LEVEL: 'warn',
        HEARSAY_DURABILITY: 'power',
        // batches far apart (as on an SD card): a write acknowledged before it is stored would be
        // lost by a SIGKILL in that window, so the run checks that a 2xx waits for the store
        HEARSAY_STORAGE_BATCH_MS: String(STORAGE_BATCH_MS)
      }
    })
    this.proc = proc
    let buffered = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new ChaosError(`host ${this.i} did not start within ${START_TIMEOUT_MS} ms: ${this.logs.join('\n')}`)) }, START_TIMEOUT_MS)
      proc.stderr.on('data', (d: Buffer) => {
        buffered += d.toString()
        const lines = buffered.split('\n')
        buffered = lines.pop() ?? ''
        for (const line of lines) {
          this.logs.push(line)
          if (this.logs.length > LOG_KEEP) this.logs.shift()
          if (line.includes(' serving http://')) { clearTimeout(timer); resolve() }
        }
      })
      proc.stdout.resume()
      proc.once('exit', code => { clearTimeout(timer); reject(new ChaosError(`host ${this.i} exited with ${String(code)} while starting: ${this.logs.join('\n')}`)) })
    })
    proc.once('exit', () => { if (this.proc === proc) this.up = false })
    this.up = true
  }

  /** SIGKILL: nothing flushed, no clean stop. */
  async kill (): Promise<void> {
    const proc = this.proc
    if (proc === undefined) return
    this.up = false
    const exited = new Promise<void>(resolve => { if (proc.exitCode !== null || proc.signalCode !== null) resolve(); else proc.once('exit', () => { resolve() }) })
    this.lan.kill(proc)
    await exited
  }
}

async function httpJson (url: string, init?: RequestInit): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(WRITE_TIMEOUT_MS) })
  const text = await res.text()
  let body: unknown
  try { body = JSON.parse(text) } catch { body = text }
  return { status: res.status, body }
}

/** Initialise every host's data directory: one swarm key for all. */
function initHosts (hosts: DaemonHost[]): void {
  const init = (dir: string): void => {
    execFileSync(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', CLI, 'init', '--data-dir', dir], { cwd: ROOT, stdio: 'pipe', timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } })
  }
  const [first, ...rest] = hosts
  init(first!.dir)
  for (const h of rest) {
    mkdirSync(h.dir, { recursive: true })
    copyFileSync(join(first!.dir, 'swarm.key'), join(h.dir, 'swarm.key'))
    init(h.dir)
  }
}

/** Blackhole routes between two groups of hosts; `heal` removes them. */
function partition (lan: Lan, a: number[], b: number[]): { heal: () => void } {
  const routes: Array<[number, string]> = []
  for (const x of a) for (const y of b) routes.push([x, `${lan.addr(y)}/32`], [y, `${lan.addr(x)}/32`])
  for (const [h, dst] of routes) lan.ipIn(h, 'route', 'add', 'blackhole', dst)
  return { heal: () => { for (const [h, dst] of routes) { try { lan.ipIn(h, 'route', 'del', 'blackhole', dst) } catch {} } } }
}

function iptablesIn (lan: Lan, i: number, ...args: string[]): void {
  execFileSync('ip', ['netns', 'exec', lan.ns(i), 'iptables', '-w', ...args], { stdio: 'pipe', timeout: 10_000 })
}

/** Drop `p` of the packets each host receives from the LAN (not from this process: writes and checks stay reliable). */
function applyLoss (lan: Lan, hosts: number[], p: number): { heal: () => void } {
  for (const i of hosts) {
    iptablesIn(lan, i, '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT')
    iptablesIn(lan, i, '-A', 'INPUT', '-s', lan.self, '-j', 'ACCEPT')
    iptablesIn(lan, i, '-A', 'INPUT', '-m', 'statistic', '--mode', 'random', '--probability', p.toFixed(4), '-j', 'DROP')
  }
  return { heal: () => { for (const i of hosts) { try { iptablesIn(lan, i, '-F', 'INPUT') } catch {} } } }
}

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Run the scenario on `lan` (made with `reachable: true` and at least `hosts` hosts), data under `dataRoot`. */
export async function runChaos (lan: Lan, dataRoot: string, options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {})
  const n = options.hosts ?? 5
  const docs = Array.from({ length: options.docs ?? 6 }, (_, k) => `chaos/${k}`)
  const rnd = createRandom(options.seed)
  const hosts = Array.from({ length: n }, (_, k) => new DaemonHost(lan, k + 1, join(dataRoot, `h${k + 1}`)))
  const report: ChaosReport = {
    seed: options.seed, hosts: n, faultMs: options.faultMs, writesAttempted: 0, writesAcked: 0, kills: 0, partitions: 0,
    lossPercent: undefined, lossSkipped: undefined, convergeMs: 0, identical: false
  }

  initHosts(hosts)
  await Promise.all(hosts.map(async h => { await h.start() }))
  log(`${n} daemons serving; waiting for the mesh`)
  const meshDeadline = Date.now() + 60_000
  for (;;) {
    const counts = await Promise.all(hosts.map(async h => {
      try { return (await httpJson(`${h.url}/status`)).body.peers.filter((p: any) => p.connected).length as number } catch { return 0 }
    }))
    if (counts.every(c => c === n - 1)) break
    if (Date.now() > meshDeadline) throw new ChaosError(`no full mesh after 60 s (connected peers per host: ${counts.join(', ')})`)
    await delay(250)
  }

  // faults
  const heals: Array<{ heal: () => void }> = []
  const lossMax = options.maxLoss ?? 0.1
  const loss = Math.round((0.02 + rnd.next() * (lossMax - 0.02)) * 1000) / 1000
  report.lossSkipped = iptablesUnavailable()
  if (report.lossSkipped === undefined) {
    heals.push(applyLoss(lan, hosts.map(h => h.i), loss))
    report.lossPercent = loss * 100
  } else {
    log(`packet loss skipped: ${report.lossSkipped}`)
  }
  log(`faults for ${options.faultMs} ms, seed ${options.seed}, loss ${report.lossPercent !== undefined ? `${report.lossPercent.toFixed(1)} %` : 'skipped'}`)

  const acked: Write[] = []
  let writing = true
  const writers = hosts.map(async (h, k) => {
    const wr: Random = createRandom(options.seed * 31 + k + 1)
    let seq = 0
    while (writing) {
      const w: Write = { doc: wr.pick(docs), key: `h${h.i}-${seq}`, value: seq }
      seq++
      report.writesAttempted++
      try {
        const r = await httpJson(`${h.url}/api/docs/${encodeURIComponent(w.doc)}/${w.key}`, {
          method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(w.value)
        })
        if (r.status >= 200 && r.status < 300) acked.push(w)
      } catch {}
      await delay(WRITE_PACE_MS)
    }
  })

  const restarts = new Set<Promise<void>>()
  let cut: { heal: () => void } | undefined
  let cutUntil = 0
  const faultEnd = Date.now() + options.faultMs
  try {
    while (Date.now() < faultEnd) {
      if (cut !== undefined && Date.now() >= cutUntil) { cut.heal(); cut = undefined; log('partition healed') }
      // the first fault always isolates a host and kills it, so every run checks that what a
      // host acknowledged survives in its own store alone
      const action = report.kills === 0 && report.partitions === 0 ? 'isolate-kill' : rnd.pick(['kill', 'partition', 'isolate-kill', 'partition', 'kill', 'calm'] as const)
      if (action === 'isolate-kill' && cut === undefined) {
        // a host cut off from every other, then killed while its latest writes exist nowhere else:
        // only its own store can bring back what it acknowledged
        const candidates = hosts.filter(h => h.up)
        if (candidates.length > 0) {
          const h = rnd.pick(candidates)
          const others = hosts.filter(o => o !== h).map(o => o.i)
          cut = partition(lan, [h.i], others)
          cutUntil = Date.now() + 4000 + rnd.int(3000)
          report.partitions++
          const killAfter = 300 + rnd.int(1500)
          const downMs = 500 + rnd.int(2000)
          log(`partition ${h.i} | ${others.join(',')}, SIGKILL host ${h.i} after ${killAfter} ms, restart in ${downMs} ms`)
          await delay(killAfter)
          report.kills++
          await h.kill()
          const p = (async () => { await delay(downMs); await h.start(); log(`host ${h.i} back`) })()
          restarts.add(p)
          void p.finally(() => restarts.delete(p)).catch(() => {})
        }
      } else if (action === 'kill') {
        const candidates = hosts.filter(h => h.up)
        if (candidates.length > 0) {
          const h = rnd.pick(candidates)
          const downMs = 500 + rnd.int(3000)
          report.kills++
          log(`SIGKILL host ${h.i}, restart in ${downMs} ms`)
          await h.kill()
          const p = (async () => { await delay(downMs); await h.start(); log(`host ${h.i} back`) })()
          restarts.add(p)
          void p.finally(() => restarts.delete(p)).catch(() => {})
        }
      } else if (action === 'partition' && cut === undefined) {
        const order = rnd.shuffle(hosts.map(h => h.i))
        const at = 1 + rnd.int(n - 1)
        const a = order.slice(0, at)
        const b = order.slice(at)
        cut = partition(lan, a, b)
        cutUntil = Date.now() + 2000 + rnd.int(5000)
        report.partitions++
        log(`partition ${a.join(',')} | ${b.join(',')} for ${cutUntil - Date.now()} ms`)
      }
      await delay(1000 + rnd.int(2000))
    }
  } finally {
    writing = false
    await Promise.all(writers)
    cut?.heal()
    for (const h of heals) h.heal()
    await Promise.all(Array.from(restarts))
  }
  report.writesAcked = acked.length
  for (const h of hosts) if (!h.up) await h.start()
  log(`faults healed: ${report.writesAcked}/${report.writesAttempted} writes acknowledged, ${report.kills} kills, ${report.partitions} partitions`)

  // convergence: every host holds every acknowledged write, and all hold the same
  const healedAt = Date.now()
  const deadline = healedAt + options.convergeTimeoutMs
  const expected = new Map<string, Map<string, number>>()
  for (const w of acked) {
    const m = expected.get(w.doc) ?? new Map<string, number>()
    m.set(w.key, w.value)
    expected.set(w.doc, m)
  }
  let missing: string[] = []
  for (;;) {
    missing = []
    const views: string[] = []
    for (const h of hosts) {
      let view = ''
      for (const doc of docs) {
        let data: Record<string, unknown> = {}
        try {
          const r = await httpJson(`${h.url}/api/docs/${encodeURIComponent(doc)}`)
          if (r.status === 200) data = (r.body.content?.data ?? {}) as Record<string, unknown>
          else if (r.status !== 404) throw new Error(String(r.status))
        } catch (err) {
          missing.push(`host ${h.i}: ${doc} unreadable (${(err as Error).message})`)
          continue
        }
        for (const [key, value] of expected.get(doc) ?? []) if (data[key] !== value) missing.push(`host ${h.i}: ${doc} ${key}`)
        view += `${doc}:${JSON.stringify(Object.entries(data).sort(([x], [y]) => x < y ? -1 : 1))};`
      }
      views.push(view)
    }
    report.identical = views.every(v => v === views[0])
    if (missing.length === 0 && report.identical) break
    if (Date.now() > deadline) {
      const lastLogs = hosts.map(h => `host ${h.i}:\n  ${h.logs.slice(-8).join('\n  ')}`).join('\n')
      throw new ChaosError(`seed ${options.seed}: not converged ${options.convergeTimeoutMs} ms after healing: ${missing.length} acknowledged writes missing (${missing.slice(0, 10).join('; ')}), hosts identical: ${String(report.identical)}\n${lastLogs}`)
    }
    await delay(500)
  }
  report.convergeMs = Date.now() - healedAt
  for (const h of hosts) await h.kill()
  return report
}

export function formatReport (r: ChaosReport): string {
  return `chaos seed ${r.seed}: ${r.hosts} hosts, ${(r.faultMs / 1000).toFixed(0)} s of faults: writes attempted ${r.writesAttempted}, acknowledged ${r.writesAcked}, ` +
    `kills ${r.kills}, partitions ${r.partitions}, loss ${r.lossPercent !== undefined ? `${r.lossPercent.toFixed(1)} %` : `skipped (${r.lossSkipped ?? ''})`}, ` +
    `converged ${(r.convergeMs / 1000).toFixed(1)} s after healing, every acknowledged write on every host`
}
