/// <reference lib="dom" />
/**
 * The sync panel: polls the daemon's `GET /status` and says, in words, whether this device is in
 * sync, with which devices (by the names they announce), and whether discovery can work.
 */

export interface PeerReport { id: string, name?: string, access?: string, state: string, connected: boolean, inSync: boolean, docCount: number, lastSeenMsAgo: number }
export interface Status {
  id: string
  name: string
  peers: PeerReport[]
  sync: { inSync: boolean, docsDone: number, docsTotal: number, docsTotalExact: boolean, bytesDone: number, bytesTotal: number }
  discovery: { mdns: string, detail: string }
}

const $ = (id: string): HTMLElement => document.getElementById(id)!

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`
const size = (bytes: number): string => bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/** Draw the panel; `names` gives a name for a peer that announces none (from presence). */
export function renderStatus (s: Status, names: (peerId: string) => string | undefined): void {
  $('self-name').textContent = s.name
  const id = $('node-id')
  id.textContent = s.id
  id.title = s.id
  const connected = s.peers.filter(p => p.connected)
  const sync = $('sync')
  sync.textContent = connected.length === 0
    ? 'No other device connected: edits stay here until one comes back.'
    : s.sync.inSync
      ? `In sync with ${plural(connected.length, 'device')}.`
      : `Syncing: ${plural(s.sync.docsDone, 'document')} here, ${s.sync.docsTotalExact ? '' : 'at least '}${s.sync.docsTotal} in all; ${size(s.sync.bytesDone)} of about ${size(s.sync.bytesTotal)}.`
  const state = connected.length === 0 ? 'alone' : s.sync.inSync ? 'ok' : 'syncing'
  sync.className = state === 'ok' ? 'ok' : 'warn'
  const pill = $('sync-pill')
  pill.dataset.state = state
  $('pill-text').textContent = state === 'alone' ? 'no devices' : state === 'ok' ? `in sync · ${plural(connected.length, 'device')}` : 'syncing…'
  const discovery = $('discovery')
  const d = s.discovery
  discovery.textContent = d.mdns === 'ok'
    ? 'Finding devices on this network (mDNS).'
    : d.mdns === 'disabled' ? 'mDNS is off: devices come from bootstrap addresses.' : d.mdns === 'unavailable' ? d.detail : `Discovery ${d.mdns}: ${d.detail}`
  discovery.className = ['ok', 'disabled', 'unavailable'].includes(d.mdns) ? 'muted' : 'warn'
  discovery.hidden = d.mdns === 'unavailable' // a transport without LAN discovery: nothing to diagnose
  const order: Record<string, number> = { alive: 0, suspect: 1, dead: 2 }
  const peers = [...s.peers].sort((a, b) => (order[a.state] ?? 3) - (order[b.state] ?? 3))
  $('peers').replaceChildren(...peers.map(p => {
    const li = document.createElement('li')
    li.dataset.peer = p.id
    li.dataset.state = p.state
    const name = document.createElement('span')
    name.className = 'peer-name'
    name.textContent = p.name ?? names(p.id) ?? 'unnamed device'
    const detail = document.createElement('span')
    detail.className = 'peer-state'
    // in a managed swarm, what the roster lets the device do (TRUST.md)
    detail.textContent = `${p.state}${p.connected ? (p.inSync ? ' · in sync' : ' · syncing') : ' · not connected'}${p.access !== undefined ? ` · ${p.access}` : ''}`
    const code = document.createElement('code')
    code.textContent = p.id
    code.title = p.id
    li.append(name, detail, code)
    return li
  }))
  if (peers.length === 0) {
    const li = document.createElement('li')
    li.className = 'muted'
    li.textContent = 'No other device yet.'
    $('peers').append(li)
  }
}

export function renderUnreachable (): void {
  $('sync').textContent = 'The daemon is not reachable.'
  $('sync').className = 'bad'
  $('sync-pill').dataset.state = 'offline'
  $('pill-text').textContent = 'offline'
}
