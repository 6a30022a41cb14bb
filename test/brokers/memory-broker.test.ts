import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { EPOCH_PATTERN } from '../../src/protocol/position.js'
import { MemoryBroker } from '../../src/server/index.js'
import type { StoredMessage } from '../../src/server/index.js'
import { registerBrokerTests } from './broker-suite.js'

registerBrokerTests('MemoryBroker', () => new MemoryBroker({ historySize: 100 }), { historySize: 100 })

async function publishN(broker: MemoryBroker, channel: string, n: number): Promise<StoredMessage[]> {
  const out: StoredMessage[] = []
  for (let i = 0; i < n; i++) out.push(await broker.publish(channel, 'e', { i }))
  return out
}

const offsets = (messages: StoredMessage[]) => messages.map((m) => m.offset)

async function publishN2(broker: MemoryBroker, channel: string, n: number, data: string): Promise<StoredMessage[]> {
  const out: StoredMessage[] = []
  for (let i = 0; i < n; i++) out.push(await broker.publish(channel, 'e', data))
  return out
}

// What the conformance suite leaves open: exact history bounds, time, memory, listener isolation.
describe('MemoryBroker', () => {
  let broker: MemoryBroker
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(async () => {
    await broker.close()
    vi.useRealTimers()
  })

  it('numbers messages from 1 in a random epoch per channel', async () => {
    broker = new MemoryBroker()
    const [a1, a2] = await publishN(broker, 'a', 2)
    const [b1] = await publishN(broker, 'b', 1)
    expect(a1).toMatchObject({ channel: 'a', event: 'e', data: { i: 0 }, offset: 1 })
    expect(a2?.offset).toBe(2)
    expect(a1?.epoch).toMatch(EPOCH_PATTERN)
    expect(a2?.epoch).toBe(a1?.epoch)
    expect(b1?.epoch).not.toBe(a1?.epoch)
    // A new process (broker) means new epochs: history was lost.
    const other = new MemoryBroker()
    expect((await other.recover('a', undefined)).epoch).not.toBe(a1?.epoch)
    await other.close()
  })

  describe('resume rules (protocol.md 4)', () => {
    let epoch: string
    beforeEach(async () => {
      broker = new MemoryBroker({ historySize: 3 })
      const messages = await publishN(broker, 'c', 5) // history holds 3, 4, 5: H = 3, N = 5
      epoch = messages[0]?.epoch ?? ''
    })

    it('1: without since, live from the current position', async () => {
      expect(await broker.recover('c', undefined)).toEqual({ epoch, offset: 5, messages: [] })
    })

    it('2: a position whose successors are all in history replays them', async () => {
      const recovery = await broker.recover('c', { epoch, offset: 2 })
      expect(recovery.gap).toBeUndefined()
      expect(recovery.offset).toBe(2)
      expect(offsets(recovery.messages)).toEqual([3, 4, 5])
      const atHead = await broker.recover('c', { epoch, offset: 5 })
      expect(atHead).toEqual({ epoch, offset: 5, messages: [] })
    })

    it('2: a position older than history is a history-exhausted gap', async () => {
      const recovery = await broker.recover('c', { epoch, offset: 1 })
      expect(recovery).toMatchObject({ epoch, offset: 2, gap: 'history-exhausted' })
      expect(offsets(recovery.messages)).toEqual([3, 4, 5])
      const fromStart = await broker.recover('c', { epoch, offset: 0 })
      expect(fromStart).toMatchObject({ epoch, offset: 2, gap: 'history-exhausted' })
    })

    it('3: a position beyond the newest message is position-in-future', async () => {
      expect(await broker.recover('c', { epoch, offset: 9 })).toEqual({
        epoch,
        offset: 5,
        messages: [],
        gap: 'position-in-future',
      })
    })

    it('4: another epoch replays what this epoch still has, as epoch-changed', async () => {
      const recovery = await broker.recover('c', { epoch: 'old', offset: 4 })
      expect(recovery).toMatchObject({ epoch, offset: 2, gap: 'epoch-changed' })
      expect(offsets(recovery.messages)).toEqual([3, 4, 5])
    })

    it('4: with complete history the whole epoch is replayed', async () => {
      const full = new MemoryBroker()
      const [first] = await publishN(full, 'd', 2)
      const recovery = await full.recover('d', { epoch: 'gone', offset: 7 })
      expect(recovery).toMatchObject({ epoch: first?.epoch, offset: 0, gap: 'epoch-changed' })
      expect(offsets(recovery.messages)).toEqual([1, 2])
      await full.close()
    })
  })

  it('bounds history by age', async () => {
    broker = new MemoryBroker({ historyTtlMs: 1000 })
    const [first] = await publishN(broker, 'c', 2) // at t=0
    const epoch = first?.epoch ?? ''
    vi.advanceTimersByTime(600)
    await publishN(broker, 'c', 2) // at t=600
    vi.advanceTimersByTime(500) // t=1100: 1 and 2 have expired
    const partial = await broker.recover('c', { epoch, offset: 0 })
    expect(partial).toMatchObject({ epoch, offset: 2, gap: 'history-exhausted' })
    expect(offsets(partial.messages)).toEqual([3, 4])
    expect(offsets((await broker.recover('c', { epoch, offset: 2 })).messages)).toEqual([3, 4])

    vi.advanceTimersByTime(600) // t=1700: everything expired; H = N + 1
    expect(await broker.recover('c', { epoch, offset: 4 })).toEqual({ epoch, offset: 4, messages: [] })
    expect(await broker.recover('c', { epoch, offset: 3 })).toEqual({
      epoch,
      offset: 4,
      messages: [],
      gap: 'history-exhausted',
    })
  })

  it('bounds history by count across many messages', async () => {
    broker = new MemoryBroker({ historySize: 100 })
    const messages = await publishN(broker, 'c', 1000)
    const epoch = messages[0]?.epoch ?? ''
    const recovery = await broker.recover('c', { epoch, offset: 0 })
    expect(recovery.offset).toBe(900)
    expect(offsets(recovery.messages)).toEqual(Array.from({ length: 100 }, (_, i) => 901 + i))
    expect(offsets((await broker.recover('c', { epoch, offset: 950 })).messages)).toHaveLength(50)
  })

  it('keeps no history with historySize 0, but keeps the position', async () => {
    broker = new MemoryBroker({ historySize: 0 })
    const [, second] = await publishN(broker, 'c', 2)
    const epoch = second?.epoch ?? ''
    expect(await broker.recover('c', { epoch, offset: 2 })).toEqual({ epoch, offset: 2, messages: [] })
    expect(await broker.recover('c', { epoch, offset: 1 })).toMatchObject({ offset: 2, gap: 'history-exhausted' })
  })

  it('isolates a throwing listener from the others', async () => {
    broker = new MemoryBroker()
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const got: number[] = []
    await broker.subscribe('c', () => {
      throw new Error('listener bug')
    })
    await broker.subscribe('c', (m) => got.push(m.offset))
    await publishN(broker, 'c', 1)
    expect(got).toEqual([1])
    expect(warn).toHaveBeenCalledOnce()
    warn.mockRestore()
  })

  it('forgets idle channels once their history is gone, and only then', async () => {
    broker = new MemoryBroker({ historyTtlMs: 10 * 60_000, idleChannelTtlMs: 60_000 })
    const [first] = await publishN(broker, 'c', 1)
    const epoch = first?.epoch ?? ''
    // Idle far past idleChannelTtlMs, but history still holds the message: the epoch stays.
    vi.advanceTimersByTime(5 * 60_000)
    expect((await broker.recover('c', undefined)).epoch).toBe(epoch)
    // A subscribed channel is kept even with no history.
    const stop = await broker.subscribe('c', () => {})
    vi.advanceTimersByTime(20 * 60_000)
    expect(await broker.recover('c', undefined)).toEqual({ epoch, offset: 1, messages: [] })
    stop()
    // No subscriber, no history, idle: the record goes; the channel starts over in a new epoch.
    vi.advanceTimersByTime(3 * 60_000)
    const after = await broker.recover('c', { epoch, offset: 1 })
    expect(after.epoch).not.toBe(epoch)
    expect(after).toMatchObject({ offset: 0, messages: [], gap: 'epoch-changed' })
  })

  it('keeps no record of a channel never published to once its last subscriber leaves, and gives it the same epoch back', async () => {
    broker = new MemoryBroker()
    const stop = await broker.subscribe('quiet', () => {})
    const { epoch } = await broker.recover('quiet', undefined)
    expect(broker.stats().channels).toBe(1)
    stop()
    expect(broker.stats().channels).toBe(0)
    // Nothing was lost: a client at epoch-0 resumes without a gap.
    expect(await broker.recover('quiet', { epoch, offset: 0 })).toEqual({ epoch, offset: 0, messages: [] })
    expect(broker.stats().channels).toBe(0)
  })

  it('stays bounded through 100,000 distinct channels subscribed and left', async () => {
    broker = new MemoryBroker()
    let most = 0
    for (let i = 0; i < 100_000; i++) {
      const stop = await broker.subscribe(`touch.${i}`, () => {})
      await broker.recover(`touch.${i}`, { epoch: 'madeup', offset: 3 })
      most = Math.max(most, broker.stats().channels)
      stop()
    }
    expect(most).toBe(1)
    expect(broker.stats().channels).toBe(0)
  })

  it('gives a forgotten published channel a new epoch, never its old one back', async () => {
    broker = new MemoryBroker({ idleChannelTtlMs: 1000, historyTtlMs: 500 })
    const [first] = await publishN(broker, 'gone', 3)
    vi.advanceTimersByTime(5000)
    expect(broker.stats().channels).toBe(0)
    const after = await broker.recover('gone', { epoch: first?.epoch ?? '', offset: 3 })
    expect(after).toMatchObject({ offset: 0, messages: [], gap: 'epoch-changed' })
    expect(after.epoch).not.toBe(first?.epoch)
  })

  it('bounds total history by maxHistoryBytes, dropping the oldest of the channels idle the longest first', async () => {
    const data = 'x'.repeat(1000)
    // Each message weighs its data's JSON (1002), channel (1), event (1) and 64: 1068 bytes.
    broker = new MemoryBroker({ maxHistoryBytes: 10 * 1068 })
    const a = await publishN2(broker, 'a', 4, data)
    vi.advanceTimersByTime(10)
    await publishN2(broker, 'b', 4, data)
    vi.advanceTimersByTime(10)
    expect(broker.stats()).toMatchObject({ historyMessages: 8, historyBytes: 8 * 1068 })
    // c's 4 messages push the total past 10: a (idle the longest) loses its 2 oldest.
    await publishN2(broker, 'c', 4, data)
    expect(broker.stats()).toMatchObject({ historyMessages: 10, historyBytes: 10 * 1068 })
    const epoch = a[0]?.epoch ?? ''
    const fromStart = await broker.recover('a', { epoch, offset: 0 })
    expect(fromStart).toMatchObject({ offset: 2, gap: 'history-exhausted' })
    expect(offsets(fromStart.messages)).toEqual([3, 4])
    // The recover used `a`: now `b` is idle the longest and goes first.
    await publishN2(broker, 'c', 2, data)
    expect((await broker.recover('b', { epoch: (await broker.recover('b', undefined)).epoch, offset: 0 })).gap).toBe(
      'history-exhausted',
    )
    expect(offsets((await broker.recover('a', { epoch, offset: 2 })).messages)).toEqual([3, 4])
  })

  it('bounds channel records by maxChannels, forgetting the one idle the longest without subscribers', async () => {
    broker = new MemoryBroker({ maxChannels: 3 })
    const stop = await broker.subscribe('watched', () => {})
    const [old] = await publishN(broker, 'old', 2)
    vi.advanceTimersByTime(10)
    await publishN(broker, 'newer', 1)
    vi.advanceTimersByTime(10)
    await publishN(broker, 'newest', 1)
    // 'watched' is the oldest but has a subscriber; 'old' goes.
    expect(broker.stats().channels).toBe(3)
    const resumed = await broker.recover('old', { epoch: old?.epoch ?? '', offset: 2 })
    expect(resumed).toMatchObject({ offset: 0, messages: [], gap: 'epoch-changed' })
    expect(resumed.epoch).not.toBe(old?.epoch)
    const [again] = await publishN(broker, 'watched', 1)
    expect(again?.offset).toBe(1)
    stop()
  })

  it('rejects calls after close', async () => {
    broker = new MemoryBroker()
    await broker.close()
    await expect(broker.publish('c', 'e', 1)).rejects.toMatchObject({ code: 'SERVER_SHUTDOWN' })
    await expect(broker.recover('c', undefined)).rejects.toMatchObject({ code: 'SERVER_SHUTDOWN' })
  })
})
