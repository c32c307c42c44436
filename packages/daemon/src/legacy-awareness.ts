/**
 * Presence used to be mirrored into documents `_awareness/<docId>`; it now lives in the engine
 * (`node.awareness`) and is never stored. Those documents are dropped from this node at start,
 * and again whenever a peer that still runs an older version brings one back (a second after it
 * arrives, so a burst is one pass).
 */
import type { HearsayNode, Log } from '@hearsay/core'
import { LEGACY_AWARENESS_PREFIX } from './constants.js'

const DROP_DELAY_MS = 1000

/** Drop the legacy presence documents now and whenever they come back; returns the stop function. */
export async function dropLegacyAwareness (node: HearsayNode, log: Log): Promise<() => void> {
  const drop = async (ids: string[]): Promise<void> => {
    let n = 0
    for (const id of ids) {
      try {
        await node.forget(id)
        n++
      } catch (err) {
        log.warn(`could not drop the legacy presence document "${id}": ${(err as Error).message}`)
      }
    }
    if (n > 0) log(`dropped ${n} legacy presence document(s) (${LEGACY_AWARENESS_PREFIX}…): presence is no longer stored`)
  }
  await drop(node.docs().filter(id => id.startsWith(LEGACY_AWARENESS_PREFIX)))
  const due = new Set<string>()
  let timer: ReturnType<typeof setTimeout> | undefined
  const off = node.on('doc:update', ({ docId, peerId }) => {
    if (peerId === undefined || !docId.startsWith(LEGACY_AWARENESS_PREFIX)) return
    due.add(docId)
    timer ??= setTimeout(() => {
      timer = undefined
      const ids = [...due]
      due.clear()
      void drop(ids)
    }, DROP_DELAY_MS)
  })
  return () => {
    off()
    if (timer !== undefined) clearTimeout(timer)
  }
}
