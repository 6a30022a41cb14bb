import { describe, expect, it, vi } from 'vitest'
import type { StoredMessage } from '../../src/server/brokers/broker.js'
import { messageFrame } from '../../src/server/hub/out-frame.js'
import { MessageFrameCache } from '../../src/server/hub/replay.js'

const message = (channel: string, offset: number, epoch = 'e1'): StoredMessage => ({
  channel,
  event: 'message',
  data: 'x'.repeat(10),
  epoch,
  offset,
})

/** What one of the messages above weighs in the cache (its JSON, channel and epoch, times 4). */
const weight = (m: StoredMessage) => (messageFrame(m).json.length + m.channel.length + m.epoch.length) * 4

describe('MessageFrameCache', () => {
  it('builds a message frame once, then hands out the same frame for the same channel, epoch and offset', () => {
    const cache = new MessageFrameCache(1 << 20)
    const build = vi.fn(messageFrame)
    const first = cache.frameOf(message('a', 1), build)
    expect(cache.frameOf(message('a', 1), build)).toBe(first)
    expect(build).toHaveBeenCalledOnce()
    // Another channel, offset or epoch is another frame.
    const others = [message('b', 1), message('a', 2), message('a', 1, 'e2')].map((m) => cache.frameOf(m, build))
    expect(new Set([first, ...others]).size).toBe(4)
    expect(build).toHaveBeenCalledTimes(4)
    // The new epoch took the offset's place; the old epoch's frame is built again when asked for.
    expect(cache.size).toBe(3)
    expect(cache.frameOf(message('a', 1), build)).not.toBe(first)
    expect(build).toHaveBeenCalledTimes(5)
  })

  it('does not cache what build refuses', () => {
    const cache = new MessageFrameCache(1 << 20)
    const build = vi.fn(() => null)
    expect(cache.frameOf(message('a', 1), build)).toBeNull()
    expect(cache.frameOf(message('a', 1), build)).toBeNull()
    expect(build).toHaveBeenCalledTimes(2)
    expect(cache.size).toBe(0)
  })

  it('stays within its size, evicting the oldest frame not used since it was cached', () => {
    const room = 3
    const cache = new MessageFrameCache(room * weight(message('a', 1)))
    const build = vi.fn(messageFrame)
    for (const offset of [1, 2, 3]) cache.frameOf(message('a', offset), build)
    expect(cache.size).toBe(3)
    // 1 is used again: 4 evicts 2, the oldest unused, and 5 evicts 3.
    const one = cache.frameOf(message('a', 1), build)
    cache.frameOf(message('a', 4), build)
    cache.frameOf(message('a', 5), build)
    expect(cache.size).toBe(3)
    build.mockClear()
    expect(cache.frameOf(message('a', 1), build)).toBe(one)
    cache.frameOf(message('a', 4), build)
    cache.frameOf(message('a', 5), build)
    expect(build).not.toHaveBeenCalled()
    // All used: each gets its second chance, and then the oldest of them goes, not the frame just made.
    const two = cache.frameOf(message('a', 2), build)
    expect(build).toHaveBeenCalledOnce()
    expect(cache.size).toBe(3)
    expect(cache.frameOf(message('a', 2), build)).toBe(two)
    expect(cache.frameOf(message('a', 5), build)).not.toBeNull()
    expect(build).toHaveBeenCalledOnce()
    cache.frameOf(message('a', 4), build)
    expect(build).toHaveBeenCalledTimes(2)
  })

  it('skips a frame larger than the whole cache, and clear empties it', () => {
    const cache = new MessageFrameCache(weight(message('a', 1)))
    const build = vi.fn(messageFrame)
    const big = { ...message('a', 2), data: 'x'.repeat(100) }
    cache.frameOf(message('a', 1), build)
    cache.frameOf(big, build)
    expect(cache.size).toBe(1)
    cache.clear()
    expect(cache.size).toBe(0)
    cache.frameOf(message('a', 1), build)
    expect(build).toHaveBeenCalledTimes(3)
  })
})
