import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import { SkippedBinariesReporter } from '../helpers/skipped-binaries-reporter.js'

/** The child run of system-binary.test.ts: the fixture alone, with the reporter `npm test` uses. */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/system-binary/*.fixture.ts'],
    pool: 'forks',
    reporters: ['default', new SkippedBinariesReporter()],
  },
})
