import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient, longPolling, shortPolling, type PushClientOptions, type PushError } from '../../src/index.js'
import type { TransportFactory } from '../../src/transports/transport.js'
import { fakeFetch, flush, hello, memoryStorage, ndjson, useFakeTimers, message } from './fakes.js'

const URL_BASE = 'http://push.test/push'

function setup(transport: TransportFactory = longPolling(), options: Partial<PushClientOptions> = {}) {
  const http = fakeFetch()
  const client = new PushClient({
    url: URL_BASE,
    transports: [transport],
    fetch: http.fetch,
    storage: memoryStorage(),
    random: () => 1,
    ...options,
  })
  const errors: PushError[] = []
  client.on('error', (error) => errors.push(error))
  /** The query of request `n` (default: the last one). */
  const query = (n = http.calls.length - 1) => new URL(http.calls[n]!.url).searchParams
  /** Answers the pending request, then lets the answer and the next poll through. */
  const answer = async (status: number, body?: string) => {
    http.last.respond(status, body)
    await flush()
    vi.advanceTimersByTime(0)
  }
  return { client, http, query, answer, codes: () => errors.map((error) => error.code) }
}

const offered = { transports: ['long-polling' as const, 'short-polling' as const], heartbeatMs: 20_000, pollHoldMs: 25_000 }

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('long-polling transport', () => {
  it('polls GET <base>/poll with the cursor; the first poll is the handshake, later ones carry the session', async () => {
    const { client, http, query, answer } = setup()
    const seen: number[] = []
    client.subscribe('orders', (msg) => seen.push(msg.offset))
    client.connect()
    expect(http.calls).toHaveLength(1)
    expect(http.last.url.startsWith('http://push.test/push/poll?')).toBe(true)
    expect(query().get('cursor')).toBe('orders')
    expect(query().has('session')).toBe(false)
    expect(client.state).toBe('connecting')

    await answer(200, ndjson(hello(offered), { type: 'subscribed', channel: 'orders', epoch: 'e', offset: 3 }))
    expect(client.state).toBe('open')
    expect(client.transport).toBe('long-polling')
    // At once, with the session, the position the answer left, and a hold no longer than the heartbeat.
    expect(http.calls).toHaveLength(2)
    expect(query().get('session')).toBe('session-1')
    expect(query().get('cursor')).toBe('orders=e-3')
    expect(query().get('hold')).toBe('20000')

    await answer(200, ndjson(message('orders', 'e', 4), message('orders', 'e', 5)))
    expect(seen).toEqual([4, 5])
    expect(query().get('cursor')).toBe('orders=e-5')
    // Nothing new: 204, and the next poll keeps the positions.
    await answer(204)
    expect(http.calls).toHaveLength(4)
    expect(query().get('cursor')).toBe('orders=e-5')
    expect(client.state).toBe('open')
  })

  it('asks for a lower hold when told, never above the server maximum', async () => {
    const { client, query, answer } = setup(longPolling({ holdMs: 5000 }))
    client.connect()
    expect(query().get('hold')).toBe('5000')
    await answer(200, ndjson(hello(offered)))
    expect(query().get('hold')).toBe('5000')

    const other = setup(longPolling({ holdMs: 60_000 }))
    other.client.connect()
    await other.answer(200, ndjson(hello(offered)))
    expect(other.query().get('hold')).toBe('25000')
  })

  it('sends the token as an Authorization header on every poll, never in the URL', async () => {
    const { client, http, answer } = setup(longPolling(), { token: 'secret' })
    client.connect()
    await answer(200, ndjson(hello(offered)))
    for (const call of http.calls) {
      expect(call.init.headers).toMatchObject({ Authorization: 'Bearer secret' })
      expect(call.url).not.toContain('secret')
    }
  })

  it('drops a poll not answered within its hold plus the grace period, aborting it', async () => {
    const { client, http, answer, codes } = setup(longPolling(), { heartbeatGraceMs: 2000 })
    client.connect()
    await answer(200, ndjson(hello(offered)))
    const held = http.last
    vi.advanceTimersByTime(21_999)
    expect(client.state).toBe('open')
    expect(held.aborted).toBe(false)
    vi.advanceTimersByTime(1)
    expect(codes()).toEqual(['HEARTBEAT_TIMEOUT'])
    expect(held.aborted).toBe(true)
    expect(client.state).toBe('reconnecting')
    // The retry is a new handshake.
    vi.advanceTimersByTime(500)
    expect(new URL(http.last.url).searchParams.has('session')).toBe(false)
  })

  it('keeps a link whose polls are answered in time, however long it lives', async () => {
    const { client, answer, codes } = setup(longPolling(), { heartbeatGraceMs: 2000 })
    client.connect()
    await answer(200, ndjson(hello(offered)))
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(20_000)
      await answer(204)
    }
    expect(codes()).toEqual([])
    expect(client.state).toBe('open')
  })

  it('aborts the held poll on close and leaves no timer', async () => {
    const { client, http, answer } = setup()
    client.connect()
    await answer(200, ndjson(hello(offered)))
    const held = http.last
    client.close()
    await flush()
    expect(held.aborted).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
    expect(http.calls).toHaveLength(2)
  })

  it('changes subscriptions with a new handshake poll, and stops the old loop once it said hello', async () => {
    const { client, http, query, answer } = setup()
    const seen: string[] = []
    client.subscribe('a', (msg) => seen.push(msg.id))
    client.connect()
    await answer(200, ndjson(hello(offered), { type: 'subscribed', channel: 'a', epoch: 'e', offset: 1 }))
    const held = http.last
    client.subscribe('b', (msg) => seen.push(msg.id))
    await Promise.resolve()
    expect(http.calls).toHaveLength(3)
    expect(query().get('cursor')).toBe('a=e-1,b')
    expect(query().has('session')).toBe(false)
    // Until the new loop says hello, the old poll stays.
    expect(held.aborted).toBe(false)
    http.last.respond(
      200,
      ndjson(
        hello(offered),
        { type: 'subscribed', channel: 'a', epoch: 'e', offset: 1 },
        { type: 'subscribed', channel: 'b', epoch: 'f', offset: 0 },
        message('b', 'f', 1),
      ),
    )
    await flush()
    expect(held.aborted).toBe(true)
    expect(seen).toEqual(['f-1'])
    expect(client.state).toBe('open')
  })

  it('fails on a refused poll with the code of its error frame', async () => {
    const { client, answer, codes } = setup()
    client.connect()
    await answer(401, JSON.stringify({ type: 'error', code: 'UNAUTHORIZED', message: 'no' }))
    expect(codes()).toEqual(['UNAUTHORIZED'])
    expect(client.state).toBe('reconnecting')
  })

  it('fails on a network error and a malformed answer', async () => {
    const { client, http, answer, codes } = setup()
    client.connect()
    http.last.reject(new TypeError('fetch failed'))
    await flush()
    expect(codes()).toEqual(['TRANSPORT_FAILED'])
    vi.advanceTimersByTime(500)
    await answer(200, '{"type":"hello"')
    expect(codes()).toEqual(['TRANSPORT_FAILED', 'PROTOCOL_ERROR'])
  })

  it('publishes with POST <base>/publish and an idempotency key', async () => {
    const { client, http, answer } = setup()
    client.connect()
    await answer(200, ndjson(hello(offered)))
    const result = client.publish('chat', 'hi')
    const post = http.calls.find((call) => call.init.method === 'POST')!
    expect(post.url).toBe('http://push.test/push/publish')
    expect(JSON.parse(post.init.body as string)).toMatchObject({ type: 'publish', channel: 'chat', data: 'hi', key: expect.any(String) })
    post.respond(200, { type: 'ack', rid: 'http', channel: 'chat', offset: 1, id: 'e-1' })
    await expect(result).resolves.toEqual({ channel: 'chat', offset: 1, id: 'e-1' })
  })
})

describe('short-polling transport', () => {
  const shortOffered = { transports: ['short-polling' as const], heartbeatMs: 20_000 }

  it('polls with hold=0 every intervalMs after each answer; a 204 is no news', async () => {
    const { client, http, query, answer } = setup(shortPolling({ intervalMs: 1000 }))
    const seen: number[] = []
    client.subscribe('badge', (msg) => seen.push(msg.offset))
    client.connect()
    expect(query().get('hold')).toBe('0')
    await answer(200, ndjson(hello(shortOffered), { type: 'subscribed', channel: 'badge', epoch: 'e', offset: 7 }))
    expect(client.transport).toBe('short-polling')
    expect(http.calls).toHaveLength(1)
    vi.advanceTimersByTime(999)
    expect(http.calls).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(http.calls).toHaveLength(2)
    expect(query().get('hold')).toBe('0')
    expect(query().get('session')).toBe('session-1')
    expect(query().get('cursor')).toBe('badge=e-7')

    await answer(204)
    expect(seen).toEqual([])
    expect(client.state).toBe('open')
    vi.advanceTimersByTime(1000)
    await answer(200, ndjson(message('badge', 'e', 8)))
    expect(seen).toEqual([8])
    vi.advanceTimersByTime(1000)
    expect(query().get('cursor')).toBe('badge=e-8')
  })

  it('defaults to a poll every 3 s', async () => {
    const { client, http, answer } = setup(shortPolling())
    client.connect()
    await answer(200, ndjson(hello(shortOffered)))
    vi.advanceTimersByTime(2999)
    expect(http.calls).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(http.calls).toHaveLength(2)
  })

  it('drops a poll not answered within the interval plus the grace period', async () => {
    const { client, http, answer, codes } = setup(shortPolling({ intervalMs: 1000 }), { heartbeatGraceMs: 500 })
    client.connect()
    await answer(200, ndjson(hello(shortOffered)))
    vi.advanceTimersByTime(1000)
    const pending = http.last
    vi.advanceTimersByTime(499)
    expect(client.state).toBe('open')
    vi.advanceTimersByTime(1)
    expect(codes()).toEqual(['HEARTBEAT_TIMEOUT'])
    expect(pending.aborted).toBe(true)
  })
})
