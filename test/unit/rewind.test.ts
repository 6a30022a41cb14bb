/**
 * Rewind on subscribe, client side (protocol.md 4, rule 5): the first subscribe of a channel asks
 * for its newest n messages; once the subscription has a position, every resume goes from there.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient, sse, websocket, type PushClientOptions, type PushMessage } from '../../src/index.js'
import { formatCursor, parseCursor } from '../../src/protocol/position.js'
import { fakeEventSources, fakeFetch, fakeWebSockets, hello, memoryStorage, message, useFakeTimers } from './fakes.js'

const URL_BASE = 'http://push.test/push'

function setup(options: Partial<PushClientOptions> = {}) {
  const ws = fakeWebSockets()
  const sources = fakeEventSources({ takesFetch: true })
  const client = new PushClient({
    url: URL_BASE,
    storage: memoryStorage(),
    transports: [websocket()],
    WebSocket: ws.WebSocket,
    EventSource: sources.EventSource,
    fetch: fakeFetch().fetch,
    random: () => 1,
    ...options,
  })
  const open = () => {
    if (client.state === 'idle') client.connect()
    ws.last.accept()
    ws.last.receive(hello())
    return ws.last
  }
  /** Runs the clock until the client made its next socket. */
  const nextSocket = () => {
    const count = ws.sockets.length
    for (let ms = 0; ms < 60_000 && ws.sockets.length === count; ms++) vi.advanceTimersByTime(1)
  }
  return { client, ws, sources, open, nextSocket }
}

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('rewind on subscribe', () => {
  it('asks for the newest n on the first subscribe, then resumes from its position without rewinding again', () => {
    const { client, open, nextSocket } = setup()
    const received: PushMessage[] = []
    client.subscribe('config', (msg) => received.push(msg), { rewind: 3 })
    const first = open()
    const [subscribe] = first.framesOf('subscribe')
    expect(subscribe).toEqual({ type: 'subscribe', channel: 'config', rid: expect.any(String), rewind: 3 })
    // The server starts the replay 3 before its newest (5): subscribed at 2, then 3, 4, 5.
    first.receive({ type: 'subscribed', channel: 'config', rid: subscribe!.rid, epoch: 'e', offset: 2 })
    first.receive(message('config', 'e', 3), message('config', 'e', 4))
    first.drop(1006)
    nextSocket()
    const second = open()
    const [resubscribe] = second.framesOf('subscribe')
    expect(resubscribe).toEqual({ type: 'subscribe', channel: 'config', rid: expect.any(String), since: 'e-4' })
    second.receive({ type: 'subscribed', channel: 'config', rid: resubscribe!.rid, epoch: 'e', offset: 4 })
    second.receive(message('config', 'e', 5), message('config', 'e', 6))
    expect(received.map((msg) => msg.offset)).toEqual([3, 4, 5, 6])
  })

  it('resumes from the position `subscribed` gave when nothing arrived yet', () => {
    const { client, open, nextSocket } = setup()
    client.subscribe('empty', undefined, { rewind: 10 })
    const first = open()
    first.receive({ type: 'subscribed', channel: 'empty', epoch: 'e', offset: 0 })
    first.drop(1006)
    nextSocket()
    const [resubscribe] = open().framesOf('subscribe')
    expect(resubscribe).toMatchObject({ channel: 'empty', since: 'e-0' })
    expect(resubscribe).not.toHaveProperty('rewind')
  })

  it('rewinds again when the connection dropped before the server answered (nothing was delivered)', () => {
    const { client, open, nextSocket } = setup()
    client.subscribe('feed', undefined, { rewind: 2 })
    open().drop(1006)
    nextSocket()
    expect(open().framesOf('subscribe')).toMatchObject([{ channel: 'feed', rewind: 2 }])
  })

  it('sends no rewind for 0 or without the option', () => {
    const { client, open } = setup()
    client.subscribe('a', undefined, { rewind: 0 })
    client.subscribe('b')
    const frames = open().framesOf('subscribe')
    expect(frames.map((frame) => 'rewind' in frame)).toEqual([false, false])
  })

  it('refuses rewind with since, and a rewind that is not a whole number of messages, with INVALID_OPTIONS', () => {
    const { client } = setup()
    for (const options of [{ rewind: 2, since: 'e-1' }, { rewind: -1 }, { rewind: 1.5 }, { rewind: Number.NaN }]) {
      expect(() => client.subscribe('x', undefined, options)).toThrowError(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    }
    expect(() => client.subscribe('x', undefined, { rewind: 2, since: 'e-1' })).toThrow(/without since/)
  })

  it('delivers the rewound messages, then live ones, through async iteration', async () => {
    const { client, open } = setup()
    const subscription = client.subscribe('config', undefined, { rewind: 2 })
    const offsets: number[] = []
    const reading = (async () => {
      for await (const msg of subscription) if (offsets.push(msg.offset) === 3) break
    })()
    const socket = open()
    expect(socket.framesOf('subscribe')).toMatchObject([{ channel: 'config', rewind: 2 }])
    socket.receive({ type: 'subscribed', channel: 'config', epoch: 'e', offset: 8 })
    socket.receive(message('config', 'e', 9), message('config', 'e', 10))
    socket.receive(message('config', 'e', 11))
    await reading
    expect(offsets).toEqual([9, 10, 11])
    expect(subscription.active).toBe(false)
  })

  it('carries `channel~n` in a stream cursor until the channel has a position', () => {
    const { client, sources } = setup({ transports: [sse()] })
    client.subscribe('orders', undefined, { rewind: 5 })
    client.subscribe('chat')
    client.connect()
    expect(sources.last.cursor).toBe('orders~5,chat')
    sources.last.receive(hello())
    sources.last.receive({ type: 'subscribed', channel: 'orders', epoch: 'e', offset: 7 })
    sources.last.receive(message('orders', 'e', 8))
    sources.last.fail()
    vi.advanceTimersByTime(500)
    expect(sources.last.cursor).toBe('orders=e-8,chat')
  })
})

describe('stream cursor with rewind entries', () => {
  it('formats and parses `channel~n`; a position wins over a rewind', () => {
    expect(formatCursor([{ channel: 'a', rewind: 3 }, { channel: 'b', position: { epoch: 'e', offset: 1 }, rewind: 3 }, { channel: 'c' }])).toBe(
      'a~3,b=e-1,c',
    )
    expect(parseCursor('a~3,b=e-1,c')).toEqual([{ channel: 'a', rewind: 3 }, { channel: 'b', position: { epoch: 'e', offset: 1 } }, { channel: 'c' }])
    for (const bad of ['a~', 'a~x', 'a~-1', 'a~12345678901', 'a~3~4', 'a~3,a']) expect(parseCursor(bad)).toBeUndefined()
  })
})
