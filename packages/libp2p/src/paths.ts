/**
 * Which path a connection takes, and which announced addresses are worth dialling.
 *
 * - `relayed`: through a circuit relay (`/p2p-circuit` in the address).
 * - `lan`: to an address on one of this host's own subnets (or loopback): the peer is on the same
 *   network segment, as mDNS finds it.
 * - `direct`: any other address, reached without a relay (a public address, a routed network, or a
 *   hole punched by DCUtR).
 */
import { BlockList, isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isPrivate } from '@libp2p/utils'

export type PathKind = 'lan' | 'direct' | 'relayed'

/** This host's subnets (every interface's address and netmask, loopback included), read now. */
export function localSubnets (): BlockList {
  const list = new BlockList()
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      const [base, bits] = (a.cidr ?? '').split('/')
      if (base === undefined || bits === undefined) continue
      const family = a.family === 'IPv4' ? 'ipv4' : 'ipv6'
      // link-local IPv6 addresses carry a zone (`fe80::1%eth0`) that BlockList does not take
      try { list.addSubnet(base.split('%')[0]!, Number(bits), family) } catch {}
    }
  }
  return list
}

/** Whether the address goes through a circuit relay. */
export function isRelayed (addr: Multiaddr): boolean {
  return addr.getComponents().some(c => c.name === 'p2p-circuit')
}

/** The IP host of an address, if it has one. */
function ipOf (addr: Multiaddr): { ip: string, family: 'ipv4' | 'ipv6' } | undefined {
  const c = addr.getComponents()[0]
  if (c?.value === undefined) return undefined
  if (c.name === 'ip4' && isIP(c.value) === 4) return { ip: c.value, family: 'ipv4' }
  if (c.name === 'ip6' && isIP(c.value) === 6) return { ip: c.value, family: 'ipv6' }
  return undefined
}

/** The path a connection to `remote` takes, seen from a host with these subnets. */
export function pathOf (remote: Multiaddr, subnets: BlockList): PathKind {
  if (isRelayed(remote)) return 'relayed'
  const host = ipOf(remote)
  if (host !== undefined && subnets.check(host.ip, host.family)) return 'lan'
  return 'direct'
}

/**
 * Whether an address a member announced is worth dialling from here: relayed and public ones
 * are; a private one only when it is on one of this host's subnets (another site's private
 * address reaches nobody, or the wrong host, and costs a dial timeout before the relay is tried).
 */
export function worthDialling (addr: Multiaddr, subnets: BlockList): boolean {
  if (isRelayed(addr)) return true
  const host = ipOf(addr)
  if (host === undefined) return true // dns: let libp2p resolve it
  if (subnets.check(host.ip, host.family)) return true
  return !isPrivate(addr)
}
