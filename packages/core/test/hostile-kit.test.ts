import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryNetwork, createNode, type HearsayNode } from '../src/index.js'
import { MessageType, encodeStatus } from '../src/protocol.js'
import { createHostilePeer, seal, type HostilePeer } from '../src/testing/index.js'

describe('hostile peer kit', () => {
  let victim: HearsayNode | undefined
  let evil: HostilePeer | undefined
  afterEach(async () => {
    await evil?.stop()
    await victim?.stop()
  })

  it('completes a handshake, receives the victim frames, and sees its session closed by a bad frame', async () => {
    const net = createMemoryNetwork({ seed: 7 })
    victim = createNode({ id: 'victim', transport: net.transport('victim') })
    await victim.start()
    evil = await createHostilePeer(net.transport('evil'))
    await evil.link('victim')
    await evil.send('victim', encodeStatus({ root: new Uint8Array(16), docCount: 0 }))
    // the victim's Hello arrives and decodes
    const hello = await evil.waitMessage('victim', m => m.type === MessageType.Hello)
    expect(hello.type === MessageType.Hello && hello.nodeId).toBe('victim')
    // a sealed frame of an unknown type passes the checksum and is refused by the decoder
    await evil.send('victim', seal(99, new Uint8Array([1, 2, 3])))
    const reason = await evil.waitClosed('victim')
    expect(reason ?? '').not.toBe('')
    expect(victim.metrics().framesRejected).toBe(1)
  })
})
