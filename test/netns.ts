/**
 * Hosts on a LAN for tests: network namespaces joined by veth pairs to one bridge, with names unique
 * to the run, processes started inside them as their own process groups (bounded by `timeout`), and
 * everything deleted again on teardown, on exit, on a signal and when the test worker loses its
 * parent. Needs root; `namespacesUnavailable()` says why not.
 *
 *     const lan = createLan({ hosts: 3 })          // 10.77.N.1 … 10.77.N.3, mDNS works
 *     const p = lan.spawnIn(1, ['node', 'x.js'], { timeoutS: 60 })
 *     lan.tearDown()
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'

/** Run a command to completion (10 s at most); a failure throws with its output. */
export function run (cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: 'pipe', timeout: 10_000 })
}

export function ip (...args: string[]): void {
  run('ip', args)
}

/** Why network namespaces cannot be used here, or undefined when they can. */
export function namespacesUnavailable (): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const probe = `hsprobe${randomBytes(3).toString('hex')}`
  try {
    ip('netns', 'add', probe)
    ip('netns', 'del', probe)
    return undefined
  } catch (err) {
    return `cannot create a network namespace: ${(err as Error).message.split('\n')[0] ?? ''}`
  }
}

/** Why iptables cannot be used inside a namespace, or undefined when it can. */
export function iptablesUnavailable (): string | undefined {
  try {
    run('iptables', ['-V'])
    return undefined
  } catch {
    return 'iptables is not installed (`apt-get install iptables`, or `pnpm setup:browser`, which installs it)'
  }
}

export interface LanOptions {
  /** Hosts on the bridge, numbered from 1. */
  hosts: number
  /** Hosts given no multicast route (an offline LAN without a gateway). @default [] */
  noMulticastRoute?: number[]
  /** Extra namespaces numbered after the hosts, with loopback only. @default 0 */
  loopbackOnly?: number
  /** Give the bridge an address (`.254`) so this process can reach the hosts. @default false */
  reachable?: boolean
}

export interface Lan {
  /** Unique to this run: part of every name. */
  readonly tag: string
  /** Name of host i's namespace. */
  ns: (i: number) => string
  /** Host i's end of its veth pair, on the bridge: down cuts the host off. */
  veth: (i: number) => string
  /** Host i's address on the LAN. */
  addr: (i: number) => string
  /** This process's address on the LAN (with `reachable`). */
  readonly self: string
  /** `ip` inside host i's namespace. */
  ipIn: (i: number, ...args: string[]) => void
  /** Run a command inside host i's namespace; it is killed after `timeoutS` whatever happens. */
  spawnIn: (i: number, cmd: string[], options: { timeoutS: number, env?: NodeJS.ProcessEnv, cwd?: string }) => ChildProcessWithoutNullStreams
  /** SIGKILL a process from `spawnIn` and everything it started. */
  kill: (proc: ChildProcessWithoutNullStreams) => void
  /** Run `fn` at teardown, after the processes are killed (removing data directories, say). */
  atTearDown: (fn: () => void) => void
  /** Kill every process, delete every namespace and link, run the `atTearDown` callbacks. Safe to call more than once. */
  tearDown: () => void
}

const live = new Set<{ tearDown: () => void }>()
let hooked = false

/** Tear `net` down on exit, on a signal and when the worker loses its parent, unless it was torn down already. */
export function tearDownOnExit (net: { tearDown: () => void }): () => void {
  hookExit()
  live.add(net)
  return () => { live.delete(net) }
}

/**
 * Run a command inside a namespace, killed after `timeoutS` whatever happens, as its own process
 * group (`ip netns exec` execs `timeout`, which leads a new group holding the command).
 */
export function spawnInNamespace (ns: string, cmd: string[], o: { timeoutS: number, env?: NodeJS.ProcessEnv, cwd?: string }): ChildProcessWithoutNullStreams {
  return spawn('ip', ['netns', 'exec', ns, 'timeout', '-s', 'KILL', String(o.timeoutS), ...cmd], {
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    env: o.env ?? process.env,
    detached: true
  })
}

/** SIGKILL a process from `spawnInNamespace` and everything it started. */
export function killGroup (p: ChildProcessWithoutNullStreams): void {
  // the group: `timeout` and the process under it (killing `timeout` alone leaves it running).
  // `timeout` outlives its child, so a group whose leader has exited is empty.
  if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) { try { process.kill(-p.pid, 'SIGKILL') } catch {} }
}

function hookExit (): void {
  if (hooked) return
  hooked = true
  const all = (): void => { for (const lan of Array.from(live)) lan.tearDown() }
  process.once('exit', all)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => { all(); process.exit(130) })
  process.once('disconnect', () => { all(); process.exit(1) })
}

export function createLan (options: LanOptions): Lan {
  // interface names allow 15 characters: the pid plus random bits
  const tag = `${process.pid.toString(36)}${randomBytes(2).readUInt16BE(0).toString(36)}`.slice(-8)
  const net = `10.77.${randomBytes(1).readUInt8(0)}`
  const bridge = `hsb${tag}`
  const ns = (i: number): string => `hs${tag}n${i}`
  const veth = (i: number): string => `hv${tag}x${i}`
  const procs: ChildProcessWithoutNullStreams[] = []
  const after: Array<() => void> = []
  const created: { ns: string[], links: string[], bridge: boolean } = { ns: [], links: [], bridge: false }

  const kill = killGroup
  const lan: Lan = {
    tag,
    ns,
    veth,
    addr: i => `${net}.${i}`,
    self: `${net}.254`,
    ipIn: (i, ...args) => { ip('-n', ns(i), ...args) },
    spawnIn: (i, cmd, o) => {
      const proc = spawnInNamespace(ns(i), cmd, o)
      procs.push(proc)
      return proc
    },
    kill,
    atTearDown: fn => { after.push(fn) },
    tearDown: () => {
      forget()
      for (const p of procs.splice(0)) kill(p)
      for (const l of created.links.splice(0)) { try { ip('link', 'del', l) } catch {} }
      for (const n of created.ns.splice(0)) { try { ip('netns', 'del', n) } catch {} }
      if (created.bridge) { try { ip('link', 'del', bridge) } catch {} }
      created.bridge = false
      for (const fn of after.splice(0)) { try { fn() } catch {} }
    }
  }
  const forget = tearDownOnExit(lan)
  try {
    ip('link', 'add', bridge, 'type', 'bridge')
    created.bridge = true
    ip('link', 'set', bridge, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0')
    if (options.reachable === true) ip('addr', 'add', `${lan.self}/24`, 'dev', bridge)
    ip('link', 'set', bridge, 'up')
    for (let i = 1; i <= options.hosts; i++) {
      ip('netns', 'add', ns(i))
      created.ns.push(ns(i))
      ip('link', 'add', veth(i), 'type', 'veth', 'peer', 'name', `${veth(i)}p`)
      created.links.push(veth(i))
      ip('link', 'set', `${veth(i)}p`, 'netns', ns(i))
      lan.ipIn(i, 'link', 'set', `${veth(i)}p`, 'name', 'eth0')
      ip('link', 'set', veth(i), 'master', bridge)
      ip('link', 'set', veth(i), 'up')
      lan.ipIn(i, 'addr', 'add', `${lan.addr(i)}/24`, 'dev', 'eth0')
      lan.ipIn(i, 'link', 'set', 'eth0', 'up')
      lan.ipIn(i, 'link', 'set', 'lo', 'up')
      if (!(options.noMulticastRoute ?? []).includes(i)) lan.ipIn(i, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
    }
    for (let i = options.hosts + 1; i <= options.hosts + (options.loopbackOnly ?? 0); i++) {
      ip('netns', 'add', ns(i))
      created.ns.push(ns(i))
      lan.ipIn(i, 'link', 'set', 'lo', 'up')
    }
  } catch (err) {
    lan.tearDown()
    throw err
  }
  return lan
}
