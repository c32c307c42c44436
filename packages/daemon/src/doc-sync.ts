/**
 * `GET /api/docs/<id>/sync` and `hearsay get <id> --sync`: what this node knows of each peer's copy
 * of a document (`node.syncState`), with device names, and the names of the devices whose storage
 * holds everything this one does ("saved on …").
 *
 * The first question about a document starts following it: connected peers answer within a round
 * trip, so the answer waits for them up to `waitMs` before it is given.
 */
import type { DocSyncState, HearsayNode, PeerSyncState } from '@hearsay/core'
import { displayName } from './device-name.js'

export interface DocSyncReport {
  id: string
  peers: Array<PeerSyncState & { name?: string }>
  /** Names (or ids) of the peers whose storage holds everything this node holds of the document. */
  savedOn: string[]
}

/** Longest wait a request may ask for, in ms. */
export const SYNC_MAX_WAIT_MS = 10_000

export async function docSync (node: HearsayNode, docId: string, waitMs: number): Promise<DocSyncReport> {
  let s = node.syncState(docId)
  const waiting = (st: DocSyncState): boolean => st.peers.some(p => p.connected && (p.state === 'unknown' || (p.state === 'synced' && !p.durable)))
  if (waitMs > 0 && waiting(s)) {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        off()
        resolve()
      }
      const timer = setTimeout(done, Math.min(waitMs, SYNC_MAX_WAIT_MS))
      const off = node.on('doc:sync', e => { if (e.docId === docId && !waiting(e)) done() })
    })
    s = node.syncState(docId)
  }
  const names = new Map(node.peers().map(p => [p.id, displayName(p)]))
  const peers = s.peers.map(p => {
    const name = p.name ?? names.get(p.peerId)
    return { ...p, ...(name !== undefined ? { name } : {}) }
  })
  return { id: docId, peers, savedOn: peers.filter(p => p.durable).map(p => p.name ?? p.peerId) }
}

/** The report as `hearsay get --sync` prints it. */
export function formatDocSync (r: DocSyncReport): string {
  const lines = [`${r.id}: ${r.savedOn.length > 0 ? `saved on ${r.savedOn.join(', ')}` : 'not known to be saved on any peer'}`]
  for (const p of r.peers) lines.push(`  ${(p.name ?? p.peerId).padEnd(20)} ${p.state.padEnd(8)} ${p.durable ? 'stored' : 'not stored'}  ${p.connected ? 'connected' : 'not connected'}  ${p.peerId}`)
  if (r.peers.length === 0) lines.push('  no peer that may read it is known')
  return lines.join('\n')
}
