/**
 * One endpoint of the live-path benchmark (suites/live.ts), in its own process: a y-websocket
 * client (`{"kind":"yws","url","room"}`, to the stock y-websocket relay or to a Hearsay daemon) or
 * a Hearsay node (`{"kind":"node","storage":"memory"|"leveldb","dir","bootstrap"}`), holding one
 * document. Commands on stdin, one JSON object a line; answers on stdout:
 *   {"cmd":"expect","n"}            → {"reached":true} once the text holds n characters
 *   {"cmd":"type","n","yieldEvery"} → n one-character inserts, each its own edit → {"typed":ms}
 *   {"cmd":"echo"}                  → from now on, answer every remote edit with one local insert
 *   {"cmd":"latency","n","warmup"}  → n inserts, one in flight, each until the echo arrives → {"p50","p99"} (one way: RTT / 2)
 *   {"cmd":"rss"}                   → {"rss","peak"} bytes (VmRSS, VmHWM)
 *   {"cmd":"exit"}                  → exits (a --cpu-prof profile is written then)
 *   {"cmd":"fill","n"}              → (a node) n small documents doc/0 … written and stored, then the node stops → {"filled":true}
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { createLevelStorage } from '@hearsay/leveldb'
import { createHearsayNode } from '@hearsay/libp2p'

type Config = { kind: 'yws', url: string, room: string } | { kind: 'node', storage: 'memory' | 'leveldb', dir?: string, bootstrap?: string[], room: string }
const config = JSON.parse(process.argv[2] as string) as Config
const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n') }

let doc: Y.Doc
let ready: Record<string, unknown> = {}
let fill: ((n: number) => Promise<void>) | undefined
if (config.kind === 'yws') {
  doc = new Y.Doc()
  const provider = new WebsocketProvider(config.url, config.room, doc, { WebSocketPolyfill: WebSocket as any, disableBc: true })
  await new Promise<void>(resolve => { provider.once('sync', () => { resolve() }) })
} else {
  const node = await createHearsayNode({
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    bootstrap: config.bootstrap ?? [],
    ...(config.storage === 'leveldb' ? { storage: createLevelStorage({ path: join(config.dir as string, 'docs'), durability: 'process' }) } : {})
  })
  doc = await node.open(config.room)
  ready = { addrs: node.multiaddrs(), id: node.peerId }
  fill = async (n) => {
    for (let i = 0; i < n; i++) {
      const d = await node.open(`doc/${i}`)
      d.getText('t').insert(0, `document ${i}: a short note`)
      node.close(`doc/${i}`)
    }
    await node.flush()
    await node.stop()
  }
}
const text = doc.getText('t')
const waiters: Array<{ n: number, resolve: () => void }> = []
let echo = false
text.observe((e) => {
  if (echo && !e.transaction.local) text.insert(0, 'e')
  for (const w of waiters.splice(0)) {
    if (text.length >= w.n) w.resolve()
    else waiters.push(w)
  }
})
const reach = async (n: number): Promise<void> => {
  if (text.length >= n) return
  await new Promise<void>(resolve => { waiters.push({ n, resolve }) })
}
const vm = (field: string): number => Number(/(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8').split('\n').find(l => l.startsWith(field)) ?? '')?.[1] ?? 0) * 1024
out({ ready: true, ...ready })

createInterface({ input: process.stdin }).on('line', line => {
  void (async () => {
    const m = JSON.parse(line) as { cmd: string, n?: number, yieldEvery?: number, warmup?: number }
    if (m.cmd === 'expect') {
      await reach(m.n as number)
      out({ reached: true })
    } else if (m.cmd === 'type') {
      const t0 = performance.now()
      for (let i = 0; i < (m.n as number); i++) {
        text.insert(0, 'x')
        if (m.yieldEvery !== undefined && i % m.yieldEvery === m.yieldEvery - 1) await new Promise(resolve => setImmediate(resolve))
      }
      out({ typed: performance.now() - t0 })
    } else if (m.cmd === 'echo') {
      echo = true
      out({ echoing: true })
    } else if (m.cmd === 'latency') {
      const samples: number[] = []
      for (let i = 0; i < (m.n as number) + (m.warmup as number); i++) {
        const target = text.length + 2
        const t0 = performance.now()
        text.insert(0, 'p')
        await reach(target)
        if (i >= (m.warmup as number)) samples.push((performance.now() - t0) / 2)
      }
      samples.sort((a, b) => a - b)
      out({ p50: samples[Math.floor(samples.length / 2)], p99: samples[Math.floor(samples.length * 0.99)] })
    } else if (m.cmd === 'fill') {
      await fill?.(m.n as number)
      out({ filled: true })
    } else if (m.cmd === 'exit') {
      process.exit(0)
    } else if (m.cmd === 'rss') {
      out({ rss: vm('VmRSS'), peak: vm('VmHWM') })
    }
  })()
})
