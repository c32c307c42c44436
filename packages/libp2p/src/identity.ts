/**
 * A stable node identity: the private key is created once and kept in `dataDir`, so the peer
 * id survives restarts. The file is written atomically with mode 0600 and is never overwritten:
 * a key file that cannot be read is an error (`IdentityError`), not a reason for a new identity.
 */
import { constants as fsConstants } from 'node:fs'
import { chmod, link, mkdir, open, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Log } from '@hearsay/core'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PEER_KEY_FILE } from './constants.js'
import { IdentityError } from './errors.js'

/** Load the key from `dataDir/peer-key`, or create it (Ed25519) when the file does not exist. */
export async function loadOrCreatePrivateKey (dataDir: string, log?: Log): Promise<PrivateKey> {
  const path = join(dataDir, PEER_KEY_FILE)
  const existing = await readKey(path, log)
  if (existing !== undefined) return existing
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  const tmp = `${path}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600)
  try {
    await fh.writeFile(privateKeyToProtobuf(key))
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    // link() refuses to replace a file: if another process created the key meanwhile, use that one
    await link(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new IdentityError(path, `cannot write: ${(err as Error).message}`, { cause: err })
    const other = await readKey(path, log)
    if (other === undefined) throw new IdentityError(path, 'vanished while being created', { cause: err })
    return other
  } finally {
    await rm(tmp, { force: true })
  }
  log?.(`created a new peer key in ${path}`)
  return key
}

/**
 * The peer id kept in `dataDir`, or undefined when there is no key file yet. Never creates one:
 * for clients that want to know which node a data directory belongs to.
 */
export async function readPeerId (dataDir: string): Promise<string | undefined> {
  const key = await readKey(join(dataDir, PEER_KEY_FILE))
  return key === undefined ? undefined : peerIdFromPrivateKey(key).toString()
}

async function readKey (path: string, log?: Log): Promise<PrivateKey | undefined> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new IdentityError(path, `cannot read: ${(err as Error).message}`, { cause: err })
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new IdentityError(path, `not a libp2p private key (${(err as Error).message}); move it away to create a new identity`, { cause: err })
  }
  try {
    const st = await stat(path)
    if ((st.mode & 0o077) !== 0) {
      log?.warn(`peer key ${path} was readable by other users (mode ${(st.mode & 0o777).toString(8)}); restricting it to 0600`)
      await chmod(path, 0o600)
    }
  } catch (err) {
    log?.warn(`cannot check the permissions of ${path}: ${(err as Error).message}`)
  }
  return key
}
