/**
 * `pnpm demo`: three Hearsay nodes on this machine — a laptop, a Raspberry Pi and a gateway — each
 * a real libp2p node (TCP + Noise + yamux on 127.0.0.1) with its own LevelDB store. They find each
 * other by mDNS with no configuration, sync 100 notes, lose the Pi to a power cut while the others
 * keep editing, and converge again when it comes back from its disk with the same identity.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '@hearsay/core/testing'
import { createLevelStorage } from '@hearsay/leveldb'
import { createHearsayNode, type HearsayLibp2pNode } from '@hearsay/libp2p'

const say = (s: string): void => { process.stdout.write(s + '\n') }
const root = mkdtempSync(join(tmpdir(), 'hearsay-demo-'))
// a tag of our own, so the demo's nodes see only each other on this LAN
const serviceTag = `_hearsay-demo-${process.pid}._udp.local`
const names = ['laptop', 'pi', 'gateway'] as const
type Name = typeof names[number]
const nodes = new Map<Name, HearsayLibp2pNode>()
const short = (id: string): string => `…${id.slice(-6)}`

async function boot (name: Name): Promise<HearsayLibp2pNode> {
  const dataDir = join(root, name)
  const node = await createHearsayNode({
    dataDir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: { intervalMs: 500, serviceTag },
    storage: createLevelStorage({ path: join(dataDir, 'store') }),
    antiEntropy: { intervalMs: 300 },
    statusIntervalMs: 20
  })
  nodes.set(name, node)
  return node
}
const get = (n: Name): HearsayLibp2pNode => nodes.get(n) as HearsayLibp2pNode
const running = (): HearsayLibp2pNode[] => [...nodes.values()]
const body = async (n: Name, doc: string): Promise<string> => (await get(n).open(doc)).getText('body').toString()
/** Connected to both others, and our digest equals what each last told us. */
const settled = (n: Name): boolean => get(n).peers().filter(p => p.connected && p.inSync).length === 2

try {
  say('Starting three nodes: libp2p on 127.0.0.1, LevelDB stores in ' + root)
  for (const n of names) {
    const node = await boot(n)
    say(`  ${n.padEnd(8)} peer ${short(node.peerId)}  mDNS: ${node.discovery().mdns}`)
  }
  const t0 = performance.now()
  await waitFor(() => running().every(n => n.peers().filter(p => p.connected).length === 2), { timeoutMs: 20_000, message: 'mDNS discovery' })
  say(`  found each other by mDNS and connected in ${(performance.now() - t0).toFixed(0)} ms (encrypted with Noise)`)

  say('\nThe laptop writes 100 notes; live updates carry them to the others')
  const t1 = performance.now()
  for (let i = 0; i < 100; i++) (await get('laptop').open(`notes/${i}`)).getText('body').insert(0, `note ${i} from the laptop. `)
  await waitFor(() => get('pi').docs().length === 100 && get('gateway').docs().length === 100, { timeoutMs: 20_000, message: '100 notes everywhere' })
  say(`  pi has ${get('pi').docs().length} notes, gateway ${get('gateway').docs().length}, after ${(performance.now() - t1).toFixed(0)} ms`)

  say('\nThe pi loses power; the laptop and the gateway keep editing')
  const piId = get('pi').peerId
  await get('pi').stop()
  nodes.delete('pi')
  ;(await get('laptop').open('notes/7')).getText('body').insert(0, '[edited on the laptop] ')
  ;(await get('gateway').open('notes/8')).getText('body').insert(0, '[edited on the gateway] ')
  for (let i = 100; i < 110; i++) (await get('gateway').open(`notes/${i}`)).getText('body').insert(0, `note ${i}, written while the pi was off. `)
  await waitFor(async () => get('laptop').docs().length === 110 && (await body('gateway', 'notes/7')).startsWith('[edited on the laptop]'))
  say(`  laptop and gateway agree on ${get('laptop').docs().length} notes`)

  say('\nThe pi comes back from its disk, with the same identity, and catches up')
  const t2 = performance.now()
  const pi = await boot('pi')
  say(`  pi peer ${short(pi.peerId)} (same as before: ${pi.peerId === piId}), ${pi.docs().length} notes on disk, ${pi.metrics().docsLoaded} loaded to start`)
  await waitFor(async () => pi.docs().length === 110 && (await body('pi', 'notes/7')).startsWith('[edited on the laptop]'), { timeoutMs: 20_000, message: 'pi catches up' })
  say(`  pi holds ${pi.docs().length} notes ${(performance.now() - t2).toFixed(0)} ms after starting`)
  ;(await pi.open('notes/7')).getText('body').insert(0, '[and on the pi] ')
  await waitFor(async () => (await body('laptop', 'notes/7')) === (await body('pi', 'notes/7')) && (await body('gateway', 'notes/7')) === (await body('pi', 'notes/7')))
  for (const n of names) say(`  ${n.padEnd(8)} notes/7 = "${await body(n, 'notes/7')}"`)
  await waitFor(() => names.every(settled), { timeoutMs: 20_000, message: 'every peer connected and in sync' })

  const report = await get('laptop').syncWith(pi.peerId)
  say(`\nAn anti-entropy exchange between nodes that agree on ${pi.docs().length} notes: ${report.bytesSent + report.bytesReceived} bytes, ${report.roundTrips} round trip`)
  for (const n of names) {
    const node = get(n)
    const m = node.metrics()
    say(`  ${n.padEnd(8)} notes=${m.docs} sent=${m.bytesSent} B received=${m.bytesReceived} B exchanges=${m.exchangesCompleted} peers in sync=${node.peers().filter(p => p.connected && p.inSync).length}/2`)
  }
  say('\nDone: every node holds the same 110 notes.')
} finally {
  for (const n of running()) await n.stop()
  rmSync(root, { recursive: true, force: true })
}
