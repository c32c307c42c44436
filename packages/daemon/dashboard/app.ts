/// <reference lib="dom" />
/**
 * The daemon's dashboard, in the browser: polls `GET /status` every second (traffic rates come
 * from the difference between two polls) and `GET /api/docs?sizes` every few seconds, and draws
 * this device, its peers, documents, problems and discovery. Plain DOM; every value from the
 * daemon, peers' names included, goes in as text, never as markup.
 */
import type { DaemonStatus, DialReport, PeerReport } from '../src/status.js'

const STATUS_MS = 1_000
const DOCS_MS = 5_000
/** Traffic samples kept for the sparkline (one per poll). */
const SAMPLES = 60

const $ = (id: string): HTMLElement => document.getElementById(id)!
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = text
  if (className !== undefined) e.className = className
  return e
}
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

function bytes (n: number): string {
  if (n < 1024) return `${Math.round(n)} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

function duration (ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`
  return `${Math.floor(s / 86400)} d ${Math.floor(s % 86400 / 3600)} h`
}

function row (dl: HTMLElement, term: string, ...values: Array<string | HTMLElement>): void {
  const dd = el('dd')
  for (const v of values) dd.append(typeof v === 'string' ? el('div', v) : v)
  dl.append(el('dt', term), dd)
}

function renderDevice (s: DaemonStatus): void {
  $('device-name').textContent = s.name
  document.title = `${s.name} · Hearsay`
  const dl = $('device')
  dl.replaceChildren()
  row(dl, 'name', s.name)
  row(dl, 'id', el('code', s.id, 'id'))
  row(dl, 'listening', ...(s.multiaddrs.length > 0 ? s.multiaddrs.map(a => el('code', a, 'addr')) : [`${s.transport} (no addresses)`]))
  if (s.network !== undefined) {
    row(dl, 'swarm', el('span', s.network.privateSwarm ? 'private (swarm key)' : 'open: anyone on the LAN may join', s.network.privateSwarm ? 'ok' : 'warn'))
  }
  row(dl, 'uptime', duration(s.uptimeMs))
  row(dl, 'endpoint', `${s.endpoint} · ${plural(s.clients.clients, 'client')}`)
  row(dl, 'version', s.version)
}

/** How we reach a peer, as far as this node can tell. */
function pathOf (p: PeerReport, dial: DialReport | undefined): string {
  const found = dial === undefined ? '' : { discovery: ' · found on the LAN (mDNS)', bootstrap: ' · bootstrap address', connect: ' · dialled', inbound: ' · it connected to us' }[dial.source] ?? ` · ${dial.source}`
  if (p.connected) return `direct connection${found}`
  if (p.state === 'alive') return `through other peers${found}`
  return `not connected${found}`
}

function renderPeers (s: DaemonStatus): void {
  const dials = new Map((s.network?.dials ?? []).map(d => [d.id, d]))
  const connected = s.peers.filter(p => p.connected).length
  $('peer-count').textContent = s.peers.length === 0 ? '' : `${connected} of ${s.peers.length} connected`
  const list = $('peers')
  if (s.peers.length === 0) {
    list.replaceChildren(el('li', 'No peer yet. Devices with the same swarm key on this LAN appear here.', 'muted'))
    return
  }
  const order = { alive: 0, suspect: 1, dead: 2 }
  const peers = [...s.peers].sort((a, b) => order[a.state] - order[b.state] || (a.name ?? a.id).localeCompare(b.name ?? b.id))
  list.replaceChildren(...peers.map(p => {
    const li = el('li')
    li.dataset.peer = p.id
    li.dataset.state = p.state
    const head = el('div', undefined, 'card-head')
    head.append(el('strong', p.name ?? 'unnamed device', 'peer-name'), el('span', p.state, `badge ${p.state}`))
    const sync = p.connected ? (p.inSync ? 'in sync' : 'syncing') : p.inSync ? 'in sync when last seen' : 'out of sync when last seen'
    li.append(head,
      el('div', pathOf(p, dials.get(p.id)), 'muted'),
      el('div', `${sync} · ${plural(p.docCount, 'document')}${p.bytes !== undefined ? ` (~${bytes(p.bytes)})` : ''} · seen ${duration(p.lastSeenMsAgo)} ago`, p.connected && p.inSync ? 'ok sync' : 'sync'),
      el('code', p.id, 'id'))
    return li
  }))
}

/** One line for a document problem: quarantined (unreadable), missing from disk, or records dropped. */
function problemText (p: DaemonStatus['problems'][number]): string {
  if (p.kind === 'missing') return `document ${p.docId} is gone from disk (waiting for a peer to restore it): ${p.message}`
  if (p.kind === 'damaged') return `the store dropped damaged records at open: ${p.message}`
  return `document ${p.docId} is quarantined: ${p.message}`
}

function renderProblems (s: DaemonStatus): void {
  const items: HTMLElement[] = []
  for (const p of s.problems) items.push(el('li', problemText(p), 'bad'))
  const names = new Map(s.peers.map(p => [p.id, p.name ?? p.id]))
  const now = Date.now()
  for (const d of s.network?.dials ?? []) {
    const who = names.get(d.id) ?? d.id
    if (d.unsupported) items.push(el('li', `${who} does not speak Hearsay`, 'warn'))
    else if (d.refusedUntil !== undefined && d.refusedUntil > now) items.push(el('li', `${who} is refused for ${duration(d.refusedUntil - now)}: it sent something this node does not accept`, 'warn'))
    else if (d.dialFailures > 0 && d.lastFailure === 'refused') items.push(el('li', `${who} refused the connection ${plural(d.dialFailures, 'time')} (a different swarm key?)`, 'warn'))
    else if (d.dialFailures > 0) items.push(el('li', `${who} is unreachable (${plural(d.dialFailures, 'failed dial')})`, 'warn'))
  }
  if (s.metrics.framesRejected > 0) items.push(el('li', `${plural(s.metrics.framesRejected, 'frame')} from peers failed to decode (those sessions were closed)`, 'warn'))
  $('problems').replaceChildren(...(items.length > 0 ? items : [el('li', 'None', 'ok')]))
}

function renderSync (s: DaemonStatus): void {
  const { sync } = s
  const connected = s.peers.filter(p => p.connected).length
  const overall = $('overall')
  overall.textContent = connected === 0 ? 'no peer connected' : sync.inSync ? `up to date with ${plural(connected, 'peer')}` : 'syncing'
  overall.className = `pill ${connected === 0 ? 'warn' : sync.inSync ? 'ok' : 'busy'}`
  const fraction = sync.docsTotal === 0 ? 1 : Math.min(1, sync.docsDone / sync.docsTotal)
  $('progress-bar').style.width = `${(fraction * 100).toFixed(1)}%`
  $('progress-text').textContent = sync.docsTotalExact
    ? `${plural(sync.docsDone, 'document')}, ${bytes(sync.bytesDone)}: up to date`
    : `${sync.docsDone} here, at least ${sync.docsTotal} in the swarm · ${bytes(sync.bytesDone)} of ~${bytes(sync.bytesTotal)}`
  const d = s.discovery
  $('discovery').textContent = `mDNS ${d.mdns}: ${d.detail}`
  $('discovery').className = d.mdns === 'ok' ? 'ok' : d.mdns === 'disabled' || d.mdns === 'unavailable' ? 'muted' : 'warn'
}

// --- traffic: rates from consecutive polls ------------------------------------------------
let last: { at: number, sent: number, received: number } | undefined
const history: Array<{ in: number, out: number }> = []

function renderTraffic (s: DaemonStatus, at: number): void {
  const sent = s.metrics.bytesSent
  const received = s.metrics.bytesReceived
  if (last !== undefined && at > last.at) {
    const secs = (at - last.at) / 1000
    const rin = Math.max(0, received - last.received) / secs
    const rout = Math.max(0, sent - last.sent) / secs
    $('rate-in').textContent = `${bytes(rin)}/s`
    $('rate-out').textContent = `${bytes(rout)}/s`
    history.push({ in: rin, out: rout })
    if (history.length > SAMPLES) history.shift()
    drawSpark()
  }
  $('total-in').textContent = `${bytes(received)} since start`
  $('total-out').textContent = `${bytes(sent)} since start`
  last = { at, sent, received }
}

function drawSpark (): void {
  const svg = $('spark')
  const max = Math.max(1, ...history.map(h => Math.max(h.in, h.out)))
  const line = (pick: (h: { in: number, out: number }) => number, cls: string): SVGPolylineElement => {
    const p = document.createElementNS('http://www.w3.org/2000/svg', 'polyline')
    p.setAttribute('points', history.map((h, i) => `${(120 - (history.length - 1 - i) * 120 / (SAMPLES - 1)).toFixed(1)},${(29 - pick(h) / max * 27).toFixed(1)}`).join(' '))
    p.setAttribute('class', cls)
    return p
  }
  svg.replaceChildren(line(h => h.in, 'in'), line(h => h.out, 'out'))
}

// --- documents ----------------------------------------------------------------------------
async function refreshDocs (): Promise<void> {
  const r = await (await fetch('/api/docs?sizes')).json() as { docs: string[], sizes: Record<string, number> }
  $('doc-count').textContent = r.docs.length === 0 ? '' : plural(r.docs.length, 'document')
  const body = document.querySelector('#docs tbody')!
  if (r.docs.length === 0) {
    body.replaceChildren(el('tr'))
    body.firstElementChild!.append(el('td', 'No documents yet.', 'muted'))
    return
  }
  body.replaceChildren(...r.docs.map(id => {
    const tr = el('tr')
    tr.dataset.doc = id
    const size = r.sizes[id]
    tr.append(el('td', id, 'doc-id'), el('td', size === undefined ? '–' : bytes(size), 'num'))
    return tr
  }))
}

async function refresh (): Promise<void> {
  try {
    const s = await (await fetch('/status')).json() as DaemonStatus
    renderDevice(s)
    renderSync(s)
    renderPeers(s)
    renderProblems(s)
    renderTraffic(s, performance.now())
    document.body.classList.remove('offline')
  } catch {
    $('overall').textContent = 'daemon not reachable'
    $('overall').className = 'pill bad'
    document.body.classList.add('offline')
  }
}

void refresh()
setInterval(() => { void refresh() }, STATUS_MS)
void refreshDocs().catch(() => {})
setInterval(() => { void refreshDocs().catch(() => {}) }, DOCS_MS)
