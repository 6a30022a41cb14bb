import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient as CorePushClient } from '../../src/core.js'
import { PushError, negotiate, type CoreClientOptions, type FallbackEvent, type PushMessage } from '../../src/index.js'
import { defaultTransports } from '../../src/transports/registry.js'
import { fakeTransport, memoryStorage, useFakeTimers, message } from './fakes.js'

const URL_BASE = 'http://push.test/push'
const ALL = ['websocket', 'sse', 'long-polling'] as const

type Options = Omit<Partial<CoreClientOptions>, 'storage' | 'transports'> & { storage?: ReturnType<typeof memoryStorage> }

function setup(options: Options = {}) {
  const ws = fakeTransport('websocket')
  const sse = fakeTransport('sse')
  const lp = fakeTransport('long-polling')
  const storage = options.storage ?? memoryStorage()
  const client = new CorePushClient({
    url: URL_BASE,
    random: () => 1,
    ...options,
    storage,
    transports: [ws.factory, sse.factory, lp.factory],
  })
  const log = { fallbacks: [] as FallbackEvent[], errors: [] as string[], states: [] as string[], transports: [] as string[] }
  client.on('fallback', (event) => log.fallbacks.push(event))
  client.on('error', (error) => log.errors.push(error.code))
  client.on('state', (state) => log.states.push(state))
  client.on('transport', (name) => log.transports.push(name))
  const tried = () => [...ws.instances, ...sse.instances, ...lp.instances].filter((t) => t.opened).length
  return { client, ws, sse, lp, storage, log, tried }
}

const failed = () => new PushError('TRANSPORT_FAILED', 'refused')

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('fallback', () => {
  it('moves on at once when a handshake fails, and when it times out; blames them once another transport says hello', () => {
    const { client, ws, sse, lp, log } = setup({ handshakeTimeoutMs: 3000, raceAfterMs: 0 })
    client.connect()
    ws.last.fail(failed())
    expect(sse.instances).toHaveLength(1)
    // The stream opened but nothing comes through (no race: raceAfterMs 0).
    vi.advanceTimersByTime(2999)
    expect(lp.instances).toHaveLength(0)
    vi.advanceTimersByTime(1)
    expect(sse.last.closed).toBe(true)
    expect(lp.instances).toHaveLength(1)
    // Nothing has reached the server yet: this may be an outage, so nobody is blamed yet.
    expect(log.fallbacks).toEqual([])
    lp.last.hello([...ALL])
    expect(log.fallbacks).toEqual([
      { from: 'websocket', to: 'sse', reason: 'handshake-failed' },
      { from: 'sse', to: 'long-polling', reason: 'handshake-timeout' },
    ])
    expect(client.state).toBe('open')
    expect(client.transport).toBe('long-polling')
    expect(log.errors).toEqual(['TRANSPORT_FAILED', 'HANDSHAKE_TIMEOUT'])
    expect(log.states).toEqual(['connecting', 'open'])
  })

  it('settles within 10 s behind a buffering proxy with the default deadline, without racing', () => {
    const { client, ws, lp } = setup({ raceAfterMs: 0 })
    client.connect()
    ws.last.fail(failed())
    vi.advanceTimersByTime(4000)
    expect(lp.instances).toHaveLength(1)
    lp.last.hello([...ALL])
    expect(client.transport).toBe('long-polling')
  })

  it('demotes a transport that dies within unstableMs of opening', () => {
    const { client, ws, sse, log } = setup({ unstableMs: 3000 })
    client.connect()
    ws.last.hello([...ALL])
    vi.advanceTimersByTime(2999)
    ws.last.fail(failed())
    // The connection is lost: the state says so while the next transport is tried.
    expect(client.state).toBe('reconnecting')
    expect(client.transport).toBeUndefined()
    expect(log.fallbacks).toEqual([])
    sse.last.hello([...ALL])
    expect(log.fallbacks).toEqual([{ from: 'websocket', to: 'sse', reason: 'unstable' }])
    expect(client.transport).toBe('sse')
    expect(log.states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
  })

  it('reconnects to the same transport after a drop of a stable connection, or a server close with retryMs', () => {
    const { client, ws, sse, log } = setup({ unstableMs: 3000 })
    client.connect()
    ws.last.hello([...ALL])
    vi.advanceTimersByTime(3000)
    ws.last.fail(failed())
    expect(client.state).toBe('reconnecting')
    vi.advanceTimersByTime(500)
    expect(ws.instances).toHaveLength(2)
    ws.last.hello([...ALL])
    ws.last.receive({ type: 'close', code: 'SERVER_SHUTDOWN', message: 'bye', retryMs: 100 })
    // The hint, then the backoff of attempt 1 (1000 ms with the jitter at its maximum).
    vi.advanceTimersByTime(1100)
    expect(ws.instances).toHaveLength(3)
    expect(sse.instances).toHaveLength(0)
    expect(log.fallbacks).toEqual([])
  })

  it('has no terminal state: after a whole round failed it backs off and starts again from the top', () => {
    const { client, ws, sse, lp, log } = setup()
    client.connect()
    ws.last.fail(failed())
    sse.last.fail(failed())
    lp.last.fail(failed())
    expect(client.state).toBe('reconnecting')
    expect(ws.instances).toHaveLength(1)
    vi.advanceTimersByTime(500)
    expect(ws.instances).toHaveLength(2)
    ws.last.hello([...ALL])
    expect(client.state).toBe('open')
    // No transport reached the server in the failed round: none is blamed for it.
    expect(log.fallbacks).toEqual([])
  })

  it('does not fall back for a refused token', () => {
    const { client, ws, sse } = setup()
    client.connect()
    ws.last.fail(new PushError('UNAUTHORIZED', 'bad token'))
    expect(sse.instances).toHaveLength(0)
    expect(client.state).toBe('reconnecting')
  })

  it('leaves a transport whose hello does not list it, and skips what the server does not offer', () => {
    const { client, ws, sse, lp, log } = setup()
    client.connect()
    ws.last.fail(failed())
    // The poll endpoint serves a server that turned SSE off: its hello says so.
    sse.last.hello(['websocket', 'long-polling'])
    expect(log.fallbacks[1]).toEqual({ from: 'sse', to: 'long-polling', reason: 'not-offered' })
    expect(sse.last.closed).toBe(true)
    lp.last.hello(['websocket', 'long-polling'])
    expect(client.transport).toBe('long-polling')
    // Later rounds never try sse again.
    lp.last.fail(failed())
    vi.advanceTimersByTime(5000)
    lp.last.fail(failed())
    expect(ws.instances.length).toBeGreaterThan(1)
    expect(sse.instances).toHaveLength(1)
  })
})

describe('memory of the winner', () => {
  it('starts the next client of the same URL with the transport that won, until rememberMs passes', () => {
    const first = setup({ rememberMs: 60_000 })
    first.client.connect()
    first.ws.last.fail(failed())
    first.sse.last.hello([...ALL])
    first.client.close()
    expect(JSON.parse(first.storage.items.get(`pushline:${URL_BASE}#websocket,sse,long-polling`)!)).toMatchObject({ w: 'sse' })

    const second = setup({ storage: first.storage, rememberMs: 60_000 })
    second.client.connect()
    expect(second.ws.instances).toHaveLength(0)
    expect(second.sse.instances).toHaveLength(1)
    second.sse.last.hello([...ALL])
    second.client.close()

    // Each hello refreshes the memory; past its expiry the next client starts from the top again.
    vi.advanceTimersByTime(60_000)
    const third = setup({ storage: first.storage })
    third.client.connect()
    expect(third.ws.instances).toHaveLength(1)
    expect(third.sse.instances).toHaveLength(0)
  })

  it('keeps memories per server URL', () => {
    const first = setup()
    first.client.connect()
    first.ws.last.fail(failed())
    first.sse.last.hello([...ALL])
    const other = setup({ storage: first.storage, url: 'http://elsewhere.test/push' })
    other.client.connect()
    expect(other.ws.instances).toHaveLength(1)
  })

  it('never starts with a transport the server no longer offers', () => {
    const first = setup()
    first.client.connect()
    first.ws.last.hello(['sse', 'long-polling'])
    first.client.close()
    const second = setup({ storage: first.storage })
    second.client.connect()
    expect(second.ws.instances).toHaveLength(0)
    expect(second.sse.instances).toHaveLength(1)
  })

  it('remembers in memory shared by the clients of this process when there is no localStorage', () => {
    const url = `http://memory.test/${Math.random()}`
    const make = () => {
      const ws = fakeTransport('websocket')
      const sse = fakeTransport('sse')
      const client = new CorePushClient({ url, transports: [ws.factory, sse.factory] })
      client.connect()
      return { client, ws, sse }
    }
    const first = make()
    first.ws.last.fail(failed())
    first.sse.last.hello(['websocket', 'sse'])
    first.client.close()
    const second = make()
    expect(second.ws.instances).toHaveLength(0)
    expect(second.sse.instances).toHaveLength(1)
    second.client.close()
  })

  it('works when storage throws', () => {
    const broken = {
      getItem: (): string | null => {
        throw new DOMException('denied', 'SecurityError')
      },
      setItem: () => {
        throw new DOMException('full', 'QuotaExceededError')
      },
    }
    const ws = fakeTransport('websocket')
    const client = new CorePushClient({ url: URL_BASE, transports: [ws.factory], storage: broken })
    client.connect()
    ws.last.hello(['websocket'])
    expect(client.state).toBe('open')
    client.close()
  })
})

describe('upgrade probes', () => {
  /** Settled on sse (websocket failed), with a subscription at e-2 and a publish in flight. */
  const onSse = (options: Options = {}) => {
    // A grace that outlasts every test: links stay up without pings.
    const env = setup({ upgradeProbeMs: 60_000, heartbeatGraceMs: 10_000_000, ...options })
    const seen: PushMessage[] = []
    env.client.subscribe('orders', (msg) => seen.push(msg))
    env.client.connect()
    env.ws.last.fail(failed())
    env.sse.last.hello([...ALL])
    env.sse.last.receive({ type: 'subscribed', channel: 'orders', epoch: 'e', offset: 0 })
    env.sse.last.receive(message('orders', 'e', 1))
    env.sse.last.receive(message('orders', 'e', 2))
    env.log.fallbacks.length = 0
    env.log.errors.length = 0
    return { ...env, seen }
  }

  it('probes the better transport in the background and switches without loss or duplicates', () => {
    const { client, ws, sse, log, seen } = onSse()
    vi.advanceTimersByTime(59_999)
    expect(ws.instances).toHaveLength(1)
    const publish = client.publish('orders', 'mine')
    // A stream transport gets the core's frames too: the subscribe it carries already, the publish it POSTs.
    const posted = sse.last.sent.find((frame) => frame.type === 'publish')
    expect(posted).toMatchObject({ type: 'publish' })
    vi.advanceTimersByTime(1)
    const probe = ws.last
    expect(probe.opened).toBe(true)
    expect(client.transport).toBe('sse')
    // The old transport keeps delivering while the probe opens.
    sse.last.receive(message('orders', 'e', 3))
    probe.hello([...ALL])
    expect(log.fallbacks).toEqual([{ from: 'sse', to: 'websocket', reason: 'upgrade' }])
    expect(log.transports).toEqual(['sse', 'websocket'])
    expect(client.transport).toBe('websocket')
    expect(client.state).toBe('open')
    expect(sse.last.closed).toBe(true)
    // Subscriptions move with their positions; the unacknowledged publish is resent with its key.
    expect(probe.sent[0]).toMatchObject({ type: 'subscribe', channel: 'orders', since: 'e-3' })
    expect(probe.sent.filter((frame) => frame.type === 'publish')).toEqual([])
    const [subscribe] = probe.sent
    probe.receive({ type: 'subscribed', channel: 'orders', rid: (subscribe as { rid: string }).rid, epoch: 'e', offset: 2 })
    expect(probe.sent[1]).toEqual(posted)
    probe.receive(message('orders', 'e', 3))
    probe.receive(message('orders', 'e', 4))
    expect(seen.map((msg) => msg.offset)).toEqual([1, 2, 3, 4])
    probe.receive({ type: 'ack', rid: (posted as { rid: string }).rid, channel: 'orders', offset: 5, id: 'e-5' })
    return expect(publish).resolves.toMatchObject({ offset: 5 })
  })

  it('moves a stream probe onto the full cursor once it won', () => {
    const env = setup({ upgradeProbeMs: 1000, heartbeatGraceMs: 10_000_000 })
    env.client.subscribe('orders')
    env.client.connect()
    env.ws.last.fail(failed())
    env.sse.last.fail(failed())
    env.lp.last.hello(['sse', 'long-polling'])
    expect(env.lp.last.context.cursor()).toEqual([{ channel: 'orders', position: undefined }])
    vi.advanceTimersByTime(1000)
    const probe = env.sse.last
    expect(env.sse.instances).toHaveLength(2)
    // A probe carries no subscriptions while it is one.
    expect(probe.context.cursor()).toEqual([])
    probe.hello(['sse', 'long-polling'])
    expect(env.client.transport).toBe('sse')
    expect(probe.context.cursor()).toEqual([{ channel: 'orders', position: undefined }])
    // The core subscribes on the winner: a stream transport reopens with the cursor for it.
    expect(probe.sent).toEqual([expect.objectContaining({ type: 'subscribe', channel: 'orders' })])
    expect(env.lp.last.closed).toBe(true)
  })

  it('is silent when the probe fails, and tries again later', () => {
    const { client, ws, log } = onSse()
    vi.advanceTimersByTime(60_000)
    ws.last.fail(failed())
    expect(log.fallbacks).toEqual([])
    expect(log.errors).toEqual([])
    expect(log.states).toEqual(['connecting', 'open'])
    expect(client.transport).toBe('sse')
    // A probe with no hello in time fails silently too.
    vi.advanceTimersByTime(60_000)
    expect(ws.instances).toHaveLength(3)
    vi.advanceTimersByTime(4000)
    expect(ws.last.closed).toBe(true)
    expect(log.errors).toEqual([])
    vi.advanceTimersByTime(60_000)
    expect(ws.instances).toHaveLength(4)
  })

  it('never probes a transport the server does not offer, and not at all with upgradeProbeMs 0', () => {
    const offeredLess = setup({ upgradeProbeMs: 1000, heartbeatGraceMs: 10_000_000 })
    offeredLess.client.connect()
    offeredLess.ws.last.fail(failed())
    offeredLess.sse.last.hello(['sse', 'long-polling'])
    vi.advanceTimersByTime(10_000)
    expect(offeredLess.ws.instances).toHaveLength(1)

    const { ws } = onSse({ upgradeProbeMs: 0 })
    vi.advanceTimersByTime(600_000)
    expect(ws.instances).toHaveLength(1)
  })

  it('stops a running probe when the connection drops or the client closes', () => {
    const { client, ws, sse } = onSse()
    vi.advanceTimersByTime(60_000)
    const probe = ws.last
    sse.last.fail(failed())
    expect(probe.closed).toBe(true)
    client.close()
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('transports option', () => {
  it('defaults to every transport in protocol order, the iframe stream only where there is a document', () => {
    expect(defaultTransports()).toEqual(['websocket', 'sse', 'long-polling', 'short-polling'])
    vi.stubGlobal('document', {})
    try {
      expect(defaultTransports()).toEqual(['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'])
    } finally {
      vi.unstubAllGlobals()
    }
  })

  it('pushline/core takes factories only, and needs at least one', () => {
    expect(() => new CorePushClient({ url: URL_BASE, transports: [] })).toThrow(expect.objectContaining({ code: 'NO_TRANSPORT' }))
  })

  it('refuses several transports of which none negotiates, rather than ignore all but the first', () => {
    const plain = () => fakeTransport('websocket', { negotiates: false }).factory
    expect(() => new CorePushClient({ url: URL_BASE, transports: [plain(), plain()] })).toThrow(
      expect.objectContaining({ code: 'NO_TRANSPORT' }),
    )
    // One alone needs no negotiation: it is used as it is.
    const alone = fakeTransport('websocket', { negotiates: false })
    const client = new CorePushClient({ url: URL_BASE, transports: [alone.factory], storage: memoryStorage() })
    client.connect()
    alone.last.fail(failed())
    expect(client.state).toBe('reconnecting')
    client.close()
  })

  it('lets a custom fallback transport carry negotiate', () => {
    const ws = fakeTransport('websocket', { negotiates: false })
    const custom = fakeTransport('long-polling', { negotiates: false })
    const fallbacks: FallbackEvent[] = []
    const client = new CorePushClient({
      url: URL_BASE,
      transports: [ws.factory, { ...custom.factory, negotiate }],
      storage: memoryStorage(),
    })
    client.on('fallback', (event) => fallbacks.push(event))
    client.connect()
    ws.last.fail(failed())
    expect(custom.last.opened).toBe(true)
    custom.last.hello(['websocket', 'long-polling'])
    expect(fallbacks).toEqual([{ from: 'websocket', to: 'long-polling', reason: 'handshake-failed' }])
    client.close()
  })
})

describe('racing long polling against a slow stream', () => {
  /** websocket failed at once, sse opened but says nothing (a buffering proxy); subscribed to orders. */
  const buffered = (options: Options = {}) => {
    const env = setup({ heartbeatGraceMs: 10_000_000, ...options })
    const seen: PushMessage[] = []
    env.client.subscribe('orders', (msg) => seen.push(msg))
    env.client.connect()
    env.ws.last.fail(failed())
    return { ...env, seen }
  }

  it('races long polling after raceAfterMs; long polling delivers first while the stream is pending', () => {
    const { client, sse, lp, log, seen } = buffered()
    vi.advanceTimersByTime(399)
    expect(lp.instances).toHaveLength(0)
    vi.advanceTimersByTime(1)
    const racer = lp.last
    expect(racer.opened).toBe(true)
    // A racer carries no subscriptions until it won.
    expect(racer.context.cursor()).toEqual([])
    racer.hello([...ALL])
    expect(client.state).toBe('open')
    expect(client.transport).toBe('long-polling')
    // The stream was not given up: it goes on, as a probe.
    expect(sse.last.closed).toBe(false)
    expect(racer.context.cursor()).toEqual([{ channel: 'orders', position: undefined }])
    expect(racer.sent).toEqual([expect.objectContaining({ type: 'subscribe', channel: 'orders' })])
    racer.receive({ type: 'subscribed', channel: 'orders', epoch: 'e', offset: 0 })
    racer.receive(message('orders', 'e', 1))
    racer.receive(message('orders', 'e', 2))
    expect(seen.map((msg) => msg.offset)).toEqual([1, 2])
    // websocket is blamed now that a transport reached the server; sse is still pending.
    expect(log.fallbacks).toEqual([{ from: 'websocket', to: 'sse', reason: 'handshake-failed' }])
  })

  it('moves to the stream without loss or repetition when it says hello after all', () => {
    const { client, sse, lp, log, seen } = buffered()
    vi.advanceTimersByTime(400)
    const racer = lp.last
    racer.hello([...ALL])
    racer.receive({ type: 'subscribed', channel: 'orders', epoch: 'e', offset: 0 })
    racer.receive(message('orders', 'e', 1))
    racer.receive(message('orders', 'e', 2))
    // The proxy lets the stream through at last: it carried the cursor it opened with.
    const stream = sse.last
    stream.hello([...ALL])
    expect(log.fallbacks.at(-1)).toEqual({ from: 'long-polling', to: 'sse', reason: 'upgrade' })
    expect(client.transport).toBe('sse')
    expect(client.state).toBe('open')
    expect(racer.closed).toBe(true)
    stream.receive({ type: 'subscribed', channel: 'orders', epoch: 'e', offset: 0 })
    stream.receive(message('orders', 'e', 1))
    stream.receive(message('orders', 'e', 2))
    stream.receive(message('orders', 'e', 3))
    expect(seen.map((msg) => msg.offset)).toEqual([1, 2, 3])
    expect(log.states).toEqual(['connecting', 'open'])
  })

  it('demotes the stream when its deadline passes, as a failed attempt, and remembers long polling only then', () => {
    const { client, sse, lp, log, storage } = buffered({ handshakeTimeoutMs: 3000 })
    vi.advanceTimersByTime(400)
    lp.last.hello([...ALL])
    const key = `pushline:${URL_BASE}#websocket,sse,long-polling`
    expect(JSON.parse(storage.items.get(key)!).w).toBeUndefined()
    vi.advanceTimersByTime(2599)
    expect(sse.last.closed).toBe(false)
    vi.advanceTimersByTime(1)
    expect(sse.last.closed).toBe(true)
    expect(log.fallbacks.at(-1)).toEqual({ from: 'sse', to: 'long-polling', reason: 'handshake-timeout' })
    expect(JSON.parse(storage.items.get(key)!).w).toBe('long-polling')
    expect(client.transport).toBe('long-polling')
    expect(log.states).toEqual(['connecting', 'open'])
  })

  it('closes the racer when the stream says hello first', () => {
    const { client, sse, lp, log } = buffered()
    vi.advanceTimersByTime(400)
    sse.last.hello([...ALL])
    expect(lp.last.closed).toBe(true)
    expect(client.transport).toBe('sse')
    lp.last.hello([...ALL]) // too late: ignored
    expect(client.transport).toBe('sse')
    expect(log.transports).toEqual(['sse'])
  })

  it('does not race when long polling is not listed, not offered, already tried, or raceAfterMs is 0', () => {
    const off = buffered({ raceAfterMs: 0 })
    vi.advanceTimersByTime(3999)
    expect(off.lp.instances).toHaveLength(0)
    off.client.close()

    // The server's hello said it has no long polling.
    const storage = memoryStorage({
      [`pushline:${URL_BASE}#websocket,sse,long-polling`]: JSON.stringify({ o: ['websocket', 'sse'], u: Date.now() + 60_000 }),
    })
    const unoffered = buffered({ storage })
    vi.advanceTimersByTime(3999)
    expect(unoffered.lp.instances).toHaveLength(0)
    unoffered.client.close()

    const ws = fakeTransport('websocket')
    const sse = fakeTransport('sse')
    const client = new CorePushClient({ url: URL_BASE, transports: [ws.factory, sse.factory], storage: memoryStorage() })
    client.connect()
    vi.advanceTimersByTime(3999)
    expect(sse.instances).toHaveLength(0)
    client.close()
  })
})

describe('outage or broken transport', () => {
  it('blames no transport for a round in which none reached the server, and keeps the winner', () => {
    const { client, ws, sse, lp, log, storage } = setup()
    client.connect()
    ws.last.hello([...ALL])
    const key = `pushline:${URL_BASE}#websocket,sse,long-polling`
    const remembered = storage.items.get(key)
    vi.advanceTimersByTime(10_000)
    // The server goes away: every attempt fails before any HTTP response.
    const refused = () => new PushError('TRANSPORT_FAILED', 'fetch failed', { cause: new TypeError('fetch failed') })
    ws.last.fail(refused())
    expect(client.state).toBe('reconnecting')
    for (let round = 0; round < 3; round++) {
      vi.advanceTimersByTime(30_000)
      ws.last.fail(refused())
      sse.last.fail(refused())
      lp.last.fail(refused())
    }
    expect(log.fallbacks).toEqual([])
    expect(log.errors.length).toBeGreaterThan(9)
    expect(storage.items.get(key)).toBe(remembered)
    // Back: the next round starts with the winner.
    vi.advanceTimersByTime(30_000)
    ws.last.hello([...ALL])
    expect(client.transport).toBe('websocket')
    expect(log.fallbacks).toEqual([])
    expect(log.states).toEqual(['connecting', 'open', 'reconnecting', 'open'])
  })

  it('says reconnecting on every loss of the connection, never open without a transport', () => {
    const { client, ws, sse, lp, log } = setup({ unstableMs: 3000 })
    const lies: string[] = []
    client.on('state', (state) => {
      if ((state === 'open') !== (client.transport !== undefined)) lies.push(`${state} with ${client.transport}`)
    })
    client.connect()
    for (const transport of [ws, sse, lp]) {
      transport.last.hello([...ALL])
      vi.advanceTimersByTime(1000)
      transport.last.fail(failed())
    }
    expect(log.states).toEqual(['connecting', 'open', 'reconnecting', 'open', 'reconnecting', 'open', 'reconnecting'])
    expect(lies).toEqual([])
    expect(log.fallbacks.map(({ from, to, reason }) => `${from}>${to} ${reason}`)).toEqual([
      'websocket>sse unstable',
      'sse>long-polling unstable',
    ])
  })
})

describe('a transport list chosen by the app', () => {
  it('never changes what the default list remembers', () => {
    const storage = memoryStorage()
    const automatic = setup({ storage })
    automatic.client.connect()
    automatic.ws.last.hello([...ALL])
    automatic.client.close()
    const forced = fakeTransport('long-polling')
    const picked = new CorePushClient({ url: URL_BASE, transports: [forced.factory], storage })
    picked.connect()
    forced.last.hello([...ALL])
    picked.close()
    const again = setup({ storage })
    again.client.connect()
    expect(again.ws.instances).toHaveLength(1)
    expect(again.lp.instances).toHaveLength(0)
    again.client.close()
  })
})
