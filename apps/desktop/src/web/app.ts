/// <reference lib="dom" />
/**
 * Hearsay Notes, the browser side. Everything goes through the local daemon's y-websocket
 * endpoint; the daemon syncs the documents with the other devices of the LAN.
 *
 * Documents: `notes/index` (map `titles`: note id → title), `notes/<id>` (text `body`),
 * `notes/presence` (map `devices`: who has which note open, refreshed every few seconds).
 */
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { bindTextarea } from './textarea.js'

const PRESENCE_MS = 3_000
const PRESENCE_STALE_MS = 12_000
const STATUS_MS = 1_000

interface Presence { name: string, note: string | null, at: number }
interface PeerReport { id: string, state: string, connected: boolean, inSync: boolean, docCount: number, lastSeenMsAgo: number }
interface Status {
  id: string
  peers: PeerReport[]
  sync: { inSync: boolean, docsDone: number, docsTotal: number, bytesReceived: number }
  discovery: { mdns: string, detail: string }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T
const server = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
const params = new URLSearchParams(location.search)
const session = Math.random().toString(36).slice(2, 10)
let deviceName = params.get('name') ?? localStorage.getItem('hearsay-notes-name') ?? `device-${session.slice(0, 4)}`

function connect (room: string): { doc: Y.Doc, provider: WebsocketProvider } {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server, room, doc, { disableBc: true })
  return { doc, provider }
}

// --- the list of notes ----------------------------------------------------------------------
const index = connect('notes/index')
const titles = index.doc.getMap<string>('titles')
const presence = connect('notes/presence')
const devices = presence.doc.getMap<Presence>('devices')

let current: { id: string, doc: Y.Doc, provider: WebsocketProvider, unbind: () => void } | undefined

function renderList (): void {
  const list = $('notes')
  list.replaceChildren()
  const ids = Array.from(titles.keys()).sort((a, b) => (titles.get(a) ?? '').localeCompare(titles.get(b) ?? '') || a.localeCompare(b))
  for (const id of ids) {
    const li = document.createElement('li')
    li.dataset.id = id
    li.textContent = titles.get(id) || 'Untitled'
    if (current?.id === id) li.classList.add('active')
    const here = Array.from(devices.entries()).filter(([k, p]) => k !== session && p.note === id && Date.now() - p.at < PRESENCE_STALE_MS)
    if (here.length > 0) {
      const badge = document.createElement('span')
      badge.className = 'badge'
      badge.textContent = here.map(([, p]) => p.name).join(', ')
      li.append(badge)
    }
    li.addEventListener('click', () => { openNote(id) })
    list.append(li)
  }
}
titles.observe(renderList)
devices.observe(() => { renderList(); renderPresence() })

function titleOf (text: string): string {
  return text.split('\n', 1)[0]!.trim().slice(0, 60)
}

function openNote (id: string): void {
  if (current?.id === id) return
  if (current !== undefined) {
    current.unbind()
    current.provider.destroy()
    current.doc.destroy()
  }
  const { doc, provider } = connect(`notes/${id}`)
  provider.awareness.setLocalStateField('user', { name: deviceName })
  const body = doc.getText('body')
  const editor = $<HTMLTextAreaElement>('editor')
  editor.disabled = false
  const unbindText = bindTextarea(body, editor)
  const onBody = (): void => {
    const title = titleOf(body.toString())
    if (titles.get(id) !== title && (title !== '' || titles.has(id))) titles.set(id, title)
  }
  body.observe(onBody)
  current = { id, doc, provider, unbind: () => { unbindText(); body.unobserve(onBody) } }
  location.hash = id
  renderList()
  beat()
  editor.focus()
}

$('new-note').addEventListener('click', () => {
  const id = `${Date.now().toString(36)}-${session.slice(0, 4)}`
  titles.set(id, '')
  openNote(id)
})

// --- presence -----------------------------------------------------------------------------
function beat (): void {
  devices.set(session, { name: deviceName, note: current?.id ?? null, at: Date.now() })
  // whoever sees a stale entry removes it
  for (const [k, p] of devices.entries()) if (k !== session && Date.now() - p.at > 5 * PRESENCE_STALE_MS) devices.delete(k)
}
setInterval(beat, PRESENCE_MS)
addEventListener('pagehide', () => { devices.delete(session) })

function renderPresence (): void {
  const others = Array.from(devices.entries())
    .filter(([k, p]) => k !== session && Date.now() - p.at < PRESENCE_STALE_MS)
    .map(([, p]) => `${p.name}${p.note !== null ? ` (${titles.get(p.note) || 'Untitled'})` : ''}`)
  $('presence').textContent = others.length > 0 ? `Also here: ${others.join(', ')}` : 'Nobody else here'
}

const nameInput = $<HTMLInputElement>('name')
nameInput.value = deviceName
nameInput.addEventListener('change', () => {
  deviceName = nameInput.value.trim() || deviceName
  localStorage.setItem('hearsay-notes-name', deviceName)
  current?.provider.awareness.setLocalStateField('user', { name: deviceName })
  beat()
})

// --- status panel ---------------------------------------------------------------------------
index.provider.on('status', ({ status }: { status: string }) => {
  $('daemon').textContent = status === 'connected' ? 'daemon: connected' : `daemon: ${status}`
  $('daemon').className = status === 'connected' ? 'ok' : 'bad'
})

async function refreshStatus (): Promise<void> {
  try {
    const s = await (await fetch('/status')).json() as Status
    $('node-id').textContent = s.id
    const connected = s.peers.filter(p => p.connected)
    const sync = $('sync')
    sync.textContent = connected.length === 0
      ? 'no peer connected: edits stay here until one comes back'
      : s.sync.inSync ? `in sync with ${connected.length} peer(s)` : `syncing: ${s.sync.docsDone}/${s.sync.docsTotal} docs`
    sync.className = connected.length > 0 && s.sync.inSync ? 'ok' : 'warn'
    $('discovery').textContent = `discovery ${s.discovery.mdns}: ${s.discovery.detail}`
    $('discovery').className = s.discovery.mdns === 'ok' ? 'ok' : 'warn'
    const peers = $('peers')
    peers.replaceChildren(...s.peers.map(p => {
      const li = document.createElement('li')
      li.dataset.peer = p.id
      li.dataset.state = p.state
      li.textContent = `${p.id.slice(0, 16)} · ${p.state}${p.connected ? (p.inSync ? ' · in sync' : ' · syncing') : ''}`
      return li
    }))
  } catch {
    $('sync').textContent = 'daemon unreachable'
    $('sync').className = 'bad'
  }
  renderPresence()
}
setInterval(() => { void refreshStatus() }, STATUS_MS)
void refreshStatus()

// open the note named in the URL once the index is known
index.provider.once('sync', () => {
  const wanted = location.hash.slice(1)
  if (wanted !== '' && titles.has(wanted)) openNote(wanted)
  renderList()
})
