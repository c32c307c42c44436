/**
 * One Hearsay node in one network namespace, driven by the LAN test over stdin/stdout JSON lines.
 *
 *   runner.ts node <dataDir>   start a node (mDNS with no configuration), then obey commands
 *   runner.ts probe            print the discovery status and exit
 *
 * Commands (stdin): {"id":1,"cmd":"edit","doc":"d","text":"x"} | {"id":2,"cmd":"state","docs":["d"]} | {"id":3,"cmd":"stop"}
 * Replies (stdout): {"type":"ready",...} | {"type":"reply","id":1,...} | {"type":"log","line":"..."}
 */
import { createInterface } from 'node:readline'
import { writerLogger } from '@hearsay/core'
import { createHearsayNode, probeMulticast } from '@hearsay/libp2p'

const send = (msg: unknown): void => { process.stdout.write(JSON.stringify(msg) + '\n') }
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const [mode, dataDir] = process.argv.slice(2)
if (mode === 'probe') {
  send({ type: 'probe', status: await probeMulticast() })
  process.exit(0)
}

const node = await createHearsayNode({
  dataDir,
  antiEntropy: { intervalMs: 500 },
  pingIntervalMs: 2000,
  logger: writerLogger({ level: 'debug', write: (line) => { send({ type: 'log', line }) } })
})
send({ type: 'ready', peerId: node.peerId, multiaddrs: node.multiaddrs(), discovery: node.discovery() })

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  void (async () => {
    const msg = JSON.parse(line) as { id: number, cmd: string, doc?: string, text?: string, docs?: string[] }
    if (msg.cmd === 'edit') {
      const doc = await node.open(msg.doc as string)
      doc.getText('t').insert(doc.getText('t').length, msg.text as string)
      send({ type: 'reply', id: msg.id })
    } else if (msg.cmd === 'state') {
      const docs: Record<string, string> = {}
      for (const id of msg.docs ?? []) docs[id] = (await node.open(id)).getText('t').toString()
      const d = node.digest()
      send({ type: 'reply', id: msg.id, root: hex(d.root), count: d.count, channels: node.sync.channels().map(c => c.peer), discovery: node.discovery(), docs })
    } else if (msg.cmd === 'stop') {
      await node.stop()
      send({ type: 'reply', id: msg.id })
      process.exit(0)
    }
  })().catch((err: Error) => { send({ type: 'error', message: err.message }) })
})
rl.on('close', () => { void node.stop().then(() => process.exit(0)) })
