/**
 * Ends a run with one line per missing system binary: which one, the command that installs it, and
 * how many tests did not run for it (test/helpers/system-binary.ts marks them). It runs after the
 * default reporter, so these lines come below the summary, where a reader looks last.
 *
 *   skipped: nginx not found (install: apt-get install -y --no-install-recommends nginx); 3 tests
 *   3 tests skipped: a system binary is missing (nginx)
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node'
import type { MissingBinary } from './system-binary.js'

export interface SkippedBinariesReporterOptions {
  /**
   * A binary that every test of the run needs, for a run whose tests are skipped as a whole (e2e/
   * without Chromium) rather than by `describeWithBinary`.
   * @default undefined
   */
  everyTestNeeds?: MissingBinary
}

export class SkippedBinariesReporter implements Reporter {
  #vitest: Vitest | undefined
  readonly #everyTestNeeds: MissingBinary | undefined

  constructor({ everyTestNeeds }: SkippedBinariesReporterOptions = {}) {
    this.#everyTestNeeds = everyTestNeeds
  }

  onInit(vitest: Vitest): void {
    this.#vitest = vitest
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const notRun = new Map<string, { missing: MissingBinary; tests: number }>()
    for (const testModule of testModules) {
      for (const testCase of testModule.children.allTests()) {
        const missing = testCase.meta().missingBinary ?? this.#everyTestNeeds
        if (!missing) continue
        // Under CI=true a test fails on the missing binary, or is skipped when its suite's hook did.
        const state = testCase.result().state
        if (!(state === 'skipped' || (missing.failsRun && state === 'failed'))) continue
        const entry = notRun.get(missing.binary) ?? { missing, tests: 0 }
        entry.tests++
        notRun.set(missing.binary, entry)
      }
    }
    if (notRun.size === 0) return
    const log = (line: string) => (this.#vitest ? this.#vitest.logger.log(line) : console.log(line))
    const plural = (count: number) => `${count} test${count === 1 ? '' : 's'}`
    log('')
    for (const { missing, tests } of notRun.values()) {
      log(
        missing.failsRun
          ? `failed: ${missing.message}; CI=true requires it; ${plural(tests)} failed or not run`
          : `skipped: ${missing.message}; ${plural(tests)}`,
      )
    }
    const entries = [...notRun.values()]
    const total = entries.reduce((sum, { tests }) => sum + tests, 0)
    const names = entries.map(({ missing }) => missing.binary).join(', ')
    log(
      entries.some(({ missing }) => missing.failsRun)
        ? `${plural(total)} failed or not run: a system binary is missing under CI=true (${names})`
        : `${plural(total)} skipped: a system binary is missing (${names})`,
    )
  }
}

export default SkippedBinariesReporter
