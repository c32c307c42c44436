import * as Y from 'yjs'
import { createMemoryNetwork, createNode } from '@hearsay/core'
const net = createMemoryNetwork({ seed: 1 })
const a = createNode({ id: 'a', transport: net.transport('a') })
const b = createNode({ id: 'b', transport: net.transport('b') })
await a.start(); await b.start(); net.connect('a', 'b')
const doc = await a.open('d'); const t = doc.getText('t')
const raw = new Y.Doc(); const rt = raw.getText('t'); raw.on('update', () => {})
for (let r = 0; r < 4; r++) {
  let t0 = performance.now()
  for (let i = 0; i < 50000; i++) { rt.insert(0, 'x'); if (i % 1000 === 999) await new Promise(res => setImmediate(res)) }
  const rawMs = performance.now() - t0
  t0 = performance.now()
  for (let i = 0; i < 50000; i++) { t.insert(0, 'x'); if (i % 1000 === 999) await new Promise(res => setImmediate(res)) }
  console.log('raw', rawMs.toFixed(0), 'engine', (performance.now() - t0).toFixed(0))
}
process.exit(0)
