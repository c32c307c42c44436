import { runStorageTests } from '@hearsay/core/testing'
import { createLevelStorage } from '../src/index.js'
import type { LevelStorage } from '../src/index.js'
import { tempDir } from './helpers.js'

for (const durability of ['process', 'power'] as const) {
  runStorageTests(`leveldb (${durability})`, async () => {
    const dir = await tempDir()
    const paths = new WeakMap<object, string>()
    const make = (): LevelStorage => {
      const s = createLevelStorage({ path: dir.path, durability })
      paths.set(s, dir.path)
      return s
    }
    return {
      create: async () => make(),
      reopen: async () => make(),
      cleanup: dir.remove
    }
  })
}
