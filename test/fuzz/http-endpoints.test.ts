import http from 'node:http'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FrameClient, cleanup, connect, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

// Fuzzing the HTTP endpoints and the WebSocket frame path against a real server (issue 11):
// any method, path, query, headers and body get an answer (or a closed socket), never a crash
// or an unhandled rejection, and the server holds nothing for them afterwards.

const RUNS = Math.max(50, Math.floor(Number(process.env.PUSHLINE_FUZZ_RUNS ?? 1000) / 4))

let server: PushFixture
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled)
  server = await startPushFixture({
    maxFrameBytes: 2048,
    longPollHoldMs: 50,
    heartbeatMs: 60_000,
    authenticate: ({ token }) => token !== 'deny',
    // A fuzzer is one client making many requests: the limits are not what is tested here.
    maxConnectsPerSecond: 100_000,
    maxConnectionsPerIp: 100_000,
    maxPublishesPerSecond: 1_000_000,
    maxSubscribesPerSecond: 1_000_000,
  })
})

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await cleanup()
})

const name = fc.constantFrom('sse', 'poll', 'iframe', 'publish', 'ws', '', 'nope', 'publish/', '..', '%2e%2e')
const queryPart = fc.oneof(
  fc.constantFrom('cursor', 'hold', 'session', 'origin', 'rid'),
  fc.string({ maxLength: 20 }),
)
const queryValue = fc.oneof(
  fc.constantFrom('c', 'c=abc-1', 'a,b,c', 'a,a', 'x=-1', '0', '99999999999', 'http://127.0.0.1', ''),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
)
const query = fc.array(fc.tuple(queryPart, queryValue), { maxLength: 4 }).map((pairs) => new URLSearchParams(pairs).toString())
const headerValue = fc.oneof(
  fc.constantFrom('application/json', 'text/plain', 'application/x+json; charset=utf-8', 'Bearer deny', 'Bearer ok', 'c=zz-1'),
  fc.stringMatching(/^[\x20-\x7e]{0,100}$/),
)
const headers = fc.record(
  {
    'content-type': headerValue,
    authorization: headerValue,
    'last-event-id': headerValue,
    origin: headerValue,
    'x-forwarded-proto': headerValue,
  },
  { requiredKeys: [] },
)
const body = fc.oneof(
  fc.constant(''),
  fc.json().map((json) => json),
  fc.record({ channel: fc.oneof(fc.constant('c'), fc.string()), data: fc.jsonValue(), key: fc.string(), rid: fc.string() }).map((frame) =>
    JSON.stringify(frame),
  ),
  fc.string({ maxLength: 3000 }),
)

/** Sends one request and resolves with its status (0 when the server closed the socket without one). */
function send(method: string, path: string, requestHeaders: Record<string, string>, requestBody: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port: Number(new URL(server.directUrl).port), method, path, headers: requestHeaders },
      (res) => {
        const status = res.statusCode ?? 0
        // Streams (SSE, iframe) answer 200 and stay open: the status is the answer.
        res.destroy()
        resolve(status)
      },
    )
    req.on('error', () => resolve(0))
    req.setTimeout(5000, () => req.destroy())
    req.end(requestBody)
  })
}

describe('fuzz: HTTP endpoints', () => {
  it('answers any request with a status, and keeps nothing for it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE'),
        name,
        query,
        headers,
        body,
        async (method, endpoint, search, requestHeaders, requestBody) => {
          const status = await send(method, `/push/${endpoint}${search ? `?${search}` : ''}`, requestHeaders, requestBody)
          expect(status === 0 || (status >= 200 && status < 600)).toBe(true)
          expect(status).not.toBe(500)
        },
      ),
      { numRuns: RUNS },
    )
    await waitFor(() => server.push.stats().connections === 0, 'every fuzzed connection to be gone')
    expect(server.push.stats()).toEqual({ connections: 0, channels: 0, subscriptions: 0 })
    expect(unhandled).toEqual([])
  }, 120_000)
})

describe('fuzz: WebSocket frames', () => {
  it('answers or ignores any text frame, and the connection keeps working', async () => {
    const client = await connect(server)
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.json(), fc.string({ maxLength: 500 }), fc.constantFrom('{"type":"pong"}', '{"type":"subscribe","channel":"f"}')), {
          maxLength: 5,
        }),
        async (frames) => {
          for (const frame of frames) client.send(frame)
          // Still serving: a publish gets its ack.
          const rid = `probe-${Math.random()}`
          client.send({ type: 'publish', rid, channel: 'probe', data: 1 })
          await waitFor(() => client.frames.some((f) => f.type === 'ack' && f.rid === rid), 'the probe ack', 5000)
        },
      ),
      { numRuns: RUNS },
    )
    await client.close()
    const other = await FrameClient.open(server.wsUrl)
    await other.nextOf('hello')
    await other.close()
    expect(unhandled).toEqual([])
  }, 120_000)
})
