/**
 * Node B of the two-process throughput benchmark: a Hearsay node on 127.0.0.1 in its own process,
 * as on a second device. Prints `{"addrs":[...]}` when listening; on stdin `{"expect":N,"docs":D}`
 * it watches documents tp/0..D-1 and prints `{"done":true}` once N characters have arrived.
 */
import { createInterface } from 'node:readline'
import { createHearsayNode } from '@hearsay/libp2p'

const node = await createHearsayNode({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, antiEntropy: { enabled: false }, maxLoadedDocs: 100_000 })
process.stdout.write(JSON.stringify({ addrs: node.multiaddrs() }) + '\n')

createInterface({ input: process.stdin }).on('line', (line) => {
  void (async () => {
    const { expect, docs } = JSON.parse(line) as { expect: number, docs: number }
    const texts: Array<import('yjs').Text> = []
    for (let i = 0; i < docs; i++) texts.push((await node.open(`tp/${i}`)).getText('t'))
    const check = (): void => {
      if (texts.reduce((s, t) => s + t.length, 0) >= expect) {
        process.stdout.write(JSON.stringify({ done: true }) + '\n')
        void node.stop().then(() => process.exit(0))
      }
    }
    for (const t of texts) t.observe(check)
    process.stdout.write(JSON.stringify({ watching: true }) + '\n')
  })()
})
