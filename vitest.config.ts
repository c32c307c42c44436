import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: { conditions: ['hearsay-source'] },
  ssr: { resolve: { conditions: ['hearsay-source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // a temporary directory per run; fails the run if a test leaves its directories behind
    globalSetup: ['test/temp-dirs.ts']
  }
})
