import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { PushClient as CorePushClient, iframe, longPolling } from '../../src/core.js'
import { isPushError, PushClient, type PushClientOptions, type PushError } from '../../src/index.js'
import { cleanup, startPushFixture, type PushFixture } from '../helpers/push-fixture.js'

// Misconfigurations as a new user makes them, each asserting that the error names the cause: the
// option and what it allows, the host and port and the system error, what the URL answered.

/** Storage of its own per client, so that no remembered winner carries over between rows. */
const memoryStorage = () => {
  const items = new Map<string, string>()
  return { getItem: (key: string) => items.get(key) ?? null, setItem: (key: string, value: string) => void items.set(key, value) }
}

const clients: PushClient[] = []
const client = (options: PushClientOptions): PushClient => {
  const made = new PushClient({ storage: memoryStorage(), lifecycle: null, reconnect: { initialDelayMs: 50 }, ...options })
  clients.push(made)
  return made
}

/** The first `error` event of a client that never connected. */
const firstError = (made: { on: PushClient['on']; connect(): void }): Promise<PushError> =>
  new Promise((resolve) => {
    made.on('error', resolve)
    made.connect()
  })

const servers: http.Server[] = []
/** A plain HTTP server on 127.0.0.1 that is not pushline. */
const plainServer = async (listener: http.RequestListener): Promise<string> => {
  const server = http.createServer(listener)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

let fixture: PushFixture
let authFixture: PushFixture
let smallFixture: PushFixture
/** host:port where nothing listens. */
let downHost: string
let htmlHost: string
let notFoundHost: string

beforeAll(async () => {
  fixture = await startPushFixture()
  authFixture = await startPushFixture({ authenticate: ({ token }) => token === 'good' })
  smallFixture = await startPushFixture({ maxFrameBytes: 1000 })
  const probe = http.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  downHost = `127.0.0.1:${(probe.address() as AddressInfo).port}`
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  htmlHost = await plainServer((_, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' })
    res.end('<!doctype html><html><head><title>My app</title></head><body>hello</body></html>')
  })
  notFoundHost = await plainServer((req, res) => {
    res.writeHead(404, { 'Content-Type': 'text/plain' })
    res.end(`Cannot GET ${req.url}`)
  })
}, 30_000)

afterEach(() => {
  for (const each of clients.splice(0)) each.close()
})

afterAll(async () => {
  await cleanup()
  for (const server of servers) {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

type Expectation = { code: string; message: RegExp }

describe('options checked by the constructor', () => {
  const rows: Array<[string, () => unknown, Expectation]> = [
    ['url missing', () => client({} as PushClientOptions), { code: 'INVALID_OPTIONS', message: /^url: expected the server's absolute base URL .*, got undefined/ }],
    ['url without scheme', () => client({ url: 'localhost:8080/push' }), { code: 'INVALID_OPTIONS', message: /^url: expected the server's absolute base URL with http:\/\/ or https:\/\/, e\.g\. "http:\/\/localhost:8080\/push", got "localhost:8080\/push"$/ }],
    ['relative url in Node', () => client({ url: '/push' }), { code: 'INVALID_OPTIONS', message: /got "\/push" \(relative URLs only in a browser page\)$/ }],
    ['ws:// url with HTTP transports', () => client({ url: 'ws://127.0.0.1:1/push' }), { code: 'INVALID_OPTIONS', message: /^url: expected the server's absolute base URL with http:\/\/ or https:\/\/.*got "ws:\/\/127\.0\.0\.1:1\/push"$/ }],
    ['ws:// url with only the websocket transport is fine', () => client({ url: 'ws://127.0.0.1:1/push', transports: ['websocket'] }).subscribe('a b'), { code: 'INVALID_CHANNEL', message: /^channel "a b"/ }],
    ['negative handshakeTimeoutMs', () => client({ url: 'http://127.0.0.1:1/push', handshakeTimeoutMs: -1 }), { code: 'INVALID_OPTIONS', message: /^handshakeTimeoutMs: expected a number > 0, got -1$/ }],
    ['publishTimeoutMs as a string', () => client({ url: 'http://127.0.0.1:1/push', publishTimeoutMs: '1000' as unknown as number }), { code: 'INVALID_OPTIONS', message: /^publishTimeoutMs: expected a number > 0, got "1000"$/ }],
    ['NaN reconnect delay', () => client({ url: 'http://127.0.0.1:1/push', reconnect: { maxDelayMs: Number.NaN } }), { code: 'INVALID_OPTIONS', message: /^reconnect\.maxDelayMs: expected a number >= 0, got NaN$/ }],
    ['retryDelayMs not a function', () => client({ url: 'http://127.0.0.1:1/push', reconnect: { retryDelayMs: 5 as unknown as () => number } }), { code: 'INVALID_OPTIONS', message: /^reconnect\.retryDelayMs: expected a function \(attempt\) => milliseconds, got 5$/ }],
    ['unknown transport name', () => client({ url: 'http://127.0.0.1:1/push', transports: ['websockets' as 'websocket'] }), { code: 'INVALID_OPTIONS', message: /^transports\[0\]: unknown transport "websockets"; expected one of websocket, sse, long-polling, short-polling, iframe/ }],
    ['empty transports', () => client({ url: 'http://127.0.0.1:1/push', transports: [] }), { code: 'INVALID_OPTIONS', message: /^transports: none usable here/ }],
    ['only the iframe in Node', () => client({ url: 'http://127.0.0.1:1/push', transports: ['iframe'] }), { code: 'INVALID_OPTIONS', message: /^transports: none usable here; the iframe transport needs a browser page \(document\)/ }],
    ['token a number', () => client({ url: 'http://127.0.0.1:1/push', token: 42 as unknown as string }), { code: 'INVALID_OPTIONS', message: /^token: expected a string or a function/ }],
    ['bad channel name', () => client({ url: 'http://127.0.0.1:1/push' }).subscribe('a b/c'), { code: 'INVALID_CHANNEL', message: /^channel "a b\/c": 1-128 of A-Z a-z 0-9 _\.:@\/-$/ }],
    ['since not a message id', () => client({ url: 'http://127.0.0.1:1/push' }).subscribe('news', undefined, { since: 'nope' }), { code: 'INVALID_OPTIONS', message: /^since "nope": not <epoch>-<offset>$/ }],
  ]
  it.each(rows)('%s', (_, make, expected) => {
    let thrown: unknown
    try {
      make()
    } catch (error) {
      thrown = error
    }
    expect(isPushError(thrown), String(thrown)).toBe(true)
    expect(thrown).toMatchObject({ code: expected.code, message: expect.stringMatching(expected.message) })
  })
})

describe('connection failures name their cause', () => {
  type Row = [string, () => PushClientOptions, (hosts: { down: string; html: string; notFound: string }) => Expectation]
  const rows: Row[] = [
    ['server down, websocket', () => ({ url: `http://${downHost}/push`, transports: ['websocket'] }), ({ down }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`ws://${down}/push/ws: connect ECONNREFUSED ${down}`) })],
    ['server down, sse', () => ({ url: `http://${downHost}/push`, transports: ['sse'] }), ({ down }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`sse http://${down}/push/sse: TypeError: fetch failed: ECONNREFUSED ${down}`) })],
    ['server down, long-polling', () => ({ url: `http://${downHost}/push`, transports: ['long-polling'] }), ({ down }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`long-polling http://${down}/push/poll: TypeError: fetch failed: ECONNREFUSED ${down}`) })],
    ['server down, short-polling', () => ({ url: `http://${downHost}/push`, transports: ['short-polling'] }), ({ down }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`ECONNREFUSED ${down}`) })],
    ['HTTP 200 HTML page, long-polling', () => ({ url: `http://${htmlHost}/`, transports: ['long-polling'] }), ({ html }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`long-polling http://${html}/poll answered HTTP 200 with an HTML page; is the path right\\? expected the pushline base URL, e\\.g\\. http://host/push`) })],
    ['HTTP 200 HTML page, sse', () => ({ url: `http://${htmlHost}/`, transports: ['sse'] }), ({ html }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`sse http://${html}/sse answered HTTP 200 with an HTML page; is the path right`) })],
    ['HTTP 200 HTML page, websocket', () => ({ url: `http://${htmlHost}/`, transports: ['websocket'] }), ({ html }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`ws://${html}/ws: Unexpected server response: 200`) })],
    ['wrong port (another HTTP server)', () => ({ url: `http://${notFoundHost}/push`, transports: ['long-polling'] }), ({ notFound }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`http://${notFound}/push/poll answered HTTP 404 with "Cannot GET /push/poll\\?cursor=.*", not pushline frames`) })],
    ['TLS to a plain HTTP server', () => ({ url: `https://${htmlHost}/push`, transports: ['long-polling'] }), ({ html }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`long-polling https://${html}/push/poll: TypeError: fetch failed: .*(SSL|EPROTO|TLS)`, 'i') })],
    ['TLS to a plain HTTP server, websocket', () => ({ url: `https://${htmlHost}/push`, transports: ['websocket'] }), ({ html }) => ({ code: 'TRANSPORT_FAILED', message: new RegExp(`wss://${html}/push/ws: .*(SSL|EPROTO|TLS|wrong version)`, 'i') })],
  ]
  it.each(rows)('%s', async (_, options, expected) => {
    const error = await firstError(client(options()))
    expect(error).toMatchObject(expected({ down: downHost, html: htmlHost, notFound: notFoundHost }))
  }, 20_000)

  it('wrong path on a pushline server: the server says where it answers', async () => {
    const error = await firstError(client({ url: fixture.directUrl.replace(/\/push$/, '/api'), transports: ['long-polling'] }))
    expect(error).toMatchObject({ code: 'BAD_FRAME', status: 404, message: 'not found: pushline answers under /push/ (ws, sse, poll, iframe, publish)' })
  }, 20_000)

  it('bad token over WebSocket: UNAUTHORIZED, from the close frame before close code 4401', async () => {
    const error = await firstError(client({ url: authFixture.directUrl, transports: ['websocket'], token: 'bad' }))
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', transport: 'websocket', message: expect.stringMatching(/unauthorized/) })
  }, 20_000)

  it('bad token over long-polling: UNAUTHORIZED with HTTP 401', async () => {
    const error = await firstError(client({ url: authFixture.directUrl, transports: ['long-polling'], token: 'bad' }))
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 })
  }, 20_000)

  it('the iframe transport in Node, given as a factory to pushline/core: the attempt fails with the reason', async () => {
    const core = new CorePushClient({ url: fixture.directUrl, transports: [iframe(), longPolling()], storage: memoryStorage(), lifecycle: null })
    try {
      const error = await firstError(core)
      expect(error).toMatchObject({ code: 'NO_TRANSPORT', transport: 'iframe', message: expect.stringMatching(/iframe needs a browser page \(document\)/) })
      // The negotiation moved on: the client opens on long-polling.
      await new Promise<void>((resolve) => (core.state === 'open' ? resolve() : core.on('state', (state) => state === 'open' && resolve())))
      expect(core.transport).toBe('long-polling')
    } finally {
      core.close()
    }
  }, 20_000)

  it('pushline skips the iframe in Node when other transports are listed', async () => {
    const made = client({ url: fixture.directUrl, transports: ['iframe', 'long-polling'] })
    const errors: PushError[] = []
    made.on('error', (error) => errors.push(error))
    await made.ready(15_000)
    expect(made.transport).toBe('long-polling')
    expect(errors).toEqual([])
  }, 20_000)
})

describe('ready()', () => {
  it('resolves once open', async () => {
    const made = client({ url: fixture.directUrl, transports: ['websocket'] })
    await made.ready()
    expect(made.state).toBe('open')
    await expect(made.ready()).resolves.toBeUndefined()
  }, 20_000)

  it('rejects after its timeout with the last failure as message and cause', async () => {
    const made = client({ url: `http://${downHost}/push`, transports: ['long-polling'] })
    const error = await made.ready(1500).catch((failure: unknown) => failure)
    expect(error).toMatchObject({
      code: 'HANDSHAKE_TIMEOUT',
      message: expect.stringMatching(new RegExp(`^not connected within 1500 ms; last failure: .*ECONNREFUSED ${downHost}`)),
      cause: expect.objectContaining({ code: 'TRANSPORT_FAILED' }),
    })
    // The client keeps trying until closed.
    expect(made.state).toBe('reconnecting')
  }, 20_000)

  it('rejects with CLIENT_CLOSED when closed first', async () => {
    const made = client({ url: `http://${downHost}/push`, transports: ['websocket'] })
    const waiting = made.ready()
    made.close()
    await expect(waiting).rejects.toMatchObject({ code: 'CLIENT_CLOSED' })
  })
})

describe('publish failures', () => {
  it('oversized data: FRAME_TOO_LARGE gives the limit', async () => {
    const made = client({ url: smallFixture.directUrl, transports: ['websocket'] })
    await made.ready(15_000)
    await expect(made.publish('news', 'x'.repeat(5000))).rejects.toMatchObject({
      code: 'FRAME_TOO_LARGE',
      message: "over the server's 1000 B limit",
    })
  }, 20_000)

  it('publish to a bad channel says what is allowed', async () => {
    const made = client({ url: fixture.directUrl, transports: ['websocket'] })
    await expect(made.publish('no spaces please', 1)).rejects.toMatchObject({ code: 'INVALID_CHANNEL', message: expect.stringMatching(/1-128 of A-Z/) })
  })

  it('a publish without data: the server names the field, never in zod words', async () => {
    const made = client({ url: fixture.directUrl, transports: ['long-polling'] })
    await made.ready(15_000)
    const error = (await made.publish('news', undefined).catch((failure: unknown) => failure)) as PushError
    expect(error).toMatchObject({ code: 'BAD_FRAME', message: 'data: missing (protocol.md 2.2)' })
    expect(error.message).not.toMatch(/Invalid input|nonoptional/)
  }, 20_000)

  it('a publish that times out while never connected points at the error event', async () => {
    const made = client({ url: `http://${downHost}/push`, transports: ['websocket'], publishTimeoutMs: 300 })
    made.on('error', () => {})
    made.connect()
    await expect(made.publish('news', 1)).rejects.toMatchObject({
      code: 'PUBLISH_TIMEOUT',
      message: 'no ack in 300 ms, not connected',
    })
  }, 20_000)
})
