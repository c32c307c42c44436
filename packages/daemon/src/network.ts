/**
 * The network side of the daemon: identity and swarm key on `init`, and the node `start` runs:
 * Hearsay on libp2p (TCP, Noise, yamux, mDNS, private swarm) with documents in LevelDB under
 * `<dataDir>/docs`.
 */
import { access, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ConfigError } from '@hearsay/core'
import type { Logger } from '@hearsay/core'
import { createLevelStorage } from '@hearsay/leveldb'
import { createHearsayNode, generateSwarmKey, parseSwarmKey, swarmKeySecret } from '@hearsay/libp2p'
import type { TrustOptions } from '@hearsay/core'
import type { DaemonConfig } from './config.js'
import { DOCS_DIR, SWARM_KEY_FILE } from './constants.js'
import type { DaemonNode } from './status.js'

/**
 * What `init` does with the swarm key: `keep` an existing `swarm.key` (a copy from another device)
 * or write one when there is none, write a `new` one over it, or `none` for an open swarm.
 */
export type SwarmKeyMode = 'keep' | 'new' | 'none'

export interface InitResult {
  /** The node's peer id (an existing `peer-key` is kept). */
  id: string
  /** Swarm key file, relative to the data directory; undefined for an open swarm. */
  swarmKeyFile: string | undefined
  /** What happened to the swarm key. */
  swarmKey: 'kept' | 'created' | 'replaced' | 'none'
}

const exists = async (file: string): Promise<boolean> => await access(file).then(() => true, () => false)

/** Create the identity (`peer-key`) if missing, and settle the swarm key as `mode` says. */
export async function initIdentity (dataDir: string, mode: SwarmKeyMode): Promise<InitResult> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const keyFile = join(dataDir, SWARM_KEY_FILE)
  const hadKey = await exists(keyFile)
  if (mode === 'none' && hadKey) {
    throw new ConfigError(`${keyFile} exists, so this node would join that private swarm. Delete it for an open swarm, or run \`hearsay init\` without --no-swarm-key to keep it.`)
  }
  const node = await createHearsayNode({ dataDir, start: false, mdns: false, listen: [] })
  const id = node.peerId
  if (mode === 'none') return { id, swarmKeyFile: undefined, swarmKey: 'none' }
  if (mode === 'keep' && hadKey) return { id, swarmKeyFile: SWARM_KEY_FILE, swarmKey: 'kept' }
  await writeFile(keyFile, generateSwarmKey(), { mode: 0o600 })
  return { id, swarmKeyFile: SWARM_KEY_FILE, swarmKey: hadKey ? 'replaced' : 'created' }
}

/** Largest swarm key file read, in bytes (a real one is about 90). */
const SWARM_KEY_FILE_MAX_BYTES = 4096

async function readSwarmKey (config: DaemonConfig): Promise<Uint8Array | undefined> {
  if (config.swarmKeyFile === undefined) return undefined
  const file = resolve(config.dataDir, config.swarmKeyFile)
  let bytes: Uint8Array
  try {
    const size = (await stat(file)).size
    if (size > SWARM_KEY_FILE_MAX_BYTES) throw Object.assign(new Error(`${size} bytes, not a swarm key`), { code: 'too large' })
    bytes = await readFile(file)
  } catch (err) {
    throw new ConfigError(`swarmKeyFile ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}). Copy the swarm's swarm.key there, or remove "swarmKeyFile" for an open swarm.`)
  }
  try {
    return parseSwarmKey(bytes)
  } catch (err) {
    throw new ConfigError(`${file} is not a swarm key: ${(err as Error).message}. Copy the swarm's swarm.key from another device over it, or run \`hearsay init --new-swarm-key\` to start a new swarm (every device then needs the new key).`)
  }
}

/**
 * The daemon's node. `trust` adds roster statements at start (`hearsay join` passes the swarm's
 * genesis and the invite); the roster itself is kept in the store.
 */
export async function createDaemonNode (config: DaemonConfig, logger: Logger, trust: Omit<TrustOptions, 'crypto' | 'signer'> = {}): Promise<{ node: DaemonNode, transport: string, swarmKey: Uint8Array | undefined }> {
  const swarmKey = await readSwarmKey(config)
  if (swarmKey === undefined) {
    logger.forComponent('hearsay:daemon').warn(`open swarm: no swarm key in ${config.dataDir}, so any Hearsay node on this network may connect, read and change every document. Run \`hearsay init --data-dir ${config.dataDir}\` to create one (with --force if config.json exists there; the identity is kept), then copy its swarm.key to each of your devices, or copy an existing swarm's swarm.key into ${config.dataDir}.`)
  }
  await mkdir(join(config.dataDir, DOCS_DIR), { recursive: true })
  const storage = createLevelStorage({ path: join(config.dataDir, DOCS_DIR), durability: config.durability, logger })
  const node = await createHearsayNode({
    dataDir: config.dataDir,
    listen: config.listen,
    mdns: config.mdns,
    bootstrap: config.bootstrap,
    relays: config.relays,
    relay: config.relay,
    sync: { relayPaceBytesPerSec: config.relayPace === 0 ? Infinity : config.relayPace },
    ...(swarmKey !== undefined ? { swarmKey } : {}),
    ...(config.allowPeers.length > 0 ? { allowPeers: config.allowPeers } : {}),
    logger,
    storage,
    storageBatchMs: config.storageBatchMs,
    trust: { adopt: config.adoptRoster, ...trust },
    start: false
  })
  return { node, transport: 'libp2p', swarmKey: swarmKey === undefined ? undefined : swarmKeySecret(swarmKey) }
}
