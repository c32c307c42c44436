/**
 * The node a daemon runs, built from its configuration: documents in LevelDB under
 * `<dataDir>/docs`, with the configured durability and write batching.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createMemoryNetwork, createNode } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import { createLevelStorage } from '@hearsay/leveldb'
import type { DaemonConfig } from './config.js'
import { DOCS_DIR } from './constants.js'
import type { DaemonNode } from './status.js'

/** File holding this device's node id. */
export const NODE_ID_FILE = 'node-id'

/** This device's id, created on first use and kept in the data directory. */
export async function loadOrCreateNodeId (dataDir: string): Promise<string> {
  const file = join(dataDir, NODE_ID_FILE)
  try {
    const id = (await readFile(file, 'utf8')).trim()
    if (id.length > 0) return id
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dataDir, { recursive: true })
  const id = 'hs-' + randomBytes(8).toString('hex')
  await writeFile(file, id + '\n', { mode: 0o600 })
  return id
}

/**
 * A node with no network: documents are stored and served to local clients, and nothing reaches
 * other devices. Used until a LAN transport is configured.
 */
export async function createLocalNode (config: DaemonConfig, logger: Logger): Promise<DaemonNode> {
  const id = await loadOrCreateNodeId(config.dataDir)
  await mkdir(join(config.dataDir, DOCS_DIR), { recursive: true })
  const storage = createLevelStorage({ path: join(config.dataDir, DOCS_DIR), durability: config.durability, logger })
  return createNode({ id, transport: createMemoryNetwork().transport(id), storage, logger, storageBatchMs: config.storageBatchMs })
}
