/**
 * The system binaries some tests start (nginx in front of the server, Chromium for e2e/, and
 * redis-server and mosquitto for the broker and MQTT tests), found in one place, so that `npm test`
 * on a machine with only Node skips what it cannot run instead of failing on a missing program.
 *
 * A test file that needs one wraps its suite, and spawns the path `requireBinary` returns (not the
 * bare name: Debian puts daemons in /usr/sbin, which is on root's PATH but often not on a user's):
 *
 *   import { describeWithBinary, requireBinary } from '../helpers/system-binary.js'
 *
 *   describeWithBinary('redis-server', 'the Redis broker', () => {
 *     it('keeps offsets contiguous', async () => {
 *       const redis = spawn(requireBinary('redis-server'), ['--port', String(port), '--save', ''])
 *       // ...
 *     })
 *   })
 *
 * - Found: the suite runs as `describe` would run it.
 * - Missing: every test of the suite is skipped (no hook of it runs), and the run ends with one
 *   line per binary (test/helpers/skipped-binaries-reporter.ts):
 *   `skipped: redis-server not found (install: apt-get install -y --no-install-recommends redis-server); 12 tests`
 * - Missing under CI=true: the suite fails with that message instead, since CI installs every
 *   binary (.ci/run) and a skip there would hide a broken CI image.
 *
 * A new binary goes into SYSTEM_BINARIES below (with its Debian package) and into .ci/run's list.
 * `checkBinary(name)` answers without throwing (e2e/vitest.config.ts uses it to skip a whole run).
 *
 * PUSHLINE_HIDE_BINARIES=nginx,chromium has the helper treat those as missing, to see the above on
 * a machine that has them. PUSHLINE_CHROMIUM points at another Chromium than the one on PATH.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { beforeAll, describe } from 'vitest'

interface SystemBinaryInfo {
  /** The Debian package that installs it. */
  debianPackage: string
  /** An environment variable that, when set, is the binary's path instead of a PATH lookup. */
  pathVariable?: string
}

/** Every system binary a test may need. A new one is added here, with its Debian package. */
export const SYSTEM_BINARIES = {
  nginx: { debianPackage: 'nginx' },
  chromium: { debianPackage: 'chromium', pathVariable: 'PUSHLINE_CHROMIUM' },
  'redis-server': { debianPackage: 'redis-server' },
  'redis-cli': { debianPackage: 'redis-tools' },
  mosquitto: { debianPackage: 'mosquitto' },
} as const satisfies Record<string, SystemBinaryInfo>

export type SystemBinary = keyof typeof SYSTEM_BINARIES

/** Where Debian installs daemons: always searched, as they are often not on a non-root PATH. */
export const SBIN_DIRECTORIES: readonly string[] = ['/usr/local/sbin', '/usr/sbin', '/sbin']

export interface BinaryLookup {
  /**
   * The environment to read PATH, CI, PUSHLINE_HIDE_BINARIES and PUSHLINE_CHROMIUM from.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv
  /**
   * Directories searched after PATH.
   * @default SBIN_DIRECTORIES
   */
  sbinDirectories?: readonly string[]
}

/** Why a suite does not run, as the skip line says it; carried to the reporter in the tests' meta. */
export interface MissingBinary {
  binary: SystemBinary
  /** `nginx not found (install: apt-get install -y --no-install-recommends nginx)` */
  message: string
  /** CI=true: the run fails instead of skipping. */
  failsRun: boolean
}

declare module 'vitest' {
  interface TaskMeta {
    /** Set on the tests of a `describeWithBinary` suite whose binary is missing. */
    missingBinary?: MissingBinary
  }
}

export type BinaryCheck = { status: 'found'; binary: SystemBinary; path: string } | ({ status: 'missing' } & MissingBinary)

/** The command that installs `binary` on Debian (run as root). */
export function installCommand(binary: SystemBinary): string {
  return `apt-get install -y --no-install-recommends ${SYSTEM_BINARIES[binary].debianPackage}`
}

/** CI services set CI=true (some CI=1); CI=false and CI=0 are a developer turning it off. */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CI?.trim().toLowerCase()
  return value !== undefined && value !== '' && value !== 'false' && value !== '0'
}

function hiddenBinaries(env: NodeJS.ProcessEnv): Set<string> {
  return new Set((env.PUSHLINE_HIDE_BINARIES ?? '').split(',').map((name) => name.trim()))
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** The absolute path of `binary`: its path variable if set, else PATH, else the sbin directories. */
export function findBinary(binary: SystemBinary, { env = process.env, sbinDirectories = SBIN_DIRECTORIES }: BinaryLookup = {}): string | undefined {
  if (hiddenBinaries(env).has(binary)) return undefined
  const info: SystemBinaryInfo = SYSTEM_BINARIES[binary]
  const override = info.pathVariable === undefined ? undefined : env[info.pathVariable]
  if (override) return isExecutableFile(override) ? override : undefined
  const directories = [...(env.PATH ?? '').split(delimiter).filter((directory) => directory !== ''), ...sbinDirectories]
  return directories.map((directory) => join(directory, binary)).find(isExecutableFile)
}

/** Whether `binary` is there, and if not, what the run does about it. */
export function checkBinary(binary: SystemBinary, lookup: BinaryLookup = {}): BinaryCheck {
  const path = findBinary(binary, lookup)
  if (path !== undefined) return { status: 'found', binary, path }
  const env = lookup.env ?? process.env
  const { pathVariable }: SystemBinaryInfo = SYSTEM_BINARIES[binary]
  const where = pathVariable !== undefined && env[pathVariable] ? ` at ${pathVariable}=${env[pathVariable]}` : ''
  const hidden = hiddenBinaries(env).has(binary) ? 'hidden by PUSHLINE_HIDE_BINARIES; ' : ''
  return {
    status: 'missing',
    binary,
    message: `${binary} not found${where} (${hidden}install: ${installCommand(binary)})`,
    failsRun: isCI(env),
  }
}

export class MissingBinaryError extends Error {
  override name = 'MissingBinaryError'
  constructor(readonly missing: MissingBinary) {
    super(missing.failsRun ? `${missing.message}; CI=true requires every system binary (.ci/run installs them)` : missing.message)
  }
}

/** The absolute path of `binary`, to spawn; throws a MissingBinaryError with its install command. */
export function requireBinary(binary: SystemBinary, lookup: BinaryLookup = {}): string {
  const check = checkBinary(binary, lookup)
  if (check.status === 'missing') throw new MissingBinaryError(check)
  return check.path
}

/**
 * `describe(title, body)` for tests that need `binary`: skipped when it is missing, failed when it is
 * missing under CI=true (see the top of this file).
 */
export function describeWithBinary(binary: SystemBinary, title: string, body: () => void, lookup: BinaryLookup = {}): void {
  const check = checkBinary(binary, lookup)
  if (check.status === 'found') {
    describe(title, body)
    return
  }
  const missingBinary: MissingBinary = { binary, message: check.message, failsRun: check.failsRun }
  if (!missingBinary.failsRun) {
    // Skipped at collection: the tests are listed as skipped and none of the suite's hooks runs.
    describe(title, { skip: true, meta: { missingBinary } }, body)
    return
  }
  describe(title, { meta: { missingBinary } }, () => {
    // First hook of the suite: it fails the suite before any hook of `body` would spawn the binary.
    beforeAll(() => {
      throw new MissingBinaryError(missingBinary)
    })
    body()
  })
}
