import { request } from 'node:http'
import { connect } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { EventSource } from 'eventsource'
import { afterEach, describe, expect, it } from 'vitest'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { cleanup, sleep, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

afterEach(cleanup)

interface SseEvent {
  id?: string
  retry?: string
  frame?: ServerFrame
}

/** A raw SSE reader over node:http, exposing the exact bytes and parsed events. */
class RawStream {
  raw = ''
  readonly events: SseEvent[] = []
  #read = 0
  #buffer = ''
  constructor(
    readonly res: IncomingMessage,
    readonly close: () => void,
  ) {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      this.raw += chunk
      this.#buffer += chunk
      let end: number
      while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
        const block = this.#buffer.slice(0, end)
        this.#buffer = this.#buffer.slice(end + 2)
        const event: SseEvent = {}
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) event.id = line.slice(4)
          else if (line.startsWith('retry: ')) event.retry = line.slice(7)
          else if (line.startsWith('data: ')) event.frame = JSON.parse(line.slice(6)) as ServerFrame
        }
        if (event.frame) this.events.push(event)
      }
    })
  }

  async next(timeoutMs = 2000, pings = false): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      while (this.#read < this.events.length) {
        const event = this.events[this.#read++]
        if (event && (pings || event.frame?.type !== 'ping')) return event
      }
      if (Date.now() > deadline) throw new Error(`no event in time; raw: ${this.raw.slice(-500)}`)
      await sleep(5)
    }
  }
}

function openStream(server: PushFixture, query: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.directUrl}/sse${query}`, { headers: { Accept: 'text/event-stream', ...headers } })
    req.on('response', (res) => resolve(new RawStream(res, () => req.destroy())))
    req.on('error', reject)
    req.end()
  })
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers })
  return { status: res.status, body: await res.json() }
}

describe('SSE transport', () => {
  it('answers with the headers, retry, padding and hello of protocol.md 3.3', async () => {
    const server = await startPushFixture({ sseRetryMs: 1500 })
    const epoch = (await server.push.publish('orders', 'x')).epoch
    const stream = await openStream(server, '?cursor=orders')
    expect(stream.res.statusCode).toBe(200)
    expect(stream.res.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(stream.res.headers['cache-control']).toBe('no-cache, no-transform')
    expect(stream.res.headers['x-accel-buffering']).toBe('no')
    expect(stream.res.headers.connection).toBe('keep-alive')

    const hello = await stream.next()
    expect(hello).toEqual({
      id: 'orders',
      frame: expect.objectContaining({
        type: 'hello',
        v: 1,
        transports: ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'],
      }),
    })
    const [preamble] = stream.raw.split('\ndata: ')
    const padding = `:${' '.repeat(2047)}\n`
    expect(preamble).toBe(`retry: 1500\n${padding}\nid: orders`)

    expect(await stream.next()).toEqual({
      id: `orders=${epoch}-1`,
      frame: { type: 'subscribed', channel: 'orders', epoch, offset: 1 },
    })
    await server.push.publish('orders', { n: 2 })
    expect(await stream.next()).toEqual({
      id: `orders=${epoch}-2`,
      frame: { type: 'message', channel: 'orders', event: 'message', data: { n: 2 }, offset: 2, id: `${epoch}-2` },
    })
    // One data line per event and no event field.
    expect(stream.raw).not.toMatch(/^event:/m)
    stream.close()
  })

  it('carries the whole stream cursor in every position-changing id, and none on ping', async () => {
    const server = await startPushFixture({ heartbeatMs: 100 })
    const a = await server.push.publish('a', 1)
    await server.push.publish('a', 2)
    const b = await server.push.publish('b', 1)
    const stream = await openStream(server, `?cursor=a=${a.epoch}-1,b,c=zz-3`)
    expect((await stream.next()).id).toBe(`a=${a.epoch}-1,b,c=zz-3`)
    // Per entry in order: subscribed and its replay.
    const frames = [await stream.next(), await stream.next(), await stream.next(), await stream.next()]
    const c = frames[3]?.frame
    if (c?.type !== 'subscribed') throw new Error('expected subscribed for c')
    // c is new on this server: its own epoch, at 0, and the client's position there is gone.
    expect(c).toMatchObject({ channel: 'c', offset: 0, gap: 'epoch-changed' })
    expect(frames.map((e) => [e.frame?.type, e.id])).toEqual([
      ['subscribed', `a=${a.epoch}-1,b,c=zz-3`],
      ['message', `a=${a.epoch}-2,b,c=zz-3`],
      ['subscribed', `a=${a.epoch}-2,b=${b.epoch}-1,c=zz-3`],
      ['subscribed', `a=${a.epoch}-2,b=${b.epoch}-1,c=${c.epoch}-0`],
    ])
    const ping = await stream.next(1000, true)
    expect(ping).toEqual({ frame: { type: 'ping' } })
    stream.close()
  })

  it.each(['1.1', '1.0'])('writes every ping as a whole event on HTTP/%s (its own chunk when chunked)', async (version) => {
    const server = await startPushFixture({ heartbeatMs: 50 })
    const stream = rawSseRequest(`${server.directUrl}/sse?cursor=a`, version)
    const ping = 'data: {"type":"ping"}\n\n'
    await waitFor(() => stream.raw.split(ping).length > 3, 'three pings')
    const { head, body } = stream.end()
    if (version === '1.0') {
      // Not chunked: the events follow one another as they are.
      expect(head).not.toContain('transfer-encoding')
      expect(body).not.toContain('\r\n')
      expect(body).toContain(`\n\n${ping}${ping}`)
      return
    }
    expect(head).toContain('transfer-encoding: chunked')
    const pingChunk = `${ping.length.toString(16)}\r\n${ping}\r\n`
    expect(body).toContain(`\r\n${pingChunk}${pingChunk}`)
    expect(dechunk(body).split(ping).length).toBeGreaterThan(3)
  })

  it.each(['1.1', '1.0'])('writes the messages of a one-channel stream as whole events on HTTP/%s, with their ids', async (version) => {
    const server = await startPushFixture()
    const stream = rawSseRequest(`${server.directUrl}/sse?cursor=a`, version)
    await waitFor(() => stream.raw.includes('"subscribed"'), 'subscribed')
    // One message per turn, so that each goes out alone (the one-event path), and one multi-byte.
    const published = []
    for (const data of [1, 'é €', 3]) {
      published.push(await server.push.publish('a', data))
      await new Promise((resolve) => setImmediate(resolve))
    }
    const last = published.at(-1)
    await waitFor(() => stream.raw.includes(`id: a=${last?.epoch}-${last?.offset}`), 'the last message')
    const { head, body } = stream.end()
    const chunked = head.includes('transfer-encoding: chunked')
    expect(chunked).toBe(version === '1.1')
    const text = Buffer.from(chunked ? dechunk(body) : body, 'latin1').toString('utf8')
    // Whole events, in order, each with its own id and the message it carries.
    const messages = text
      .split('\n\n')
      .filter((event) => event.includes('"type":"message"'))
      .map((event) => {
        const [id, data, ...rest] = event.split('\n')
        return { id, frame: JSON.parse(data?.replace(/^data: /, '') ?? 'null'), rest }
      })
    expect(messages).toEqual(
      published.map((at, i) => ({
        id: `id: a=${at.epoch}-${at.offset}`,
        frame: expect.objectContaining({ type: 'message', channel: 'a', offset: at.offset, data: [1, 'é €', 3][i] }),
        rest: [],
      })),
    )
  })

  it('lets Last-Event-ID override the query for the channels the query names', async () => {
    const server = await startPushFixture()
    const first = await server.push.publish('a', 1)
    for (let i = 2; i <= 4; i++) await server.push.publish('a', i)
    const b = await server.push.publish('b', 1)
    await server.push.publish('b', 2)
    const stream = await openStream(server, `?cursor=a=${first.epoch}-0,b`, {
      'Last-Event-ID': `a=${first.epoch}-3,b=${b.epoch}-1,other=${b.epoch}-0`,
    })
    expect((await stream.next()).id).toBe(`a=${first.epoch}-3,b=${b.epoch}-1`)
    expect((await stream.next()).frame).toMatchObject({ type: 'subscribed', channel: 'a', offset: 3 })
    expect((await stream.next()).frame).toMatchObject({ type: 'message', channel: 'a', offset: 4 })
    expect((await stream.next()).frame).toMatchObject({ type: 'subscribed', channel: 'b', offset: 1 })
    expect((await stream.next()).frame).toMatchObject({ type: 'message', channel: 'b', offset: 2 })
    stream.close()
  })

  it('rejects malformed cursors with 400 and an error frame', async () => {
    const server = await startPushFixture({ maxSubscriptions: 2 })
    const bad = async (cursor: string) => (await getJson(`${server.directUrl}/sse?cursor=${encodeURIComponent(cursor)}`)).body
    expect(await bad('a,a')).toMatchObject({ type: 'error', code: 'BAD_FRAME' })
    expect(await bad('a=nope')).toMatchObject({ type: 'error', code: 'BAD_FRAME' })
    expect(await bad('a b')).toMatchObject({ type: 'error', code: 'INVALID_CHANNEL' })
    expect(await bad('a,b,c')).toMatchObject({ type: 'error', code: 'TOO_MANY_SUBSCRIPTIONS' })
    expect((await getJson(`${server.directUrl}/sse?cursor=a,a`)).status).toBe(400)
    // An empty cursor is a valid stream with no subscriptions.
    const empty = await openStream(server, '')
    expect(await empty.next()).toEqual({ id: '', frame: expect.objectContaining({ type: 'hello' }) })
    empty.close()
  })

  it('resumes with a plain EventSource across a dropped stream, without loss or duplicates', async () => {
    const server = await startPushFixture({ sseRetryMs: 50 })
    const epoch = (await server.push.publish('feed', 0)).epoch
    const es = new EventSource(`${server.directUrl}/sse?cursor=feed=${epoch}-1`)
    const got: { type: string; offset?: number; lastEventId: string }[] = []
    es.onmessage = (event) => {
      const frame = JSON.parse(event.data) as ServerFrame
      if (frame.type === 'ping') return
      got.push({ type: frame.type, offset: 'offset' in frame ? frame.offset : undefined, lastEventId: event.lastEventId })
    }
    try {
      await waitFor(() => got.some((f) => f.type === 'subscribed'), 'subscribed')
      await server.push.publish('feed', 2)
      await waitFor(() => got.some((f) => f.offset === 2 && f.type === 'message'), 'message 2')
      // Cut the stream from the server side, then publish while the client is away.
      for (const socket of server.sockets) socket.destroy()
      await server.push.publish('feed', 3)
      await server.push.publish('feed', 4)
      await waitFor(() => got.filter((f) => f.type === 'message').length === 3, 'three messages', 3000)
      expect(got.filter((f) => f.type === 'message').map((f) => f.offset)).toEqual([2, 3, 4])
      expect(got.at(-1)?.lastEventId).toBe(`feed=${epoch}-4`)
      // The second hello carried the cursor EventSource sent back as Last-Event-ID.
      const hellos = got.filter((f) => f.type === 'hello').map((f) => f.lastEventId)
      expect(hellos).toEqual([`feed=${epoch}-1`, `feed=${epoch}-2`])
    } finally {
      es.close()
    }
  })

  it('authenticates with a Bearer token: 401 without, stream with', async () => {
    const server = await startPushFixture({ authenticate: ({ token, transport }) => transport === 'sse' && token === 't0k' })
    expect(await getJson(`${server.directUrl}/sse?cursor=a`)).toEqual({
      status: 401,
      body: { type: 'error', code: 'UNAUTHORIZED', message: expect.any(String) },
    })
    const es = new EventSource(`${server.directUrl}/sse?cursor=a`, {
      fetch: (url, init) => fetch(url, { ...init, headers: { ...init.headers, Authorization: 'Bearer t0k' } }),
    })
    try {
      const first = await new Promise<ServerFrame>((resolve) => {
        es.onmessage = (event) => resolve(JSON.parse(event.data) as ServerFrame)
      })
      expect(first.type).toBe('hello')
    } finally {
      es.close()
    }
  })

  it('drops a stream that does not drain (slow consumer) and forgets it', async () => {
    const server = await startPushFixture({ maxBufferedBytes: 256 * 1024 })
    const stream = await openStream(server, '?cursor=big')
    await stream.next()
    await stream.next()
    stream.res.pause() // the client stops reading
    const blob = 'x'.repeat(100_000)
    let closed = false
    stream.res.socket.on('close', () => (closed = true))
    for (let i = 0; i < 400 && !closed; i++) {
      await server.push.publish('big', blob)
      await sleep(1)
    }
    await waitFor(() => server.push.stats().connections === 0, 'the server to forget every connection', 5000)
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
  })

  it('drops a stream whose output has not drained for heartbeatMs + grace', async () => {
    const server = await startPushFixture({ heartbeatMs: 100, heartbeatGraceMs: 100, maxBufferedBytes: 2 ** 30 })
    const stream = await openStream(server, '?cursor=big')
    await stream.next()
    await stream.next()
    stream.res.pause()
    const blob = 'x'.repeat(1_000_000)
    // Enough to fill the kernel's socket buffers, so the response stops draining.
    for (let i = 0; i < 40 && server.push.stats().connections === 1; i++) await server.push.publish('big', blob)
    await waitFor(() => server.push.stats().connections === 0, 'the server to forget every connection', 3000)
  })

  it('frees its place in maxConnections and its hub connection when it closes, open or still authenticating', async () => {
    let admit: (() => void) | undefined
    const server = await startPushFixture({
      maxConnections: 1,
      authenticate: ({ token }) =>
        token === 'slow' ? new Promise<boolean>((resolve) => (admit = () => resolve(true))) : true,
    })
    // A stream that is admitted is closed at once: it frees its place again.
    const status = async () => {
      const controller = new AbortController()
      const res = await fetch(`${server.directUrl}/sse?cursor=a`, { signal: controller.signal })
      controller.abort()
      return res.status
    }
    const open = await openStream(server, '?cursor=a')
    expect((await open.next()).frame?.type).toBe('hello')
    expect(await status()).toBe(503)
    open.close()
    await waitFor(() => server.push.stats().connections === 0, 'the hub to forget the stream')
    await waitFor(async () => (await status()) === 200, 'the place to be free')

    // A client that goes away while the app authenticates frees its place too.
    const slow = request(`${server.directUrl}/sse?cursor=a`, { headers: { Authorization: 'Bearer slow' } })
    slow.on('error', () => undefined)
    slow.end()
    await waitFor(() => admit !== undefined, 'authenticate to be asked')
    expect(await status()).toBe(503)
    slow.destroy()
    await waitFor(async () => (await status()) === 200, 'the place to be free')
    admit?.()
    await waitFor(() => server.push.stats().connections === 0, 'the hub to forget every stream')
  })

  it('answers 404 for a transport that is turned off', async () => {
    const server = await startPushFixture({ transports: ['websocket'] })
    const res = await fetch(`${server.directUrl}/sse?cursor=a`)
    expect(res.status).toBe(404)
    const hello = await fetch(`${server.directUrl}/ws`)
    expect(hello.status).toBe(426)
  })
})

/**
 * An SSE request over a bare socket in HTTP/`version`, to see the bytes on the wire (latin1, one
 * character per byte). `end` closes it and splits what came into the head (lower case) and the body.
 */
function rawSseRequest(address: string, version: string) {
  const url = new URL(address)
  const socket = connect(Number(url.port), url.hostname)
  const stream = { raw: '', end }
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => (stream.raw += chunk))
  socket.write(`GET ${url.pathname}${url.search} HTTP/${version}\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`)
  function end() {
    socket.destroy()
    const headEnd = stream.raw.indexOf('\r\n\r\n')
    return { head: stream.raw.slice(0, headEnd).toLowerCase(), body: stream.raw.slice(headEnd + 4) }
  }
  return stream
}

/** The data of an HTTP/1.1 chunked body, up to its last whole chunk; throws where the framing is broken. */
function dechunk(body: string): string {
  let data = ''
  let at = 0
  for (;;) {
    const sizeEnd = body.indexOf('\r\n', at)
    if (sizeEnd === -1) return data
    const size = Number.parseInt(body.slice(at, sizeEnd), 16)
    if (!Number.isInteger(size)) throw new Error(`bad chunk size at ${at}: ${JSON.stringify(body.slice(at, at + 20))}`)
    const end = sizeEnd + 2 + size
    if (body.length < end + 2) return data
    if (body.slice(end, end + 2) !== '\r\n') throw new Error(`chunk at ${at} does not end with CRLF`)
    data += body.slice(sizeEnd + 2, end)
    at = end + 2
  }
}
