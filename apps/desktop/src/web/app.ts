/// <reference lib="dom" />
/**
 * Hearsay Notes, the browser side. Everything goes through the local daemon's y-websocket
 * endpoint; the daemon syncs the documents with the other devices of the LAN.
 *
 * Documents: `notes/index` (map `titles`: note id → title), `notes/<id>` (text `body`).
 * Presence is y-websocket awareness on `notes/index` (`user: { name, note }`); the daemon
 * shares it with the other devices.
 */
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { bindTextarea } from './textarea.js'

const STATUS_MS = 1_000

interface Presence { name: string, note: string | null }
interface PeerReport { id: string, state: string, connected: boolean, inSync: boolean, docCount: number, lastSeenMsAgo: number }
interface Status {
  id: string
  peers: PeerReport[]
  sync: { inSync: boolean, docsDone: number, docsTotal: number, docsTotalExact: boolean, bytesReceived: number, bytesDone: number, bytesTotal: number }
  discovery: { mdns: string, detail: string }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T
const mib = (bytes: number): string => bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`
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
const awareness = index.provider.awareness

/** Other windows, on this device or others: awareness states except ours. */
function others (): Presence[] {
  const out: Presence[] = []
  for (const [id, state] of awareness.getStates()) {
    const user = (state as { user?: Presence }).user
    if (id !== awareness.clientID && user !== undefined) out.push(user)
  }
  return out
}

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
    const here = others().filter(p => p.note === id)
    if (here.length > 0) {
      const badge = document.createElement('span')
      badge.className = 'badge'
      badge.textContent = here.map(p => p.name).join(', ')
      li.append(badge)
    }
    li.addEventListener('click', () => { openNote(id) })
    list.append(li)
  }
}
titles.observe(renderList)
awareness.on('change', () => { renderList(); renderPresence() })

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
  announce()
  renderList()
  editor.focus()
}

$('new-note').addEventListener('click', () => {
  const id = `${Date.now().toString(36)}-${session.slice(0, 4)}`
  titles.set(id, '')
  openNote(id)
})

// --- presence -----------------------------------------------------------------------------
function announce (): void {
  awareness.setLocalStateField('user', { name: deviceName, note: current?.id ?? null })
}
announce()

function renderPresence (): void {
  const list = others().map(p => `${p.name}${p.note !== null ? ` (${titles.get(p.note) || 'Untitled'})` : ''}`)
  $('presence').textContent = list.length > 0 ? `Also here: ${list.join(', ')}` : 'Nobody else here'
}

const nameInput = $<HTMLInputElement>('name')
nameInput.value = deviceName
nameInput.addEventListener('change', () => {
  deviceName = nameInput.value.trim() || deviceName
  localStorage.setItem('hearsay-notes-name', deviceName)
  announce()
})

// --- status panel ---------------------------------------------------------------------------
// y-websocket says 'disconnected' once and then 'connecting' on every retry: once the daemon has
// been lost, keep saying so until it is back, rather than flashing it for a retry's backoff
let lost = false
index.provider.on('status', ({ status }: { status: string }) => {
  if (status === 'disconnected') lost = true
  if (status === 'connected') lost = false
  $('daemon').textContent = status === 'connected' ? 'daemon: connected' : lost ? 'daemon: disconnected, reconnecting…' : `daemon: ${status}`
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
      : s.sync.inSync ? `in sync with ${connected.length} peer(s)` : `syncing: ${s.sync.docsDone} docs here, ${s.sync.docsTotalExact ? '' : 'at least '}${s.sync.docsTotal} in the swarm; ${mib(s.sync.bytesDone)} of about ${mib(s.sync.bytesTotal)}`
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
