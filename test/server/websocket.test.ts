import { afterEach, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import type { Position } from '../../src/protocol/position.js'
import { MemoryBroker, PushError } from '../../src/server/index.js'
import type { Broker, Recovery, StoredMessage } from '../../src/server/index.js'
import { FrameClient, cleanup, connect, sleep, startPushFixture, waitFor } from '../helpers/push-fixture.js'

afterEach(cleanup)

/** A MemoryBroker behind artificial latency, like a remote (Redis) broker; counts live subscriptions. */
class SlowBroker implements Broker {
  readonly inner = new MemoryBroker()
  active = 0
  constructor(readonly latencyMs: number) {}
  publish(channel: string, event: string, data: unknown): Promise<StoredMessage> {
    return this.inner.publish(channel, event, data)
  }
  async subscribe(channel: string, listener: (m: StoredMessage) => void): Promise<() => void> {
    await sleep(this.latencyMs)
    const stop = await this.inner.subscribe(channel, listener)
    this.active++
    return () => {
      this.active--
      stop()
    }
  }
  async recover(channel: string, since: Position | undefined): Promise<Recovery> {
    await sleep(this.latencyMs)
    const recovery = await this.inner.recover(channel, since)
    await sleep(this.latencyMs) // messages published now are not in this recovery
    return recovery
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

describe('WebSocket transport', () => {
  it('sends hello first, with the selected subprotocol', async () => {
    const server = await startPushFixture({ heartbeatMs: 5000, maxFrameBytes: 4096 })
    const client = await FrameClient.open(server.wsUrl, ['pushline.v1', 'pushline.auth.eA'])
    expect(client.ws.protocol).toBe('pushline.v1')
    const hello = await client.next()
    expect(hello).toEqual({
      type: 'hello',
      v: 1,
      session: expect.stringMatching(/^[\w-]{8,}$/),
      heartbeatMs: 5000,
      maxFrameBytes: 4096,
      transports: ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'],
      pollHoldMs: 25_000,
    })
  })

  it('replays from since, then delivers live, in order', async () => {
    const server = await startPushFixture()
    const first = await server.push.publish('orders', { n: 1 })
    await server.push.publish('orders', { n: 2 }, { event: 'order-update' })
    await server.push.publish('orders', { n: 3 })
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'orders', rid: 's1', since: `${first.epoch}-1` })
    expect(await client.next()).toEqual({ type: 'subscribed', channel: 'orders', rid: 's1', epoch: first.epoch, offset: 1 })
    expect(await client.next()).toEqual({
      type: 'message',
      channel: 'orders',
      event: 'order-update',
      data: { n: 2 },
      offset: 2,
      id: `${first.epoch}-2`,
    })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 3, event: 'message' })
    const live = await server.push.publish('orders', { n: 4 })
    expect(live).toEqual({ epoch: first.epoch, offset: 4, id: `${first.epoch}-4` })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 4, data: { n: 4 } })
  })

  it('subscribes live from now without since, and reports gaps on resume', async () => {
    const server = await startPushFixture({ historySize: 2 })
    const first = await server.push.publish('c', 1)
    for (let i = 2; i <= 5; i++) await server.push.publish('c', i)
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'c' })
    expect(await client.next()).toEqual({ type: 'subscribed', channel: 'c', epoch: first.epoch, offset: 5 })
    client.send({ type: 'subscribe', channel: 'd', since: `${first.epoch}-0` })
    expect(await client.next()).toMatchObject({ type: 'subscribed', channel: 'd', offset: 0, gap: 'epoch-changed' })
    client.send({ type: 'subscribe', channel: 'c', since: `${first.epoch}-1` })
    expect(await client.next()).toMatchObject({ type: 'subscribed', channel: 'c', offset: 3, gap: 'history-exhausted' })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 4 })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 5 })
    client.send({ type: 'subscribe', channel: 'c', since: `${first.epoch}-99` })
    expect(await client.next()).toMatchObject({ type: 'subscribed', offset: 5, gap: 'position-in-future' })
  })

  it('resumes race-free with an async broker: no loss, no duplicate, strict order', async () => {
    const broker = new SlowBroker(50)
    const server = await startPushFixture({ broker })
    const first = await server.push.publish('c', 1)
    await server.push.publish('c', 2)
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'c', since: `${first.epoch}-1` })
    // The broker listens from t=50 and snapshots history at t=100, answering at t=150.
    await sleep(20)
    await server.push.publish('c', 3) // before the listener: only in the recovery
    await sleep(55)
    await server.push.publish('c', 4) // in the backlog and in the recovery: sent once
    await sleep(50)
    await server.push.publish('c', 5) // after the snapshot: only in the backlog
    await sleep(50)
    await server.push.publish('c', 6) // live
    expect(await client.next()).toMatchObject({ type: 'subscribed', offset: 1 })
    const offsets: number[] = []
    for (let i = 0; i < 5; i++) {
      const frame = await client.next()
      if (frame.type === 'message') offsets.push(frame.offset)
    }
    expect(offsets).toEqual([2, 3, 4, 5, 6])
    expect(await client.idle(100)).toEqual([])
  })

  it('batches the frames of one turn into one message, split by LF', async () => {
    const server = await startPushFixture()
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'c' })
    await client.nextOf('subscribed')
    const before = client.messages.length
    const tricky = { text: 'line\nbreak \u2028 "quoted" \\ done', emoji: '🚀' }
    await Promise.all([1, 2, 3, 4, 5].map((i) => server.push.publish('c', { ...tricky, i })))
    const frames = [await client.next(), await client.next(), await client.next(), await client.next(), await client.next()]
    expect(frames.map((f) => (f.type === 'message' ? f.offset : -1))).toEqual([1, 2, 3, 4, 5])
    expect(frames[0]).toMatchObject({ data: { ...tricky, i: 1 } })
    expect(client.messages.length - before).toBe(1)
    expect(client.messages.at(-1)?.split('\n')).toHaveLength(5)
  })

  it('answers bad frames with typed errors and keeps the connection working', async () => {
    const server = await startPushFixture({ maxFrameBytes: 1024 })
    const client = await connect(server)
    const bystander = await connect(server)
    bystander.send({ type: 'subscribe', channel: 'c' })
    await bystander.nextOf('subscribed')

    client.send('{"type": "subscribe", ')
    expect(await client.next()).toMatchObject({ type: 'error', code: 'BAD_FRAME' })
    client.send({ type: 'subscribe', channel: 'x'.repeat(2000) })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'FRAME_TOO_LARGE' })
    client.send({ type: 'subscribe', channel: 'bad channel!', rid: 'r1' })
    expect(await client.next()).toEqual({
      type: 'error',
      code: 'INVALID_CHANNEL',
      message: expect.any(String),
      rid: 'r1',
      channel: 'bad channel!',
    })
    client.send({ type: 'teleport' })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'BAD_FRAME' })
    client.ws.send(Buffer.from('{"type":"pong"}'), { binary: true })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'BAD_FRAME' })

    client.send({ type: 'subscribe', channel: 'c', rid: 'r2' })
    expect(await client.next()).toMatchObject({ type: 'subscribed', channel: 'c', rid: 'r2' })
    await server.push.publish('c', 'still here')
    expect(await client.next()).toMatchObject({ type: 'message', data: 'still here' })
    expect(await bystander.next()).toMatchObject({ type: 'message', data: 'still here' })
    expect(await bystander.idle(50)).toEqual([])
  })

  it('closes with 1009 above the hard limit and keeps serving others', async () => {
    const server = await startPushFixture({ maxFrameBytes: 1024 })
    const bystander = await connect(server)
    const client = await connect(server)
    client.send('x'.repeat(16 * 1024 + 1))
    expect((await client.closed).code).toBe(1009)
    bystander.send({ type: 'subscribe', channel: 'c' })
    expect(await bystander.next()).toMatchObject({ type: 'subscribed' })
    const fresh = await connect(server)
    fresh.send({ type: 'subscribe', channel: 'c' })
    expect(await fresh.next()).toMatchObject({ type: 'subscribed' })
    await waitFor(() => server.push.stats().connections === 2, 'the server to drop the oversized client')
  })

  it('stops delivery on unsubscribe and replaces a subscription on re-subscribe', async () => {
    const server = await startPushFixture()
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'c' })
    const subscribed = await client.nextOf('subscribed')
    client.send({ type: 'subscribe', channel: 'c', rid: 'again', since: `${subscribed.epoch}-0` })
    expect(await client.next()).toMatchObject({ type: 'subscribed', rid: 'again', offset: 0 })
    expect(server.push.stats()).toEqual({ connections: 1, channels: 1, subscriptions: 1 })
    client.send({ type: 'unsubscribe', channel: 'c' })
    client.send({ type: 'unsubscribe', channel: 'never-subscribed' })
    await waitFor(() => server.push.stats().subscriptions === 0, 'the unsubscribe to take effect')
    await server.push.publish('c', 1)
    expect(await client.idle(50)).toEqual([])
  })

  it('limits subscriptions per connection', async () => {
    const server = await startPushFixture({ maxSubscriptions: 2 })
    const client = await connect(server)
    for (const channel of ['a', 'b', 'c']) client.send({ type: 'subscribe', channel, rid: channel })
    const frames = [await client.next(), await client.next(), await client.next()]
    expect(frames).toContainEqual(expect.objectContaining({ type: 'subscribed', channel: 'a' }))
    expect(frames).toContainEqual(expect.objectContaining({ type: 'subscribed', channel: 'b' }))
    expect(frames).toContainEqual(expect.objectContaining({ type: 'error', code: 'TOO_MANY_SUBSCRIPTIONS', rid: 'c' }))
    // Re-subscribing an existing channel is a replacement, not one more.
    client.send({ type: 'subscribe', channel: 'a', rid: 'a2' })
    expect(await client.next()).toMatchObject({ type: 'subscribed', rid: 'a2' })
  })

  it('publishes with ack, applies keys once, and runs the publish policy', async () => {
    const logger = { error: vi.fn() }
    const server = await startPushFixture({
      logger,
      onPublish: ({ channel, data, transport, session, headers }) => {
        expect(transport).toBe('websocket')
        expect(session).toEqual(expect.any(String))
        expect(headers.host).toBeDefined()
        if (channel === 'locked') throw new PushError('PUBLISH_REJECTED', 'locked channel')
        if (channel === 'closed') return false
        if (channel === 'broken') throw new Error('bug')
        if (channel === 'shout') return { data: String(data).toUpperCase(), event: 'shouted' }
        return undefined
      },
    })
    const watcher = await connect(server)
    watcher.send({ type: 'subscribe', channel: 'shout' })
    await watcher.nextOf('subscribed')
    const client = await connect(server)

    client.send({ type: 'publish', rid: 'p1', channel: 'chat', data: 'hi' })
    const ack = await client.next()
    expect(ack).toEqual({ type: 'ack', rid: 'p1', channel: 'chat', offset: 1, id: expect.stringMatching(/-1$/) })

    client.send({ type: 'publish', rid: 'k1', channel: 'chat', data: 'once', key: 'key-1' })
    client.send({ type: 'publish', rid: 'k2', channel: 'chat', data: 'once', key: 'key-1' })
    const [first, repeat] = [await client.next(), await client.next()]
    expect(first).toMatchObject({ type: 'ack', rid: 'k1', offset: 2 })
    expect(repeat).toMatchObject({ type: 'ack', rid: 'k2', offset: 2 })

    client.send({ type: 'publish', rid: 'p2', channel: 'locked', data: 1 })
    expect(await client.next()).toEqual({
      type: 'error',
      code: 'PUBLISH_REJECTED',
      message: 'locked channel',
      rid: 'p2',
      channel: 'locked',
    })
    client.send({ type: 'publish', rid: 'p3', channel: 'closed', data: 1 })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'PUBLISH_REJECTED', rid: 'p3' })
    client.send({ type: 'publish', rid: 'p4', channel: 'broken', data: 1 })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'INTERNAL', rid: 'p4' })
    expect(logger.error).toHaveBeenCalledOnce()

    client.send({ type: 'publish', rid: 'p5', channel: 'shout', data: 'hey' })
    expect(await client.next()).toMatchObject({ type: 'ack', rid: 'p5' })
    expect(await watcher.next()).toMatchObject({ type: 'message', event: 'shouted', data: 'HEY' })
  })

  it('authenticates with the subprotocol token and closes unauthorized clients with 4401', async () => {
    const tokens: (string | undefined)[] = []
    const server = await startPushFixture({
      authenticate: async ({ token, transport }) => {
        tokens.push(token)
        expect(transport).toBe('websocket')
        await sleep(5)
        return token === 'sésame'
      },
    })
    const token = Buffer.from('sésame').toString('base64url')
    const ok = await FrameClient.open(server.wsUrl, ['pushline.v1', `pushline.auth.${token}`])
    expect(await ok.next()).toMatchObject({ type: 'hello' })

    const denied = await FrameClient.open(server.wsUrl, ['pushline.v1', 'pushline.auth.bm9wZQ'])
    expect(await denied.next()).toEqual({ type: 'close', code: 'UNAUTHORIZED', message: expect.any(String) })
    expect((await denied.closed).code).toBe(4401)
    const anonymous = await FrameClient.open(server.wsUrl)
    expect((await anonymous.closed).code).toBe(4401)
    expect(tokens).toEqual(['sésame', 'nope', undefined])
    expect(server.push.stats().connections).toBe(1)
  })

  it('drops a client that stops answering pings, keeps one that answers', async () => {
    const server = await startPushFixture({ heartbeatMs: 100, heartbeatGraceMs: 100 })
    const alive = await connect(server)
    const dead = await connect(server)
    dead.autoPong = false
    expect(await dead.nextOf('ping', 500)).toEqual({ type: 'ping' })
    const closed = await dead.closed
    expect(closed.code).toBe(1006) // terminated: no close handshake on a dead link
    expect(alive.ws.readyState).toBe(WebSocket.OPEN)
    await sleep(300)
    expect(alive.ws.readyState).toBe(WebSocket.OPEN)
    expect(server.push.stats().connections).toBe(1)
  })

  it('keeps no state for clients that have gone', async () => {
    const broker = new SlowBroker(5)
    // A short linger: the broker subscriptions must end once it has passed.
    const server = await startPushFixture({ broker, brokerLingerMs: 50 })
    const clients = await Promise.all([connect(server), connect(server), connect(server)])
    for (const [i, client] of clients.entries()) {
      client.send({ type: 'subscribe', channel: 'shared' })
      client.send({ type: 'subscribe', channel: `own-${i}` })
    }
    for (const client of clients) {
      await client.nextOf('subscribed')
      await client.nextOf('subscribed')
    }
    expect(server.push.stats()).toEqual({ connections: 3, channels: 4, subscriptions: 6 })
    expect(broker.active).toBe(4) // one broker subscription per channel, not per client
    // One leaves politely, one vanishes, one is mid-subscribe.
    clients[2]?.send({ type: 'subscribe', channel: 'late' })
    await clients[0]?.close()
    clients[1]?.ws.terminate()
    clients[2]?.ws.terminate()
    await waitFor(() => server.push.stats().connections === 0, 'the server to forget every connection')
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
    await waitFor(() => broker.active === 0, 'the broker subscriptions to end')
  })

  it('sends a close frame with a spread retryMs on shutdown; close is idempotent', async () => {
    const server = await startPushFixture()
    const clients = await Promise.all([connect(server), connect(server)])
    const closing = Promise.all([server.push.close(), server.push.close()])
    for (const client of clients) {
      const frame = await client.next()
      expect(frame).toMatchObject({ type: 'close', code: 'SERVER_SHUTDOWN', retryMs: expect.any(Number) })
      if (frame.type === 'close') expect(frame.retryMs).toBeGreaterThanOrEqual(0)
      if (frame.type === 'close') expect(frame.retryMs).toBeLessThan(2000)
      expect((await client.closed).code).toBe(1001)
    }
    await closing
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
    // Detached: the http server is as it was before attach.
    expect(server.http.listenerCount('upgrade')).toBe(0)
    expect(server.http.listenerCount('request')).toBe(0)
  })
})
