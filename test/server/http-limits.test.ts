import { afterEach, describe, expect, it, vi } from 'vitest'
import { WebSocket } from 'ws'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { AddressRates, ConnectionLimits, PollSessions } from '../../src/server/policy/limits.js'
import { cleanup, startPushFixture } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

// Connection limits for polls (a session counts as one connection while it polls) and the rate
// limits of the HTTP endpoints (issue 11). Date is frozen where a test counts tokens, so no refill
// happens while it runs.

afterEach(async () => {
  vi.useRealTimers()
  await cleanup()
})

const freezeDate = () => vi.useFakeTimers({ toFake: ['Date'] })

interface Answer {
  status: number
  retryAfter: string | null
  frames: ServerFrame[]
}

/** One poll (short: hold=0) with the cursor, and the session if given. */
async function poll(server: PushFixture, cursor: string, session?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const query = new URLSearchParams({ cursor, hold: '0' })
  if (session !== undefined) query.set('session', session)
  const res = await fetch(`${server.directUrl}/poll?${query}`, { headers })
  const text = await res.text()
  const frames = text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ServerFrame)
  return { status: res.status, retryAfter: res.headers.get('retry-after'), frames }
}

/** A first poll: its session, from `hello`. */
async function pollSession(server: PushFixture, cursor = 'c', headers: Record<string, string> = {}): Promise<string> {
  const answer = await poll(server, cursor, undefined, headers)
  const hello = answer.frames.find((frame) => frame.type === 'hello')
  if (answer.status !== 200 || hello?.type !== 'hello') throw new Error(`no hello: ${answer.status} ${JSON.stringify(answer.frames)}`)
  return hello.session
}

/** Checks a refusal: the status, `Retry-After` in whole seconds, and the same hint as `retryMs` in the error frame. */
function expectRefusal(answer: Answer, status: number, message: string): void {
  expect(answer.status).toBe(status)
  const [frame] = answer.frames
  expect(frame).toMatchObject({ type: 'error', code: 'RATE_LIMITED', message })
  const retryMs = frame?.type === 'error' ? frame.retryMs : undefined
  expect(retryMs).toBeGreaterThan(0)
  expect(Number(answer.retryAfter)).toBe(Math.max(1, Math.ceil((retryMs as number) / 1000)))
}

/** A poll answered with frames (200) or nothing new (204). */
function expectAdmitted(answer: Answer): void {
  expect([200, 204]).toContain(answer.status)
}

function openWebSocket(url: string): Promise<ServerFrame> {
  const ws = new WebSocket(url, ['pushline.v1'])
  ws.on('error', () => {})
  return new Promise((resolve) =>
    ws.once('message', (data) => {
      resolve(JSON.parse(String(data)) as ServerFrame)
      ws.terminate()
    }),
  )
}

describe('PollSessions', () => {
  it('holds one place per session while it polls, and frees it once idle for idleMs', () => {
    vi.useFakeTimers()
    const limits = new ConnectionLimits({ maxConnections: 2, maxConnectionsPerIp: 2, maxConnectsPerSecond: 100 })
    const sessions = new PollSessions(limits, 30_000)
    const first = sessions.admit(undefined, 'a')
    if (!first.ok) throw new Error('refused')
    first.place.bind('s1')
    first.place.end()
    expect(limits.open).toBe(1)
    // Its next poll, 29 s later, uses the same place, and restarts the idle time when it ends.
    vi.advanceTimersByTime(29_000)
    const again = sessions.admit('s1', 'a')
    if (!again.ok) throw new Error('refused')
    expect(limits.open).toBe(1)
    again.place.end()
    vi.advanceTimersByTime(29_000)
    expect(limits.open).toBe(1)
    vi.advanceTimersByTime(1000)
    expect([limits.open, sessions.size]).toEqual([0, 0])
    // A session the server forgot takes a new place, under its own id.
    const forgotten = sessions.admit('s1', 'a')
    expect(forgotten.ok).toBe(true)
    expect([limits.open, sessions.size]).toEqual([1, 1])
    // A first poll that fails before it has a session frees its place at once.
    const failed = sessions.admit(undefined, 'a')
    if (!failed.ok) throw new Error('refused')
    expect(limits.open).toBe(2)
    expect(sessions.admit(undefined, 'b')).toMatchObject({ ok: false, message: 'too many connections' })
    failed.place.end()
    expect(limits.open).toBe(1)
    sessions.close()
    expect(limits.open).toBe(0)
  })

  it('charges a poll for its channels when its session is new or its channels changed', () => {
    const limits = new ConnectionLimits({ maxConnections: 10, maxConnectionsPerIp: 10, maxConnectsPerSecond: 100 })
    const sessions = new PollSessions(limits, 1000)
    const first = sessions.admit(undefined, 'a')
    if (!first.ok) throw new Error('refused')
    expect(first.place.charges(['x', 'y'])).toBe(true)
    first.place.bind('s')
    first.place.end()
    const same = sessions.admit('s', 'a')
    if (!same.ok) throw new Error('refused')
    expect(same.place.charges(['x', 'y'])).toBe(false)
    same.place.end()
    const other = sessions.admit('s', 'a')
    if (!other.ok) throw new Error('refused')
    expect(other.place.charges(['x', 'z'])).toBe(true)
    sessions.close()
  })
})

describe('AddressRates', () => {
  it('keeps buckets per address, and forgets full ones first when it reaches its size', () => {
    const rates = new AddressRates(
      { subscribesPerSecond: 1, subscribeBurst: 1, publishesPerSecond: 1, publishBurst: 1, receiveBytesPerSecond: 1, receiveBurst: 1 },
      4,
    )
    expect(rates.of('a', 0).publishes.take(1, 0)).toBe(true)
    expect(rates.of('a', 0).publishes.take(1, 0)).toBe(false)
    for (const address of ['b', 'c', 'd']) rates.of(address, 0)
    expect(rates.size).toBe(4)
    // Full: the idle ones (b, c, d) go, `a` still owes and stays.
    rates.of('e', 0)
    expect(rates.size).toBe(2)
    expect(rates.of('a', 0).publishes.take(1, 0)).toBe(false)
  })
})

describe('connection limits count polls', () => {
  it('a poll session takes a place as a connection does: past maxConnections a first poll is 503, its session polls on', async () => {
    const server = await startPushFixture({ maxConnections: 2 })
    const one = await pollSession(server)
    await pollSession(server)
    expectRefusal(await poll(server, 'c'), 503, 'too many connections')
    // A WebSocket finds no place either.
    expect(await openWebSocket(server.wsUrl)).toMatchObject({ type: 'close', code: 'RATE_LIMITED' })
    // The sessions that have a place keep polling.
    for (let i = 0; i < 5; i++) expectAdmitted(await poll(server, 'c', one))
  })

  it('counts poll sessions per client address', async () => {
    const server = await startPushFixture({
      maxConnectionsPerIp: 1,
      clientIp: (req) => String(req.headers['x-client'] ?? req.socket.remoteAddress),
    })
    const alice = await pollSession(server, 'c', { 'X-Client': 'alice' })
    expectRefusal(await poll(server, 'c', undefined, { 'X-Client': 'alice' }), 503, 'too many connections from this address')
    // A session this server does not know is a new one: refused too.
    expectRefusal(await poll(server, 'c', 'made-up', { 'X-Client': 'alice' }), 503, 'too many connections from this address')
    expectAdmitted(await poll(server, 'c', alice, { 'X-Client': 'alice' }))
    await pollSession(server, 'c', { 'X-Client': 'bob' })
  })

  it('new poll sessions take from maxConnectsPerSecond; the polls of a session do not', async () => {
    const server = await startPushFixture({ maxConnectsPerSecond: 3 })
    freezeDate()
    const sessions = [await pollSession(server), await pollSession(server), await pollSession(server)]
    expectRefusal(await poll(server, 'c'), 503, 'too many new connections')
    for (const session of sessions) expectAdmitted(await poll(server, 'c', session))
  })

  it('refuses an iframe stream with a document that posts a close frame RATE_LIMITED with retryMs', async () => {
    const server = await startPushFixture({ maxConnections: 1 })
    await pollSession(server)
    const origin = new URL(server.directUrl).origin
    const res = await fetch(`${server.directUrl}/iframe?cursor=c&origin=${encodeURIComponent(origin)}`)
    expect(res.status).toBe(503)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await res.text()
    const argument = /f\(("(?:[^"\\]|\\.)*")\)<\/script>\s*$/.exec(html)?.[1]
    const frame = JSON.parse(JSON.parse(argument as string) as string) as ServerFrame
    expect(frame).toMatchObject({ type: 'close', code: 'RATE_LIMITED', message: 'too many connections' })
    expect(frame.type === 'close' && frame.retryMs).toBeGreaterThanOrEqual(1000)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })
})

describe('rate limits of the HTTP endpoints, per client address', () => {
  const publish = (server: PushFixture, rid: string, data: unknown = rid) =>
    fetch(`${server.directUrl}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'c', rid, data }),
    }).then(async (res) => ({
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      frames: [(await res.json()) as ServerFrame],
    }))

  it('answers HTTP publishes past maxPublishesPerSecond with 429 RATE_LIMITED, Retry-After and retryMs', async () => {
    const server = await startPushFixture({ maxPublishesPerSecond: 3 })
    freezeDate()
    // Burst: twice the rate.
    for (let i = 0; i < 6; i++) expect((await publish(server, `p${i}`)).status).toBe(200)
    expectRefusal(await publish(server, 'p6'), 429, 'too many publishes per second')
  })

  it('answers the HTTP publish after one over maxReceiveBytesPerSecond with 429 until the debt is paid', async () => {
    const server = await startPushFixture({ maxReceiveBytesPerSecond: 1000, maxFrameBytes: 8192 })
    freezeDate()
    // The burst is 4 × maxFrameBytes: this one is taken, and puts the address in debt.
    expect((await publish(server, 'big', 'b'.repeat(8000 * 4))).status).toBe(413)
    for (let i = 0; i < 5; i++) expect((await publish(server, `p${i}`, 'b'.repeat(8000))).status).toBe(200)
    const refused = await publish(server, 'next')
    expectRefusal(refused, 429, 'too many bytes per second')
    const frame = refused.frames[0]
    // In debt by ~8 KB at 1 KB/s: the hint says so.
    expect(frame?.type === 'error' && frame.retryMs).toBeGreaterThan(5000)
  })

  it('charges the channels of an SSE cursor as subscribes (maxSubscribesPerSecond)', async () => {
    const server = await startPushFixture({ maxSubscribesPerSecond: 2, maxSubscriptions: 2 })
    freezeDate()
    const streams: AbortController[] = []
    const open = async () => {
      const controller = new AbortController()
      streams.push(controller)
      const res = await fetch(`${server.directUrl}/sse?cursor=a,b`, { signal: controller.signal })
      if (res.status === 200) return { status: 200, retryAfter: null, frames: [] }
      return { status: res.status, retryAfter: res.headers.get('retry-after'), frames: [(await res.json()) as ServerFrame] }
    }
    // Burst: twice the rate, 4: two streams of two channels.
    expect((await open()).status).toBe(200)
    expect((await open()).status).toBe(200)
    expectRefusal(await open(), 429, 'too many subscribes per second')
    for (const controller of streams) controller.abort()
  })

  it('charges the channels of a poll session once, and again when they change', async () => {
    const server = await startPushFixture({ maxSubscribesPerSecond: 2, maxSubscriptions: 2 })
    freezeDate()
    const session = await pollSession(server, 'a,b')
    // The same channels, polled on: free.
    for (let i = 0; i < 5; i++) expectAdmitted(await poll(server, 'a,b', session))
    // Other channels in the session: charged (2 of the 2 left).
    expectAdmitted(await poll(server, 'a,c', session))
    expectRefusal(await poll(server, 'a,b', session), 429, 'too many subscribes per second')
    expectRefusal(await poll(server, 'a'), 429, 'too many subscribes per second')
  })
})
