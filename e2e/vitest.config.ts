import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

/**
 * End-to-end tests in real Chromium (`npm run test:e2e`), apart from `npm test`: they need the
 * built package (`npm run build`) and a Chromium binary (/usr/bin/chromium, or PUSHLINE_CHROMIUM).
 */
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['e2e/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One Chromium at a time: the machines have two cores.
    fileParallelism: false,
  },
})
