import { ClassicLevel } from 'classic-level'
import { silentLogger } from '@hearsay/core'
import type { Log } from '@hearsay/core'
import type { Db } from '../src/database.js'
import { tempDir } from './helpers.js'

export const log: Log = silentLogger().forComponent('test')

/** A bare LevelDB database in a fresh temp dir, and its close-and-remove. */
export async function bareDb (): Promise<{ db: Db, path: string, dispose: () => Promise<void> }> {
  const d = await tempDir()
  const db = new ClassicLevel<Uint8Array, Uint8Array>(d.path, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  return { db, path: d.path, dispose: async () => { await db.close(); await d.remove() } }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
