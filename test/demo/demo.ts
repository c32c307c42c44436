/**
 * `pnpm demo`: three Hearsay nodes keep a set of notes in sync, lose a link, edit on both sides of
 * the cut, and converge again, printing what happened at each step.
 */
import { createMemoryNetwork, createNode, type HearsayNode } from '@hearsay/core'
import { waitFor } from '@hearsay/core/testing'

const say = (s: string): void => { process.stdout.write(s + '\n') }
const net = createMemoryNetwork({ seed: 42 })
const names = ['laptop', 'pi', 'gateway']
const nodes = new Map<string, HearsayNode>()
for (const id of names) {
  const node = createNode({ id, transport: net.transport(id), antiEntropy: { intervalMs: 200 }, statusIntervalMs: 20 })
  node.on('peer:connect', e => { say(`  ${id}: connected to ${e.peerId}`) })
  nodes.set(id, node)
}
const get = (id: string): HearsayNode => nodes.get(id) as HearsayNode
const text = async (id: string, doc: string): Promise<string> => (await get(id).open(doc)).getText('body').toString()
const allInSync = (): boolean => names.every(n => get(n).peers().every(p => p.inSync))

say('Starting three nodes on an in-memory network')
for (const n of nodes.values()) await n.start()
await waitFor(() => names.every(n => get(n).peers().filter(p => p.connected).length === 2))

say('\nlaptop writes 100 notes; live updates carry them to the others')
const laptop = get('laptop')
for (let i = 0; i < 100; i++) (await laptop.open(`notes/${i}`)).getText('body').insert(0, `note ${i} from the laptop. `)
await waitFor(async () => get('pi').docs().length === 100 && get('gateway').docs().length === 100 && allInSync())
say(`  pi has ${get('pi').docs().length} notes, gateway has ${get('gateway').docs().length}; all peers in sync: ${allInSync()}`)

say('\nThe pi drops off the network; both sides keep editing')
net.partition([['laptop', 'gateway'], ['pi']])
await waitFor(() => !get('pi').peers().some(p => p.connected))
;(await laptop.open('notes/7')).getText('body').insert(0, '[edited on the laptop] ')
;(await get('pi').open('notes/7')).getText('body').insert(0, '[edited on the pi] ')
;(await get('pi').open('notes/pi-only')).getText('body').insert(0, 'written while offline')
say(`  laptop sees: "${await text('laptop', 'notes/7')}"`)
say(`  pi sees:     "${await text('pi', 'notes/7')}"`)

say('\nThe link comes back: queued updates and anti-entropy repair the difference')
net.heal()
await waitFor(async () => allInSync() && await text('laptop', 'notes/7') === await text('pi', 'notes/7') && get('gateway').docs().length === 101, { timeoutMs: 10_000 })
for (const id of names) say(`  ${id.padEnd(8)} notes/7 = "${await text(id, 'notes/7')}"`)

const report = await laptop.syncWith('pi')
say(`\nAn anti-entropy exchange now, between nodes that agree on ${laptop.docs().length} documents: ${report.bytesSent + report.bytesReceived} bytes, ${report.roundTrips} round trip`)
for (const id of names) {
  const m = get(id).metrics()
  say(`  ${id.padEnd(8)} docs=${m.docs} sent=${m.bytesSent} B received=${m.bytesReceived} B exchanges=${m.exchangesCompleted} peers in sync=${get(id).peers().filter(p => p.inSync).length}/2`)
}
for (const n of nodes.values()) await n.stop()
say('\nDone: every node holds the same 101 notes.')
