/**
 * The client's side of issue 10 with fake transports: an expired token reconnects at once with a
 * fresh one (no error, no backoff, no fallback), a refused origin moves to no other transport,
 * and presence frames keep `sub.presence()` and feed `presence` events.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { PushClient as CorePushClient } from '../../src/core.js'
import { PushError, type CoreClientOptions, type PresenceChange } from '../../src/index.js'
import { fakeTransport, memoryStorage, useFakeTimers } from './fakes.js'

const URL_BASE = 'http://push.test/push'

function setup(options: Partial<Omit<CoreClientOptions, 'transports'>> = {}) {
  const ws = fakeTransport('websocket')
  const sse = fakeTransport('sse')
  const client = new CorePushClient({
    url: URL_BASE,
    random: () => 1,
    storage: memoryStorage(),
    ...options,
    transports: [ws.factory, sse.factory],
  })
  const errors: string[] = []
  client.on('error', (error) => errors.push(error.code))
  return { client, ws, sse, errors }
}

beforeEach(() => {
  useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('expired credentials', () => {
  it('reconnects at once with a fresh token after a close frame TOKEN_EXPIRED on an open connection', async () => {
    let issued = 0
    const { client, ws, sse, errors } = setup({ token: () => `t${++issued}` })
    client.connect()
    await vi.waitFor(() => expect(ws.instances).toHaveLength(1))
    ws.last.hello(['websocket', 'sse'])
    expect(client.state).toBe('open')
    expect(ws.last.context.token).toBe('t1')
    ws.last.receive({ type: 'close', code: 'TOKEN_EXPIRED', message: 'token expired' })
    // No backoff delay: the next attempt starts now, on the same transport, with a new token.
    await vi.waitFor(() => expect(ws.instances).toHaveLength(2))
    expect(ws.last.context.token).toBe('t2')
    expect(sse.instances).toHaveLength(0)
    expect(errors).toEqual([])
  })

  it('backs off, without falling back, when a handshake is refused for an expired token', async () => {
    const { client, ws, sse, errors } = setup({ token: 'old' })
    client.connect()
    await vi.waitFor(() => expect(ws.instances).toHaveLength(1))
    ws.last.fail(new PushError('TOKEN_EXPIRED', 'token expired'))
    expect(errors).toEqual(['TOKEN_EXPIRED'])
    expect(sse.instances).toHaveLength(0)
    expect(client.state).toBe('reconnecting')
  })
})

describe('refused origin', () => {
  it('does not fall back to another transport: every transport has the same origin', async () => {
    const { client, ws, sse, errors } = setup()
    client.connect()
    ws.last.fail(new PushError('ORIGIN_REJECTED', 'origin https://evil.example is not allowed'))
    expect(errors).toEqual(['ORIGIN_REJECTED'])
    expect(sse.instances).toHaveLength(0)
    expect(client.state).toBe('reconnecting')
  })
})

describe('presence', () => {
  it('keeps the member set from sync, join and leave frames, shared by every Subscription of the channel', () => {
    const { client, ws } = setup()
    const first = client.subscribe('room')
    const changes: PresenceChange[] = []
    first.on('presence', (change) => changes.push(change))
    client.connect()
    ws.last.hello(['websocket'])
    ws.last.receive({ type: 'subscribed', channel: 'room', epoch: 'e', offset: 0 })
    expect(first.presence()).toEqual([])
    ws.last.receive({ type: 'presence', channel: 'room', action: 'sync', members: [{ id: 'a', joinedAt: 1 }] })
    ws.last.receive({ type: 'presence', channel: 'room', action: 'join', member: { id: 'b', joinedAt: 2 } })
    const second = client.subscribe('room')
    expect(second.presence()).toEqual([
      { id: 'a', joinedAt: 1 },
      { id: 'b', joinedAt: 2 },
    ])
    ws.last.receive({ type: 'presence', channel: 'room', action: 'leave', member: { id: 'a', joinedAt: 1 } })
    expect(first.presence()).toEqual([{ id: 'b', joinedAt: 2 }])
    expect(changes.map((change) => change.action)).toEqual(['sync', 'join', 'leave'])
    // A sync (after a resubscribe) replaces the set.
    ws.last.receive({ type: 'presence', channel: 'room', action: 'sync', members: [{ id: 'c', joinedAt: 3 }] })
    expect(second.presence()).toEqual([{ id: 'c', joinedAt: 3 }])
    // Frames of channels this client does not hold are ignored.
    ws.last.receive({ type: 'presence', channel: 'elsewhere', action: 'join', member: { id: 'x', joinedAt: 4 } })
    expect(client.subscribe('elsewhere').presence()).toEqual([])
  })
})
