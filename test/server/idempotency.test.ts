import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryBroker } from '../../src/server/index.js'
import { AccessPolicy } from '../../src/server/policy/authorization.js'
import { Publisher } from '../../src/server/policy/publisher.js'
import type { PublisherOptions, PublishOrigin } from '../../src/server/policy/publisher.js'
import { cleanup, startPushFixture } from '../helpers/push-fixture.js'

// Idempotency keys (protocol.md 3.4, issue 11): remembered per client for a time window rather
// than a global count, matched with the publish they came with, never across clients.

const WINDOW_MS = 300_000

function makePublisher(options: Partial<PublisherOptions> = {}): { publisher: Publisher; broker: MemoryBroker } {
  const broker = new MemoryBroker({ historySize: 10 })
  const logger = { error: () => {} }
  const publisher = new Publisher(broker, undefined, new AccessPolicy({ authorize: undefined, userChannels: undefined, logger }), logger, {
    keyWindowMs: WINDOW_MS,
    maxKeysPerClient: 100_000,
    tokensVerified: true,
    ...options,
  })
  return { publisher, broker }
}

const origin = (client: string): PublishOrigin => ({ transport: 'websocket', session: 's', headers: {}, identity: undefined, client })

describe('idempotency keys', () => {
  afterEach(async () => {
    vi.useRealTimers()
    await cleanup()
  })

  it('deduplicates a retry after 100,000 other keyed publishes', async () => {
    const { publisher, broker } = makePublisher()
    const first = await publisher.publish({ rid: 'a', channel: 'orders', event: 'message', data: { n: 1 }, key: 'pay-1' }, origin('A'))
    expect(first).toMatchObject({ type: 'ack', offset: 1 })
    // 50,000 keyed publishes of other clients, 49,999 more of A's own.
    for (let i = 0; i < 50_000; i++) {
      await publisher.publish({ rid: 'x', channel: 'other', event: 'message', data: i, key: `k${i}` }, origin(`client-${i % 100}`))
    }
    for (let i = 0; i < 49_999; i++) {
      await publisher.publish({ rid: 'y', channel: 'mine', event: 'message', data: i, key: `m${i}` }, origin('A'))
    }
    const retry = await publisher.publish({ rid: 'again', channel: 'orders', event: 'message', data: { n: 1 }, key: 'pay-1' }, origin('A'))
    expect(retry).toEqual({ ...first, rid: 'again' })
    expect((await broker.recover('orders', undefined)).offset).toBe(1)
    publisher.close()
    await broker.close()
  }, 30_000)

  it("never answers client B's publish with client A's ack for the same key", async () => {
    const { publisher, broker } = makePublisher()
    const a = await publisher.publish({ rid: 'a', channel: 'c', event: 'message', data: 'from A', key: 'k' }, origin('A'))
    const b = await publisher.publish({ rid: 'b', channel: 'c', event: 'message', data: 'from B', key: 'k' }, origin('B'))
    expect(a).toMatchObject({ type: 'ack', offset: 1 })
    expect(b).toMatchObject({ type: 'ack', offset: 2 })
    // Even with identical data, another client's key is its own.
    const b2 = await publisher.publish({ rid: 'b2', channel: 'c', event: 'message', data: 'from A', key: 'k' }, origin('B'))
    expect(b2).toMatchObject({ type: 'ack', offset: 3 })
    const history = await broker.recover('c', { epoch: (await broker.recover('c', undefined)).epoch, offset: 0 })
    expect(history.messages.map((m) => m.data)).toEqual(['from A', 'from B', 'from A'])
    publisher.close()
    await broker.close()
  })

  it('stores a different publish under a key already used in the same scope (unverified clients share one)', async () => {
    const { publisher, broker } = makePublisher({ tokensVerified: false })
    expect(publisher.clientScope('token-a')).toBe(publisher.clientScope('token-b'))
    const a = await publisher.publish({ rid: 'a', channel: 'c', event: 'message', data: 'A', key: 'k' }, origin(''))
    const b = await publisher.publish({ rid: 'b', channel: 'c', event: 'message', data: 'B', key: 'k' }, origin(''))
    const aRetry = await publisher.publish({ rid: 'a2', channel: 'c', event: 'message', data: 'A', key: 'k' }, origin(''))
    expect([a, b, aRetry].map((frame) => (frame.type === 'ack' ? frame.offset : frame.code))).toEqual([1, 2, 1])
    publisher.close()
    await broker.close()
  })

  it('remembers a key for the window, then forgets it and everything kept for it', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const { publisher, broker } = makePublisher()
    const request = { rid: 'a', channel: 'c', event: 'message', data: 1, key: 'k' }
    await publisher.publish(request, origin('A'))
    vi.advanceTimersByTime(WINDOW_MS - 1000)
    expect(await publisher.publish(request, origin('A'))).toMatchObject({ offset: 1 })
    vi.advanceTimersByTime(WINDOW_MS)
    expect(publisher.rememberedKeys).toBe(0)
    expect(await publisher.publish(request, origin('A'))).toMatchObject({ offset: 2 })
    publisher.close()
    await broker.close()
  })

  it("bounds each client's keys: past the cap its own oldest go, never another client's", async () => {
    const { publisher, broker } = makePublisher({ maxKeysPerClient: 100 })
    await publisher.publish({ rid: 'b', channel: 'c', event: 'message', data: 'B', key: 'b-key' }, origin('B'))
    for (let i = 0; i < 300; i++) {
      await publisher.publish({ rid: 'a', channel: 'c', event: 'message', data: i, key: `a${i}` }, origin('A'))
    }
    expect(publisher.rememberedKeys).toBe(101)
    expect(await publisher.publish({ rid: 'b', channel: 'c', event: 'message', data: 'B', key: 'b-key' }, origin('B'))).toMatchObject({
      offset: 1,
    })
    publisher.close()
    await broker.close()
  })

  it('scopes keys by verified token over HTTP publish', async () => {
    const server = await startPushFixture({ authenticate: ({ token }) => token === 'alice' || token === 'bob' })
    const post = async (token: string, data: string) => {
      const res = await fetch(`${server.directUrl}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ channel: 'c', data, key: 'same-key' }),
      })
      return (await res.json()) as { offset: number }
    }
    expect((await post('alice', 'x')).offset).toBe(1)
    expect((await post('alice', 'x')).offset).toBe(1)
    expect((await post('bob', 'x')).offset).toBe(2)
  })
})
