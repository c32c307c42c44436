import { createMemoryNetwork, createMemoryStorage } from '../src/index.js'
import { runStorageTests, runTransportTests } from '../src/testing/index.js'

runTransportTests('memory network', async () => {
  const net = createMemoryNetwork({ seed: 2, autoConnect: false })
  const a = net.transport('a')
  const b = net.transport('b')
  return {
    a,
    b,
    connect: async () => { net.connect('a', 'b') },
    cut: async () => { net.disconnect('a', 'b') },
    cleanup: async () => { await a.stop(); await b.stop() }
  }
})

runStorageTests('memory storage', async () => ({ create: async () => createMemoryStorage() }))
