/**
 * One node of the demo: a libp2p node on 127.0.0.1 with its LevelDB store in `dataDir`. Run as a
 * script (`node.ts <dataDir> <serviceTag>`) it is the pi in a process of its own, which the demo
 * kills without warning; it prints one JSON line `{ peerId, mdns, docs }` once it is up.
 */
import { join } from 'node:path'
import { createLevelStorage } from '@hearsay/leveldb'
import { createHearsayNode, type HearsayLibp2pNode } from '@hearsay/libp2p'

export async function bootNode (dataDir: string, serviceTag: string): Promise<HearsayLibp2pNode> {
  return await createHearsayNode({
    dataDir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: { intervalMs: 500, serviceTag },
    storage: createLevelStorage({ path: join(dataDir, 'store') }),
    antiEntropy: { intervalMs: 300 },
    statusIntervalMs: 20
  })
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  const [dataDir, serviceTag] = process.argv.slice(2) as [string, string]
  const node = await bootNode(dataDir, serviceTag)
  process.stdout.write(JSON.stringify({ peerId: node.peerId, mdns: node.discovery().mdns, docs: node.docs().length }) + '\n')
  // runs until killed: no signal handler, so nothing is flushed or stopped on the way out
  setInterval(() => {}, 60_000)
}
