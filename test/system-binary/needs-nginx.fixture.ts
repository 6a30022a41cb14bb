/**
 * Run only by system-binary.test.ts, in a child vitest (fixture.config.ts): one suite that needs
 * nginx, and one that needs nothing and must run whatever happens to the first.
 */
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { describeWithBinary, requireBinary } from '../helpers/system-binary.js'

describeWithBinary('nginx', 'a suite that needs nginx', () => {
  it('runs nginx -v', () => {
    // nginx prints its version on stderr.
    expect(execFileSync(requireBinary('nginx'), ['-v'], { encoding: 'utf8', stdio: 'pipe' })).toBe('')
  })
  it('runs nginx -t against no config', () => {
    expect(() => execFileSync(requireBinary('nginx'), ['-t', '-c', '/nonexistent.conf'], { stdio: 'pipe' })).toThrow()
  })
})

describe('a suite that needs nothing', () => {
  it('runs', () => {
    expect(1 + 1).toBe(2)
  })
})
