/**
 * pushline/testing against the real PushClient in Node: msw's `setupServer` intercepts the client's
 * fetch (SSE, polls, publishes) and the global WebSocket, and the mock answers per docs/protocol.md.
 * Every web transport the mock serves, then disconnect and resume, gaps, fallback and publishes.
 */
import { setupServer } from 'msw/node'
import { WebSocket as NodeWebSocket } from 'ws'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { PushClient, longPolling, shortPolling, sse, websocket } from '../../src/index.js'
import type { FallbackEvent, GapInfo, PushMessage, TransportFactory } from '../../src/index.js'
import { createPushMock, type MockTransportName, type PushMock } from '../../src/testing/index.js'

// msw intercepts the global WebSocket, which Node 20 lacks (22 has it): any class will do, msw
// never constructs it. The client is then given the global, since in Node it would use `ws`.
globalThis.WebSocket ??= NodeWebSocket as unknown as typeof WebSocket

const url = 'http://pushline.test/push'
const server = setupServer()
let push: PushMock
let client: PushClient | undefined

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterEach(() => {
  client?.close()
  client = undefined
  server.resetHandlers()
})
afterAll(() => server.close())

const FACTORIES: Record<MockTransportName, () => TransportFactory> = {
  websocket: () => websocket(),
  sse: () => sse(),
  'long-polling': () => longPolling(),
  'short-polling': () => shortPolling({ intervalMs: 20 }),
}

/** The real client over `transports`, with fast reconnects and nothing remembered between tests. */
function connect(transports: TransportFactory[]): PushClient {
  const memory = new Map<string, string>()
  client = new PushClient({
    url,
    transports,
    WebSocket: globalThis.WebSocket,
    lifecycle: null,
    reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    storage: { getItem: (key) => memory.get(key) ?? null, setItem: (key, value) => void memory.set(key, value) },
  })
  client.connect()
  return client
}

function mock(options: Partial<Parameters<typeof createPushMock>[0]> = {}): PushMock {
  push = createPushMock({ url, ...options })
  server.use(...push.handlers)
  return push
}

describe.each(Object.keys(FACTORIES) as MockTransportName[])('over %s', (transport) => {
  const open = () => connect([FACTORIES[transport]()])

  it('delivers pushed messages with their positions, and records the subscription', async () => {
    mock()
    const client = open()
    const messages: PushMessage[] = []
    client.subscribe('news', (message) => messages.push(message))
    await push.subscribed('news')
    push.publish('news', { n: 1 })
    push.publish('news', { n: 2 }, { event: 'update' })
    await expect.poll(() => messages.length).toBe(2)
    expect(messages).toEqual([
      { channel: 'news', event: 'message', data: { n: 1 }, offset: 1, id: 'mock1-1' },
      { channel: 'news', event: 'update', data: { n: 2 }, offset: 2, id: 'mock1-2' },
    ])
    expect(client.transport).toBe(transport)
    // A poll loop that a new one replaces may poll once more with the new cursor: each answer with
    // a `subscribed` is a confirmation.
    expect(push.subscriptions).toContainEqual({ channel: 'news', since: undefined, rewind: 0, transport })
    expect(new Set(push.subscriptions.map((subscription) => JSON.stringify(subscription))).size).toBe(1)
    expect(push.position('news')).toEqual({ epoch: 'mock1', offset: 2 })
  })

  it('records what the client publishes, with the ack it got, and delivers it to subscribers', async () => {
    mock()
    const client = open()
    const messages: PushMessage[] = []
    client.subscribe('chat', (message) => messages.push(message))
    await push.subscribed('chat')
    push.publish('chat', 'first')
    const ack = await client.publish('chat', { text: 'hi' }, { event: 'say' })
    expect(ack).toEqual({ channel: 'chat', offset: 2, id: 'mock1-2' })
    expect(push.published).toEqual([
      {
        channel: 'chat',
        event: 'say',
        data: { text: 'hi' },
        key: expect.any(String),
        via: transport === 'websocket' ? 'websocket' : 'http',
        ack: { type: 'ack', rid: expect.any(String), channel: 'chat', offset: 2, id: 'mock1-2' },
      },
    ])
    await expect.poll(() => messages.map((message) => message.data)).toEqual(['first', { text: 'hi' }])
  })

  it('rewinds a first subscribe to the newest messages, then resumes without them again', async () => {
    mock()
    for (const n of [1, 2, 3, 4, 5]) push.publish('config', n)
    const client = open()
    const seen: unknown[] = []
    client.subscribe('config', (message) => seen.push(message.data), { rewind: 2 })
    await expect.poll(() => seen).toEqual([4, 5])
    expect(push.subscriptions[0]).toEqual({ channel: 'config', since: undefined, rewind: 2, transport })
    push.publish('config', 6)
    await expect.poll(() => seen).toEqual([4, 5, 6])
    push.disconnect()
    push.publish('config', 7)
    await expect.poll(() => seen).toEqual([4, 5, 6, 7])
    // The reconnect resumed from its position: no second rewind.
    expect(push.subscriptions.at(-1)).toMatchObject({ channel: 'config', since: 'mock1-6', rewind: 0 })
  })

  it('resumes after a disconnect without losing what was pushed meanwhile', async () => {
    mock()
    const client = open()
    const messages: string[] = []
    client.subscribe('news', (message) => messages.push(message.id))
    await push.subscribed('news')
    push.publish('news', 1)
    await expect.poll(() => messages).toEqual(['mock1-1'])
    const states: string[] = []
    client.on('state', (state) => states.push(state))
    push.disconnect()
    push.publish('news', 2)
    await expect.poll(() => states).toContain('open')
    push.publish('news', 3)
    await expect.poll(() => messages).toEqual(['mock1-1', 'mock1-2', 'mock1-3'])
    expect(states[0]).toBe('reconnecting')
    expect(push.subscriptions.at(-1)).toEqual({ channel: 'news', since: 'mock1-1', rewind: 0, transport })
  })

  it('reports a gap to the subscription, then goes on after it', async () => {
    mock()
    const client = open()
    const messages: string[] = []
    const gaps: GapInfo[] = []
    const subscription = client.subscribe('news', (message) => messages.push(message.id))
    subscription.on('gap', (gap) => gaps.push(gap))
    await push.subscribed('news')
    push.publish('news', 1)
    await expect.poll(() => messages).toEqual(['mock1-1'])
    push.gap('news', 2)
    push.publish('news', 4)
    await expect.poll(() => messages).toEqual(['mock1-1', 'mock1-4'])
    expect(gaps).toEqual([{ channel: 'news', reason: 'history-exhausted', from: 'mock1-1', to: 'mock1-3' }])
  })

  it('reports an epoch-changed gap after a disconnect that lost the history', async () => {
    mock()
    const client = open()
    const messages: string[] = []
    const gaps: GapInfo[] = []
    client.subscribe('news', (message) => messages.push(message.id)).on('gap', (gap) => gaps.push(gap))
    await push.subscribed('news')
    push.publish('news', 1)
    await expect.poll(() => messages).toEqual(['mock1-1'])
    push.disconnect({ loseHistory: true })
    push.publish('news', 'after the restart')
    await expect.poll(() => messages).toEqual(['mock1-1', 'mock2-1'])
    expect(gaps).toEqual([{ channel: 'news', reason: 'epoch-changed', from: 'mock1-1', to: 'mock2-0' }])
  })
})

describe('fallback', () => {
  it.each([
    { refused: ['websocket'], to: 'sse' },
    { refused: ['websocket', 'sse'], to: 'long-polling' },
    { refused: ['websocket', 'sse', 'long-polling'], to: 'short-polling' },
  ] as const)('falls back to $to when $refused are refused', async ({ refused, to }) => {
    mock()
    push.refuse(...refused)
    const client = connect(Object.values(FACTORIES).map((factory) => factory()))
    const fallbacks: FallbackEvent[] = []
    client.on('fallback', (event) => fallbacks.push(event))
    const messages: unknown[] = []
    client.subscribe('news', (message) => messages.push(message.data))
    await push.subscribed('news')
    push.publish('news', 'through the fallback')
    await expect.poll(() => messages).toEqual(['through the fallback'])
    expect(client.transport).toBe(to)
    expect(fallbacks.at(-1)).toEqual({ from: refused.at(-1), to, reason: 'handshake-failed' })
    expect(push.subscriptions.map((subscription) => subscription.transport)).not.toContain('websocket')
  })

  it('moves to the next transport when the one in use is refused and cut, resuming there', async () => {
    mock()
    const client = connect([websocket(), sse()])
    const transports: string[] = []
    client.on('transport', (name) => transports.push(name))
    const messages: unknown[] = []
    client.subscribe('news', (message) => messages.push(message.data))
    await expect.poll(() => client.transport).toBe('websocket')
    push.refuse('websocket')
    push.disconnect()
    await expect.poll(() => client.transport).toBe('sse')
    push.publish('news', 'over sse')
    await expect.poll(() => messages).toEqual(['over sse'])
    expect(push.subscriptions.map((subscription) => [subscription.transport, subscription.since])).toEqual([
      ['websocket', undefined],
      ['sse', 'mock1-0'],
    ])
    expect(transports).toEqual(['websocket', 'sse'])
  })

  it('offers only its transports: the client never tries one the hello did not list', async () => {
    mock({ transports: ['long-polling'] })
    const client = connect([longPolling(), websocket()])
    client.subscribe('news')
    await push.subscribed('news')
    push.publish('news', 1)
    // The first poll's hello listed only long polling; the client stays on it.
    await expect.poll(() => client.transport).toBe('long-polling')
    expect(new Set(push.subscriptions.map((subscription) => subscription.transport))).toEqual(new Set(['long-polling']))
  })
})

describe('publishes', () => {
  it('answers a resend with the same idempotency key with the first ack, and stores it once', async () => {
    mock()
    const client = connect([websocket()])
    await expect.poll(() => client.state).toBe('open')
    // The client's resend after a lost ack, by hand: the same key twice over HTTP.
    const publish = (rid: string) =>
      fetch(`${url}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'publish', rid, channel: 'orders', data: { id: 7 }, key: 'order-7' }),
      }).then((response) => response.json())
    expect(await publish('a')).toEqual({ type: 'ack', rid: 'a', channel: 'orders', offset: 1, id: 'mock1-1' })
    expect(await publish('b')).toEqual({ type: 'ack', rid: 'b', channel: 'orders', offset: 1, id: 'mock1-1' })
    expect(push.published).toHaveLength(1)
    expect(push.position('orders')).toEqual({ epoch: 'mock1', offset: 1 })
  })

  it('refuses a publish to a malformed channel as a server does', async () => {
    mock()
    const response = await fetch(`${url}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'publish', rid: 'r', channel: 'a b', data: 1 }),
    })
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ type: 'error', code: 'INVALID_CHANNEL', rid: 'r' })
    expect(push.published).toEqual([])
  })

  it('resolves subscribed() only once the channel has a live subscriber', async () => {
    mock()
    let resolved = false
    const waiting = push.subscribed('later').then((subscription) => {
      resolved = true
      return subscription
    })
    const client = connect([websocket()])
    client.subscribe('other')
    await push.subscribed('other')
    expect(resolved).toBe(false)
    client.subscribe('later')
    expect(await waiting).toEqual({ channel: 'later', since: undefined, rewind: 0, transport: 'websocket' })
  })
})
