import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import { SkippedBinariesReporter } from '../test/helpers/skipped-binaries-reporter.js'
import { checkBinary } from '../test/helpers/system-binary.js'

/**
 * End-to-end tests in real Chromium (`npm run test:e2e`), apart from `npm test`: they need the
 * built package (`npm run build`) and a Chromium binary (Debian's `chromium` on PATH, or
 * PUSHLINE_CHROMIUM).
 *
 * Every test here drives Chromium, so without it the run skips them all (none of their hooks runs)
 * and ends with one line naming the binary and its install command; under CI=true it runs them
 * instead, and each fails on the missing browser with that message (e2e/harness.ts).
 */
const chromium = checkBinary('chromium')
const skipEveryTest = chromium.status === 'missing' && !chromium.failsRun

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['e2e/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One Chromium at a time: the machines have two cores.
    fileParallelism: false,
    // A pattern no test name matches: every test is collected and reported as skipped.
    ...(skipEveryTest && { testNamePattern: /(?!)/ }),
    reporters: [
      'default',
      new SkippedBinariesReporter(chromium.status === 'missing' ? { everyTestNeeds: chromium } : {}),
    ],
  },
})
