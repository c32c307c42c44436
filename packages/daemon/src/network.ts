/**
 * The network side of the daemon: identity and swarm key on `init`, and the node `start` runs:
 * Hearsay on libp2p (TCP, Noise, yamux, mDNS, private swarm) with documents in LevelDB under
 * `<dataDir>/docs`.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ConfigError } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import { createLevelStorage } from '@hearsay/leveldb'
import { createHearsayNode, generateSwarmKey } from '@hearsay/libp2p'
import type { DaemonConfig } from './config.js'
import { DOCS_DIR, SWARM_KEY_FILE } from './constants.js'
import type { DaemonNode } from './status.js'

/** Create the identity (`peer-key`) and, unless `swarmKey` is false, a new swarm key. */
export async function initIdentity (dataDir: string, swarmKey: boolean): Promise<{ id: string, swarmKeyFile: string | undefined }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const node = await createHearsayNode({ dataDir, start: false, mdns: false, listen: [] })
  const id = node.peerId
  if (!swarmKey) return { id, swarmKeyFile: undefined }
  await writeFile(join(dataDir, SWARM_KEY_FILE), generateSwarmKey(), { mode: 0o600 })
  return { id, swarmKeyFile: SWARM_KEY_FILE }
}

async function readSwarmKey (config: DaemonConfig): Promise<Uint8Array | undefined> {
  if (config.swarmKeyFile === undefined) return undefined
  const file = resolve(config.dataDir, config.swarmKeyFile)
  try {
    return await readFile(file)
  } catch (err) {
    throw new ConfigError(`swarmKeyFile ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). Copy the swarm's swarm.key there, or remove "swarmKeyFile" for an open swarm.`)
  }
}

export async function createDaemonNode (config: DaemonConfig, logger: Logger): Promise<{ node: DaemonNode, transport: string }> {
  const swarmKey = await readSwarmKey(config)
  await mkdir(join(config.dataDir, DOCS_DIR), { recursive: true })
  const storage = createLevelStorage({ path: join(config.dataDir, DOCS_DIR), durability: config.durability, logger })
  const node = await createHearsayNode({
    dataDir: config.dataDir,
    listen: config.listen,
    mdns: config.mdns,
    bootstrap: config.bootstrap,
    ...(swarmKey !== undefined ? { swarmKey } : {}),
    ...(config.allowPeers.length > 0 ? { allowPeers: config.allowPeers } : {}),
    logger,
    storage,
    storageBatchMs: config.storageBatchMs,
    start: false
  })
  return { node, transport: 'libp2p' }
}
