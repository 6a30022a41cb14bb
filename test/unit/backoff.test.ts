import { describe, expect, it } from 'vitest'
import { backoff } from '../../src/client/backoff.js'

const options = { initialDelayMs: 500, maxDelayMs: 30_000 }

describe('backoff', () => {
  it('is full jitter: anywhere from 0 to the exponential ceiling', () => {
    expect(backoff(0, options, () => 0)).toBe(0)
    expect(backoff(0, options, () => 0.999999)).toBe(500)
    expect(backoff(3, options, () => 0)).toBe(0)
    expect(backoff(3, options, () => 0.999999)).toBe(4000)
    expect(backoff(3, options, () => 0.25)).toBe(1000)
  })

  it('stays within [0, min(max, initial * 2^n)] for any random value', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(30_000, 500 * 2 ** attempt)
      for (let i = 0; i < 50; i++) {
        const delay = backoff(attempt, options)
        expect(delay).toBeGreaterThanOrEqual(0)
        expect(delay).toBeLessThanOrEqual(ceiling)
      }
    }
  })

  it('doubles the ceiling per attempt until the cap', () => {
    const ceilings = Array.from({ length: 9 }, (_, attempt) => backoff(attempt, options, () => 0.999999))
    expect(ceilings).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000])
  })

  it('survives absurd attempt numbers', () => {
    expect(backoff(5000, options, () => 0.5)).toBe(15_000)
  })

  it('is a pure function of attempt, options and random', () => {
    expect(backoff(2, options, () => 0.3)).toBe(backoff(2, options, () => 0.3))
  })
})
