/**
 * The daemon's dashboard: a small web page at `/dashboard` (built from `dashboard/` into
 * `dist/dashboard/` by `scripts/bundle-dashboard.mjs`) that shows this device, its peers, its
 * documents, problems, discovery and live traffic, from `GET /status` and `GET /api/docs?sizes`.
 * It is served behind the same Host checks as every other request of the endpoint.
 */
import { readFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { HearsayNode } from '@hearsay/core'
import * as Y from 'yjs'
import { DASHBOARD_PATH, DOC_SIZES_MAX } from './constants.js'
import type { DocHandles } from './handles.js'

/** The built page; the same path from `src/` (tests, tsx) and from `dist/`. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../dist/dashboard/', import.meta.url))

/** The only files the dashboard serves: no path from the request reaches the file system. */
const FILES: Record<string, { file: string, type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' }
}

/** The page may load only its own files and talk only to its own endpoint; no other site may frame it. */
const HEADERS = {
  'cache-control': 'no-cache',
  'content-security-policy': "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY'
}

/** Answer a dashboard request; false when `path` is not the dashboard's. */
export async function serveDashboard (path: string, res: ServerResponse): Promise<boolean> {
  if (path === DASHBOARD_PATH) {
    // the page's files are relative to /dashboard/
    res.writeHead(301, { location: `${DASHBOARD_PATH}/`, 'cache-control': 'no-cache' })
    res.end()
    return true
  }
  if (!path.startsWith(DASHBOARD_PATH + '/')) return false
  const entry = FILES[path.slice(DASHBOARD_PATH.length)]
  if (entry === undefined) return false
  let body: Buffer
  try {
    body = await readFile(DASHBOARD_DIR + entry.file)
  } catch {
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
    res.end(`The dashboard is not built (${DASHBOARD_DIR}). Run \`pnpm build\` (or \`pnpm --filter @hearsay/daemon build\`).\n`)
    return true
  }
  res.writeHead(200, { 'content-type': entry.type, ...HEADERS })
  res.end(body)
  return true
}

/**
 * Sizes of documents (bytes of their encoded state), for the dashboard's document list. A size is
 * computed once, by loading the document, and kept until the document changes; at most
 * `DOC_SIZES_MAX` documents are measured per request, so a large collection costs a bounded amount.
 */
export class DocSizes {
  private readonly known = new Map<string, number>()
  private readonly off: () => void

  constructor (private readonly node: HearsayNode, private readonly handles: DocHandles) {
    this.off = node.on('doc:update', e => { this.known.delete(e.docId) })
  }

  /** Sizes of the first `DOC_SIZES_MAX` of `ids`; quarantined documents are left out. */
  async of (ids: string[]): Promise<Record<string, number>> {
    const out: Record<string, number> = {}
    const quarantined = new Set(this.node.problems().map(p => p.docId))
    for (const id of ids.slice(0, DOC_SIZES_MAX)) {
      if (quarantined.has(id)) continue
      let size = this.known.get(id)
      if (size === undefined) {
        try {
          size = await this.handles.with(id, doc => Y.encodeStateAsUpdate(doc).length)
        } catch {
          continue // unreadable: node.problems() says why
        }
        this.known.set(id, size)
      }
      out[id] = size
    }
    const listed = new Set(ids)
    for (const id of this.known.keys()) if (!listed.has(id)) this.known.delete(id)
    return out
  }

  close (): void { this.off() }
}
