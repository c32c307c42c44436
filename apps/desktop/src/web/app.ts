/// <reference lib="dom" />
/**
 * Hearsay Notes, the browser side. Everything goes through the local daemon's y-websocket
 * endpoint; the daemon syncs the documents with the other devices of the LAN.
 *
 * Documents: `notes/index` (map `titles`: note id → title; map `deleted`: note id → the device
 * that deleted it), `notes/<id>` (text `body`; its first line is the title).
 * Presence is y-websocket awareness: on `notes/index`, `user: { name, color, note, device }` says
 * who has which note open; on `notes/<id>`, `user: { name, color, colorLight }` and the cursor
 * (y-codemirror.next). The daemon shares both with the other devices.
 * The device's name is the daemon's (`GET /status` `name`, announced to peers); renaming it here
 * sets it with `PUT /api/name`.
 */
import type { EditorView } from '@codemirror/view'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { colourOf, createEditor } from './editor.js'
import { plural, renderStatus, renderUnreachable } from './sync-panel.js'
import type { Status } from './sync-panel.js'
import { renderSaved } from './saved.js'

const STATUS_MS = 1_000
const NAME_KEY = 'hearsay-notes-name'
/** Longest name shown for another window (the daemon accepts device names up to 64 characters). */
const NAME_MAX = 64

interface Presence { name: string, color?: string, note: string | null, device?: string }

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T
const server = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
const params = new URLSearchParams(location.search)
const session = Math.random().toString(36).slice(2, 10)
/** The name this browser chose; the daemon's own name until then. */
let deviceName = params.get('name') ?? localStorage.getItem(NAME_KEY) ?? ''
let nodeId: string | undefined

function connect (room: string): { doc: Y.Doc, provider: WebsocketProvider } {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server, room, doc, { disableBc: true })
  return { doc, provider }
}

// --- the list of notes ----------------------------------------------------------------------
const index = connect('notes/index')
const titles = index.doc.getMap<string>('titles')
const deleted = index.doc.getMap<string>('deleted')
const awareness = index.provider.awareness

/** Other windows, on this device or others: awareness states except ours, checked (other devices send them). */
function others (): Presence[] {
  const out: Presence[] = []
  for (const [id, state] of awareness.getStates()) {
    const user = (state as { user?: Partial<Presence> } | null)?.user
    if (id === awareness.clientID || user === null || typeof user !== 'object' || typeof user.name !== 'string') continue
    out.push({
      name: [...user.name].slice(0, NAME_MAX).join(''),
      note: typeof user.note === 'string' ? user.note : null,
      ...(typeof user.color === 'string' && /^#[0-9a-f]{6}$/i.test(user.color) ? { color: user.color } : {}),
      ...(typeof user.device === 'string' ? { device: user.device } : {})
    })
  }
  return out
}

const titleOf = (id: string): string => titles.get(id) || 'Untitled'
const listed = (): string[] => Array.from(titles.keys()).filter(id => !deleted.has(id))
  .sort((a, b) => titleOf(a).localeCompare(titleOf(b)) || a.localeCompare(b))

let current: { id: string, doc: Y.Doc, provider: WebsocketProvider, view: EditorView, close: () => void } | undefined

function renderList (): void {
  const list = $('notes')
  const ids = listed()
  list.replaceChildren(...ids.map(id => {
    const li = document.createElement('li')
    li.dataset.id = id
    const title = document.createElement('span')
    title.className = 'title'
    title.textContent = titleOf(id)
    li.append(title)
    if (current?.id === id) li.classList.add('active')
    const here = others().filter(p => p.note === id)
    if (here.length > 0) {
      const who = document.createElement('span')
      who.className = 'who'
      who.textContent = here.map(p => p.name).join(', ')
      li.append(who)
    }
    li.addEventListener('click', () => { openNote(id) })
    return li
  }))
  $('note-count').textContent = ids.length === 0 ? '' : plural(ids.length, 'note')
  if (ids.length === 0) {
    const li = document.createElement('li')
    li.className = 'empty'
    li.textContent = 'No notes yet.'
    list.append(li)
  }
}

function renderNoteHeader (): void {
  const open = current !== undefined
  document.body.classList.toggle('has-note', open)
  $('note-title').textContent = open ? titleOf(current!.id) : ''
  for (const b of ['rename', 'delete']) $<HTMLButtonElement>(b).disabled = !open
  const here = open ? others().filter(p => p.note === current!.id) : []
  $('here').replaceChildren(...here.map(p => {
    const chip = document.createElement('span')
    chip.className = 'chip'
    chip.textContent = p.name
    chip.style.background = p.color ?? '#607d8b'
    return chip
  }))
}

titles.observe(() => { renderList(); renderNoteHeader() })
deleted.observe(() => {
  if (current !== undefined && deleted.has(current.id)) {
    notice(`“${titleOf(current.id)}” was deleted on ${deleted.get(current.id) || 'another device'}.`)
    closeNote()
  }
  renderList()
})
awareness.on('change', () => { renderList(); renderNoteHeader(); renderPresence() })

function closeNote (): void {
  if (current === undefined) return
  current.close()
  current = undefined
  $('saved').textContent = ''
  announce()
  renderNoteHeader()
  renderList()
  if (location.hash !== '') history.replaceState(null, '', location.pathname + location.search)
}

function openNote (id: string): void {
  document.body.classList.remove('show-notes')
  if (current?.id === id) return
  closeNote()
  notice('')
  const { doc, provider } = connect(`notes/${id}`)
  const body = doc.getText('body')
  provider.awareness.setLocalStateField('user', { name: shownName(), ...colourOf(shownName()) })
  const view = createEditor($('editor'), body, provider.awareness)
  const onBody = (): void => {
    if (deleted.has(id)) return
    const title = body.toString().split('\n', 1)[0]!.trim().slice(0, 80)
    if (titles.get(id) !== title && (title !== '' || titles.has(id))) titles.set(id, title)
  }
  body.observe(onBody)
  current = {
    id,
    doc,
    provider,
    view,
    close: () => {
      body.unobserve(onBody)
      view.destroy()
      provider.destroy()
      doc.destroy()
    }
  }
  history.replaceState(null, '', `#${id}`)
  announce()
  renderList()
  renderNoteHeader()
  view.focus()
}

$('new-note').addEventListener('click', () => {
  const id = `${Date.now().toString(36)}-${session.slice(0, 4)}`
  titles.set(id, '')
  openNote(id)
})

// --- rename and delete ----------------------------------------------------------------------
const renameForm = $<HTMLFormElement>('rename-form')
const renameInput = $<HTMLInputElement>('rename-input')
$('rename').addEventListener('click', () => {
  if (current === undefined) return
  renameInput.value = titles.get(current.id) ?? ''
  renameForm.hidden = false
  renameInput.focus()
  renameInput.select()
})
$('rename-cancel').addEventListener('click', () => { renameForm.hidden = true })
renameForm.addEventListener('submit', e => {
  e.preventDefault()
  renameForm.hidden = true
  if (current === undefined) return
  const title = renameInput.value.replace(/\s+/g, ' ').trim()
  if (title === '') return
  // the title is the first line: replace it, in one change other windows see at once
  const body = current.doc.getText('body')
  const text = body.toString()
  const end = text.indexOf('\n') < 0 ? text.length : text.indexOf('\n')
  current.doc.transact(() => {
    body.delete(0, end)
    body.insert(0, title)
  })
  current.view.focus()
})
$('delete').addEventListener('click', () => {
  if (current === undefined) return
  const { id } = current
  if (!confirm(`Delete “${titleOf(id)}” on every device?`)) return
  const body = current.doc.getText('body')
  current.doc.transact(() => { body.delete(0, body.length) })
  index.doc.transact(() => {
    deleted.set(id, shownName())
    titles.delete(id)
  })
  closeNote()
  notice(`Deleted.`)
})

function notice (text: string): void {
  $('notice').textContent = text
  $('notice').hidden = text === ''
}

// --- presence and the device's name ---------------------------------------------------------
const shownName = (): string => deviceName || 'this device'

function announce (): void {
  awareness.setLocalStateField('user', { name: shownName(), ...colourOf(shownName()), note: current?.id ?? null, ...(nodeId !== undefined ? { device: nodeId } : {}) })
  current?.provider.awareness.setLocalStateField('user', { name: shownName(), ...colourOf(shownName()) })
}
announce()

function renderPresence (): void {
  const list = others().map(p => `${p.name}${p.note !== null ? ` (${titleOf(p.note)})` : ''}`)
  $('presence').textContent = list.length > 0 ? `Also here: ${list.join(', ')}` : 'Nobody else here'
}

/** A peer that announces no name yet: the name its windows give in presence. */
function presenceName (peerId: string): string | undefined {
  return others().find(p => p.device === peerId)?.name
}

const nameInput = $<HTMLInputElement>('name')
nameInput.value = deviceName
async function setDaemonName (name: string): Promise<void> {
  const r = await fetch('/api/name', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(name) })
  if (!r.ok) throw new Error(((await r.json()) as { error?: string }).error ?? `HTTP ${r.status}`)
}
nameInput.addEventListener('change', () => {
  const name = nameInput.value.trim()
  if (name === '') { nameInput.value = deviceName; return }
  setDaemonName(name).then(() => {
    deviceName = name
    localStorage.setItem(NAME_KEY, deviceName)
    nameInput.setCustomValidity('')
    announce()
  }, (err: Error) => {
    nameInput.setCustomValidity(err.message)
    nameInput.reportValidity()
  })
})

// --- layout: the notes list and the sync panel slide in on narrow screens -------------------
$('toggle-notes').addEventListener('click', () => { document.body.classList.toggle('show-notes') })
$('sync-pill').addEventListener('click', () => { document.body.classList.toggle('show-sync') })
$('close-sync').addEventListener('click', () => { document.body.classList.remove('show-sync') })

// --- the daemon and the sync panel ----------------------------------------------------------
// y-websocket says 'disconnected' once and then 'connecting' on every retry: once the daemon has
// been lost, keep saying so until it is back, rather than flashing it for a retry's backoff
let lost = false
index.provider.on('status', ({ status }: { status: string }) => {
  if (status === 'disconnected') lost = true
  if (status === 'connected') lost = false
  $('daemon').textContent = status === 'connected' ? 'daemon: connected' : lost ? 'daemon: disconnected, reconnecting…' : `daemon: ${status}`
  $('daemon').className = status === 'connected' ? 'ok' : 'bad'
})

// the name chosen in this browser is given to the daemon once per connection (it forgets it when
// restarted); otherwise the daemon's name, which another window may have changed, is shown
let assertName = true
index.provider.on('status', ({ status }: { status: string }) => { if (status === 'connected') assertName = true })

async function refreshStatus (): Promise<void> {
  let s: Status
  try {
    s = await (await fetch('/status')).json() as Status
  } catch {
    renderUnreachable()
    return
  }
  if (nodeId !== s.id) {
    nodeId = s.id
    announce()
  }
  if (assertName && deviceName !== '' && s.name !== deviceName) {
    assertName = false
    await setDaemonName(deviceName).then(() => { s.name = deviceName }, () => {})
  }
  assertName = false
  if (s.name !== deviceName) {
    deviceName = s.name
    if (document.activeElement !== nameInput) nameInput.value = deviceName
    announce()
  }
  renderStatus(s, presenceName)
  renderPresence()
  if (current !== undefined) await renderSaved($('saved'), `notes/${current.id}`)
}
setInterval(() => { void refreshStatus() }, STATUS_MS)
void refreshStatus()

// open the note named in the URL once the index is known
index.provider.once('sync', () => {
  const wanted = decodeURIComponent(location.hash.slice(1))
  if (wanted !== '' && titles.has(wanted) && !deleted.has(wanted)) openNote(wanted)
  renderList()
})
renderList()
renderNoteHeader()
