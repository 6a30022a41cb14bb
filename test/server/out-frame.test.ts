import { describe, expect, it, vi } from 'vitest'
import { FrameEncoding, OutFrame } from '../../src/server/hub/out-frame.js'

describe('OutFrame encodings', () => {
  it('encodes a frame once per encoding, however many connections ask', () => {
    const toLine = vi.fn((frame: OutFrame) => `line ${frame.json}`)
    const toLength = vi.fn((frame: OutFrame) => frame.json.length)
    const line = new FrameEncoding(toLine)
    const length = new FrameEncoding(toLength)
    const frame = new OutFrame({ type: 'ping' })
    for (let connection = 0; connection < 3; connection++) {
      expect(frame.encoded(line)).toBe('line {"type":"ping"}')
      expect(frame.encoded(length)).toBe(15)
    }
    expect(toLine).toHaveBeenCalledOnce()
    expect(toLength).toHaveBeenCalledOnce()
    // Each frame has its own cache.
    expect(new OutFrame({ type: 'ping' }).encoded(line)).toBe('line {"type":"ping"}')
    expect(toLine).toHaveBeenCalledTimes(2)
  })

  it('caches falsy encodings too', () => {
    const toZero = vi.fn(() => 0)
    const zero = new FrameEncoding(toZero)
    const frame = new OutFrame({ type: 'ping' })
    expect(frame.encoded(zero)).toBe(0)
    expect(frame.encoded(zero)).toBe(0)
    expect(toZero).toHaveBeenCalledOnce()
  })
})
