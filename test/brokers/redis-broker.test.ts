/**
 * RedisBroker against a real redis-server, started by the test on a free
 * loopback port with persistence off. Several brokers on one Redis stand for
 * several pushline nodes.
 */
import { createClient } from 'redis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { StoredMessage } from '../../src/server/brokers/broker.js'
import { RedisBroker } from '../../src/server/brokers/redis/index.js'
import type { RedisBrokerOptions } from '../../src/server/brokers/redis/index.js'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { describeWithBinary } from '../helpers/system-binary.js'
import { registerBrokerTests } from './broker-suite.js'


/** Collects what a listener receives; `until` waits for a condition on it. */
function collector() {
  const messages: StoredMessage[] = []
  return {
    messages,
    listener: (message: StoredMessage) => void messages.push(message),
    until: (condition: () => boolean, timeoutMs = 15_000) => waitFor(condition, timeoutMs),
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function silentLogger() {
  const errors: string[] = []
  const infos: string[] = []
  return { errors, infos, error: (message: string) => void errors.push(message), info: (message: string) => void infos.push(message) }
}

describeWithBinary('redis-server', 'RedisBroker', () => {
  let redis: RedisServer
  const brokers: RedisBroker[] = []
  let prefixCount = 0
  let keyPrefix = ''

  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((broker) => broker.close()))
    await redis.start()
  })

  /** A broker ("node") on the test Redis; each test gets its own key prefix. */
  function node(options: RedisBrokerOptions = {}): RedisBroker {
    const broker = new RedisBroker({ url: redis.url, keyPrefix, logger: silentLogger(), ...options })
    brokers.push(broker)
    return broker
  }
  function freshPrefix(): void {
    keyPrefix = `test${++prefixCount}:`
  }

  registerBrokerTests('RedisBroker', () => node({ historySize: 100, keyPrefix: 'suite:' }), { historySize: 100 })

  it('publishes with contiguous offsets in one epoch and recovers per protocol section 4', async () => {
    freshPrefix()
    const broker = node({ historySize: 3 })
    const first = await broker.publish('room', 'message', { n: 1 })
    expect(first).toMatchObject({ channel: 'room', event: 'message', data: { n: 1 }, offset: 1 })
    for (let n = 2; n <= 5; n++) await broker.publish('room', 'message', { n })
    const { epoch } = first

    expect(await broker.recover('room', undefined)).toEqual({ epoch, offset: 5, messages: [] })
    const resumed = await broker.recover('room', { epoch, offset: 3 })
    expect(resumed.gap).toBeUndefined()
    expect(resumed.offset).toBe(3)
    expect(resumed.messages.map((m) => [m.offset, m.data])).toEqual([
      [4, { n: 4 }],
      [5, { n: 5 }],
    ])
    // History holds 3..5: from 1 the start is gone.
    const exhausted = await broker.recover('room', { epoch, offset: 1 })
    expect(exhausted).toMatchObject({ epoch, offset: 2, gap: 'history-exhausted' })
    expect(exhausted.messages.map((m) => m.offset)).toEqual([3, 4, 5])
    expect(await broker.recover('room', { epoch, offset: 9 })).toEqual({ epoch, offset: 5, messages: [], gap: 'position-in-future' })
    const otherEpoch = await broker.recover('room', { epoch: 'gone', offset: 4 })
    expect(otherEpoch).toMatchObject({ epoch, offset: 2, gap: 'epoch-changed' })
    expect(otherEpoch.messages.map((m) => m.offset)).toEqual([3, 4, 5])
    expect(await broker.recover('room', { epoch, offset: 5 })).toEqual({ epoch, offset: 5, messages: [] })
  })

  it('keeps event names and data of every JSON kind intact', async () => {
    freshPrefix()
    const broker = node()
    const values = ['text with spaces [,]', 0, -1.5, true, null, [1, { a: 'é' }], { nested: { deep: ['x'] } }]
    const events = ['message', 'with space', 'ünïcode ✓', '"quoted"']
    const received = collector()
    await broker.subscribe('kinds', received.listener)
    for (const [i, data] of values.entries()) await broker.publish('kinds', events[i % events.length] ?? 'message', data)
    await received.until(() => received.messages.length === values.length)
    expect(received.messages.map((m) => m.data)).toEqual(values)
    expect(received.messages.map((m) => m.event)).toEqual(values.map((_, i) => events[i % events.length]))
    const recovered = await broker.recover('kinds', { epoch: received.messages[0]?.epoch ?? '', offset: 0 })
    expect(recovered.messages.map((m) => [m.event, m.data])).toEqual(received.messages.map((m) => [m.event, m.data]))
  })

  it('a client that subscribes before the first publish holds the epoch that publish uses', async () => {
    freshPrefix()
    const broker = node()
    const before = await broker.recover('fresh', undefined)
    expect(before.offset).toBe(0)
    const published = await broker.publish('fresh', 'message', 1)
    expect(published.epoch).toBe(before.epoch)
    expect(await broker.recover('fresh', before)).toMatchObject({ epoch: before.epoch, offset: 0, messages: [{ offset: 1 }] })
  })

  it('delivers what one node publishes to the listeners of other nodes, in order; unsubscribe stops it', async () => {
    freshPrefix()
    const [a, b, c] = [node(), node(), node()]
    const onB = collector()
    const onC = collector()
    const stopB = await b.subscribe('fan', onB.listener)
    await c.subscribe('fan', onC.listener)
    for (let n = 1; n <= 50; n++) await a.publish('fan', 'message', n)
    await onB.until(() => onB.messages.length === 50)
    await onC.until(() => onC.messages.length === 50)
    expect(onB.messages.map((m) => m.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
    expect(onC.messages.map((m) => m.data)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
    stopB()
    await a.publish('fan', 'message', 51)
    await onC.until(() => onC.messages.length === 51)
    expect(onB.messages).toHaveLength(50)
  })

  it('two nodes publishing 10,000 messages each at once to one channel: offsets 1..20,000, no duplicate, no hole', async () => {
    freshPrefix()
    const [a, b, watcher] = [node({ historySize: 20_000 }), node({ historySize: 20_000 }), node({ historySize: 20_000 })]
    const watched = collector()
    await watcher.subscribe('busy', watched.listener)
    const burst = async (broker: RedisBroker, from: string) => {
      const offsets: number[] = []
      // 100 in flight per node: concurrent with the other node, bounded in memory.
      for (let batch = 0; batch < 100; batch++) {
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => broker.publish('busy', 'message', { from, n: batch * 100 + i })),
        )
        offsets.push(...results.map((r) => r.offset))
      }
      return offsets
    }
    const [fromA, fromB] = await Promise.all([burst(a, 'a'), burst(b, 'b')])
    const all = [...fromA, ...fromB].sort((x, y) => x - y)
    expect(all).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1))
    // Each node's own publishes got increasing offsets, and the two interleaved.
    expect(fromA).toEqual([...fromA].sort((x, y) => x - y))
    expect(fromA.some((offset) => offset > fromB[0]!) && fromB.some((offset) => offset > fromA[0]!)).toBe(true)
    await watched.until(() => watched.messages.length >= 20_000, 60_000)
    expect(watched.messages.map((m) => m.offset)).toEqual(all)
    const history = await watcher.recover('busy', { epoch: watched.messages[0]!.epoch, offset: 0 })
    expect(history.messages).toHaveLength(20_000)
    expect(history.gap).toBeUndefined()
  }, 120_000)

  it("fills the hole from the stream when a node's subscriber connection drops while others publish", async () => {
    freshPrefix()
    const logger = silentLogger()
    const [publisher, subscriber] = [node(), node({ logger })]
    const received = collector()
    await subscriber.subscribe('holes', received.listener)
    const admin = createClient({ url: redis.url })
    await admin.connect()
    try {
      let published = 0
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 40; i++) await publisher.publish('holes', 'message', ++published)
        // Drops every subscribed connection; publishing goes on while they reconnect.
        await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])
      }
      for (let i = 0; i < 40; i++) await publisher.publish('holes', 'message', ++published)
      await received.until(() => received.messages.length >= published)
      expect(received.messages.map((m) => m.data)).toEqual(Array.from({ length: published }, (_, i) => i + 1))
      expect(new Set(received.messages.map((m) => m.epoch)).size).toBe(1)
      // Each drop is an outage of the subscriber connection, logged once and ended once it is back.
      await waitFor(() => logger.infos.length === logger.errors.length)
      expect(logger.errors.length).toBeGreaterThanOrEqual(1)
      await expect(subscriber.publish('holes', 'message', 'still works')).resolves.toMatchObject({ offset: published + 1 })
    } finally {
      await admin.close()
    }
  })

  it('Redis restarted empty mid-stream: the next publish starts a new epoch, listeners get it from offset 1, resume reports epoch-changed', async () => {
    freshPrefix()
    const [publisher, subscriber] = [node(), node()]
    const received = collector()
    await subscriber.subscribe('restart', received.listener)
    for (let n = 1; n <= 10; n++) await publisher.publish('restart', 'message', n)
    await received.until(() => received.messages.length === 10)
    const oldEpoch = received.messages[0]!.epoch

    await redis.stop()
    await redis.start()
    // The publisher's client reconnects by itself; publish once it has.
    let after: StoredMessage | undefined
    for (let attempt = 0; !after && attempt < 200; attempt++) {
      after = await publisher.publish('restart', 'message', 11).catch(() => undefined)
      if (!after) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(after).toMatchObject({ offset: 1 })
    expect(after!.epoch).not.toBe(oldEpoch)
    for (let n = 12; n <= 15; n++) await publisher.publish('restart', 'message', n)
    await received.until(() => received.messages.length === 15)
    expect(received.messages.map((m) => [m.data, m.offset])).toEqual([
      ...Array.from({ length: 10 }, (_, i) => [i + 1, i + 1]),
      ...Array.from({ length: 5 }, (_, i) => [i + 11, i + 1]),
    ])
    const resumed = await subscriber.recover('restart', { epoch: oldEpoch, offset: 10 })
    expect(resumed).toMatchObject({ epoch: after!.epoch, offset: 0, gap: 'epoch-changed' })
    expect(resumed.messages.map((m) => m.data)).toEqual([11, 12, 13, 14, 15])
  })

  it('Redis down: publish rejects with BROKER_UNAVAILABLE within the command timeout, logged once; it recovers by itself', async () => {
    freshPrefix()
    const logger = silentLogger()
    const publisher = node({ commandTimeoutMs: 500, logger })
    const other = node()
    const subscriber = node()
    const received = collector()
    await subscriber.subscribe('outage', received.listener)
    await publisher.publish('outage', 'message', 1)

    await redis.stop()
    // Each one settles while Redis is still down (nothing here starts it): they fail on the command
    // timeout rather than wait in an offline queue for Redis to return. No wall-clock bound is
    // asserted (a loaded machine makes any figure flaky); the test's own timeout bounds the 20.
    const failures: unknown[] = []
    for (let i = 0; i < 20; i++) failures.push(await publisher.publish('outage', 'message', 'lost').catch((error: unknown) => error))
    expect(failures.every((error) => (error as { code?: string }).code === 'BROKER_UNAVAILABLE')).toBe(true)
    await expect(subscriber.recover('outage', undefined)).rejects.toMatchObject({ code: 'BROKER_UNAVAILABLE' })
    expect(logger.errors).toHaveLength(1)
    expect(logger.errors[0]).toMatch(/Redis unreachable/)

    await redis.start()
    // Another node publishes as soon as it can; the subscriber reconnects and receives it.
    let published = 0
    for (let attempt = 0; published < 5 && attempt < 300; attempt++) {
      const ok = await other.publish('outage', 'message', `after-${published + 1}`).then(() => true, () => false)
      if (ok) published++
      else await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(published).toBe(5)
    // The subscriber's connection comes back on node-redis's own reconnect schedule, which a loaded
    // machine stretches (15 s was once not enough in a full parallel run): what matters is that it
    // comes back by itself and fills from the stream.
    await received.until(() => received.messages.length === 6, 60_000)
    expect(received.messages.map((m) => m.data)).toEqual([1, 'after-1', 'after-2', 'after-3', 'after-4', 'after-5'])
    // The restarted Redis is empty: a new epoch (the hub turns it into an epoch-changed gap).
    expect(received.messages[1]!.epoch).not.toBe(received.messages[0]!.epoch)
    await waitFor(() => logger.infos.length === 1)
    expect(logger.infos[0]).toMatch(/Redis reachable again/)
    await expect(publisher.publish('outage', 'message', 'fine')).resolves.toMatchObject({ offset: 6 })
    expect(logger.errors).toHaveLength(1)
  }, 150_000)

  it('Redis hung (SIGSTOP): publish and recover reject with BROKER_UNAVAILABLE after commandTimeoutMs; it works again once Redis answers', async () => {
    freshPrefix()
    const broker = node({ commandTimeoutMs: 300 })
    await broker.publish('hung', 'message', 1)
    redis.freeze()
    try {
      const started = Date.now()
      const outcomes = await Promise.all([
        broker.publish('hung', 'message', 2).catch((error: unknown) => error),
        broker.recover('hung', undefined).catch((error: unknown) => error),
      ])
      const elapsed = Date.now() - started
      expect(outcomes.map((error) => (error as { code?: string }).code)).toEqual(['BROKER_UNAVAILABLE', 'BROKER_UNAVAILABLE'])
      // Rejected by the timeout (300 ms), not after the OS gives up on the connection (minutes).
      expect(elapsed).toBeGreaterThanOrEqual(250)
      expect(elapsed).toBeLessThan(5000)
    } finally {
      redis.thaw()
    }
    // A publish that timed out may still have happened once Redis answers: the offset tells.
    const next = await broker.publish('hung', 'message', 3)
    expect([2, 3]).toContain(next.offset)
  })

  it('keeps every key of a channel in one hash slot, under keyPrefix, with a TTL', async () => {
    freshPrefix()
    const broker = node({ historyTtlMs: 60_000 })
    await broker.publish('chat/room-1', 'message', 'hi')
    const admin = createClient({ url: redis.url })
    await admin.connect()
    try {
      const keys = (await admin.keys(`${keyPrefix}*`)).sort()
      expect(keys).toEqual([`${keyPrefix}{chat/room-1}:history`, `${keyPrefix}{chat/room-1}:position`])
      for (const key of keys) {
        const ttl = await admin.pTTL(key)
        expect(ttl).toBeGreaterThan(0)
        expect(ttl).toBeLessThanOrEqual(60_000)
      }
      const slots = await Promise.all(keys.map((key) => admin.sendCommand(['CLUSTER', 'KEYSLOT', key]).catch(() => undefined)))
      // CLUSTER KEYSLOT answers on a standalone Redis too (7+).
      if (slots[0] !== undefined) expect(new Set(slots).size).toBe(1)
    } finally {
      await admin.close()
    }
  })

  it('history older than historyTtlMs is not replayed; a channel idle that long starts a new epoch', async () => {
    freshPrefix()
    const broker = node({ historyTtlMs: 300 })
    const first = await broker.publish('short', 'message', 1)
    await new Promise((resolve) => setTimeout(resolve, 600))
    const resumed = await broker.recover('short', { epoch: first.epoch, offset: 0 })
    expect(resumed.gap).toBe('epoch-changed')
    expect(resumed.messages).toEqual([])
  })

  it("uses the app's own client (from `redis`) and leaves it open on close", async () => {
    freshPrefix()
    const client = createClient({ url: redis.url })
    await client.connect()
    try {
      const broker = new RedisBroker({ client, keyPrefix, logger: silentLogger() })
      const received = collector()
      await broker.subscribe('own', received.listener)
      await broker.publish('own', 'message', 'x')
      await received.until(() => received.messages.length === 1)
      await broker.close()
      expect(client.isReady).toBe(true)
      await expect(broker.publish('own', 'message', 'y')).rejects.toMatchObject({ code: 'SERVER_SHUTDOWN' })
    } finally {
      await client.close()
    }
  })
  describe('presence', () => {
    it('one member held on two nodes joins once and leaves when the last node lets go; every node sees it', async () => {
      freshPrefix()
      const [a, b, c] = [node(), node(), node()]
      const heard: string[] = []
      const watch = await c.presence.watch('room', ({ action, member }) => heard.push(`${action} ${member.id}`))
      await a.presence.join('room', 'ann')
      await b.presence.join('room', 'ann')
      await b.presence.join('room', 'bob')
      await waitFor(() => heard.length === 2)
      expect(heard).toEqual(['join ann', 'join bob'])
      expect((await a.presence.members('room')).map((member) => member.id)).toEqual(['ann', 'bob'])
      expect(watch.members().map((member) => member.id)).toEqual(['ann', 'bob'])
      await a.presence.leave('room', 'ann')
      await b.presence.leave('room', 'bob')
      await waitFor(() => heard.length === 3)
      expect(heard.at(-1)).toBe('leave bob')
      // ann is still held by b.
      expect((await c.presence.members('room')).map((member) => member.id)).toEqual(['ann'])
      await b.presence.leave('room', 'ann')
      await waitFor(() => heard.length === 4)
      expect(heard.at(-1)).toBe('leave ann')
      expect(await c.presence.members('room')).toEqual([])
      watch.stop()
    })

    it('a node that stops renewing (closed without letting go, as if killed) loses its members within presenceTtlMs', async () => {
      freshPrefix()
      const ttl = 3000
      const [a, b] = [node({ presenceTtlMs: ttl }), node({ presenceTtlMs: ttl })]
      const heard: string[] = []
      await b.presence.watch('room', ({ action, member }) => heard.push(`${action} ${member.id}`))
      await b.presence.join('room', 'bob')
      await a.presence.join('room', 'ann')
      await waitFor(() => heard.length === 2)
      // Renewed: still there well past one hold's life.
      await new Promise((resolve) => setTimeout(resolve, ttl * 1.5))
      // (By joinedAt, then id: both may have joined in the same millisecond.)
      expect((await b.presence.members('room')).map((member) => member.id).sort()).toEqual(['ann', 'bob'])
      await a.close()
      await waitFor(() => heard.includes('leave ann'), ttl * 5)
      expect((await b.presence.members('room')).map((member) => member.id)).toEqual(['bob'])
      expect(heard).toEqual(['join bob', 'join ann', 'leave ann'])
    })
  })
})
