import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient, longPolling, sse, websocket, type PushClientOptions, type PushError } from '../../src/index.js'
import type { TransportFactory } from '../../src/transports/transport.js'
import { fakeEventSources, fakeFetch, fakeWebSockets, flush, hello, memoryStorage, ndjson, useFakeTimers } from './fakes.js'

// The client honours the server's retry hints (issue 11): the `retryMs` of a close frame or of a
// RATE_LIMITED error frame, and an HTTP refusal's Retry-After, on every transport; it waits the hint
// and then its backoff's jitter, never longer than 5 minutes for the hint; and RATE_LIMITED is
// retried, never the end of a subscription or a publish. The jitter is at its minimum (random 0)
// where a test checks that the wait is the hint, at its maximum (random 1) where it checks the cap.

const URL_BASE = 'http://push.test/push'

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

/** Advances the clock 1 ms at a time until `happened`, and returns how long that took (at most `limitMs`). */
function timeUntil(happened: () => boolean, limitMs = 600_000): number {
  let waited = 0
  while (!happened() && waited < limitMs) {
    vi.advanceTimersByTime(waited < 10_000 ? 1 : 100)
    waited += waited < 10_000 ? 1 : 100
  }
  return waited
}

function webSocketClient(options: Partial<PushClientOptions> = {}) {
  const ws = fakeWebSockets()
  const client = new PushClient({ url: URL_BASE, storage: memoryStorage(), transports: [websocket()], WebSocket: ws.WebSocket, random: () => 0, ...options })
  const errors: PushError[] = []
  client.on('error', (error) => errors.push(error))
  const open = () => {
    if (client.state === 'idle') client.connect()
    ws.last.accept()
    ws.last.receive(hello())
    return ws.last
  }
  return { client, ws, open, errors }
}

function httpClient(transport: TransportFactory, options: Partial<PushClientOptions> = {}) {
  const http = fakeFetch()
  const client = new PushClient({ url: URL_BASE, storage: memoryStorage(), transports: [transport], fetch: http.fetch, random: () => 0, ...options })
  const errors: PushError[] = []
  client.on('error', (error) => errors.push(error))
  return { client, http, errors }
}

const refusalBody = (message: string, retryMs: number) => JSON.stringify({ type: 'error', code: 'RATE_LIMITED', message, retryMs })

describe('WebSocket', () => {
  it('a connection refused with a close frame RATE_LIMITED reconnects no sooner than its retryMs, on the same transport', () => {
    const { client, ws, errors } = webSocketClient()
    client.connect()
    ws.last.accept()
    ws.last.receive({ type: 'close', code: 'RATE_LIMITED', message: 'too many connections', retryMs: 2345 })
    expect(errors.map((error) => [error.code, error.retryMs])).toEqual([['RATE_LIMITED', 2345]])
    expect(client.state).toBe('reconnecting')
    expect(timeUntil(() => ws.sockets.length === 2)).toBe(2345)
  })

  it('resends a publish answered RATE_LIMITED after its retryMs, with the same key, and resolves with the ack', async () => {
    const { client, open } = webSocketClient()
    const socket = open()
    const result = client.publish('chat', 'hi')
    const [first] = socket.framesOf('publish')
    socket.receive({ type: 'error', code: 'RATE_LIMITED', message: 'too many publishes per second', rid: first!.rid, retryMs: 700 })
    expect(timeUntil(() => socket.framesOf('publish').length === 2)).toBe(700)
    const [, again] = socket.framesOf('publish')
    expect(again).toEqual(first)
    socket.receive({ type: 'ack', rid: first!.rid, channel: 'chat', offset: 1, id: 'e-1' })
    await expect(result).resolves.toEqual({ channel: 'chat', offset: 1, id: 'e-1' })
  })

  it('resends a subscribe answered RATE_LIMITED after its retryMs; the subscription does not end', () => {
    const { client, open } = webSocketClient()
    const socket = open()
    const subscription = client.subscribe('news')
    const failures: PushError[] = []
    subscription.on('error', (failure) => failures.push(failure))
    const [first] = socket.framesOf('subscribe')
    socket.receive({ type: 'error', code: 'RATE_LIMITED', message: 'too many subscribes per second', rid: first!.rid, channel: 'news', retryMs: 300 })
    expect(timeUntil(() => socket.framesOf('subscribe').length === 2)).toBe(300)
    const second = socket.framesOf('subscribe')[1]!
    expect(second).toMatchObject({ channel: 'news' })
    socket.receive({ type: 'subscribed', channel: 'news', rid: second.rid, epoch: 'e', offset: 0 })
    expect(failures).toEqual([])
    expect(subscription.active).toBe(true)
    // An unsubscribe meanwhile cancels the retry.
    const other = client.subscribe('sports')
    const refused = socket.framesOf('subscribe').at(-1)!
    socket.receive({ type: 'error', code: 'RATE_LIMITED', message: 'too many subscribes per second', rid: refused.rid, channel: 'sports', retryMs: 300 })
    other.unsubscribe()
    vi.advanceTimersByTime(1000)
    expect(socket.framesOf('subscribe').filter((frame) => frame.channel === 'sports')).toHaveLength(1)
  })

  it('waits at most 5 minutes for a hint, plus its jitter', () => {
    const { client, ws, open } = webSocketClient({ random: () => 1 })
    open().receive({ type: 'close', code: 'RATE_LIMITED', message: 'come back tomorrow', retryMs: 86_400_000 })
    expect(client.state).toBe('reconnecting')
    // 300,000 ms, then attempt 0's backoff at its maximum (500 ms).
    vi.advanceTimersByTime(300_499)
    expect(ws.sockets).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(ws.sockets).toHaveLength(2)
  })
})

describe('HTTP transports', () => {
  it('long polling: a 503 RATE_LIMITED first poll waits its retryMs before the next', async () => {
    const { client, http, errors } = httpClient(longPolling())
    client.connect()
    http.last.respond(503, refusalBody('too many connections', 1800), { 'Retry-After': '2' })
    await flush()
    expect(errors.map((error) => [error.code, error.retryMs])).toEqual([['RATE_LIMITED', 1800]])
    expect(client.state).toBe('reconnecting')
    expect(timeUntil(() => http.calls.length === 2)).toBe(1800)
  })

  it("long polling: a proxy's 503 with only Retry-After (seconds) is honoured too", async () => {
    const { client, http, errors } = httpClient(longPolling())
    client.connect()
    http.last.respond(503, '<html>busy</html>', { 'Retry-After': '7' })
    await flush()
    expect(errors.map((error) => [error.code, error.retryMs])).toEqual([['TRANSPORT_FAILED', 7000]])
    expect(timeUntil(() => http.calls.length === 2)).toBe(7000)
  })

  it('an HTTP publish answered 429 is sent again after the hint, and resolves', async () => {
    const { client, http } = httpClient(longPolling())
    client.connect()
    http.last.respond(200, ndjson(hello({ transports: ['long-polling'], heartbeatMs: 20_000 })))
    await flush()
    const result = client.publish('chat', 'hi')
    const posts = () => http.calls.filter((call) => call.init.method === 'POST')
    expect(posts()).toHaveLength(1)
    // Our server's body has retryMs; Retry-After is what a proxy or another server sends.
    posts()[0]!.respond(429, JSON.stringify({ type: 'error', code: 'RATE_LIMITED', message: 'too many publishes per second' }), { 'Retry-After': '3' })
    await flush()
    expect(timeUntil(() => posts().length === 2)).toBe(3000)
    const { rid } = JSON.parse(String(posts()[1]!.init.body)) as { rid: string }
    posts()[1]!.respond(200, { type: 'ack', rid, channel: 'chat', offset: 1, id: 'e-1' })
    await expect(result).resolves.toEqual({ channel: 'chat', offset: 1, id: 'e-1' })
  })

  it('SSE: a 503 RATE_LIMITED stream waits its retryMs before the next', async () => {
    const sources = fakeEventSources({ takesFetch: true })
    const { client, http, errors } = httpClient(sse(), { EventSource: sources.EventSource })
    client.connect()
    const stream = sources.last
    const opening = stream.init!.fetch!(stream.url.href, {})
    http.last.respond(503, refusalBody('too many new connections', 1234), { 'Retry-After': '2' })
    await opening
    await flush()
    stream.fail(503)
    expect(errors.map((error) => [error.code, error.retryMs])).toEqual([['RATE_LIMITED', 1234]])
    expect(timeUntil(() => sources.streams.length === 2)).toBe(1234)
  })

  it('SSE over fetch (a token): a 429 RATE_LIMITED stream waits its retryMs before the next', async () => {
    const sources = fakeEventSources()
    const { client, http, errors } = httpClient(sse(), { EventSource: sources.EventSource, token: 't' })
    client.connect()
    await flush()
    http.last.respond(429, refusalBody('too many subscribes per second', 950), { 'Retry-After': '1' })
    await flush()
    expect(errors.map((error) => [error.code, error.retryMs])).toEqual([['RATE_LIMITED', 950]])
    expect(timeUntil(() => http.calls.length === 2)).toBe(950)
  })
})
