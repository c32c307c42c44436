/**
 * The daemon: a Hearsay node plus a local HTTP endpoint.
 *
 * - `ws://host:port/<docId>`: the y-websocket protocol (sync + awareness) on `node.open(docId)`
 * - `GET /status`: JSON status (peers, sync progress, discovery)
 * - `GET /metrics`: Prometheus metrics
 * - `GET /api/docs`, `GET /api/docs/<docId>`, `PUT /api/docs/<docId>/<key>`, `GET /api/watch/<docId>`
 * - `PUT /api/name`: this device's name, announced to peers
 * - `/api/trust…`: the roster: devices, invites, grants, revocation (trust-api.ts)
 * - `GET /dashboard`: the dashboard page
 * - anything else: static files from `staticDir`, when configured
 */
import { readFile, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { hostname } from 'node:os'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize, sep } from 'node:path'
import { silentLogger, validateDocId } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import { WebSocket, WebSocketServer } from 'ws'
import * as Y from 'yjs'
import { LEGACY_AWARENESS_PREFIX, DASHBOARD_PATH, DATA_MAP, DEVICE_NAME_MAX, DEVICE_NAME_META, HTTP_HOST, MAX_BODY_BYTES, WS_MAX_BUFFERED_BYTES, WS_MAX_MESSAGE_BYTES } from './constants.js'
import { docToJSON } from './content.js'
import { DocSizes, serveDashboard } from './dashboard.js'
import { checkDeviceName, DeviceNameError } from './device-name.js'
import { isLoopbackHost, requestGuard } from './guard.js'
import type { RequestGuard } from './guard.js'
import { DocHandles } from './handles.js'
import { HttpError } from './http-error.js'
import { buildStatus } from './status.js'
import { handleTrust } from './trust-api.js'
import type { DaemonNode, DaemonStatus } from './status.js'
import { daemonMetrics } from './metrics.js'
import { YWebsocketRooms } from './ywebsocket.js'
import { dropLegacyAwareness } from './legacy-awareness.js'
import { docSync } from './doc-sync.js'

export const VERSION = '0.1.0'

export interface DaemonOptions {
  /** A node, started or not; the daemon starts it and stops it on `close()`. */
  node: DaemonNode
  /** @default HTTP_HOST ('127.0.0.1') */
  host?: string
  /** 0 picks a free port. @default 0 */
  port?: number
  /** Static files served at `/`. */
  staticDir?: string
  /**
   * Origins (`http://host:port`) of web apps served elsewhere that may open WebSockets and write
   * documents. The endpoint's own origin (its static files) is always allowed, and so are clients
   * that send no Origin (the CLI, y-websocket in Node). @default []
   */
  allowOrigins?: string[]
  /**
   * What the user calls this device, announced to peers (cluster state `name`) so they list it by
   * name; `PUT /api/name` changes it while running. @default the host name
   */
  name?: string
  /**
   * A y-websocket client whose unsent backlog would pass this is cut off (close code 4503); so is
   * a `GET /api/watch` response whose unsent lines pass it. @default WS_MAX_BUFFERED_BYTES (8 MiB)
   */
  wsMaxBufferedBytes?: number
  /** Largest y-websocket message a client may send (close code 1009). @default WS_MAX_MESSAGE_BYTES (16 MiB) */
  wsMaxMessageBytes?: number
  /** Name of the transport, shown in status. @default 'libp2p' */
  transport?: string
  /** The swarm key secret (32 bytes), put in invite tokens; undefined for an open swarm. */
  swarmKey?: Uint8Array
  logger?: Logger
}

export interface Daemon {
  readonly node: DaemonNode
  /** `http://host:port` */
  readonly url: string
  readonly port: number
  status(): DaemonStatus
  /** Close clients, flush every write to storage, stop the node and the endpoint. */
  close(): Promise<void>
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json'
}

export async function startDaemon (options: DaemonOptions): Promise<Daemon> {
  const { node } = options
  const logger = options.logger ?? silentLogger()
  const log = logger.forComponent('hearsay:daemon')
  const host = options.host ?? HTTP_HOST
  const transportName = options.transport ?? 'libp2p'
  const startedAt = Date.now()
  // document payload from peers, as the node applies it (core counts frame bytes only)
  const fromPeers = { bytes: 0, docIds: new Set<string>() }
  const offUpdates = node.on('doc:update', e => {
    if (e.peerId === undefined) return
    fromPeers.bytes += e.update.length
    fromPeers.docIds.add(e.docId)
  })
  let deviceName = options.name !== undefined ? checkDeviceName(options.name) : ([...hostname()].slice(0, DEVICE_NAME_MAX).join('') || node.id.slice(0, 12))
  await node.start()
  node.setMeta(DEVICE_NAME_META, deviceName)
  const offLegacy = await dropLegacyAwareness(node, log)

  const handles = new DocHandles(node)
  const sizes = new DocSizes(node, handles)
  const wsMaxMessageBytes = options.wsMaxMessageBytes ?? WS_MAX_MESSAGE_BYTES
  const wsMaxBufferedBytes = options.wsMaxBufferedBytes ?? WS_MAX_BUFFERED_BYTES
  const rooms = new YWebsocketRooms(handles, logger.forComponent('hearsay:daemon:ws'), docId => node.awareness(docId), {
    maxBufferedBytes: wsMaxBufferedBytes,
    maxMessageBytes: wsMaxMessageBytes
  })
  const watchers = new Set<ServerResponse>()
  let endpoint = ''

  const trustDeps = { node, swarmKey: options.swarmKey, deviceName: () => deviceName, log: (line: string) => { log(line) } }
  const status = (): DaemonStatus => buildStatus(node, { name: deviceName, version: VERSION, startedAt, endpoint, clients: rooms.snapshot(), transport: transportName, received: { bytes: fromPeers.bytes, docs: fromPeers.docIds.size } })

  const registry = daemonMetrics({ node, rooms, fromPeers, startedAt })

  const docIdFrom = (raw: string): string => {
    let id: string
    try {
      id = decodeURIComponent(raw)
    } catch {
      throw new HttpError(400, 'document id is not valid percent-encoding')
    }
    try {
      validateDocId(id)
    } catch (err) {
      throw new HttpError(400, (err as Error).message)
    }
    return id
  }

  const json = (res: ServerResponse, code: number, body: unknown): void => {
    const text = JSON.stringify(body, null, 2)
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(text)
  }

  const readBody = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`)
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  const serveStatic = async (path: string, res: ServerResponse): Promise<boolean> => {
    if (options.staticDir === undefined) return false
    const root = normalize(options.staticDir)
    let file = normalize(join(root, decodeURIComponent(path)))
    if (file !== root && !file.startsWith(root + sep)) return false
    try {
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html')
      const body = await readFile(file)
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' })
      res.end(body)
      return true
    } catch {
      return false
    }
  }

  let guard: RequestGuard | undefined

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname
    const method = req.method ?? 'GET'
    const refusedHost = guard?.checkHost(req.headers.host)
    if (refusedHost !== undefined) throw new HttpError(403, refusedHost)
    if (method !== 'GET' && method !== 'HEAD') {
      const refusedOrigin = guard?.checkOrigin(req.headers.origin)
      if (refusedOrigin !== undefined) throw new HttpError(403, refusedOrigin)
    }
    if (method === 'GET' && path === '/status') return json(res, 200, status())
    if (method === 'GET' && path === '/metrics') {
      const text = await registry.metrics()
      res.writeHead(200, { 'content-type': registry.contentType })
      res.end(text)
      return
    }
    if (method === 'GET' && path === '/api/docs') {
      const all = url.searchParams.has('all')
      const docs = node.docs().filter(d => all || !d.startsWith(LEGACY_AWARENESS_PREFIX)).sort()
      return json(res, 200, url.searchParams.has('sizes') ? { docs, sizes: await sizes.of(docs) } : { docs })
    }
    if (method === 'PUT' && path === '/api/name') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
      if (type !== 'application/json') throw new HttpError(415, 'send the name as a JSON string with content-type: application/json')
      try {
        deviceName = checkDeviceName(JSON.parse(await readBody(req)))
      } catch (err) {
        if (err instanceof HttpError) throw err
        throw new HttpError(400, err instanceof DeviceNameError ? err.message : `the body is not JSON (${(err as Error).message}); send the name quoted, such as "laptop"`)
      }
      node.setMeta(DEVICE_NAME_META, deviceName)
      log(`device name is now ${JSON.stringify(deviceName)}`)
      return json(res, 200, { name: deviceName })
    }
    if (method === 'GET' && await serveDashboard(path, res)) return
    if (path.startsWith('/api/docs/')) {
      const rest = path.slice('/api/docs/'.length)
      const slash = rest.indexOf('/')
      if (method === 'GET' && slash < 0) {
        const docId = docIdFrom(rest)
        if (!node.docs().includes(docId)) throw new HttpError(404, `no document "${docId}" on this node (\`hearsay docs\` or GET /api/docs lists them)`)
        const content = await handles.with(docId, doc => docToJSON(doc))
        return json(res, 200, { id: docId, content })
      }
      if (method === 'GET' && slash > 0 && rest.slice(slash + 1) === 'sync') {
        const wait = Number(url.searchParams.get('wait') ?? '1000')
        if (!Number.isInteger(wait) || wait < 0) throw new HttpError(400, 'wait must be a whole number of ms')
        return json(res, 200, await docSync(node, docIdFrom(rest.slice(0, slash)), wait))
      }
      if ((method === 'PUT' || method === 'POST') && slash > 0) {
        const docId = docIdFrom(rest.slice(0, slash))
        const key = decodeURIComponent(rest.slice(slash + 1))
        if (key === '') throw new HttpError(400, 'key is empty')
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
        if (type !== 'application/json') throw new HttpError(415, `send the value as JSON with content-type: application/json (got ${JSON.stringify(req.headers['content-type'] ?? 'none')})`)
        const text = await readBody(req)
        let value: unknown
        try {
          value = JSON.parse(text)
        } catch (err) {
          throw new HttpError(400, `the body is not JSON (${(err as Error).message}); send strings quoted, such as "hello"`)
        }
        await handles.with(docId, doc => { doc.getMap(DATA_MAP).set(key, value) })
        await node.flush()
        return json(res, 200, { id: docId, key, value })
      }
    }
    if (method === 'GET' && path.startsWith('/api/watch/')) {
      const docId = docIdFrom(path.slice('/api/watch/'.length))
      const h = await handles.acquire(docId)
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
      watchers.add(res)
      const send = (origin: string, peerId?: string): void => {
        if (res.destroyed) return
        // a watcher that stops reading is cut off like a y-websocket client that falls behind
        if (res.writableLength > wsMaxBufferedBytes) {
          log.warn(`closing a watcher of "${docId}": fell behind: ${res.writableLength} bytes unsent, limit ${wsMaxBufferedBytes}`)
          res.destroy()
          return
        }
        res.write(JSON.stringify({ id: docId, origin, ...(peerId !== undefined ? { peerId } : {}), content: docToJSON(h.doc) }) + '\n')
      }
      // one line per change: the node says which peer a change came from; the document's
      // transaction origin tells a y-websocket client of this daemon from a local write
      let pending: { origin: string, peerId?: string } | undefined
      const flush = (): void => {
        if (pending === undefined) return
        const { origin, peerId } = pending
        pending = undefined
        send(origin, peerId)
      }
      const note = (next: { origin: string, peerId?: string }): void => {
        if (pending === undefined) queueMicrotask(flush)
        if (pending === undefined || next.peerId !== undefined) pending = next
      }
      const offPeer = node.on('doc:update', e => { if (e.docId === docId && e.peerId !== undefined) note({ origin: 'peer', peerId: e.peerId }) })
      const onUpdate = (_u: Uint8Array, origin: unknown): void => { note({ origin: origin instanceof WebSocket ? 'client' : 'local' }) }
      h.doc.on('update', onUpdate)
      send('initial')
      res.on('close', () => {
        watchers.delete(res)
        offPeer()
        h.doc.off('update', onUpdate)
        h.release()
      })
      return
    }
    if (method === 'GET' && await serveStatic(path, res)) return
    if (method === 'GET' && path === '/' && options.staticDir === undefined) {
      // no web app at the root: the dashboard is what a browser pointed at the daemon wants
      res.writeHead(302, { location: `${DASHBOARD_PATH}/`, 'cache-control': 'no-cache' })
      res.end()
      return
    }
    const trusted = await handleTrust(trustDeps, method, path, async () => {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
      if (type !== 'application/json') throw new HttpError(415, 'send a JSON object with content-type: application/json')
      let body: unknown
      try {
        body = JSON.parse(await readBody(req))
      } catch (err) {
        if (err instanceof HttpError) throw err
        throw new HttpError(400, `the body is not JSON (${(err as Error).message})`)
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object')
      return body as Record<string, unknown>
    })
    if (trusted !== undefined) return json(res, 200, trusted)
    throw new HttpError(404, `no such endpoint: ${method} ${path} (see GET /status, /metrics, /api/docs, /api/trust)`)
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const code = err instanceof HttpError ? err.status : 500
      if (code === 500) log.error(`${req.method ?? ''} ${req.url ?? ''} failed: ${(err as Error).message}`)
      if (!res.headersSent) json(res, code, { error: (err as Error).message })
      else res.end()
    })
  })
  const wss = new WebSocketServer({ noServer: true, maxPayload: wsMaxMessageBytes })
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const refused = guard?.checkHost(req.headers.host) ?? guard?.checkOrigin(req.headers.origin)
    if (refused !== undefined) {
      log.warn(`refused a WebSocket for ${url.pathname}: ${refused}`)
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${refused}`)
      return
    }
    let docId: string
    try {
      docId = docIdFrom(url.pathname.slice(1))
    } catch (err) {
      socket.end(`HTTP/1.1 400 Bad Request\r\n\r\n${(err as Error).message}`)
      return
    }
    wss.handleUpgrade(req, socket, head, ws => { void rooms.join(docId, ws) })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => { server.off('error', reject); resolve() })
  }).catch(async (err: NodeJS.ErrnoException) => {
    await node.stop()
    if (err.code === 'EADDRINUSE') {
      const { ConfigError } = await import('@hearsay/core')
      throw new ConfigError(`httpPort ${options.port ?? 0} on ${host} is already in use (is another daemon running?). Set httpPort in the config file, HEARSAY_HTTP_PORT or --http-port to a free port, or 0 to pick one.`)
    }
    throw err
  })
  const port = (server.address() as AddressInfo).port
  guard = requestGuard({ host, port, ...(options.allowOrigins !== undefined ? { allowOrigins: options.allowOrigins } : {}) })
  if (!isLoopbackHost(host)) {
    log.warn(`the endpoint listens on ${host}, not only on loopback: anyone who can reach port ${port} can read and change every document (it has no authentication). Set httpHost to 127.0.0.1 unless you mean it.`)
  }
  endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  log(`endpoint on ${endpoint} (y-websocket at ws://${host}:${port}/<docId>, dashboard at ${endpoint}${DASHBOARD_PATH}/)`)
  if (options.staticDir !== undefined) {
    const dir = options.staticDir
    const isDir = await stat(dir).then(st => st.isDirectory(), () => false)
    if (isDir) log(`serving the files of ${dir} at ${endpoint}/`)
    else log.warn(`staticDir ${dir} is not a directory: nothing is served at ${endpoint}/ (set staticDir to the folder of a built web app, such as apps/desktop/dist/web)`)
  }

  let closing: Promise<void> | undefined
  return {
    node,
    url: endpoint,
    port,
    status,
    close: async () => {
      closing ??= (async () => {
        for (const res of watchers) res.end()
        await rooms.close()
        for (const ws of wss.clients) ws.terminate()
        wss.close()
        server.closeAllConnections()
        await new Promise<void>(resolve => { server.close(() => { resolve() }) })
        offLegacy()
        await node.flush()
        await node.stop()
        offUpdates()
        sizes.close()
        log('stopped')
      })()
      await closing
    }
  }
}

/** Re-exported so apps build documents with the daemon's copy of Yjs. */
export { Y }
