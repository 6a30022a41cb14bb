/**
 * Presence as a client sees it (protocol.md 2.4): `sub.presence()` and `presence` events, with
 * members on WebSocket, SSE and long polling at once.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { PushClient, type PresenceChange, type Subscription } from '../../src/index.js'
import { cleanup, startPushFixture, waitFor } from '../helpers/push-fixture.js'

afterEach(cleanup)

const GRACE_MS = 300

describe('presence across transports', () => {
  const clients: PushClient[] = []
  afterEach(() => {
    for (const client of clients.splice(0)) client.close()
  })

  it('shows every member to every subscriber, whatever its transport, and drops one that left after the grace period', async () => {
    const server = await startPushFixture({
      heartbeatMs: 300,
      authenticate: ({ token }) => (token ? { userId: token } : null),
      presence: (channel) => channel.startsWith('room:'),
      presenceGraceMs: GRACE_MS,
    })
    const join = (user: string, transport: 'websocket' | 'sse' | 'long-polling') => {
      const client = new PushClient({ url: server.url, transports: [transport], token: user, reconnect: { initialDelayMs: 50, maxDelayMs: 400 } })
      clients.push(client)
      const changes: PresenceChange[] = []
      const sub = client.subscribe('room:1')
      sub.on('presence', (change) => changes.push(change))
      client.connect()
      return { client, sub, changes }
    }
    const ids = (sub: Subscription) => sub.presence().map((member) => member.id).sort()
    const alice = join('alice', 'websocket')
    const bob = join('bob', 'sse')
    const carol = join('carol', 'long-polling')
    for (const member of [alice, bob, carol]) {
      await waitFor(() => ids(member.sub).join() === 'alice,bob,carol', `${member.client.transport} sees all three`)
    }
    expect(alice.sub.presence().every((member) => typeof member.joinedAt === 'number')).toBe(true)
    expect(alice.changes[0]?.action).toBe('sync')
    expect(alice.changes.slice(1).every((change) => change.action === 'join')).toBe(true)

    bob.client.close()
    for (const member of [alice, carol]) {
      await waitFor(() => ids(member.sub).join() === 'alice,carol', `${member.client.transport} sees bob leave`)
    }
    expect(alice.changes.at(-1)).toMatchObject({ action: 'leave', member: { id: 'bob' } })
    expect(server.push.presence('room:1').map((member) => member.id).sort()).toEqual(['alice', 'carol'])
  })

  it('is empty on channels without presence', async () => {
    const server = await startPushFixture({ presence: (channel) => channel.startsWith('room:') })
    const client = new PushClient({ url: server.url, transports: ['websocket'] })
    clients.push(client)
    const sub = client.subscribe('lobby')
    let subscribed = false
    sub.on('subscribed', () => (subscribed = true))
    client.connect()
    await waitFor(() => subscribed, 'subscribed')
    expect(sub.presence()).toEqual([])
  })
})
