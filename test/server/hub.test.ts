import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Position } from '../../src/protocol/position.js'
import { Connection } from '../../src/server/hub/connection.js'
import type { FlushScheduler } from '../../src/server/hub/connection.js'
import { Hub } from '../../src/server/hub/hub.js'
import type { OutFrame } from '../../src/server/hub/out-frame.js'
import { MemoryBroker } from '../../src/server/index.js'
import { CountingBroker } from '../brokers/counting-broker.js'

const LINGER_MS = 5000

/** A connection that keeps what it is sent: the hub's side of a poll, without HTTP. */
class RecordingConnection extends Connection {
  readonly transport = 'long-polling'
  readonly written: OutFrame[] = []

  constructor(scheduler: FlushScheduler) {
    super(scheduler)
  }

  protected write(frames: readonly OutFrame[]): void {
    this.written.push(...frames)
  }

  protected end(): void {}

  bufferedBytes(): number {
    return 0
  }

  isResponsive(): boolean {
    return true
  }

  terminate(): void {}
}

describe('Hub broker subscriptions', () => {
  let broker: CountingBroker
  let hub: Hub

  function makeHub(brokerLingerMs: number): Hub {
    return new Hub({
      broker,
      heartbeatMs: 20_000,
      heartbeatGraceMs: 10_000,
      maxSubscriptions: 16,
      maxBufferedBytes: 1 << 20,
      brokerLingerMs,
      logger: { error: () => {} },
    })
  }

  /** One poll's life in the hub: a connection that subscribes at `since`, takes what is there and leaves. */
  async function poll(channel: string, since: Position | undefined): Promise<OutFrame[]> {
    const connection = new RecordingConnection(hub.scheduler)
    hub.add(connection)
    await hub.subscribe(connection, [{ channel, since, continues: since !== undefined }])
    connection.flush()
    hub.remove(connection)
    return connection.written
  }

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    broker = new CountingBroker()
  })

  afterEach(async () => {
    await hub.shutdown()
    await broker.close()
    vi.useRealTimers()
  })

  it('keeps the broker subscription across polls and drops it once the linger has passed', async () => {
    hub = makeHub(LINGER_MS)
    const first = await broker.publish('c', 'message', 1)
    let since: Position = { epoch: first.epoch, offset: first.offset }
    for (let i = 0; i < 10; i++) {
      await poll('c', since)
      // The next poll comes well within the linger, with a message published in between.
      vi.advanceTimersByTime(LINGER_MS / 2)
      const stored = await broker.publish('c', 'message', i)
      since = { epoch: stored.epoch, offset: stored.offset }
    }
    await poll('c', since)
    expect(broker.subscribes).toBe(1)
    expect(broker.active).toBe(1)
    // A lingering channel has no subscriber: stats don't count it.
    expect(hub.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })

    vi.advanceTimersByTime(LINGER_MS - 1)
    expect(broker.active).toBe(1)
    vi.advanceTimersByTime(1)
    expect(broker.active).toBe(0)
    // The next poll subscribes afresh.
    await poll('c', since)
    expect(broker.subscribes).toBe(2)
  })

  it('loses nothing published while a channel lingers with no subscriber, and repeats nothing', async () => {
    hub = makeHub(LINGER_MS)
    const first = await broker.publish('c', 'message', 'first')
    const since = { epoch: first.epoch, offset: first.offset }
    expect(await poll('c', since)).toEqual([])
    await broker.publish('c', 'message', 'second')
    await broker.publish('c', 'message', 'third')
    const next = await poll('c', since)
    expect(next.map((frame) => frame.frame)).toEqual([
      expect.objectContaining({ type: 'message', offset: 2, data: 'second' }),
      expect.objectContaining({ type: 'message', offset: 3, data: 'third' }),
    ])
    expect(broker.subscribes).toBe(1)
  })

  it('unsubscribes at once with brokerLingerMs 0', async () => {
    hub = makeHub(0)
    await poll('c', undefined)
    expect(broker.subscribes).toBe(1)
    expect(broker.active).toBe(0)
  })

  it('keeps one broker subscription while subscribers come and go, and stops it on shutdown', async () => {
    hub = makeHub(LINGER_MS)
    const staying = new RecordingConnection(hub.scheduler)
    hub.add(staying)
    await hub.subscribe(staying, [{ channel: 'c' }])
    await poll('c', undefined)
    vi.advanceTimersByTime(2 * LINGER_MS)
    // One subscriber stayed: no linger started, the subscription is the same.
    expect(broker.subscribes).toBe(1)
    expect(broker.active).toBe(1)
    hub.remove(staying)
    expect(broker.active).toBe(1)
    await hub.shutdown()
    expect(broker.active).toBe(0)
  })
})

describe('Hub channel records', () => {
  // Real timers: fake ones make 100,000 linger timers many times slower.
  it('stays bounded through 100,000 distinct channels subscribed and unsubscribed by one connection', async () => {
    const memory = new MemoryBroker()
    const hub = new Hub({
      broker: memory,
      heartbeatMs: 20_000,
      heartbeatGraceMs: 10_000,
      maxSubscriptions: 16,
      maxBufferedBytes: 1 << 20,
      brokerLingerMs: 5000,
      logger: { error: () => {} },
    })
    const connection = new RecordingConnection(hub.scheduler)
    hub.add(connection)
    let mostHub = 0
    let mostBroker = 0
    for (let i = 0; i < 100_000; i++) {
      await hub.subscribe(connection, [{ channel: `name.${i}`, since: { epoch: 'madeup', offset: 1 } }])
      hub.unsubscribe(connection, `name.${i}`)
      if (i % 1000 === 0) {
        connection.flush()
        connection.written.length = 0
      }
      mostHub = Math.max(mostHub, hub.channelRecords)
      mostBroker = Math.max(mostBroker, memory.stats().channels)
    }
    // Lingering channels are capped; the broker keeps only what the hub still subscribes.
    expect(mostHub).toBeLessThanOrEqual(10_001)
    expect(mostBroker).toBeLessThanOrEqual(10_001)
    await hub.shutdown()
    expect(hub.channelRecords).toBe(0)
    expect(memory.stats().channels).toBe(0)
    await memory.close()
  }, 60_000)
})

describe('Hub subscription table', () => {
  // A connection's table is a short array for a few channels and a Map past 8: both must behave alike.
  it('subscribes, resubscribes, unsubscribes and delivers the same below and above 8 channels, up to maxSubscriptions', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    const broker = new MemoryBroker()
    const hub = new Hub({
      broker,
      heartbeatMs: 20_000,
      heartbeatGraceMs: 10_000,
      maxSubscriptions: 12,
      maxBufferedBytes: 1 << 20,
      brokerLingerMs: 0,
      logger: { error: () => {} },
    })
    const connection = new RecordingConnection(hub.scheduler)
    hub.add(connection)
    const channels = Array.from({ length: 13 }, (_, i) => `c${i}`)
    const delivered = async (): Promise<string[]> => {
      connection.written.length = 0
      for (const channel of channels) await broker.publish(channel, 'message', channel)
      connection.flush()
      return connection.written.map((frame) => frame.frame).filter((frame) => frame.type === 'message').map((frame) => (frame as { channel: string }).channel)
    }
    try {
      for (const [count, channel] of channels.entries()) {
        await hub.subscribe(connection, [{ channel }])
        connection.flush()
        expect(hub.stats().subscriptions).toBe(Math.min(count + 1, 12))
      }
      // The 13th is refused: the table counts what it holds whichever form it has.
      expect(connection.written.some((out) => out.frame.type === 'error' && out.frame.code === 'TOO_MANY_SUBSCRIPTIONS')).toBe(true)
      expect(await delivered()).toEqual(channels.slice(0, 12))
      // Subscribing again replaces the subscription: still one delivery per message.
      await hub.subscribe(connection, [{ channel: 'c3' }])
      hub.unsubscribe(connection, 'c5')
      hub.unsubscribe(connection, 'nope')
      expect(hub.stats().subscriptions).toBe(11)
      expect(await delivered()).toEqual(channels.slice(0, 12).filter((channel) => channel !== 'c5'))
      // Down to a few again, and a fresh connection with two: the array form.
      for (const channel of channels.slice(2)) hub.unsubscribe(connection, channel)
      const other = new RecordingConnection(hub.scheduler)
      hub.add(other)
      await hub.subscribe(other, [{ channel: 'c0' }, { channel: 'c1' }])
      await hub.subscribe(other, [{ channel: 'c0' }])
      hub.unsubscribe(other, 'c0')
      expect(hub.stats()).toMatchObject({ connections: 2, subscriptions: 3 })
      expect(await delivered()).toEqual(['c0', 'c1'])
      hub.remove(other)
      hub.remove(connection)
      expect(hub.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
    } finally {
      await hub.shutdown()
      await broker.close()
      vi.useRealTimers()
    }
  })
})
