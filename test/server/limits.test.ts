import { afterEach, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { ConnectionLimits, TokenBucket } from '../../src/server/policy/limits.js'
import { FrameClient, cleanup, connect, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

// Rate and connection limits (issue 11). Date is frozen where a test counts tokens, so that no
// refill happens while it runs: the counts are exact whatever the machine's speed.

afterEach(async () => {
  vi.useRealTimers()
  await cleanup()
})

const freezeDate = () => vi.useFakeTimers({ toFake: ['Date'] })

/** Opens a WebSocket and returns the first frame it gets and how it closes. */
async function openRaw(url: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, ['pushline.v1'], { headers })
  ws.on('error', () => {})
  const first = new Promise<ServerFrame>((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)) as ServerFrame)))
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  return { ws, first, closed }
}

async function sse(server: PushFixture, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const res = await fetch(`${server.directUrl}/sse?cursor=c`, { headers, signal: controller.signal })
  return { res, abort: () => controller.abort() }
}

describe('TokenBucket', () => {
  it('refills at its rate up to its burst, and spend goes into debt', () => {
    const bucket = new TokenBucket(10, 5, 0)
    for (let i = 0; i < 5; i++) expect(bucket.take(1, 0)).toBe(true)
    expect(bucket.take(1, 0)).toBe(false)
    expect(bucket.waitMs(1, 0)).toBe(100)
    expect(bucket.take(1, 100)).toBe(true)
    expect(bucket.take(1, 10_000)).toBe(true)
    expect(bucket.spend(24, 10_000)).toBe(2000) // 4 left, 24 taken: 20 in debt at 10/s
    expect(bucket.spend(1, 12_100)).toBe(0)
  })
})

describe('ConnectionLimits', () => {
  it('bounds total, per-address and new-per-second, freeing a place once released', () => {
    freezeDate()
    const limits = new ConnectionLimits({ maxConnections: 3, maxConnectionsPerIp: 2, maxConnectsPerSecond: 100 })
    const a1 = limits.admit('a')
    const a2 = limits.admit('a')
    expect([a1.ok, a2.ok]).toEqual([true, true])
    expect(limits.admit('a')).toMatchObject({ ok: false, message: 'too many connections from this address' })
    expect(limits.admit('b').ok).toBe(true)
    const full = limits.admit('c')
    expect(full).toMatchObject({ ok: false, message: 'too many connections' })
    if (!full.ok) expect(full.retryMs).toBeGreaterThanOrEqual(1000)
    if (a1.ok) a1.release()
    if (a1.ok) a1.release() // twice is once
    expect(limits.open).toBe(2)
    expect(limits.admit('c').ok).toBe(true)
    // An owner that keeps the address frees the place by it.
    limits.free('b')
    expect(limits.open).toBe(2)
    expect(limits.admit('a').ok).toBe(true)
    const rate = new ConnectionLimits({ maxConnections: 100, maxConnectionsPerIp: 100, maxConnectsPerSecond: 2 })
    expect([rate.admit('x').ok, rate.admit('y').ok]).toEqual([true, true])
    const third = rate.admit('z')
    expect(third).toMatchObject({ ok: false, message: 'too many new connections' })
    if (!third.ok) expect(third.retryMs).toBeGreaterThanOrEqual(500)
  })
})

describe('connection limits of the server', () => {
  it('refuses a WebSocket past maxConnections with a close frame RATE_LIMITED and retryMs, then 1013', async () => {
    const server = await startPushFixture({ maxConnections: 2 })
    const first = await connect(server)
    await connect(server)
    const refused = await openRaw(server.wsUrl)
    const frame = await refused.first
    expect(frame).toMatchObject({ type: 'close', code: 'RATE_LIMITED' })
    expect(frame.type === 'close' && frame.retryMs !== undefined && frame.retryMs >= 1000).toBe(true)
    expect(await refused.closed).toBe(1013)
    // SSE counts too, and is answered 503 with Retry-After.
    const stream = await sse(server)
    expect(stream.res.status).toBe(503)
    expect(Number(stream.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await stream.res.json()).toMatchObject({ type: 'error', code: 'RATE_LIMITED' })
    // A place frees when a connection closes.
    await first.close()
    await waitFor(async () => {
      const again = await openRaw(server.wsUrl)
      const ok = (await again.first).type === 'hello'
      if (ok) await waitFor(() => server.push.stats().connections === 2, 'the second connection')
      again.ws.terminate()
      return ok
    }, 'a place to free')
  })

  it('counts connections per client address as clientIp reads it', async () => {
    const server = await startPushFixture({
      maxConnectionsPerIp: 1,
      clientIp: (req) => String(req.headers['x-client'] ?? req.socket.remoteAddress),
    })
    const alice = await sse(server, { 'X-Client': 'alice' })
    expect(alice.res.status).toBe(200)
    const aliceAgain = await sse(server, { 'X-Client': 'alice' })
    expect(aliceAgain.res.status).toBe(503)
    const bob = await openRaw(server.wsUrl, { 'X-Client': 'bob' })
    expect((await bob.first).type).toBe('hello')
    const bobAgain = await openRaw(server.wsUrl, { 'X-Client': 'bob' })
    expect(await bobAgain.first).toMatchObject({ type: 'close', code: 'RATE_LIMITED' })
    bob.ws.terminate()
    alice.abort()
  })

  it('accepts at most maxConnectsPerSecond new connections a second', async () => {
    const server = await startPushFixture({ maxConnectsPerSecond: 3 })
    freezeDate()
    const opened = await Promise.all(Array.from({ length: 5 }, () => openRaw(server.wsUrl)))
    const firsts = await Promise.all(opened.map((o) => o.first))
    expect(firsts.filter((f) => f.type === 'hello')).toHaveLength(3)
    const refused = firsts.filter((f) => f.type === 'close')
    expect(refused).toHaveLength(2)
    for (const frame of refused) expect(frame).toMatchObject({ code: 'RATE_LIMITED', message: 'too many new connections' })
    for (const o of opened) o.ws.terminate()
  })
})

describe('rate limits of a WebSocket connection', () => {
  it('answers subscribes past the rate with RATE_LIMITED naming each', async () => {
    const server = await startPushFixture({ maxSubscribesPerSecond: 5, maxSubscriptions: 2 })
    const client = await connect(server)
    freezeDate()
    // Burst: twice the rate (10), as maxSubscriptions is lower.
    for (let i = 0; i < 14; i++) client.send({ type: 'subscribe', channel: 'c', rid: `s${i}` })
    const answers: ServerFrame[] = []
    for (let i = 0; i < 14; i++) answers.push(await client.next())
    const subscribed = answers.filter((f) => f.type === 'subscribed').map((f) => (f.type === 'subscribed' ? f.rid : ''))
    const limited = answers.filter((f) => f.type === 'error' && f.code === 'RATE_LIMITED')
    expect(subscribed).toHaveLength(10)
    expect(limited.map((f) => (f.type === 'error' ? f.rid : ''))).toEqual(['s10', 's11', 's12', 's13'])
  })

  it('answers publishes past the rate with RATE_LIMITED carrying their rid', async () => {
    const server = await startPushFixture({ maxPublishesPerSecond: 3 })
    const client = await connect(server)
    freezeDate()
    for (let i = 0; i < 8; i++) client.send({ type: 'publish', channel: 'c', rid: `p${i}`, data: i })
    const answers: ServerFrame[] = []
    for (let i = 0; i < 8; i++) answers.push(await client.next())
    const acked = answers.filter((f) => f.type === 'ack').map((f) => (f.type === 'ack' ? f.rid : ''))
    const limited = answers.filter((f) => f.type === 'error' && f.code === 'RATE_LIMITED')
    expect(acked.sort()).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5'])
    expect(limited.map((f) => (f.type === 'error' ? f.rid : '')).sort()).toEqual(['p6', 'p7'])
  })

  it('reads a client sending faster than maxReceiveBytesPerSecond more slowly, and drops nothing', async () => {
    const server = await startPushFixture({ maxReceiveBytesPerSecond: 20_000, maxFrameBytes: 2048 })
    const client = await FrameClient.open(server.wsUrl)
    const data = 'b'.repeat(1500)
    for (let i = 0; i < 30; i++) client.send({ type: 'publish', channel: 'c', rid: `p${i}`, data })
    await waitFor(() => client.frames.filter((f) => f.type === 'ack').length === 30, 'all 30 acks', 15_000)
    expect(client.frames.filter((f) => f.type === 'error')).toEqual([])
  })
})

