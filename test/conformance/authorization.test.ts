/**
 * Authorization as a client sees it, on every transport the Node client runs (the iframe stream
 * is browser-only; its server side is in test/server/authorization.test.ts): a refused subscribe
 * ends that subscription only (also a resume with `since`), a refused publish rejects that
 * publish only, no message of a forbidden channel reaches the application, and a connection
 * whose token expires reconnects with a fresh token and loses nothing.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { PushClient, shortPolling, type PushError, type PushMessage } from '../../src/index.js'
import { PushError as ServerPushError } from '../../src/server/index.js'
import type { PushServerOptions } from '../../src/server/index.js'
import { cleanup, startPushFixture, waitFor } from '../helpers/push-fixture.js'

afterEach(cleanup)

const TRANSPORTS = ['websocket', 'sse', 'long-polling', 'short-polling'] as const

function transportOf(name: (typeof TRANSPORTS)[number]) {
  return name === 'short-polling' ? shortPolling({ intervalMs: 100 }) : name
}

/** Token = user id; `secret*` is for `admin` only; nobody publishes to `readonly`. */
const policy: PushServerOptions = {
  heartbeatMs: 300,
  authenticate: ({ token }) => (token ? { userId: token } : null),
  authorize: ({ identity, channel, action }) => {
    if (action === 'publish' && channel === 'readonly') throw new ServerPushError('PUBLISH_REJECTED', 'read-only')
    return !channel.startsWith('secret') || identity?.userId === 'admin'
  },
}

function record(client: PushClient, channel: string, since?: string) {
  const messages: PushMessage[] = []
  const errors: string[] = []
  const subscription = client.subscribe(channel, (message) => messages.push(message), since ? { since } : {})
  subscription.on('error', (error: PushError) => errors.push(error.code))
  const state = { subscription, messages, errors, subscribed: false }
  subscription.on('subscribed', () => (state.subscribed = true))
  return state
}

describe.each(TRANSPORTS)('authorization: %s', (name) => {
  const clients: PushClient[] = []
  afterEach(() => {
    for (const client of clients.splice(0)) client.close()
  })
  const open = (url: string, token: () => string) => {
    const client = new PushClient({
      url,
      transports: [transportOf(name)],
      token,
      reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
      heartbeatGraceMs: 2000,
    })
    clients.push(client)
    return client
  }

  it('refuses a subscribe (also a resume with since) and a publish, and keeps the rest working', async () => {
    const server = await startPushFixture(policy)
    const { epoch } = await server.push.publish('secret', { n: 1 })
    const client = open(server.url, () => 'alice')
    const allowed = record(client, 'open')
    const refused = record(client, 'secret')
    const resumed = record(client, 'secret-resume', `${epoch}-0`)
    const clientErrors: string[] = []
    client.on('error', (error) => clientErrors.push(error.code))
    client.connect()
    await waitFor(() => refused.errors.length === 1 && resumed.errors.length === 1, 'both refusals')
    expect(refused.errors).toEqual(['SUBSCRIBE_REJECTED'])
    expect(resumed.errors).toEqual(['SUBSCRIBE_REJECTED'])
    expect(refused.subscription.active).toBe(false)
    expect(allowed.subscription.active).toBe(true)

    await expect(client.publish('readonly', 1)).rejects.toMatchObject({ code: 'PUBLISH_REJECTED', message: 'read-only' })
    await expect(client.publish('secret', 1)).rejects.toMatchObject({ code: 'PUBLISH_REJECTED' })
    await server.push.publish('secret', { n: 2 })
    await server.push.publish('secret-resume', { n: 1 })
    expect(await client.publish('open', { n: 1 })).toMatchObject({ channel: 'open', offset: 1 })
    await waitFor(() => allowed.messages.length === 1, 'the allowed message')
    expect(refused.messages).toEqual([])
    expect(resumed.messages).toEqual([])
    // Refusals are the subscription's and the publish's, not the connection's.
    expect(clientErrors).toEqual([])
    expect(client.state).toBe('open')

    // The admin may read it, history included.
    const admin = open(server.url, () => 'admin')
    const reader = record(admin, 'secret', `${epoch}-0`)
    admin.connect()
    await waitFor(() => reader.messages.length === 2, 'the admin replay')
    expect(reader.messages.map((message) => message.data)).toEqual([{ n: 1 }, { n: 2 }])
  })

  it('reconnects with a fresh token when its token expires, and loses nothing', async () => {
    let issued = 0
    // Long enough that a handshake on a loaded machine ends before the token it started with expires.
    const lifetimeMs = 1500
    const server = await startPushFixture({
      heartbeatMs: 300,
      authenticate: ({ token }) => {
        const match = /^t(\d+)@(\d+)$/.exec(token ?? '')
        return match ? { userId: 'u', expiresAt: Number(match[2]) } : null
      },
    })
    const client = open(server.url, () => `t${++issued}@${Date.now() + lifetimeMs}`)
    const feed = record(client, 'feed')
    const closes: string[] = []
    client.on('error', (error) => closes.push(error.code))
    client.connect()
    // "Live from now" starts when the server confirmed the subscription.
    await waitFor(() => feed.subscribed, 'subscribed')
    let n = 0
    // Publish through at least two expiries.
    while (issued < 3 && n < 500) {
      await server.push.publish('feed', { n: ++n })
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await waitFor(() => feed.messages.length === n, `all ${n} messages`, 15_000)
    expect(feed.messages.map((message) => (message.data as { n: number }).n)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
    expect(issued).toBeGreaterThanOrEqual(3)
    // An expiry on an open connection is routine: a reconnect, not an error. (On a loaded machine a
    // handshake may outlast its token and be refused with TOKEN_EXPIRED, an error; nothing else.)
    expect(closes.filter((code) => code !== 'TOKEN_EXPIRED')).toEqual([])
    expect(feed.errors).toEqual([])
  }, 45_000)
})
