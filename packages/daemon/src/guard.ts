/**
 * Who may talk to the local endpoint. The endpoint has no authentication: it trusts the machine
 * it runs on. Browsers, though, let any website send requests to 127.0.0.1, so the endpoint
 *
 * - answers only requests whose `Host` is the endpoint itself (loopback names, the configured
 *   host, the origins of `allowOrigins`): a rebound DNS name (`evil.example` resolving to
 *   127.0.0.1) is refused, so no website can read `/status` or documents that way;
 * - refuses WebSocket upgrades and writes that carry an `Origin` other than the endpoint's own
 *   or one in `allowOrigins`. Clients outside a browser (the CLI, y-websocket in Node) send no
 *   `Origin` and are let through.
 */
import { networkInterfaces } from 'node:os'

/** Host names that always mean this machine. */
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]']

/** Interface addresses that mean "every interface". */
const WILDCARD_HOSTS = ['0.0.0.0', '::', '[::]']

/** A loopback interface address: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/** `host` as it appears in a URL or a Host header (IPv6 in brackets), lower case. */
function urlHost (host: string): string {
  const h = host.toLowerCase()
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h
}

export interface RequestGuardOptions {
  /** Interface the endpoint listens on. */
  host: string
  /** Port it listens on. */
  port: number
  /** Origins (`scheme://host[:port]`) of web apps served elsewhere that may use the endpoint. */
  allowOrigins?: string[]
}

export interface RequestGuard {
  /** Why a request with these headers is refused, or undefined when it is allowed. */
  checkHost: (hostHeader: string | undefined) => string | undefined
  /** Why an upgrade or a write with this Origin is refused, or undefined when it is allowed. */
  checkOrigin: (originHeader: string | undefined) => string | undefined
}

export function requestGuard (options: RequestGuardOptions): RequestGuard {
  const port = String(options.port)
  const names = new Set(LOOPBACK_NAMES)
  const configured = urlHost(options.host)
  if (WILDCARD_HOSTS.includes(configured)) {
    // listening everywhere: the machine's own addresses are its names
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) names.add(urlHost(a.address.replace(/%.*$/, '')))
    }
  } else {
    names.add(configured)
  }
  const allowedOrigins = new Set<string>()
  const hosts = new Set<string>()
  for (const origin of options.allowOrigins ?? []) {
    const u = new URL(origin)
    allowedOrigins.add(u.origin)
    hosts.add(u.host)
  }

  const isSelf = (host: string): boolean => {
    let u: URL
    try {
      u = new URL(`http://${host}`)
    } catch {
      return false
    }
    if (u.username !== '' || u.password !== '' || u.pathname !== '/') return false
    return names.has(u.hostname) && (u.port === '' ? '80' : u.port) === port
  }

  return {
    checkHost: hostHeader => {
      if (hostHeader === undefined || hostHeader === '') return 'the request has no Host header'
      const host = hostHeader.toLowerCase()
      if (isSelf(host)) return undefined
      try {
        if (hosts.has(new URL(`http://${host}`).host)) return undefined
      } catch {}
      return `Host ${JSON.stringify(hostHeader)} is not this endpoint (use 127.0.0.1:${port} or localhost:${port}, or add the web app's origin to allowOrigins)`
    },
    checkOrigin: originHeader => {
      if (originHeader === undefined) return undefined
      let origin: URL | undefined
      try {
        origin = new URL(originHeader)
      } catch {}
      if (origin !== undefined) {
        if (allowedOrigins.has(origin.origin)) return undefined
        if (origin.protocol === 'http:' && isSelf(origin.host)) return undefined
      }
      return `Origin ${JSON.stringify(originHeader)} may not use this endpoint (add it to allowOrigins / HEARSAY_ALLOW_ORIGINS to let that web app in)`
    }
  }
}
