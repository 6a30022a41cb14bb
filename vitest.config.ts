import { defineConfig } from 'vitest/config'
import { SkippedBinariesReporter } from './test/helpers/skipped-binaries-reporter.js'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    pool: 'forks',
    // After the default reporter's summary: one line per missing system binary and its install command.
    reporters: ['default', new SkippedBinariesReporter()],
    // test/types/*.test-d.ts: the public API's types, checked by tsc (expectTypeOf, @ts-expect-error).
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
})
