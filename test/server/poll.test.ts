import { afterEach, describe, expect, it } from 'vitest'
import type { HelloFrame, ServerFrame } from '../../src/protocol/frames.js'
import { MemoryBroker } from '../../src/server/index.js'
import { CountingBroker } from '../brokers/counting-broker.js'
import { cleanup, sleep, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

afterEach(cleanup)

interface PollAnswer {
  status: number
  headers: Headers
  body: string
  frames: ServerFrame[]
  /** How long the request took (ms). */
  ms: number
}

/** `GET <base>/poll?<query>`, its NDJSON body split into frames. */
async function poll(base: string, query: string, init: RequestInit = {}): Promise<PollAnswer> {
  const started = performance.now()
  const res = await fetch(`${base}/poll?${query}`, init)
  const body = await res.text()
  const ms = performance.now() - started
  const frames =
    res.status === 200 && res.headers.get('content-type')?.startsWith('application/x-ndjson')
      ? body
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as ServerFrame)
      : []
  return { status: res.status, headers: res.headers, body, frames, ms }
}

/** A first poll (the handshake): returns the session from its hello and the frames after it. */
async function handshake(server: PushFixture, cursor: string): Promise<{ session: string; frames: ServerFrame[] }> {
  const answer = await poll(server.directUrl, `cursor=${cursor}`)
  const [hello, ...frames] = answer.frames
  if (hello?.type !== 'hello') throw new Error(`expected hello first, got ${answer.body}`)
  return { session: hello.session, frames }
}

const types = (frames: ServerFrame[]) => frames.map((f) => f.type)

describe('long-polling', () => {
  it('answers the first poll at once: hello, then subscribed and replay per entry', async () => {
    const server = await startPushFixture({ longPollHoldMs: 5000 })
    const a = await server.push.publish('a', 1)
    await server.push.publish('a', 2)
    const b = await server.push.publish('b', 1)
    const answer = await poll(server.directUrl, `cursor=a=${a.epoch}-1,b`)
    expect(answer.status).toBe(200)
    expect(answer.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8')
    expect(answer.headers.get('cache-control')).toBe('no-store')
    expect(answer.ms).toBeLessThan(1000)
    expect(answer.body.endsWith('}\n')).toBe(true)
    const [hello, ...rest] = answer.frames
    expect(hello).toEqual({
      type: 'hello',
      v: 1,
      session: expect.stringMatching(/^[\w-]{8,}$/),
      heartbeatMs: 25_000,
      maxFrameBytes: 65_536,
      transports: ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'],
      pollHoldMs: 5000,
    })
    expect(rest).toEqual([
      { type: 'subscribed', channel: 'a', epoch: a.epoch, offset: 1 },
      { type: 'message', channel: 'a', event: 'message', data: 2, offset: 2, id: `${a.epoch}-2` },
      { type: 'subscribed', channel: 'b', epoch: b.epoch, offset: 1 },
    ])
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
  })

  it('answers a later poll at once with the replay, without subscribed for positions it continues', async () => {
    const server = await startPushFixture()
    const a = await server.push.publish('a', 1)
    const { session } = await handshake(server, `a=${a.epoch}-1`)
    await server.push.publish('a', 2)
    await server.push.publish('a', 3)
    const answer = await poll(server.directUrl, `cursor=a=${a.epoch}-1,fresh&session=${session}`)
    expect(answer.ms).toBeLessThan(1000)
    expect(answer.frames).toEqual([
      expect.objectContaining({ type: 'message', channel: 'a', offset: 2 }),
      expect.objectContaining({ type: 'message', channel: 'a', offset: 3 }),
      // A new entry (no position) is subscribed at once.
      expect.objectContaining({ type: 'subscribed', channel: 'fresh', offset: 0 }),
    ])
  })

  it('holds a poll with nothing new until a message arrives, and answers promptly', async () => {
    const server = await startPushFixture()
    const a = await server.push.publish('a', 1)
    const b = await server.push.publish('b', 1)
    const { session } = await handshake(server, `a=${a.epoch}-1,b=${b.epoch}-1`)
    const pending = poll(server.directUrl, `cursor=a=${a.epoch}-1,b=${b.epoch}-1&session=${session}`)
    await waitFor(() => server.push.stats().connections === 1, 'the poll to be held')
    await sleep(150)
    const publishedAt = performance.now()
    await server.push.publish('b', { n: 2 })
    const answer = await pending
    const after = performance.now() - publishedAt
    expect(after).toBeLessThan(150)
    expect(answer.ms).toBeGreaterThanOrEqual(150)
    expect(answer.status).toBe(200)
    expect(answer.frames).toEqual([
      { type: 'message', channel: 'b', event: 'message', data: { n: 2 }, offset: 2, id: `${b.epoch}-2` },
    ])
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
  })

  it('answers 204 when the hold passes with nothing to send, and the client may lower the hold', async () => {
    const server = await startPushFixture({ longPollHoldMs: 300 })
    const a = await server.push.publish('a', 1)
    const { session } = await handshake(server, `a=${a.epoch}-1`)
    const held = await poll(server.directUrl, `cursor=a=${a.epoch}-1&session=${session}`)
    expect(held.status).toBe(204)
    expect(held.body).toBe('')
    expect(held.headers.get('cache-control')).toBe('no-store')
    expect(held.ms).toBeGreaterThanOrEqual(290)
    expect(held.ms).toBeLessThan(1000)
    const lowered = await poll(server.directUrl, `cursor=a=${a.epoch}-1&session=${session}&hold=50`)
    expect(lowered.status).toBe(204)
    expect(lowered.ms).toBeLessThan(250)
    // Never raised: a hold above the server's is cut to it.
    const raised = await poll(server.directUrl, `cursor=a=${a.epoch}-1&session=${session}&hold=60000`)
    expect(raised.status).toBe(204)
    expect(raised.ms).toBeLessThan(1000)
    // No cursor at all: nothing to wait for, the hold passes just the same.
    expect((await poll(server.directUrl, `session=${session}&hold=20`)).status).toBe(204)
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
  })

  it('leaves nothing behind when the client aborts mid-hold', async () => {
    const server = await startPushFixture()
    const a = await server.push.publish('a', 1)
    const { session } = await handshake(server, `a=${a.epoch}-1`)
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const before = timers()
    const abort = new AbortController()
    const held = poll(server.directUrl, `cursor=a=${a.epoch}-1&session=${session}`, { signal: abort.signal })
    await waitFor(() => server.push.stats().connections === 1, 'the poll to be held')
    expect(timers()).toBeGreaterThan(before)
    abort.abort()
    await expect(held).rejects.toThrow()
    await waitFor(() => server.push.stats().connections === 0, 'the server to forget every connection')
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
    await waitFor(() => timers() <= before, 'the hold timer to be cleared')
  })

  it('reports gaps: history exhausted, epoch changed, position in the future', async () => {
    const server = await startPushFixture({ historySize: 2 })
    let last = await server.push.publish('h', 1)
    for (let i = 2; i <= 5; i++) last = await server.push.publish('h', i)
    const { epoch } = last
    const { session } = await handshake(server, 'x')
    const exhausted = await poll(server.directUrl, `cursor=h=${epoch}-1&session=${session}`)
    expect(exhausted.frames).toEqual([
      { type: 'subscribed', channel: 'h', epoch, offset: 3, gap: 'history-exhausted' },
      expect.objectContaining({ type: 'message', offset: 4 }),
      expect.objectContaining({ type: 'message', offset: 5 }),
    ])
    const changed = await poll(server.directUrl, `cursor=h=old-9&session=${session}`)
    expect(changed.frames).toEqual([
      { type: 'subscribed', channel: 'h', epoch, offset: 3, gap: 'epoch-changed' },
      expect.objectContaining({ type: 'message', offset: 4 }),
      expect.objectContaining({ type: 'message', offset: 5 }),
    ])
    const future = await poll(server.directUrl, `cursor=h=${epoch}-9&session=${session}`)
    expect(future.frames).toEqual([{ type: 'subscribed', channel: 'h', epoch, offset: 5, gap: 'position-in-future' }])
  })

  it('coalesces a burst published over several event-loop turns into one answer', async () => {
    const server = await startPushFixture()
    const a = await server.push.publish('a', 0)
    const { session } = await handshake(server, `a=${a.epoch}-1`)
    const pending = poll(server.directUrl, `cursor=a=${a.epoch}-1&session=${session}`)
    await waitFor(() => server.push.stats().connections === 1, 'the poll to be held')
    for (let i = 2; i <= 6; i++) {
      await server.push.publish('a', i)
      await new Promise((resolve) => setImmediate(resolve))
    }
    const answer = await pending
    expect(answer.frames.map((f) => (f.type === 'message' ? f.offset : f.type))).toEqual([2, 3, 4, 5, 6])
  })

  it('stops an answer at a frame boundary past 1 MiB; the next poll continues from there', async () => {
    const server = await startPushFixture()
    const blob = 'x'.repeat(600_000)
    const first = await server.push.publish('big', 0)
    for (let i = 0; i < 3; i++) await server.push.publish('big', blob)
    const { session } = await handshake(server, 'x')
    const one = await poll(server.directUrl, `cursor=big=${first.epoch}-1&session=${session}`)
    expect(one.frames.map((f) => (f.type === 'message' ? f.offset : f.type))).toEqual([2, 3])
    const two = await poll(server.directUrl, `cursor=big=${first.epoch}-3&session=${session}`)
    expect(two.frames.map((f) => (f.type === 'message' ? f.offset : f.type))).toEqual([4])
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
  })

  it('wakes a held poll on a message published over HTTP', async () => {
    const server = await startPushFixture()
    const { session, frames } = await handshake(server, 'c')
    const subscribed = frames[0]
    if (subscribed?.type !== 'subscribed') throw new Error('expected subscribed')
    const pending = poll(server.directUrl, `cursor=c=${subscribed.epoch}-0&session=${session}`)
    await waitFor(() => server.push.stats().connections === 1, 'the poll to be held')
    const ack = await fetch(`${server.directUrl}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ rid: 'r1', channel: 'c', data: 'hi', key: 'k1' }),
    })
    expect(await ack.json()).toMatchObject({ type: 'ack', rid: 'r1', offset: 1 })
    expect((await pending).frames).toEqual([expect.objectContaining({ type: 'message', data: 'hi', offset: 1 })])
  })

  it('keeps one broker subscription for a client that polls again and again', async () => {
    const broker = new CountingBroker()
    const server = await startPushFixture({ broker })
    const { session, frames } = await handshake(server, 'c')
    const subscribed = frames[0]
    if (subscribed?.type !== 'subscribed') throw new Error('expected subscribed')
    for (let offset = 1; offset <= 5; offset++) {
      await server.push.publish('c', offset)
      // Published while no poll was open: the next poll recovers it.
      const answer = await poll(server.directUrl, `cursor=c=${subscribed.epoch}-${offset - 1}&session=${session}`)
      expect(answer.frames).toEqual([expect.objectContaining({ type: 'message', data: offset, offset })])
    }
    expect(broker.subscribes).toBe(1)
    await server.push.close()
    expect(broker.active).toBe(0)
  })

  it('needs no sticky sessions: consecutive polls on two servers sharing a broker', async () => {
    // Two processes' worth of server, each on its own port; each closes the broker (MemoryBroker.close is idempotent).
    const broker = new MemoryBroker()
    const servers = await Promise.all([0, 1].map(() => startPushFixture({ broker })))
    try {
      const [one, two] = servers
      if (!one || !two) throw new Error('servers')
      const { frames } = await poll(one.directUrl, 'cursor=c')
      const hello = frames[0] as HelloFrame
      const subscribed = frames[1]
      if (subscribed?.type !== 'subscribed') throw new Error('expected subscribed')
      const pending = poll(two.directUrl, `cursor=c=${subscribed.epoch}-0&session=${hello.session}`)
      await waitFor(() => two.push.stats().connections === 1, 'the poll on the second server to be held')
      await one.push.publish('c', 'via one')
      expect((await pending).frames).toEqual([expect.objectContaining({ type: 'message', data: 'via one', offset: 1 })])
    } finally {
      for (const server of servers) await server.close()
    }
  })

  it('answers a held poll with the close frame when the server shuts down', async () => {
    const server = await startPushFixture()
    const { session, frames } = await handshake(server, 'c')
    const subscribed = frames[0]
    if (subscribed?.type !== 'subscribed') throw new Error('expected subscribed')
    const pending = poll(server.directUrl, `cursor=c=${subscribed.epoch}-0&session=${session}`)
    await waitFor(() => server.push.stats().connections === 1, 'the poll to be held')
    const closing = server.push.close()
    expect((await pending).frames).toEqual([
      { type: 'close', code: 'SERVER_SHUTDOWN', message: expect.any(String), retryMs: expect.any(Number) },
    ])
    await closing
  })

  it('rejects malformed requests', async () => {
    const server = await startPushFixture({ maxSubscriptions: 2 })
    const bad = async (query: string) => {
      const res = await fetch(`${server.directUrl}/poll?${query}`)
      return { status: res.status, body: (await res.json()) as unknown }
    }
    expect(await bad('cursor=a,a')).toMatchObject({ status: 400, body: { type: 'error', code: 'BAD_FRAME' } })
    expect(await bad('cursor=a,b,c')).toMatchObject({ status: 400, body: { code: 'TOO_MANY_SUBSCRIPTIONS' } })
    expect(await bad('cursor=a%20b')).toMatchObject({ status: 400, body: { code: 'INVALID_CHANNEL' } })
    expect(await bad('cursor=a&hold=-1')).toMatchObject({ status: 400, body: { code: 'BAD_FRAME' } })
    expect(await bad('cursor=a&hold=1.5')).toMatchObject({ status: 400, body: { code: 'BAD_FRAME' } })
    expect(await bad('cursor=a&session=')).toMatchObject({ status: 400, body: { code: 'BAD_FRAME' } })
    expect(await bad('cursor=a&session=no%20spaces')).toMatchObject({ status: 400, body: { code: 'BAD_FRAME' } })
    const post = await fetch(`${server.directUrl}/poll?cursor=a`, { method: 'POST' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET')
  })

  it('takes the token from the Authorization header, and names the transport by its hold', async () => {
    const seen: string[] = []
    const server = await startPushFixture({
      authenticate: ({ token, transport }) => {
        seen.push(transport)
        return token === 't0k'
      },
    })
    expect(await poll(server.directUrl, 'cursor=a')).toMatchObject({ status: 401, body: expect.stringContaining('UNAUTHORIZED') })
    const auth = { headers: { Authorization: 'Bearer t0k' } }
    expect((await poll(server.directUrl, 'cursor=a', auth)).status).toBe(200)
    expect((await poll(server.directUrl, 'cursor=a&hold=0', auth)).status).toBe(200)
    expect(seen).toEqual(['long-polling', 'long-polling', 'short-polling'])
  })
})

describe('short-polling', () => {
  it('answers 204 at once when nothing changed, and the frames when something did', async () => {
    const server = await startPushFixture()
    const badge = await server.push.publish('badge', { unread: 1 })
    const first = await poll(server.directUrl, `cursor=badge=${badge.epoch}-1&hold=0`)
    expect(types(first.frames)).toEqual(['hello', 'subscribed'])
    const session = (first.frames[0] as HelloFrame).session
    const query = `cursor=badge=${badge.epoch}-1&hold=0&session=${session}`

    const unchanged = await poll(server.directUrl, query)
    expect(unchanged.status).toBe(204)
    expect(unchanged.ms).toBeLessThan(200)
    await server.push.publish('badge', { unread: 2 })
    const changed = await poll(server.directUrl, query)
    expect(changed.status).toBe(200)
    expect(changed.frames).toEqual([expect.objectContaining({ type: 'message', data: { unread: 2 }, offset: 2 })])
    // A new entry needs its subscribed: that is a change too.
    const added = await poll(server.directUrl, `cursor=badge=${badge.epoch}-2,other&hold=0&session=${session}`)
    expect(added.frames).toEqual([expect.objectContaining({ type: 'subscribed', channel: 'other' })])
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
  })

  it('answers every poll at once when long-polling is not offered', async () => {
    const server = await startPushFixture({ transports: ['short-polling'], longPollHoldMs: 5000 })
    const c = await server.push.publish('c', 1)
    const first = await poll(server.directUrl, `cursor=c=${c.epoch}-1`)
    const hello = first.frames[0] as HelloFrame
    expect(hello).toMatchObject({ type: 'hello', transports: ['short-polling'] })
    expect(hello).not.toHaveProperty('pollHoldMs')
    const next = await poll(server.directUrl, `cursor=c=${c.epoch}-1&session=${hello.session}`)
    expect(next.status).toBe(204)
    expect(next.ms).toBeLessThan(1000)
  })
})

describe('transports option', () => {
  it('answers 404 on the endpoints of transports turned off, and lists the rest in hello', async () => {
    const server = await startPushFixture({ transports: ['sse', 'websocket'] })
    expect((await fetch(`${server.directUrl}/poll?cursor=a`)).status).toBe(404)
    expect((await fetch(`${server.directUrl}/iframe?cursor=a&origin=${server.origin}`)).status).toBe(404)
    const sse = await fetch(`${server.directUrl}/sse`)
    expect(sse.status).toBe(200)
    await sse.body?.cancel()

    const polls = await startPushFixture({ transports: ['long-polling', 'iframe'] })
    const answer = await poll(polls.directUrl, 'cursor=a')
    expect(answer.frames[0]).toMatchObject({ type: 'hello', transports: ['long-polling', 'iframe'], pollHoldMs: 25_000 })
    expect((await fetch(`${polls.directUrl}/sse`)).status).toBe(404)
    expect((await fetch(`${polls.directUrl}/ws`)).status).toBe(404)
  })
})
