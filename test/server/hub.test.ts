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
