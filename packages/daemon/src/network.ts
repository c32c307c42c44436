/**
 * The network side of the daemon: identity and swarm key on `init`, and the node `start` runs.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '@hearsay/core'
import type { DaemonConfig } from './config.js'
import { SWARM_KEY_FILE } from './constants.js'
import { createLocalNode, loadOrCreateNodeId } from './node.js'
import type { DaemonNode } from './status.js'

/** Create the identity and, unless `swarmKey` is false, a new swarm key. */
export async function initIdentity (dataDir: string, swarmKey: boolean): Promise<{ id: string, swarmKeyFile: string | undefined }> {
  const id = await loadOrCreateNodeId(dataDir)
  if (!swarmKey) return { id, swarmKeyFile: undefined }
  const key = `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`
  await writeFile(join(dataDir, SWARM_KEY_FILE), key, { mode: 0o600 })
  return { id, swarmKeyFile: SWARM_KEY_FILE }
}

export async function createDaemonNode (config: DaemonConfig, logger: Logger): Promise<{ node: DaemonNode, transport: string }> {
  logger.forComponent('hearsay:daemon').warn('this build has no LAN transport: documents are kept and served locally only; listen, mdns, bootstrap, allowPeers and swarmKeyFile are not used')
  return { node: await createLocalNode(config, logger), transport: 'local (no LAN transport)' }
}
