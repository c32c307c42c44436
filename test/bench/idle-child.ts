/**
 * Run inside a fresh network namespace (its own loopback): two Hearsay nodes over libp2p on
 * 127.0.0.1, one document written, then quiet. Prints, as one JSON line, the bytes the loopback
 * interface carried (every TCP/IP header, Noise, yamux and libp2p ping included) in the window
 * [quietS, quietS + windowS] after the write. Options as JSON in argv[2]: { quietS, windowS, node }.
 */
import { readFileSync } from 'node:fs'
import { waitFor } from '@hearsay/core/testing'
import { createHearsayNode } from '@hearsay/libp2p'
import type { HearsayNodeOptions } from '@hearsay/libp2p'

const { quietS, windowS, node } = JSON.parse(process.argv[2] ?? '{}') as { quietS: number, windowS: number, node: Partial<HearsayNodeOptions> }
const bytes = (): number => Number(readFileSync('/sys/class/net/lo/statistics/tx_bytes', 'utf8'))
const packets = (): number => Number(readFileSync('/sys/class/net/lo/statistics/tx_packets', 'utf8'))
const opts: HearsayNodeOptions = { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, ...node }
const a = await createHearsayNode(opts)
const b = await createHearsayNode({ ...opts, bootstrap: a.multiaddrs() })
await waitFor(() => a.peers().some(p => p.connected && p.inSync) && b.peers().some(p => p.connected), { timeoutMs: 20_000 })
const d = await a.open('notes/idle')
d.getText('t').insert(0, 'written once, then nothing')
await waitFor(async () => (await b.open('notes/idle')).getText('t').length > 0, { timeoutMs: 20_000 })
await new Promise(resolve => setTimeout(resolve, quietS * 1000))
const b0 = bytes()
const p0 = packets()
const f0 = a.metrics().bytesSent + b.metrics().bytesSent
await new Promise(resolve => setTimeout(resolve, windowS * 1000))
const out = { bytesPerSec: (bytes() - b0) / windowS, packetsPerSec: (packets() - p0) / windowS, frameBytesPerSec: (a.metrics().bytesSent + b.metrics().bytesSent - f0) / windowS, connected: a.peers().some(p => p.connected) }
process.stdout.write(JSON.stringify(out) + '\n')
await a.stop()
await b.stop()
process.exit(0)
