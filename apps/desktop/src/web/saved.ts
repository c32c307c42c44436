/// <reference lib="dom" />
/**
 * The "saved on …" line under an open note: which other devices hold the note in their storage,
 * from the daemon's `GET /api/docs/<id>/sync` (acknowledgements from the peers, not a guess).
 */

interface SyncReport { peers: Array<{ peerId: string, name?: string, state: string, durable: boolean, connected: boolean }>, savedOn: string[] }

/** Fetch and draw the line for document `docId` into `el`. */
export async function renderSaved (el: HTMLElement, docId: string): Promise<void> {
  let r: SyncReport
  try {
    const res = await fetch(`/api/docs/${encodeURIComponent(docId)}/sync?wait=0`)
    if (!res.ok) return
    r = await res.json() as SyncReport
  } catch {
    return
  }
  const behind = r.peers.filter(p => p.connected && !p.durable).map(p => p.name ?? p.peerId.slice(0, 12))
  el.textContent = r.savedOn.length > 0
    ? `Saved on ${r.savedOn.join(', ')}${behind.length > 0 ? ` · saving to ${behind.join(', ')}…` : ''}`
    : behind.length > 0 ? `Saving to ${behind.join(', ')}…` : 'Only on this device so far.'
  el.dataset.saved = r.savedOn.join(',')
}
