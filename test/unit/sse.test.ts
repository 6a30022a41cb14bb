import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient, sse, websocket, type PushClientOptions, type PushError } from '../../src/index.js'
import { fakeEventSources, fakeFetch, fakeWebSockets, flush, hello, memoryStorage, useFakeTimers, message } from './fakes.js'

const URL_BASE = 'http://push.test/push'

function setup(options: Partial<PushClientOptions> = {}, sources = fakeEventSources({ takesFetch: true })) {
  const http = fakeFetch()
  const client = new PushClient({
    url: URL_BASE,
    storage: memoryStorage(),
    transports: [sse()],
    EventSource: sources.EventSource,
    fetch: http.fetch,
    random: () => 1,
    ...options,
  })
  const errors: PushError[] = []
  client.on('error', (error) => errors.push(error))
  const open = () => {
    client.connect()
    sources.last.receive(hello())
    expect(client.state).toBe('open')
    return sources.last
  }
  return { client, es: sources, http, open, errors, codes: () => errors.map((error) => error.code) }
}


beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('sse transport', () => {
  it('opens GET <base>/sse with the stream cursor, open only after hello', async () => {
    const { client, es } = setup()
    client.subscribe('orders')
    client.subscribe('chat')
    client.connect()
    expect(es.last.url.origin + es.last.url.pathname).toBe('http://push.test/push/sse')
    expect(es.last.cursor).toBe('orders,chat')
    expect(client.state).toBe('connecting')
    es.last.receive(hello())
    expect(client.state).toBe('open')
    expect(client.transport).toBe('sse')
    // The core subscribes every channel after hello; the stream carries them already: no reopen.
    await Promise.resolve()
    expect(es.streams).toHaveLength(1)
  })

  it('resumes every channel from its position through the cursor after a reconnect', () => {
    const { client, es, open } = setup()
    const seen: number[] = []
    client.subscribe('orders', (msg) => seen.push(msg.offset))
    const first = open()
    first.receive({ type: 'subscribed', channel: 'orders', epoch: 'ep', offset: 3 })
    first.receive(message('orders', 'ep', 4))
    first.fail()
    expect(first.closed).toBe(true)
    expect(client.state).toBe('reconnecting')
    vi.advanceTimersByTime(500)
    expect(es.last.cursor).toBe('orders=ep-4')
    es.last.receive(hello())
    es.last.receive({ type: 'subscribed', channel: 'orders', epoch: 'ep', offset: 4 })
    es.last.receive(message('orders', 'ep', 5))
    expect(seen).toEqual([4, 5])
  })

  it('sends the token as an Authorization header through the fetch it gives EventSource', async () => {
    const { client, es, http } = setup({ token: 'secret' })
    client.connect()
    expect(es.last.url.href).not.toContain('secret')
    const streamFetch = es.last.init?.fetch
    expect(streamFetch).toBeTypeOf('function')
    void streamFetch!(es.last.url.href, { headers: { Accept: 'text/event-stream' } })
    expect(http.calls[0]?.init.headers).toEqual({ Accept: 'text/event-stream', Authorization: 'Bearer secret' })
  })

  it('refuses to send a token through an EventSource that cannot take headers', () => {
    const { client, es, codes } = setup({ token: 'secret' }, fakeEventSources({ takesFetch: false }))
    client.connect()
    expect(es.streams).toHaveLength(0)
    expect(codes()).toEqual(['TRANSPORT_FAILED'])
  })

  it('reopens once for several subscribe() calls in one tick: new stream first, then closes the old', async () => {
    const { client, es, open } = setup()
    const seen: string[] = []
    client.subscribe('a', (msg) => seen.push(msg.id))
    const first = open()
    first.receive({ type: 'subscribed', channel: 'a', epoch: 'e', offset: 0 })
    first.receive(message('a', 'e', 1))
    client.subscribe('b', (msg) => seen.push(msg.id))
    client.subscribe('c')
    expect(es.streams).toHaveLength(1)
    await Promise.resolve()
    expect(es.streams).toHaveLength(2)
    const second = es.last
    expect(second.cursor).toBe('a=e-1,b,c')
    // Until the new stream says hello, the old one keeps delivering.
    expect(first.closed).toBe(false)
    first.receive(message('a', 'e', 2))
    second.receive(hello())
    expect(first.closed).toBe(true)
    expect(client.state).toBe('open')
    // The new stream resumes from the older cursor: 2 again is a duplicate.
    second.receive({ type: 'subscribed', channel: 'a', epoch: 'e', offset: 1 })
    second.receive({ type: 'subscribed', channel: 'b', epoch: 'f', offset: 9 })
    second.receive(message('a', 'e', 2))
    second.receive(message('a', 'e', 3))
    second.receive(message('b', 'f', 10))
    expect(seen).toEqual(['e-1', 'e-2', 'e-3', 'f-10'])
  })

  it('reopens without a channel after its last unsubscribe', async () => {
    const { client, es, open } = setup()
    const a = client.subscribe('a')
    client.subscribe('b')
    open()
    a.unsubscribe()
    await Promise.resolve()
    expect(es.last.cursor).toBe('b')
  })

  it('fails the transport when a reopened stream sends no hello in time', async () => {
    const { client, es, open, codes } = setup({ handshakeTimeoutMs: 1000 })
    const first = open()
    client.subscribe('x')
    await Promise.resolve()
    vi.advanceTimersByTime(1000)
    expect(codes()).toEqual(['HANDSHAKE_TIMEOUT'])
    expect(first.closed && es.last.closed).toBe(true)
    expect(client.state).toBe('reconnecting')
  })

  it('reports a stream refused for one channel on that subscription, then reconnects without it', async () => {
    const { client, es, http, codes } = setup()
    const errors: string[] = []
    client.subscribe('ok')
    const forbidden = client.subscribe('forbidden')
    forbidden.on('error', (error) => errors.push(error.code))
    client.connect()
    const stream = es.last
    // What the eventsource package does: fetch through our function, then report the status.
    const response = stream.init!.fetch!(stream.url.href, { headers: { Accept: 'text/event-stream' } })
    http.calls[0]!.respond(400, { type: 'error', code: 'SUBSCRIBE_REJECTED', message: 'no', channel: 'forbidden' })
    await response
    stream.fail(400)
    expect(errors).toEqual(['SUBSCRIBE_REJECTED'])
    expect(forbidden.active).toBe(false)
    expect(codes()).toEqual(['SUBSCRIBE_REJECTED'])
    vi.advanceTimersByTime(500)
    expect(es.last.cursor).toBe('ok')
  })

  it('reports HTTP 401 as UNAUTHORIZED, with the status as a field', () => {
    const { client, es, codes, errors } = setup()
    client.connect()
    es.last.fail(401)
    expect(codes()).toEqual(['UNAUTHORIZED'])
    expect(errors[0]?.status).toBe(401)
    expect(errors[0]?.closeCode).toBeUndefined()
  })

  it('publishes with POST <base>/publish and a key, resolving on the ack', async () => {
    const { client, http, open } = setup({ token: 'secret' })
    open()
    const result = client.publish('chat', { text: 'hi' })
    expect(http.calls).toHaveLength(1)
    const [call] = http.calls
    expect(call!.url).toBe('http://push.test/push/publish')
    expect(call!.init.method).toBe('POST')
    expect(call!.init.headers).toMatchObject({ 'Content-Type': 'application/json', Authorization: 'Bearer secret' })
    const frame = JSON.parse(call!.init.body as string)
    expect(frame).toMatchObject({ type: 'publish', channel: 'chat', data: { text: 'hi' }, key: expect.any(String) })
    // The server answers with its default rid: the transport maps it back to the request's.
    call!.respond(200, { type: 'ack', rid: 'http', channel: 'chat', offset: 7, id: 'e-7' })
    await expect(result).resolves.toEqual({ channel: 'chat', offset: 7, id: 'e-7' })
  })

  it('posts a publish to a channel just subscribed only once the new stream confirmed it', async () => {
    const { client, es, http, open } = setup()
    open()
    client.subscribe('room')
    void client.publish('room', 'hi')
    await Promise.resolve()
    expect(http.calls).toHaveLength(0)
    es.last.receive(hello())
    es.last.receive({ type: 'subscribed', channel: 'room', epoch: 'e', offset: 0 })
    expect(http.calls).toHaveLength(1)
  })

  it('rejects a publish with the error frame of a refused POST', async () => {
    const { client, http, open } = setup()
    open()
    const result = client.publish('locked', 1)
    http.calls[0]!.respond(403, { type: 'error', code: 'PUBLISH_REJECTED', message: 'read-only' })
    await expect(result).rejects.toMatchObject({ code: 'PUBLISH_REJECTED' })
    expect(client.state).toBe('open')
  })

  it('resends a publish whose POST failed, with the same key, after reconnecting', async () => {
    const { client, es, http, open, codes } = setup()
    open()
    const result = client.publish('orders', { n: 1 })
    http.calls[0]!.reject(new TypeError('network down'))
    await flush()
    expect(codes()).toEqual(['TRANSPORT_FAILED'])
    expect(client.state).toBe('reconnecting')
    vi.advanceTimersByTime(500)
    es.last.receive(hello())
    expect(http.calls).toHaveLength(2)
    expect(http.calls[1]!.init.body).toBe(http.calls[0]!.init.body)
    http.calls[1]!.respond(200, { type: 'ack', rid: 'http', channel: 'orders', offset: 1, id: 'e-1' })
    await expect(result).resolves.toMatchObject({ offset: 1 })
  })

  it('falls back to the next transport at once when the first fails before hello', () => {
    const ws = fakeWebSockets()
    const sources = fakeEventSources()
    const client = new PushClient({
      url: URL_BASE,
    storage: memoryStorage(),
      transports: [websocket(), sse()],
      WebSocket: ws.WebSocket,
      EventSource: sources.EventSource,
    })
    const transports: string[] = []
    client.on('transport', (name) => transports.push(name))
    client.connect()
    ws.last.drop(1006)
    expect(sources.streams).toHaveLength(1)
    sources.last.receive(hello())
    expect(client.transport).toBe('sse')
    expect(transports).toEqual(['sse'])
    client.close()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('close() closes every stream and clears every timer', async () => {
    const { client, es, open } = setup()
    const first = open()
    client.subscribe('x')
    await Promise.resolve()
    client.close()
    expect(first.closed && es.last.closed).toBe(true)
    expect(first.onmessage).toBeNull()
    expect(vi.getTimerCount()).toBe(0)
  })
})
