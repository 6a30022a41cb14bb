/** ChannelFeed's ordering and hole filling, with history read from a fake stream. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { StoredMessage } from '../../src/server/brokers/broker.js'
import { ChannelFeed, type HistoryRead } from '../../src/server/brokers/redis/channel-feed.js'

const message = (epoch: string, offset: number): StoredMessage => ({ channel: 'c', event: 'message', data: offset, epoch, offset })

/** A fake Redis history: one epoch, offsets 1..newest, of which `trimmedBelow` and up are kept. */
function fakeHistory(epoch: string | undefined, newest: number) {
  const state = { epoch, newest, trimmedBelow: 1, failuresLeft: 0, reads: [] as [number, number | '+'][] }
  const read = async (from: number, to: number | '+'): Promise<HistoryRead> => {
    state.reads.push([from, to])
    if (state.failuresLeft > 0) {
      state.failuresLeft--
      throw new Error('Redis unavailable')
    }
    const last = to === '+' ? state.newest : Math.min(to, state.newest)
    const messages: StoredMessage[] = []
    for (let offset = Math.max(from, state.trimmedBelow); offset <= last; offset++) messages.push(message(state.epoch ?? '', offset))
    return { epoch: state.epoch, newest: state.newest, messages: state.epoch === undefined ? [] : messages }
  }
  return { state, read }
}

async function started(history: ReturnType<typeof fakeHistory>) {
  const delivered: StoredMessage[] = []
  const errors: unknown[] = []
  const feed = new ChannelFeed({ read: history.read, retryDelayMs: () => 1000, onListenerError: (error) => errors.push(error) })
  feed.listeners.add((m) => delivered.push(m))
  await feed.start()
  return { feed, delivered, errors }
}

const settle = () => vi.advanceTimersByTimeAsync(0)
const positions = (messages: StoredMessage[]) => messages.map((m) => `${m.epoch}:${m.offset}`)

describe('ChannelFeed', () => {
  beforeEach(() => void vi.useFakeTimers())
  afterEach(() => void vi.useRealTimers())

  it('delivers notifications that follow each other as they come, without reading history', async () => {
    const history = fakeHistory('e', 3)
    const { feed, delivered } = await started(history)
    history.state.newest = 5
    feed.notify(message('e', 4))
    feed.notify(message('e', 5))
    await settle()
    expect(positions(delivered)).toEqual(['e:4', 'e:5'])
    expect(history.state.reads).toEqual([[1, 0]])
  })

  it('holds notifications that come before start() until the position is known', async () => {
    const history = fakeHistory('e', 3)
    const delivered: StoredMessage[] = []
    const feed = new ChannelFeed({ read: history.read, retryDelayMs: () => 1000, onListenerError: () => {} })
    feed.listeners.add((m) => delivered.push(m))
    // 4 is announced before the start's read answers, from a position (3) that predates it.
    feed.notify(message('e', 3))
    feed.notify(message('e', 4))
    await settle()
    expect(delivered).toEqual([])
    await feed.start()
    await settle()
    // 3 was before the position the feed started at; no history was read to fill anything.
    expect(positions(delivered)).toEqual(['e:4'])
    expect(history.state.reads).toEqual([[1, 0]])
  })

  it('drops notifications at or before the start position and duplicates', async () => {
    const history = fakeHistory('e', 3)
    const { feed, delivered } = await started(history)
    history.state.newest = 4
    feed.notify(message('e', 3))
    feed.notify(message('e', 4))
    feed.notify(message('e', 4))
    await settle()
    expect(positions(delivered)).toEqual(['e:4'])
  })

  it('fills an offset jump from history before the message that revealed it, and holds newer ones meanwhile', async () => {
    const history = fakeHistory('e', 2)
    const { feed, delivered } = await started(history)
    history.state.newest = 7
    feed.notify(message('e', 6))
    feed.notify(message('e', 7))
    await settle()
    expect(positions(delivered)).toEqual(['e:3', 'e:4', 'e:5', 'e:6', 'e:7'])
    expect(history.state.reads.at(-1)).toEqual([3, 5])
  })

  it('retries a fill while Redis is away and delivers nothing newer until it succeeds', async () => {
    const history = fakeHistory('e', 1)
    const { feed, delivered } = await started(history)
    history.state.newest = 4
    history.state.failuresLeft = 3
    feed.notify(message('e', 4))
    await settle()
    expect(delivered).toEqual([])
    await vi.advanceTimersByTimeAsync(3000)
    expect(positions(delivered)).toEqual(['e:2', 'e:3', 'e:4'])
  })

  it('leaves what history no longer holds missing (the hub announces the jump as a gap)', async () => {
    const history = fakeHistory('e', 1)
    const { feed, delivered } = await started(history)
    history.state.newest = 10
    history.state.trimmedBelow = 8
    feed.notify(message('e', 10))
    await settle()
    expect(positions(delivered)).toEqual(['e:8', 'e:9', 'e:10'])
  })

  it('a new epoch: fills its earlier messages from offset 1', async () => {
    const history = fakeHistory('old', 5)
    const { feed, delivered } = await started(history)
    history.state.epoch = 'new'
    history.state.newest = 3
    feed.notify(message('new', 3))
    await settle()
    expect(positions(delivered)).toEqual(['new:1', 'new:2', 'new:3'])
  })

  it('a fill that finds another epoch than the notification delivers only the notification', async () => {
    const history = fakeHistory('e', 1)
    const { feed, delivered } = await started(history)
    history.state.epoch = 'newer'
    history.state.newest = 9
    feed.notify(message('e', 5))
    await settle()
    expect(positions(delivered)).toEqual(['e:5'])
  })

  it('catch-up after a reconnect delivers what was published meanwhile, and nothing twice', async () => {
    const history = fakeHistory('e', 2)
    const { feed, delivered } = await started(history)
    history.state.newest = 3
    feed.notify(message('e', 3))
    history.state.newest = 6
    feed.catchUp()
    feed.notify(message('e', 6))
    feed.notify(message('e', 7))
    await settle()
    expect(positions(delivered)).toEqual(['e:3', 'e:4', 'e:5', 'e:6', 'e:7'])
  })

  it('catch-up when Redis came back empty and a new epoch began: delivers all of the new epoch', async () => {
    const history = fakeHistory('old', 4)
    const { feed, delivered } = await started(history)
    history.state.epoch = 'new'
    history.state.newest = 2
    feed.catchUp()
    await settle()
    expect(positions(delivered)).toEqual(['new:1', 'new:2'])
  })

  it('catch-up when Redis came back empty with nothing published yet delivers nothing', async () => {
    const history = fakeHistory('old', 4)
    const { feed, delivered } = await started(history)
    history.state.epoch = undefined
    history.state.newest = 0
    feed.catchUp()
    await settle()
    expect(delivered).toEqual([])
    history.state.epoch = 'new'
    history.state.newest = 1
    feed.notify(message('new', 1))
    await settle()
    expect(positions(delivered)).toEqual(['new:1'])
  })

  it('a listener that throws does not starve the others; close stops delivery and retries', async () => {
    const history = fakeHistory('e', 0)
    const { feed, delivered, errors } = await started(history)
    feed.listeners.add(() => {
      throw new Error('boom')
    })
    const after: StoredMessage[] = []
    feed.listeners.add((m) => after.push(m))
    history.state.newest = 1
    feed.notify(message('e', 1))
    await settle()
    expect([delivered.length, after.length, errors.length]).toEqual([1, 1, 1])
    history.state.newest = 3
    history.state.failuresLeft = 1_000_000
    feed.notify(message('e', 3))
    await settle()
    feed.close()
    await vi.advanceTimersByTimeAsync(5000)
    const reads = history.state.reads.length
    await vi.advanceTimersByTimeAsync(5000)
    expect(history.state.reads.length).toBe(reads)
    expect(delivered).toHaveLength(1)
  })
})
