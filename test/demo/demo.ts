/**
 * `pnpm demo`: three Hearsay nodes on this machine — a laptop, a Raspberry Pi and a gateway — each
 * a real libp2p node (TCP + Noise + yamux on 127.0.0.1) with its own LevelDB store. They find each
 * other by mDNS with no configuration and sync 100 notes. The pi runs in a process of its own,
 * which is killed (SIGKILL: no flush, no clean stop) while the others keep editing; it comes back
 * from its disk with the same identity and converges.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from '@hearsay/core/testing'
import type { HearsayLibp2pNode } from '@hearsay/libp2p'
import { bootNode } from './node.js'

const say = (s: string): void => { process.stdout.write(s + '\n') }
const root = mkdtempSync(join(tmpdir(), 'hearsay-demo-'))
// a tag of our own, so the demo's nodes see only each other on this LAN
const serviceTag = `_hearsay-demo-${process.pid}._udp.local`
const names = ['laptop', 'pi', 'gateway'] as const
type Name = typeof names[number]
const nodes = new Map<Name, HearsayLibp2pNode>()
const short = (id: string): string => `…${id.slice(-6)}`

async function boot (name: Name): Promise<HearsayLibp2pNode> {
  const node = await bootNode(join(root, name), serviceTag)
  nodes.set(name, node)
  return node
}

/** The pi in a child process, so that it can lose power: killed with no chance to flush or stop. */
let piProcess: ChildProcess | undefined
async function bootPiProcess (): Promise<{ peerId: string, mdns: string }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'node.ts')
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=hearsay-source', script, join(root, 'pi'), serviceTag], { stdio: ['ignore', 'pipe', 'inherit'] })
  piProcess = child
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  await waitFor(() => out.includes('\n') || child.exitCode !== null, { timeoutMs: 30_000, message: 'the pi process starts' })
  if (!out.includes('\n')) throw new Error(`the pi process exited (${String(child.exitCode)}) before it was up`)
  return JSON.parse(out.slice(0, out.indexOf('\n'))) as { peerId: string, mdns: string }
}
const get = (n: Name): HearsayLibp2pNode => nodes.get(n) as HearsayLibp2pNode
const running = (): HearsayLibp2pNode[] => [...nodes.values()]
const body = async (n: Name, doc: string): Promise<string> => (await get(n).open(doc)).getText('body').toString()
/** What `from` knows of the pi while it runs in its own process. */
const piSeenBy = (from: Name, piId: string): { connected: boolean, inSync: boolean, docCount: number } | undefined => get(from).peers().find(p => p.id === piId)
/** Connected to both others, and our digest equals what each last told us. */
const settled = (n: Name): boolean => get(n).peers().filter(p => p.connected && p.inSync).length === 2

try {
  say('Starting three nodes: libp2p on 127.0.0.1, LevelDB stores in ' + root)
  for (const n of ['laptop', 'gateway'] as const) {
    const node = await boot(n)
    say(`  ${n.padEnd(8)} peer ${short(node.peerId)}  mDNS: ${node.discovery().mdns}`)
  }
  const piFirst = await bootPiProcess()
  const piId = piFirst.peerId
  say(`  ${'pi'.padEnd(8)} peer ${short(piId)}  mDNS: ${piFirst.mdns}  (in its own process, pid ${String(piProcess?.pid)})`)
  const t0 = performance.now()
  await waitFor(() => running().every(n => n.peers().filter(p => p.connected).length === 2), { timeoutMs: 20_000, message: 'mDNS discovery' })
  say(`  found each other by mDNS and connected in ${(performance.now() - t0).toFixed(0)} ms (encrypted with Noise)`)

  say('\nThe laptop writes 100 notes; live updates carry them to the others')
  const t1 = performance.now()
  for (let i = 0; i < 100; i++) (await get('laptop').open(`notes/${i}`)).getText('body').insert(0, `note ${i} from the laptop. `)
  await waitFor(() => get('gateway').docs().length === 100 && piSeenBy('laptop', piId)?.docCount === 100 && piSeenBy('laptop', piId)?.inSync === true, { timeoutMs: 20_000, message: '100 notes everywhere' })
  say(`  pi has ${piSeenBy('laptop', piId)?.docCount ?? 0} notes, gateway ${get('gateway').docs().length}, after ${(performance.now() - t1).toFixed(0)} ms`)

  say('\nThe pi loses power: its process is killed (SIGKILL, nothing flushed); the laptop and the gateway keep editing')
  const killed = new Promise<void>(resolve => { piProcess?.once('exit', () => { resolve() }) })
  piProcess?.kill('SIGKILL')
  await killed
  await waitFor(() => piSeenBy('laptop', piId)?.connected !== true && piSeenBy('gateway', piId)?.connected !== true, { timeoutMs: 20_000, message: 'the others notice the pi is gone' })
  say('  laptop   edits notes/7: inserts "[edited on the laptop] " at the start')
  ;(await get('laptop').open('notes/7')).getText('body').insert(0, '[edited on the laptop] ')
  say('  gateway  edits notes/8: inserts "[edited on the gateway] " at the start')
  ;(await get('gateway').open('notes/8')).getText('body').insert(0, '[edited on the gateway] ')
  say('  gateway  writes 10 new notes, notes/100 to notes/109')
  for (let i = 100; i < 110; i++) (await get('gateway').open(`notes/${i}`)).getText('body').insert(0, `note ${i}, written while the pi was off. `)
  await waitFor(async () => get('laptop').docs().length === 110 && (await body('gateway', 'notes/7')).startsWith('[edited on the laptop]'))
  say(`  laptop and gateway agree on ${get('laptop').docs().length} notes`)

  say('\nThe pi comes back from its disk, with the same identity, and catches up')
  const t2 = performance.now()
  const pi = await boot('pi')
  say(`  pi peer ${short(pi.peerId)} (same as before: ${pi.peerId === piId}), ${pi.docs().length} notes on disk, ${pi.metrics().docsLoaded} loaded to start`)
  const onDisk = pi.docs().length
  if (onDisk < 100) say(`  (${100 - onDisk} of the 100 notes it held in memory had not reached its disk when it died; nothing told the others they had, so anti-entropy sends them again)`)
  await waitFor(async () => pi.docs().length === 110 && (await body('pi', 'notes/7')).startsWith('[edited on the laptop]'), { timeoutMs: 20_000, message: 'pi catches up' })
  say(`  pi holds ${pi.docs().length} notes ${(performance.now() - t2).toFixed(0)} ms after starting`)
  say('\nThe pi edits notes/7 too: inserts "[and on the pi] " at the start; every node ends with both edits')
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
  say('Next, a node of your own: pnpm hearsay init, then pnpm hearsay start (packages/daemon/README.md).')
} finally {
  piProcess?.kill('SIGKILL')
  for (const n of running()) await n.stop()
  rmSync(root, { recursive: true, force: true })
}
