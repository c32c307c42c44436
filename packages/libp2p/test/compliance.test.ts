import { runTransportTests, waitFor } from '@hearsay/core/testing'
import { syncNode, uniqueServiceTag } from './helpers.js'

runTransportTests('libp2p over TCP on 127.0.0.1', async () => {
  const a = await syncNode()
  const b = await syncNode()
  return {
    a: a.services.hearsay.transport,
    b: b.services.hearsay.transport,
    connect: async () => {
      await a.dial(b.getMultiaddrs())
      await a.services.hearsay.transport.connect?.(b.peerId.toString(), { signal: AbortSignal.timeout(10_000) })
    },
    cut: async () => {
      for (const c of a.getConnections(b.peerId)) c.abort(new Error('link cut by the test'))
    },
    cleanup: async () => {
      await a.stop()
      await b.stop()
    }
  }
})

runTransportTests('libp2p with mDNS discovery', async () => {
  const tag = uniqueServiceTag('compliance')
  const a = await syncNode({}, { mdns: true, serviceTag: tag })
  const b = await syncNode({}, { mdns: true, serviceTag: tag })
  return {
    a: a.services.hearsay.transport,
    b: b.services.hearsay.transport,
    // no dial: the nodes find each other by mDNS and the service connects them
    connect: async () => {
      await waitFor(() => a.getConnections(b.peerId).length > 0, { timeoutMs: 20_000, message: 'mDNS discovery and dial' })
    },
    cut: async () => {
      for (const c of a.getConnections(b.peerId)) c.abort(new Error('link cut by the test'))
    },
    cleanup: async () => {
      await a.stop()
      await b.stop()
    }
  }
})
