/**
 * Discovery diagnosis. `@libp2p/mdns` swallows send errors: on a host whose only route does not
 * cover multicast (an offline LAN without a gateway, a namespace without `224.0.0.0/4`) every
 * query fails with ENETUNREACH and the node silently finds nobody. `probeMulticast()` sends the
 * same query mDNS sends (a PTR question for the service tag) from a throw-away socket and says
 * what happened.
 */
import { createSocket } from 'node:dgram'
import { networkInterfaces } from 'node:os'
import { MDNS_ADDRESS, MDNS_PORT, MDNS_SERVICE_TAG } from './constants.js'

export type MdnsState = 'unknown' | 'ok' | 'no-multicast-route' | 'no-interface' | 'error' | 'disabled'

export interface DiscoveryStatus {
  /**
   * - `unknown`: not checked yet (the node has not started; `checkedAt` is 0).
   * - `ok`: mDNS queries can be sent (peers on the LAN will find this node).
   * - `no-multicast-route`: there is a network interface, but no route covers 224.0.0.251
   *   (ENETUNREACH). Fix: `ip route add 224.0.0.0/4 dev <interface>`, or add a default route.
   * - `no-interface`: no network interface other than loopback is up.
   * - `error`: sending failed for another reason (see `detail`).
   * - `disabled`: mDNS is turned off in the options.
   */
  mdns: MdnsState
  /** One human line saying why, with the fix when there is one. */
  detail: string
  /** Non-loopback IPv4 interfaces seen, `name address`. */
  interfaces: string[]
  /** When the status was last checked (ms since epoch). */
  checkedAt: number
}

export interface ProbeOptions {
  /** mDNS service tag to ask for. @default MDNS_SERVICE_TAG */
  serviceTag?: string
  /** Multicast address. @default MDNS_ADDRESS */
  address?: string
  /** Port. @default MDNS_PORT */
  port?: number
  /** Clock for `checkedAt`. @default Date.now */
  now?: () => number
}

/** Non-internal IPv4 interfaces, as `name address`. */
export function lanInterfaces (): string[] {
  const out: string[] = []
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) out.push(`${name} ${a.address}`)
  }
  return out
}

/** A DNS query packet with one PTR question (what `@libp2p/mdns` sends). */
export function mdnsQuery (name: string): Uint8Array {
  const labels = name.split('.').filter(l => l.length > 0)
  const parts: number[] = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] // id 0, flags 0, 1 question
  for (const l of labels) {
    const bytes = new TextEncoder().encode(l)
    parts.push(bytes.length, ...bytes)
  }
  parts.push(0, 0, 12, 0, 1) // root, type PTR, class IN
  return Uint8Array.from(parts)
}

/** Try to send one mDNS query and classify the outcome. Never throws. */
export async function probeMulticast (options: ProbeOptions = {}): Promise<DiscoveryStatus> {
  const interfaces = lanInterfaces()
  const address = options.address ?? MDNS_ADDRESS
  const port = options.port ?? MDNS_PORT
  const packet = mdnsQuery(options.serviceTag ?? MDNS_SERVICE_TAG)
  const checkedAt = (options.now ?? Date.now)()
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    let socket: ReturnType<typeof createSocket>
    try {
      socket = createSocket({ type: 'udp4', reuseAddr: true })
    } catch (e) {
      resolve(e as NodeJS.ErrnoException)
      return
    }
    const done = (e?: NodeJS.ErrnoException | null): void => {
      try { socket.close() } catch {}
      resolve(e ?? undefined)
    }
    socket.once('error', done)
    socket.bind(0, () => {
      try {
        socket.setMulticastTTL(255)
        socket.send(packet, port, address, (e) => { done(e) })
      } catch (e) {
        done(e as NodeJS.ErrnoException)
      }
    })
  })
  const where = interfaces.length > 0 ? interfaces.join(', ') : 'loopback only'
  if (err === undefined) {
    return {
      mdns: 'ok',
      detail: interfaces.length > 0
        ? `mDNS can send on ${where}`
        : 'mDNS can send, but only loopback is up: only peers on this host will be found',
      interfaces,
      checkedAt
    }
  }
  if (err.code === 'ENETUNREACH' || err.code === 'EHOSTUNREACH' || err.code === 'EADDRNOTAVAIL') {
    if (interfaces.length === 0) {
      return { mdns: 'no-interface', detail: `mDNS cannot send (${err.code}): no network interface other than loopback is up`, interfaces, checkedAt }
    }
    const dev = interfaces[0]?.split(' ')[0] ?? '<interface>'
    return {
      mdns: 'no-multicast-route',
      detail: `mDNS cannot send (${err.code}): interfaces ${where} are up but no route covers ${address}; peers will not be discovered. Fix: \`ip route add 224.0.0.0/4 dev ${dev}\` (or give the host a default route)`,
      interfaces,
      checkedAt
    }
  }
  return { mdns: 'error', detail: `mDNS cannot send: ${err.code ?? err.name}: ${err.message}`, interfaces, checkedAt }
}
