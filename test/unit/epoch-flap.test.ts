/**
 * Client-side detection of flapping epochs: nodes that each keep their own history behind one URL
 * answer a resume with their own epoch, so the client sees its channel's epoch change back to one it
 * left moments ago. Replaying each node's history in turn would never end; the client reports it
 * once and waits 30 s (then its backoff's jitter) before resuming again.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient, websocket, type PushError } from '../../src/index.js'
import { fakeWebSockets, hello, memoryStorage, message, useFakeTimers, type FakeSocket } from './fakes.js'

function setup() {
  const ws = fakeWebSockets()
  const client = new PushClient({
    url: 'http://push.test/push',
    storage: memoryStorage(),
    transports: [websocket()],
    WebSocket: ws.WebSocket,
    // Jitter at its maximum, so delays are predictable (500 ms for the first reconnect).
    random: () => 1,
  })
  const errors: PushError[] = []
  client.on('error', (error) => errors.push(error))
  const delivered: string[] = []
  const gaps: unknown[] = []
  client.subscribe('news', (received) => delivered.push(received.id)).on('gap', (gap) => gaps.push(gap))
  client.connect()
  const sockets = (): number => ws.sockets.length
  /** Opens the newest socket and answers the subscribe as a node whose history is `epoch` 1..3. */
  const node = (epoch: string): FakeSocket => {
    const socket = ws.last
    socket.accept()
    socket.receive(hello())
    const since = socket.framesOf('subscribe')[0]?.since
    if (since === undefined) socket.receive({ type: 'subscribed', channel: 'news', epoch, offset: 3 })
    else if (since.startsWith(`${epoch}-`)) socket.receive({ type: 'subscribed', channel: 'news', epoch, offset: 3 })
    else {
      socket.receive({ type: 'subscribed', channel: 'news', epoch, offset: 0, gap: 'epoch-changed' })
      for (let offset = 1; offset <= 3; offset++) socket.receive(message('news', epoch, offset))
    }
    return socket
  }
  /** After 5 s open (so the backoff starts over) the connection drops and the client reconnects in 500 ms. */
  const reconnect = (socket: FakeSocket): void => {
    const count = sockets()
    vi.advanceTimersByTime(5000)
    socket.drop(1000)
    vi.advanceTimersByTime(500)
    expect(sockets()).toBe(count + 1)
  }
  const flaps = () => errors.filter((error) => error.code === 'EPOCH_FLAPPING')
  /**
   * Advances time until the client opens its next socket; returns how long that took. The wait is
   * the 30 s hint, then the backoff's jitter on top (as for every retry hint), so at most 60 s.
   */
  const nextSocket = (): number => {
    const count = sockets()
    let waited = 0
    while (sockets() === count && waited < 60_000) {
      vi.advanceTimersByTime(100)
      waited += 100
    }
    expect(sockets()).toBe(count + 1)
    return waited
  }
  return { client, ws, errors, delivered, gaps, sockets, node, reconnect, flaps, nextSocket }
}

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('flapping epochs (client side)', () => {
  it('an epoch changing back within a minute is reported once, nothing is replayed, and the client waits 30 s', () => {
    const { errors, delivered, gaps, node, reconnect, flaps, ws, nextSocket } = setup()
    reconnect(node('a'))
    // Node b: a new epoch, as after a restart: a gap and b's history, as always.
    reconnect(node('b'))
    expect(delivered).toEqual(['b-1', 'b-2', 'b-3'])
    expect(gaps).toEqual([{ channel: 'news', reason: 'epoch-changed', from: 'a-3', to: 'b-0' }])
    // Node a again, seconds later: a's epoch comes back. That is flapping, not a restart.
    node('a')
    expect(flaps()).toHaveLength(1)
    expect(errors).toHaveLength(1)
    expect(flaps()[0]?.channel).toBe('news')
    expect(flaps()[0]?.message).toMatch(/pushline\/redis/)
    expect(flaps()[0]?.message).toMatch(/sticky sessions/)
    // a's history is not replayed, and the gap is not reported: the position stays b-3.
    expect(delivered).toEqual(['b-1', 'b-2', 'b-3'])
    expect(gaps).toHaveLength(1)
    expect(ws.last.closedWith).toBe(1000)
    expect(nextSocket()).toBeGreaterThan(30_000)
    expect(ws.last.framesOf('subscribe')).toEqual([])
    ws.last.accept()
    ws.last.receive(hello())
    expect(ws.last.framesOf('subscribe')).toMatchObject([{ channel: 'news', since: 'b-3' }])
  })

  it('keeps backing off while the epochs keep flapping, without reporting it again', () => {
    const { errors, delivered, node, reconnect, flaps, nextSocket } = setup()
    reconnect(node('a'))
    reconnect(node('b'))
    for (let round = 0; round < 5; round++) {
      node('a')
      expect(nextSocket()).toBeGreaterThan(30_000)
    }
    expect(flaps()).toHaveLength(1)
    expect(errors).toHaveLength(1)
    expect(delivered).toEqual(['b-1', 'b-2', 'b-3'])
  })

  it('does not report again when a server also sends EPOCH_FLAPPING', () => {
    const { errors, node, reconnect, flaps, ws, nextSocket } = setup()
    reconnect(node('a'))
    reconnect(node('b'))
    node('a')
    nextSocket()
    ws.last.accept()
    ws.last.receive(hello(), { type: 'close', code: 'EPOCH_FLAPPING', message: 'nodes without a shared broker', retryMs: 30_000 })
    expect(flaps()).toHaveLength(1)
    expect(errors).toHaveLength(1)
  })

  it('a server that reports it first is the one report', () => {
    const { errors, node, reconnect, flaps, ws, nextSocket } = setup()
    reconnect(node('a'))
    ws.last.accept()
    ws.last.receive(hello(), { type: 'close', code: 'EPOCH_FLAPPING', message: 'nodes without a shared broker', retryMs: 30_000 })
    nextSocket()
    reconnect(node('b'))
    node('a')
    expect(flaps()).toHaveLength(1)
    expect(errors).toHaveLength(1)
    expect(flaps()[0]?.channel).toBeUndefined()
  })

  it('an epoch that comes back after more than a minute is a gap like any other', () => {
    const { errors, delivered, gaps, node, reconnect } = setup()
    reconnect(node('a'))
    const onB = node('b')
    // A minute on b, kept alive by pings.
    for (let second = 0; second < 60; second += 5) {
      vi.advanceTimersByTime(5000)
      onB.receive({ type: 'ping' })
    }
    reconnect(onB)
    node('a')
    expect(errors).toEqual([])
    expect(delivered).toEqual(['b-1', 'b-2', 'b-3', 'a-1', 'a-2', 'a-3'])
    expect(gaps).toHaveLength(2)
  })

  it('new epochs one after another (restarts, a Redis that lost history) are gaps, not flapping', () => {
    const { errors, delivered, node, reconnect } = setup()
    for (const epoch of ['a', 'b', 'c', 'd', 'e', 'f']) reconnect(node(epoch))
    expect(errors).toEqual([])
    expect(delivered).toHaveLength(15)
  })

  it('remembers only the last few epochs', () => {
    const { errors, node, reconnect } = setup()
    // a is left first; four epochs later it is forgotten, so its return is a gap.
    for (const epoch of ['a', 'b', 'c', 'd', 'e', 'f', 'a']) reconnect(node(epoch))
    expect(errors).toEqual([])
  })
})
