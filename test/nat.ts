/**
 * Two sites behind NAT and the internet between them, in network namespaces, for relay tests:
 *
 *     internet 64.77.X.0/24 (a bridge): the relay host .10, spare hosts .20, .21 …, and each site's router
 *     site s (s = 1, 2), 10.s.X.0/24 (a bridge): router .1 doing NAT (MASQUERADE), hosts .2, .3 …
 *
 * The internet segment uses addresses that look public (64.77.X.0/24: libp2p treats private
 * ones as unreachable from elsewhere, as it should); they exist only inside these namespaces.
 * A router forwards what its hosts send out and drops every new connection coming in, as a home
 * router does. Nothing routes between the sites' private networks. Hosts at a site have a
 * multicast route, so mDNS works within the site. Names are unique to the run; everything is
 * deleted on teardown, on exit and on a signal.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { ip, killGroup, run, spawnInNamespace, tearDownOnExit } from './netns.js'

export interface SitesOptions {
  /** Hosts per site. */
  hostsPerSite: number
  /** Hosts on the internet segment besides the relay (numbered .20, .21, …). @default 0 */
  internetHosts?: number
}

/** A host: `relay`, `internet:i` (i from 1), or `site:s:h` (site 1 or 2, host h from 1). */
export type HostName = 'relay' | `internet:${number}` | `site:${number}:${number}`

export interface Sites {
  readonly tag: string
  /** Namespace of a host. */
  ns: (host: HostName) => string
  /** Address of a host (a site host's private address). */
  addr: (host: HostName) => string
  /** A site's public address (its router on the internet). */
  publicAddr: (site: number) => string
  spawnIn: (host: HostName, cmd: string[], options: { timeoutS: number, env?: NodeJS.ProcessEnv, cwd?: string }) => ChildProcessWithoutNullStreams
  kill: (proc: ChildProcessWithoutNullStreams) => void
  atTearDown: (fn: () => void) => void
  tearDown: () => void
}

export function createSites (options: SitesOptions): Sites {
  const tag = `${process.pid.toString(36)}${randomBytes(2).readUInt16BE(0).toString(36)}`.slice(-7)
  const x = randomBytes(1).readUInt8(0)
  const internet = `64.77.${x}`
  const nsName = (host: HostName): string => `hn${tag}${host.replace(/:/g, '')}`.slice(0, 30)
  const addr = (host: HostName): string => {
    if (host === 'relay') return `${internet}.10`
    const parts = host.split(':')
    if (parts[0] === 'internet') return `${internet}.${19 + Number(parts[1])}`
    return `10.${parts[1]}.${x}.${1 + Number(parts[2])}`
  }
  const routerNs = (s: number): string => `hn${tag}r${s}`
  const created: { ns: string[], links: string[] } = { ns: [], links: [] }
  const procs: ChildProcessWithoutNullStreams[] = []
  const after: Array<() => void> = []
  let links = 0
  const newNs = (name: string): void => {
    ip('netns', 'add', name)
    created.ns.push(name)
    ip('-n', name, 'link', 'set', 'lo', 'up')
  }
  const bridge = (name: string): void => {
    ip('link', 'add', name, 'type', 'bridge')
    created.links.push(name)
    ip('link', 'set', name, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0')
    ip('link', 'set', name, 'up')
  }
  /** A veth from the bridge into the namespace, named `dev` there, with `cidr`. */
  const plug = (br: string, ns: string, dev: string, cidr: string): void => {
    const outer = `hv${tag}${links++}`
    ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', `${outer}p`)
    created.links.push(outer)
    ip('link', 'set', `${outer}p`, 'netns', ns)
    ip('-n', ns, 'link', 'set', `${outer}p`, 'name', dev)
    ip('link', 'set', outer, 'master', br)
    ip('link', 'set', outer, 'up')
    ip('-n', ns, 'addr', 'add', cidr, 'dev', dev)
    ip('-n', ns, 'link', 'set', dev, 'up')
  }
  const sites: Sites = {
    tag,
    ns: nsName,
    addr,
    publicAddr: s => `${internet}.${s}`,
    spawnIn: (host, cmd, o) => {
      const p = spawnInNamespace(nsName(host), cmd, o)
      procs.push(p)
      return p
    },
    kill: killGroup,
    atTearDown: fn => { after.push(fn) },
    tearDown: () => {
      forget()
      for (const p of procs.splice(0)) killGroup(p)
      for (const n of created.ns.splice(0)) { try { ip('netns', 'del', n) } catch {} }
      for (const l of created.links.splice(0)) { try { ip('link', 'del', l) } catch {} }
      for (const fn of after.splice(0)) { try { fn() } catch {} }
    }
  }
  const forget = tearDownOnExit(sites)
  try {
    const inet = `hb${tag}i`
    bridge(inet)
    newNs(nsName('relay'))
    plug(inet, nsName('relay'), 'eth0', `${addr('relay')}/24`)
    for (let i = 1; i <= (options.internetHosts ?? 0); i++) {
      const h: HostName = `internet:${i}`
      newNs(nsName(h))
      plug(inet, nsName(h), 'eth0', `${addr(h)}/24`)
    }
    for (const s of [1, 2]) {
      const r = routerNs(s)
      newNs(r)
      plug(inet, r, 'eth0', `${sites.publicAddr(s)}/24`)
      const lan = `hb${tag}s${s}`
      bridge(lan)
      plug(lan, r, 'eth1', `10.${s}.${x}.1/24`)
      run('ip', ['netns', 'exec', r, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
      const ipt = (...args: string[]): void => { run('ip', ['netns', 'exec', r, 'iptables', ...args]) }
      ipt('-t', 'nat', '-A', 'POSTROUTING', '-s', `10.${s}.${x}.0/24`, '-o', 'eth0', '-j', 'MASQUERADE')
      ipt('-A', 'FORWARD', '-i', 'eth0', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT')
      ipt('-A', 'FORWARD', '-i', 'eth0', '-j', 'DROP')
      for (let h = 1; h <= options.hostsPerSite; h++) {
        const host: HostName = `site:${s}:${h}`
        newNs(nsName(host))
        plug(lan, nsName(host), 'eth0', `${addr(host)}/24`)
        ip('-n', nsName(host), 'route', 'add', 'default', 'via', `10.${s}.${x}.1`)
        ip('-n', nsName(host), 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
      }
    }
  } catch (err) {
    sites.tearDown()
    throw err
  }
  return sites
}
