import { describe, expect, it } from 'vitest'
import { EpochFlapMonitor } from '../../src/server/hub/epoch-flap-monitor.js'

describe('EpochFlapMonitor', () => {
  it('one foreign-epoch resume per session is normal (a restarted node); the second within the window is flapping', () => {
    const monitor = new EpochFlapMonitor()
    expect(monitor.observe('a', 0)).toBe(false)
    expect(monitor.observe('b', 10)).toBe(false)
    expect(monitor.observe('a', 20_000)).toBe(true)
    expect(monitor.observe('b', 70_011)).toBe(false)
  })

  it('a window that has passed starts counting again', () => {
    const monitor = new EpochFlapMonitor({ threshold: 3, windowMs: 1000 })
    expect(monitor.observe('a', 0)).toBe(false)
    expect(monitor.observe('a', 500)).toBe(false)
    expect(monitor.observe('a', 1500)).toBe(false)
    expect(monitor.observe('a', 1600)).toBe(false)
    expect(monitor.observe('a', 1700)).toBe(true)
  })

  it('tracks a bounded number of sessions, forgetting the oldest', () => {
    const monitor = new EpochFlapMonitor({ maxSessions: 2 })
    monitor.observe('a', 0)
    monitor.observe('b', 1)
    monitor.observe('c', 2)
    // 'a' was forgotten: its next resume counts as its first.
    expect(monitor.observe('a', 3)).toBe(false)
    expect(monitor.observe('c', 4)).toBe(true)
  })
})
