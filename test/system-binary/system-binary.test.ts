/**
 * test/helpers/system-binary.ts: where it finds a binary, and what a run does when one is missing:
 * skip with one line and the install command, or under CI=true fail. The lookup is tested with an
 * injected environment and sbin directories holding fake executables; the skip and the failure are
 * tested end to end, in a child vitest run of needs-nginx.fixture.ts with nginx hidden.
 */
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkBinary, findBinary, installCommand, isCI, MissingBinaryError, requireBinary } from '../helpers/system-binary.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('findBinary and checkBinary', () => {
  let scratch: string
  let bin: string
  let sbin: string
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'pushline-system-binary-'))
    bin = join(scratch, 'bin')
    sbin = join(scratch, 'sbin')
    await mkdir(bin)
    await mkdir(sbin)
    const executable = async (path: string) => {
      await writeFile(path, '#!/bin/sh\nexit 0\n')
      await chmod(path, 0o755)
    }
    await executable(join(bin, 'redis-server'))
    await executable(join(sbin, 'mosquitto'))
    await executable(join(sbin, 'chromium'))
    // Present but not executable, and a directory by the binary's name: neither is the binary.
    await writeFile(join(bin, 'nginx'), '#!/bin/sh\n')
    await mkdir(join(sbin, 'nginx'))
  })
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true })
  })

  it('finds a binary on PATH', () => {
    expect(findBinary('redis-server', { env: { PATH: `/nonexistent:${bin}` }, sbinDirectories: [] })).toBe(join(bin, 'redis-server'))
  })

  it('finds a daemon in an sbin directory that is not on PATH', () => {
    expect(findBinary('mosquitto', { env: { PATH: bin }, sbinDirectories: [sbin] })).toBe(join(sbin, 'mosquitto'))
    expect(findBinary('mosquitto', { env: { PATH: bin }, sbinDirectories: [] })).toBeUndefined()
  })

  it('takes neither a file it cannot execute nor a directory', () => {
    expect(findBinary('nginx', { env: { PATH: bin }, sbinDirectories: [sbin] })).toBeUndefined()
  })

  it('treats a binary named in PUSHLINE_HIDE_BINARIES as missing', () => {
    const env = { PATH: bin, PUSHLINE_HIDE_BINARIES: 'nginx, redis-server' }
    expect(findBinary('redis-server', { env, sbinDirectories: [] })).toBeUndefined()
    expect(checkBinary('redis-server', { env, sbinDirectories: [] })).toMatchObject({
      status: 'missing',
      message: `redis-server not found (hidden by PUSHLINE_HIDE_BINARIES; install: ${installCommand('redis-server')})`,
    })
  })

  it('uses PUSHLINE_CHROMIUM instead of PATH when it is set, and only it', () => {
    const chromium = join(sbin, 'chromium')
    expect(findBinary('chromium', { env: { PATH: '', PUSHLINE_CHROMIUM: chromium }, sbinDirectories: [] })).toBe(chromium)
    const elsewhere = { env: { PATH: '', PUSHLINE_CHROMIUM: join(bin, 'chromium') }, sbinDirectories: [sbin] }
    expect(findBinary('chromium', elsewhere)).toBeUndefined()
    expect(checkBinary('chromium', elsewhere)).toMatchObject({ message: expect.stringContaining(`at PUSHLINE_CHROMIUM=${join(bin, 'chromium')}`) })
  })

  it('says how to install what is missing, and fails the run only under CI', () => {
    const lookup = { env: { PATH: bin }, sbinDirectories: [] }
    expect(checkBinary('mosquitto', lookup)).toEqual({
      status: 'missing',
      binary: 'mosquitto',
      message: 'mosquitto not found (install: apt-get install -y --no-install-recommends mosquitto)',
      failsRun: false,
    })
    expect(checkBinary('mosquitto', { ...lookup, env: { PATH: bin, CI: 'true' } })).toMatchObject({ failsRun: true })
    expect(checkBinary('redis-server', lookup)).toEqual({ status: 'found', binary: 'redis-server', path: join(bin, 'redis-server') })
  })

  it('requireBinary returns the path, or throws with the install command', () => {
    expect(requireBinary('redis-server', { env: { PATH: bin }, sbinDirectories: [] })).toBe(join(bin, 'redis-server'))
    expect(() => requireBinary('nginx', { env: { PATH: bin }, sbinDirectories: [] })).toThrow(MissingBinaryError)
    expect(() => requireBinary('nginx', { env: { PATH: bin, CI: 'true' }, sbinDirectories: [] })).toThrow(
      'nginx not found (install: apt-get install -y --no-install-recommends nginx); CI=true requires every system binary',
    )
  })

  it('reads CI as CI services set it', () => {
    expect([isCI({ CI: 'true' }), isCI({ CI: '1' }), isCI({ CI: 'false' }), isCI({ CI: '0' }), isCI({ CI: '' }), isCI({})]).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
    ])
  })
})

interface ChildRun {
  code: number
  output: string
}

/** needs-nginx.fixture.ts in a child vitest, with nginx hidden and CI as given. */
function runFixture(ci: boolean): Promise<ChildRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, PUSHLINE_HIDE_BINARIES: 'nginx', NO_COLOR: '1', FORCE_COLOR: '0' }
  delete env.CI
  delete env.VITEST
  delete env.VITEST_WORKER_ID
  delete env.VITEST_POOL_ID
  if (ci) env.CI = 'true'
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [vitest, 'run', '--config', 'test/system-binary/fixture.config.ts'],
      { cwd: root, env, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0
        resolve({ code, output: stdout + stderr })
      },
    )
  })
}

describe('a run without nginx', () => {
  it('skips the suite that needs it with one line naming it and its install command, and passes', async () => {
    const { code, output } = await runFixture(false)
    expect(output).toContain('1 passed')
    expect(output).toContain('2 skipped')
    const line = 'skipped: nginx not found (hidden by PUSHLINE_HIDE_BINARIES; install: apt-get install -y --no-install-recommends nginx); 2 tests'
    expect(output.split('\n').filter((l) => l.includes('nginx not found'))).toEqual([line])
    expect(output).toContain('2 tests skipped: a system binary is missing (nginx)')
    expect(code, output).toBe(0)
  }, 90_000)

  it('fails under CI=true, with the message, and still runs the suite that needs nothing', async () => {
    const { code, output } = await runFixture(true)
    expect(output).toContain('MissingBinaryError: nginx not found')
    expect(output).toContain('CI=true requires every system binary')
    expect(output).toContain('1 passed')
    expect(output).toContain('failed: nginx not found (hidden by PUSHLINE_HIDE_BINARIES; install: apt-get install -y --no-install-recommends nginx); CI=true requires it; 2 tests failed or not run')
    expect(code, output).toBe(1)
  }, 90_000)
})
