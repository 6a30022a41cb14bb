import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient, PushError, negotiate, websocket, type PushClientOptions, type PushMessage } from '../../src/index.js'
import { fakeWebSockets, flush, hello, memoryStorage, useFakeTimers, message } from './fakes.js'

const URL_BASE = 'http://push.test/push'

function setup(options: Partial<PushClientOptions> = {}) {
  const ws = fakeWebSockets()
  const client = new PushClient({
    url: URL_BASE,
    storage: memoryStorage(),
    transports: [websocket()],
    WebSocket: ws.WebSocket,
    // Jitter at its maximum, so delays are predictable.
    random: () => 1,
    ...options,
  })
  const log = { states: [] as string[], transports: [] as string[], errors: [] as PushError[] }
  client.on('state', (state) => log.states.push(state))
  client.on('transport', (name) => log.transports.push(name))
  client.on('error', (error) => log.errors.push(error))
  /** Connects and completes the handshake on a fresh socket. */
  const open = (overrides: Parameters<typeof hello>[0] = {}) => {
    if (client.state === 'idle' || client.state === 'closed') client.connect()
    ws.last.accept()
    ws.last.receive(hello(overrides))
    expect(client.state).toBe('open')
    return ws.last
  }
  /** Runs the clock until the client made its next socket (reconnect delays grow with each attempt). */
  const nextSocket = () => {
    const count = ws.sockets.length
    for (let ms = 0; ms < 60_000 && ws.sockets.length === count; ms++) vi.advanceTimersByTime(1)
  }
  return { client, ws, log, open, nextSocket, codes: () => log.errors.map((error) => error.code) }
}


beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('handshake', () => {
  it('is open only once hello arrived through the transport', () => {
    const { client, ws, log } = setup()
    expect(client.state).toBe('idle')
    client.connect()
    expect(client.state).toBe('connecting')
    expect(ws.last.url).toBe('ws://push.test/push/ws')
    expect(ws.last.protocols).toEqual(['pushline.v1'])
    ws.last.accept()
    expect(client.state).toBe('connecting')
    expect(client.transport).toBeUndefined()
    ws.last.receive(hello())
    expect(client.state).toBe('open')
    expect(client.transport).toBe('websocket')
    expect(log.states).toEqual(['connecting', 'open'])
    expect(log.transports).toEqual(['websocket'])
  })

  it('fails the attempt when hello does not arrive in time, then retries', () => {
    const { client, ws, codes, log } = setup({ handshakeTimeoutMs: 3000 })
    client.connect()
    ws.last.accept()
    vi.advanceTimersByTime(2999)
    expect(codes()).toEqual([])
    vi.advanceTimersByTime(1)
    expect(codes()).toEqual(['HANDSHAKE_TIMEOUT'])
    expect(ws.last.closedWith).toBe(1000)
    expect(ws.last.onmessage).toBeNull()
    expect(client.state).toBe('reconnecting')
    // attempt 0 waits up to initialDelayMs (500) with full jitter; random() = 1 → 500
    vi.advanceTimersByTime(499)
    expect(ws.sockets).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(ws.sockets).toHaveLength(2)
    expect(log.states).toEqual(['connecting', 'reconnecting'])
    ws.last.accept()
    ws.last.receive(hello())
    expect(log.states).toEqual(['connecting', 'reconnecting', 'open'])
  })

  it('treats frames other than hello before hello as a protocol error', () => {
    const { client, ws, codes } = setup()
    client.connect()
    ws.last.accept()
    ws.last.receive({ type: 'ping' })
    expect(codes()).toEqual(['PROTOCOL_ERROR'])
    expect(client.state).toBe('reconnecting')
  })

  it('rejects a hello of another protocol version', () => {
    const { client, ws, codes } = setup()
    client.connect()
    ws.last.receive(hello({ v: 2 }))
    expect(codes()).toEqual(['PROTOCOL_ERROR'])
    expect(client.state).toBe('reconnecting')
  })

  it('offers the token as a base64url subprotocol, never in the URL', () => {
    const { client, ws } = setup({ token: 'tök?/+' })
    client.connect()
    const encoded = Buffer.from('tök?/+').toString('base64url')
    expect(ws.last.protocols).toEqual(['pushline.v1', `pushline.auth.${encoded}`])
    expect(ws.last.url).not.toContain(encoded)
  })

  it('asks a token function before every attempt, waiting for a promise', async () => {
    let n = 0
    const token = vi.fn(async () => `t${++n}`)
    const { client, ws } = setup({ token })
    client.connect()
    expect(ws.sockets).toHaveLength(0)
    await flush()
    expect(ws.last.protocols[1]).toBe(`pushline.auth.${Buffer.from('t1').toString('base64url')}`)
    ws.last.drop()
    vi.advanceTimersByTime(500)
    await flush()
    expect(token).toHaveBeenCalledTimes(2)
    expect(ws.last.protocols[1]).toBe(`pushline.auth.${Buffer.from('t2').toString('base64url')}`)
  })

  it('reports a failing token function and retries', async () => {
    const { client, ws, codes } = setup({ token: () => Promise.reject(new Error('auth server down')) })
    client.connect()
    await flush()
    expect(codes()).toEqual(['UNAUTHORIZED'])
    expect(ws.sockets).toHaveLength(0)
    expect(client.state).toBe('reconnecting')
  })

  it('reports WebSocket close code 4401 as UNAUTHORIZED and keeps trying', () => {
    const { client, open, codes, log } = setup()
    open().drop(4401, 'bad token')
    expect(codes()).toEqual(['UNAUTHORIZED'])
    expect(log.errors[0]?.closeCode).toBe(4401)
    expect(client.state).toBe('reconnecting')
  })

  it('carries the close code of an abnormal close as closeCode, and no HTTP status', () => {
    const { open, log } = setup()
    open().drop(1006)
    expect(log.errors.map(({ code, closeCode, status }) => ({ code, closeCode, status }))).toEqual([
      { code: 'TRANSPORT_FAILED', closeCode: 1006, status: undefined },
    ])
  })

  it('reconnects quietly after a normal close, with an error for an abnormal one', () => {
    const { client, ws, open, codes, nextSocket } = setup()
    open().drop(1001)
    expect(codes()).toEqual([])
    expect(client.state).toBe('reconnecting')
    nextSocket()
    open()
    ws.last.drop(1006)
    expect(codes()).toEqual(['TRANSPORT_FAILED'])
  })
})

describe('transport fallback', () => {
  it('does not try the next transport for a refused token', () => {
    const ws = fakeWebSockets()
    const other = fakeWebSockets()
    const client = new PushClient({
      url: URL_BASE,
      storage: memoryStorage(),
      // A fallback that negotiates, as sse() would: it must not be tried for a refused token.
      transports: [websocket(), { name: 'sse', negotiate, create: (context) => websocket().create({ ...context, platform: { WebSocket: other.WebSocket } }) }],
      WebSocket: ws.WebSocket,
    })
    client.connect()
    ws.last.drop(4401)
    expect(other.sockets).toHaveLength(0)
    expect(client.state).toBe('reconnecting')
    client.close()
  })

  it('is a no-op to connect() while connecting or open', () => {
    const { client, ws, open } = setup()
    client.connect()
    client.connect()
    expect(ws.sockets).toHaveLength(1)
    open()
    client.connect()
    expect(ws.sockets).toHaveLength(1)
  })
})

describe('liveness', () => {
  it('answers ping with pong', () => {
    const { open } = setup()
    const socket = open()
    socket.receive({ type: 'ping' })
    expect(socket.framesOf('pong')).toHaveLength(1)
  })

  it('drops a link that went silent past heartbeatMs + grace, even if the socket looks open', () => {
    const { client, ws, open, codes, nextSocket } = setup({ heartbeatGraceMs: 2000 })
    const socket = open({ heartbeatMs: 1000 })
    // Traffic keeps it alive past several deadlines.
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(2500)
      socket.receive({ type: 'ping' })
    }
    expect(client.state).toBe('open')
    vi.advanceTimersByTime(2999)
    expect(client.state).toBe('open')
    vi.advanceTimersByTime(1)
    expect(codes()).toEqual(['HEARTBEAT_TIMEOUT'])
    expect(client.state).toBe('reconnecting')
    expect(socket.closedWith).toBe(1000)
    nextSocket()
    expect(ws.sockets).toHaveLength(2)
  })

  it('judges by the clock, so a late timer does not kill a link that had traffic', () => {
    let now = 0
    const scheduled: { at: number; run: () => void }[] = []
    const timers = {
      setTimeout: (run: () => void, ms: number) => {
        const entry = { at: now + ms, run }
        scheduled.push(entry)
        return entry
      },
      clearTimeout: (entry: unknown) => {
        const index = scheduled.indexOf(entry as (typeof scheduled)[number])
        if (index >= 0) scheduled.splice(index, 1)
      },
      now: () => now,
    }
    const { client, open } = setup({ timers, heartbeatGraceMs: 2000 })
    const socket = open({ heartbeatMs: 1000 })
    const liveness = scheduled.find((entry) => entry.at === 3000)
    expect(liveness).toBeDefined()
    // The timer is throttled: it fires 60 s late, but a frame arrived just before.
    now = 62_000
    socket.receive({ type: 'ping' })
    scheduled.splice(scheduled.indexOf(liveness!), 1)
    liveness!.run()
    expect(client.state).toBe('open')
    expect(scheduled.some((entry) => entry.at === 65_000)).toBe(true)
  })
})

describe('subscriptions', () => {
  it('sends subscriptions made before connect once open', () => {
    const { client, open } = setup()
    const sub = client.subscribe('orders')
    expect(sub.channel).toBe('orders')
    const socket = open()
    expect(socket.framesOf('subscribe')).toEqual([{ type: 'subscribe', channel: 'orders', rid: expect.any(String) }])
  })

  it('resubscribes with since = its position after a reconnect, and drops duplicates', () => {
    const { client, ws, open, nextSocket } = setup()
    const received: PushMessage[] = []
    client.subscribe('orders', (msg) => received.push(msg))
    const first = open()
    const [subscribe] = first.framesOf('subscribe')
    first.receive({ type: 'subscribed', channel: 'orders', rid: subscribe!.rid, epoch: 'ep1', offset: 5 })
    first.receive(message('orders', 'ep1', 6), message('orders', 'ep1', 7))
    first.drop(1006)
    nextSocket()
    const second = open()
    const [resubscribe] = second.framesOf('subscribe')
    expect(resubscribe).toMatchObject({ channel: 'orders', since: 'ep1-7' })
    // The server resumes from an older position: the replay of 6 and 7 is dropped.
    second.receive({ type: 'subscribed', channel: 'orders', rid: resubscribe!.rid, epoch: 'ep1', offset: 5 })
    second.receive(message('orders', 'ep1', 6), message('orders', 'ep1', 7), message('orders', 'ep1', 8))
    second.receive(message('orders', 'ep1', 8))
    expect(received.map((msg) => msg.offset)).toEqual([6, 7, 8])
    expect(received[0]).toEqual({ channel: 'orders', event: 'message', data: 6, offset: 6, id: 'ep1-6' })
  })

  it('keeps subscriptions made during an outage', () => {
    const { client, ws, open, nextSocket } = setup()
    open().drop(1006)
    client.subscribe('late')
    expect(ws.last.framesOf('subscribe')).toEqual([])
    nextSocket()
    expect(open().framesOf('subscribe')).toMatchObject([{ channel: 'late' }])
  })

  it('reports a subscribed with gap, a gap frame, and a skipped offset as gaps, then goes on', () => {
    const { client, ws, open, nextSocket } = setup()
    const gaps: unknown[] = []
    const received: number[] = []
    const sub = client.subscribe('news', (msg) => received.push(msg.offset))
    sub.on('gap', (gap) => gaps.push(gap))
    const first = open()
    first.receive({ type: 'subscribed', channel: 'news', epoch: 'a', offset: 1 })
    first.receive(message('news', 'a', 2))
    first.drop()
    nextSocket()
    const second = open()
    second.receive({ type: 'subscribed', channel: 'news', epoch: 'a', offset: 15, gap: 'history-exhausted' })
    second.receive(message('news', 'a', 16))
    second.receive({ type: 'gap', channel: 'news', reason: 'history-exhausted', epoch: 'a', offset: 20 })
    second.receive(message('news', 'a', 21))
    // Offsets 22 and 23 skipped without a gap frame: reported by the client.
    second.receive(message('news', 'a', 24))
    // Another epoch without a gap frame.
    second.receive(message('news', 'b', 1))
    expect(gaps).toEqual([
      { channel: 'news', reason: 'history-exhausted', from: 'a-2', to: 'a-15' },
      { channel: 'news', reason: 'history-exhausted', from: 'a-16', to: 'a-20' },
      { channel: 'news', reason: 'history-exhausted', from: 'a-21', to: 'a-23' },
      { channel: 'news', reason: 'epoch-changed', from: 'a-24', to: 'b-0' },
    ])
    expect(received).toEqual([2, 16, 21, 24, 1])
    expect(ws.sockets).toHaveLength(2)
  })

  it('reports an epoch change on resubscribe', () => {
    const { client, open, nextSocket } = setup()
    const gaps: unknown[] = []
    client.subscribe('config').on('gap', (gap) => gaps.push(gap))
    const first = open()
    first.receive({ type: 'subscribed', channel: 'config', epoch: 'old', offset: 3 })
    first.drop()
    nextSocket()
    open().receive({ type: 'subscribed', channel: 'config', epoch: 'new', offset: 0, gap: 'epoch-changed' })
    expect(gaps).toEqual([{ channel: 'config', reason: 'epoch-changed', from: 'old-3', to: 'new-0' }])
  })

  it('shares one server subscription between subscribe() calls of a channel', () => {
    const { client, open } = setup()
    const socket = open()
    const a: number[] = []
    const b: number[] = []
    const subA = client.subscribe('chat', (msg) => a.push(msg.offset))
    const subB = client.subscribe('chat', (msg) => b.push(msg.offset))
    expect(socket.framesOf('subscribe')).toHaveLength(1)
    socket.receive({ type: 'subscribed', channel: 'chat', epoch: 'e', offset: 0 })
    socket.receive(message('chat', 'e', 1))
    subA.unsubscribe()
    subA.unsubscribe()
    expect(subA.active).toBe(false)
    expect(socket.framesOf('unsubscribe')).toHaveLength(0)
    socket.receive(message('chat', 'e', 2))
    subB.unsubscribe()
    expect(socket.framesOf('unsubscribe')).toEqual([{ type: 'unsubscribe', channel: 'chat' }])
    socket.receive(message('chat', 'e', 3))
    expect(a).toEqual([1])
    expect(b).toEqual([1, 2])
  })

  it('ignores the answer to an older subscribe of a channel subscribed again', () => {
    const { client, open } = setup()
    const socket = open()
    const gaps: unknown[] = []
    client.subscribe('x').unsubscribe()
    client.subscribe('x').on('gap', (gap) => gaps.push(gap))
    const [first, second] = socket.framesOf('subscribe')
    socket.receive({ type: 'subscribed', channel: 'x', rid: first!.rid, epoch: 'e', offset: 10 })
    socket.receive({ type: 'subscribed', channel: 'x', rid: second!.rid, epoch: 'e', offset: 12 })
    expect(gaps).toEqual([])
  })

  it("emits 'subscribed' with the position delivery continues after", () => {
    const { client, open } = setup()
    const seen: unknown[] = []
    client.subscribe('orders').on('subscribed', (info) => seen.push(info))
    const socket = open()
    socket.receive({ type: 'subscribed', channel: 'orders', rid: socket.framesOf('subscribe')[0]!.rid, epoch: 'e', offset: 4 })
    expect(seen).toEqual([{ channel: 'orders', position: 'e-4' }])
  })

  it('throws INVALID_CHANNEL for a malformed channel name', () => {
    const { client } = setup()
    expect(() => client.subscribe('no spaces')).toThrow(expect.objectContaining({ code: 'INVALID_CHANNEL' }))
  })

  it('routes a refused subscribe to the subscription and drops it', () => {
    const { client, ws, open, codes, nextSocket } = setup()
    const sub = client.subscribe('secret')
    const errors: string[] = []
    sub.on('error', (error) => errors.push(error.code))
    const socket = open()
    const [subscribe] = socket.framesOf('subscribe')
    socket.receive({ type: 'error', code: 'SUBSCRIBE_REJECTED', message: 'no', channel: 'secret', rid: subscribe!.rid })
    expect(errors).toEqual(['SUBSCRIBE_REJECTED'])
    expect(sub.active).toBe(false)
    expect(codes()).toEqual([])
    socket.drop()
    nextSocket()
    expect(open().framesOf('subscribe')).toEqual([])
    expect(ws.sockets).toHaveLength(2)
  })

  it('passes an error about a live channel to its subscription, and others to the client', () => {
    const { client, open, codes } = setup()
    const sub = client.subscribe('live')
    const errors: string[] = []
    sub.on('error', (error) => errors.push(error.code))
    const socket = open()
    socket.receive({ type: 'subscribed', channel: 'live', epoch: 'e', offset: 0 })
    socket.receive({ type: 'error', code: 'INTERNAL', message: 'oops', channel: 'live' })
    socket.receive({ type: 'error', code: 'BAD_FRAME', message: 'what?' })
    expect(errors).toEqual(['INTERNAL'])
    expect(sub.active).toBe(true)
    expect(codes()).toEqual(['BAD_FRAME'])
    expect(client.state).toBe('open')
  })

  it('is async-iterable; breaking out unsubscribes', async () => {
    const { client, open } = setup()
    const socket = open()
    const sub = client.subscribe<number>('jobs')
    const seen: number[] = []
    const loop = (async () => {
      for await (const msg of sub) {
        seen.push(msg.data)
        if (seen.length === 3) break
      }
    })()
    socket.receive({ type: 'subscribed', channel: 'jobs', epoch: 'e', offset: 0 })
    socket.receive(message('jobs', 'e', 1, 10), message('jobs', 'e', 2, 20))
    await flush()
    socket.receive(message('jobs', 'e', 3, 30), message('jobs', 'e', 4, 40))
    await loop
    expect(seen).toEqual([10, 20, 30])
    expect(sub.active).toBe(false)
    expect(socket.framesOf('unsubscribe')).toEqual([{ type: 'unsubscribe', channel: 'jobs' }])
  })

  it('ends iteration with the error of a refused subscribe', async () => {
    const { client, open } = setup()
    const socket = open()
    const iterator = client.subscribe('nope')[Symbol.asyncIterator]()
    const next = iterator.next()
    socket.receive({ type: 'error', code: 'SUBSCRIBE_REJECTED', message: 'no', channel: 'nope' })
    await expect(next).rejects.toMatchObject({ code: 'SUBSCRIBE_REJECTED' })
  })
})

describe('frames on the wire', () => {
  it('splits a WebSocket message into its LF-separated frames', () => {
    const { client, open } = setup()
    const received: number[] = []
    client.subscribe('batch', (msg) => received.push(msg.offset))
    const socket = open()
    socket.receiveRaw(
      [
        { type: 'subscribed', channel: 'batch', epoch: 'e', offset: 0 },
        message('batch', 'e', 1),
        { type: 'some-future-frame', x: 1 },
        message('batch', 'e', 2),
      ]
        .map((frame) => JSON.stringify(frame))
        .join('\n'),
    )
    expect(received).toEqual([1, 2])
  })

  it('drops and reconnects on a malformed frame', () => {
    const { client, ws, open, codes, nextSocket } = setup()
    const socket = open()
    socket.receiveRaw('{"type":"message","channel":"x"}\n{"type":"ping"}')
    expect(codes()).toEqual(['PROTOCOL_ERROR'])
    expect(socket.closedWith).toBe(1000)
    expect(client.state).toBe('reconnecting')
    nextSocket()
    expect(ws.sockets).toHaveLength(2)
  })

  it('treats a binary message as a protocol error', () => {
    const { open, codes } = setup()
    open().receiveRaw(new Uint8Array([1, 2]))
    expect(codes()).toEqual(['PROTOCOL_ERROR'])
  })
})

describe('reconnect', () => {
  it('backs off with full jitter, capped, and resets after a stable connection', () => {
    const attempts: number[] = []
    const { client, ws, open } = setup({
      reconnect: {
        resetAfterMs: 5000,
        retryDelayMs: (attempt) => {
          attempts.push(attempt)
          return 100
        },
      },
    })
    client.connect()
    for (let i = 0; i < 3; i++) {
      ws.last.drop()
      vi.advanceTimersByTime(100)
    }
    expect(attempts).toEqual([0, 1, 2])
    // Open briefly: the counter keeps growing.
    open().drop()
    expect(attempts).toEqual([0, 1, 2, 3])
    vi.advanceTimersByTime(100)
    // Open long enough: it resets.
    const socket = open()
    vi.advanceTimersByTime(5000)
    socket.receive({ type: 'ping' })
    socket.drop()
    expect(attempts).toEqual([0, 1, 2, 3, 0])
  })

  it('waits with the default backoff: random in [0, min(max, initial * 2^n)]', () => {
    const { client, ws } = setup({ reconnect: { initialDelayMs: 100, maxDelayMs: 350 }, random: () => 0.5 })
    client.connect()
    const waits: number[] = []
    for (let i = 0; i < 4; i++) {
      ws.last.drop()
      const before = ws.sockets.length
      let waited = 0
      while (ws.sockets.length === before) {
        vi.advanceTimersByTime(1)
        waited++
      }
      waits.push(waited)
    }
    expect(waits).toEqual([50, 100, 175, 175])
  })

  it("honours a close frame's retryMs: waits it, then the backoff's jitter", () => {
    const { client, ws, open, codes, log } = setup()
    const socket = open()
    socket.receive({ type: 'close', code: 'SERVER_SHUTDOWN', message: 'bye', retryMs: 4000 })
    expect(codes()).toEqual(['SERVER_SHUTDOWN'])
    expect(log.errors[0]?.retryMs).toBe(4000)
    expect(socket.closedWith).toBe(1000)
    expect(client.state).toBe('reconnecting')
    // 4000 ms, then attempt 0's backoff: 500 ms with the jitter at its maximum.
    vi.advanceTimersByTime(4499)
    expect(ws.sockets).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(ws.sockets).toHaveLength(2)
  })

  it('leaves no handlers on the sockets it dropped', () => {
    const { ws, open, nextSocket } = setup()
    for (let i = 0; i < 3; i++) {
      open().drop()
      nextSocket()
    }
    for (const socket of ws.sockets.slice(0, -1)) {
      expect([socket.onmessage, socket.onclose, socket.onopen]).toEqual([null, null, null])
    }
  })
})

describe('publish', () => {
  it('resolves with the ack', async () => {
    const { client, open } = setup()
    const socket = open()
    const result = client.publish('chat', { text: 'hi' }, { event: 'say' })
    const [frame] = socket.framesOf('publish')
    expect(frame).toMatchObject({ channel: 'chat', event: 'say', data: { text: 'hi' }, key: expect.any(String) })
    socket.receive({ type: 'ack', rid: frame!.rid, channel: 'chat', offset: 4, id: 'e-4' })
    await expect(result).resolves.toEqual({ channel: 'chat', offset: 4, id: 'e-4' })
  })

  it('rejects with the code of an error frame carrying its rid', async () => {
    const { client, open } = setup()
    const socket = open()
    const result = client.publish('locked', 1)
    socket.receive({ type: 'error', code: 'PUBLISH_REJECTED', message: 'read-only', rid: socket.framesOf('publish')[0]!.rid })
    await expect(result).rejects.toMatchObject({ name: 'PushError', code: 'PUBLISH_REJECTED' })
    expect(client.state).toBe('open')
  })

  it('waits during an outage and resends after a lost ack with the same key', async () => {
    const { client, ws, open, nextSocket } = setup({ publishTimeoutMs: 60_000 })
    open().drop()
    const result = client.publish('orders', { n: 1 })
    nextSocket()
    const second = open()
    const [sent] = second.framesOf('publish')
    expect(sent).toBeDefined()
    // The ack is lost with the connection.
    second.drop()
    nextSocket()
    const third = open()
    const [resent] = third.framesOf('publish')
    expect(resent).toEqual(sent)
    third.receive({ type: 'ack', rid: resent!.rid, channel: 'orders', offset: 1, id: 'e-1' })
    await expect(result).resolves.toMatchObject({ offset: 1 })
    expect(ws.sockets).toHaveLength(3)
  })

  it('holds a publish to a channel until its subscribe is confirmed, so the client sees its own message', () => {
    const { client, open } = setup()
    const socket = open()
    const seen: unknown[] = []
    client.subscribe('room', (msg) => seen.push(msg.data))
    void client.publish('room', 'hi')
    void client.publish('elsewhere', 'x')
    expect(socket.sent.map((frame) => frame.type)).toEqual(['subscribe', 'publish'])
    expect(socket.framesOf('publish')[0]).toMatchObject({ channel: 'elsewhere' })
    socket.receive({ type: 'subscribed', channel: 'room', epoch: 'e', offset: 0 })
    expect(socket.framesOf('publish').map((frame) => frame.channel)).toEqual(['elsewhere', 'room'])
  })

  it('uses a fresh idempotency key per publish unless one is given', () => {
    const { client, open } = setup()
    const socket = open()
    void client.publish('a', 1)
    void client.publish('a', 2)
    void client.publish('a', 3, { key: 'mine' })
    const keys = socket.framesOf('publish').map((frame) => frame.key)
    expect(new Set(keys).size).toBe(3)
    expect(keys[2]).toBe('mine')
    expect(keys.every((key) => key!.length <= 64)).toBe(true)
  })

  it('rejects PUBLISH_TIMEOUT when no connection and ack come in time', async () => {
    const { client } = setup({ publishTimeoutMs: 2000 })
    const result = client.publish('chat', 'hello?')
    const settled = vi.fn()
    result.catch(settled)
    vi.advanceTimersByTime(1999)
    await flush()
    expect(settled).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    await expect(result).rejects.toMatchObject({ code: 'PUBLISH_TIMEOUT', channel: 'chat' })
  })

  it('rejects OUTBOX_FULL beyond maxPendingPublishes', async () => {
    const { client } = setup({ maxPendingPublishes: 2 })
    void client.publish('a', 1).catch(() => {})
    void client.publish('a', 2).catch(() => {})
    await expect(client.publish('a', 3)).rejects.toMatchObject({ code: 'OUTBOX_FULL' })
  })

  it("rejects FRAME_TOO_LARGE locally against hello's maxFrameBytes", async () => {
    const { client, open } = setup()
    const early = client.publish('a', 'x'.repeat(300))
    const fine = client.publish('a', 'é'.repeat(20))
    const socket = open({ maxFrameBytes: 200 })
    await expect(early).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' })
    await expect(client.publish('a', 'é'.repeat(90))).rejects.toMatchObject({ code: 'FRAME_TOO_LARGE' })
    expect(socket.framesOf('publish')).toHaveLength(1)
    socket.receive({ type: 'ack', rid: socket.framesOf('publish')[0]!.rid, channel: 'a', offset: 1, id: 'e-1' })
    await expect(fine).resolves.toMatchObject({ offset: 1 })
  })

  it('rejects INVALID_CHANNEL and unserialisable data locally', async () => {
    const { client } = setup()
    await expect(client.publish('bad name', 1)).rejects.toMatchObject({ code: 'INVALID_CHANNEL' })
    await expect(client.publish('ok', 10n)).rejects.toMatchObject({ code: 'BAD_FRAME' })
  })
})

describe('close', () => {
  it('clears every timer, rejects pending publishes, is idempotent, and can connect again', async () => {
    const { client, ws, open, log } = setup()
    client.subscribe('orders')
    const socket = open()
    socket.receive({ type: 'subscribed', channel: 'orders', epoch: 'e', offset: 7 })
    const pending = client.publish('orders', 1)
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    client.close()
    await expect(pending).rejects.toMatchObject({ code: 'CLIENT_CLOSED' })
    expect(vi.getTimerCount()).toBe(0)
    expect(socket.closedWith).toBe(1000)
    expect(socket.onmessage).toBeNull()
    expect(client.state).toBe('closed')
    client.close()
    expect(log.states).toEqual(['connecting', 'open', 'closed'])
    await expect(client.publish('orders', 2)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' })

    // connect() again: the subscription resumes where it was.
    client.connect()
    expect(ws.sockets).toHaveLength(2)
    ws.last.accept()
    ws.last.receive(hello())
    expect(ws.last.framesOf('subscribe')).toMatchObject([{ channel: 'orders', since: 'e-7' }])
  })

  it('clears the timers of a pending reconnect and of a handshake', () => {
    const { client, ws } = setup()
    client.connect()
    expect(vi.getTimerCount()).toBe(1) // handshake deadline
    ws.last.drop()
    expect(vi.getTimerCount()).toBe(1) // reconnect delay
    client.close()
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(60_000)
    expect(ws.sockets).toHaveLength(1)
  })

  it('ignores a pending token once closed', async () => {
    let resolve!: (token: string) => void
    const { client, ws } = setup({ token: () => new Promise<string>((r) => (resolve = r)) })
    client.connect()
    client.close()
    resolve('late')
    await flush()
    expect(ws.sockets).toHaveLength(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('can be closed from inside a listener', () => {
    const { client, ws } = setup()
    client.on('error', () => client.close())
    client.connect()
    ws.last.drop()
    expect(client.state).toBe('closed')
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('transports option', () => {
  it('throws NO_TRANSPORT for names it does not know', () => {
    // @ts-expect-error 'mqtt' is a protocol name reserved for a transport that comes as a factory, not by name
    expect(() => new PushClient({ url: URL_BASE, transports: ['mqtt'] })).toThrow(PushError)
  })

  it('accepts names, resolved through the default registry', () => {
    const ws = fakeWebSockets()
    const client = new PushClient({ url: URL_BASE, transports: ['websocket'], WebSocket: ws.WebSocket, storage: memoryStorage() })
    client.connect()
    expect(ws.sockets).toHaveLength(1)
    client.close()
  })
})
