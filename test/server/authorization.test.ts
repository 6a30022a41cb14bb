import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { PushError } from '../../src/server/index.js'
import type { AuthorizeContext, Identity, PushServerOptions } from '../../src/server/index.js'
import { FrameClient, cleanup, sleep, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'
import { openRawStream, rawPoll } from '../helpers/raw-stream.js'

afterEach(cleanup)

interface Member extends Identity {
  role: 'admin' | 'member'
}

/** Tokens are user ids here; `admin` may read `secret*`; nobody publishes to `readonly`. */
function policy(calls: AuthorizeContext[] = []): PushServerOptions {
  return {
    authenticate: ({ token }) => {
      if (!token) return null
      if (token === 'forged') throw new PushError('UNAUTHORIZED', 'bad signature')
      if (token === 'stale') throw new PushError('TOKEN_EXPIRED', 'jwt expired')
      const member: Member = { userId: token, role: token === 'admin' ? 'admin' : 'member' }
      return member
    },
    authorize: async (context) => {
      calls.push(context)
      await sleep(1)
      if (context.action === 'publish' && context.channel === 'readonly') throw new PushError('PUBLISH_REJECTED', 'read-only')
      return !context.channel.startsWith('secret') || (context.identity as Member | undefined)?.role === 'admin'
    },
    userChannels: 'user:',
  }
}

const auth = (token: string) => ['pushline.v1', `pushline.auth.${Buffer.from(token).toString('base64url')}`]
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` })

async function openWs(server: PushFixture, token: string): Promise<FrameClient> {
  const client = await FrameClient.open(server.wsUrl, auth(token))
  expect(await client.next()).toMatchObject({ type: 'hello' })
  return client
}

const channelsOf = (frames: ServerFrame[]) => frames.map((frame) => ('channel' in frame ? frame.channel : undefined))

describe('authorization over WebSocket', () => {
  it('asks authorize with the identity, and refuses a subscribe with SUBSCRIBE_REJECTED for that rid and channel only', async () => {
    const calls: AuthorizeContext[] = []
    const server = await startPushFixture(policy(calls))
    const { epoch } = await server.push.publish('secret', { n: 1 })
    const client = await openWs(server, 'alice')
    client.send({ type: 'subscribe', rid: 's1', channel: 'open' })
    client.send({ type: 'subscribe', rid: 's2', channel: 'secret', since: `${epoch}-0` })
    expect(await client.next()).toMatchObject({ type: 'subscribed', channel: 'open', rid: 's1' })
    expect(await client.next()).toEqual({ type: 'error', code: 'SUBSCRIBE_REJECTED', message: 'subscribe not allowed', rid: 's2', channel: 'secret' })
    expect(calls[0]).toEqual({ identity: { userId: 'alice', role: 'member' }, channel: 'open', action: 'subscribe', transport: 'websocket' })

    await server.push.publish('secret', { n: 2 })
    await server.push.publish('open', { n: 1 })
    expect(await client.next()).toMatchObject({ type: 'message', channel: 'open', data: { n: 1 } })
    expect(channelsOf(await client.idle(50))).toEqual([])
    expect(channelsOf(client.frames.filter((frame) => frame.type !== 'error'))).not.toContain('secret')

    const admin = await openWs(server, 'admin')
    admin.send({ type: 'subscribe', rid: 's1', channel: 'secret', since: `${epoch}-0` })
    expect(await admin.next()).toMatchObject({ type: 'subscribed', channel: 'secret' })
    expect(await admin.next()).toMatchObject({ type: 'message', channel: 'secret', data: { n: 1 } })
  })

  it('ends a subscription whose resubscribe is refused', async () => {
    let allowed = true
    const server = await startPushFixture({ authorize: () => allowed })
    const client = await FrameClient.open(server.wsUrl)
    await client.next()
    client.send({ type: 'subscribe', rid: 'a', channel: 'news' })
    const subscribed = await client.nextOf('subscribed')
    allowed = false
    client.send({ type: 'subscribe', rid: 'b', channel: 'news', since: `${subscribed.epoch}-0` })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SUBSCRIBE_REJECTED', rid: 'b', channel: 'news' })
    await server.push.publish('news', 'x')
    expect(await client.idle(50)).toEqual([])
    expect(server.push.stats().subscriptions).toBe(0)
  })

  it('refuses a publish with PUBLISH_REJECTED and keeps the connection', async () => {
    const server = await startPushFixture(policy())
    const client = await openWs(server, 'alice')
    client.send({ type: 'publish', rid: 'p1', channel: 'readonly', data: 1, key: 'k1' })
    expect(await client.next()).toEqual({ type: 'error', code: 'PUBLISH_REJECTED', message: 'read-only', rid: 'p1', channel: 'readonly' })
    client.send({ type: 'publish', rid: 'p2', channel: 'secret', data: 1 })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'PUBLISH_REJECTED', rid: 'p2' })
    client.send({ type: 'publish', rid: 'p3', channel: 'open', data: 1 })
    expect(await client.next()).toMatchObject({ type: 'ack', rid: 'p3', offset: 1 })
  })

  it('checks authorization before idempotency keys: a refused identity never gets the ack of an allowed one', async () => {
    const server = await startPushFixture(policy())
    const admin = await openWs(server, 'admin')
    admin.send({ type: 'publish', rid: 'p1', channel: 'secret', data: 1, key: 'same' })
    expect(await admin.next()).toMatchObject({ type: 'ack', rid: 'p1' })
    const alice = await openWs(server, 'alice')
    alice.send({ type: 'publish', rid: 'p1', channel: 'secret', data: 1, key: 'same' })
    expect(await alice.next()).toMatchObject({ type: 'error', code: 'PUBLISH_REJECTED' })
  })

  it('answers INTERNAL when authorize throws something else, and logs it', async () => {
    const logger = { error: vi.fn() }
    const server = await startPushFixture({
      logger,
      authorize: () => {
        throw new Error('db down')
      },
    })
    const client = await FrameClient.open(server.wsUrl)
    await client.next()
    client.send({ type: 'subscribe', rid: 's', channel: 'a' })
    expect(await client.next()).toMatchObject({ type: 'error', code: 'INTERNAL', rid: 's', channel: 'a' })
    expect(logger.error).toHaveBeenCalledWith('pushline: authorize threw', expect.any(Error))
  })
})

describe('authorization over POST /publish', () => {
  it('refuses with 403 PUBLISH_REJECTED, and 401 with the reason authenticate gave', async () => {
    const server = await startPushFixture(policy())
    const post = (token: string, channel: string) =>
      fetch(`${server.directUrl}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...bearer(token) },
        body: JSON.stringify({ channel, data: 1 }),
      })
    const refused = await post('alice', 'secret')
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({ type: 'error', code: 'PUBLISH_REJECTED', channel: 'secret' })
    const forged = await post('forged', 'open')
    expect(forged.status).toBe(401)
    expect(await forged.json()).toEqual({ type: 'error', code: 'UNAUTHORIZED', message: 'bad signature' })
    const stale = await post('stale', 'open')
    expect(stale.status).toBe(401)
    expect(await stale.json()).toEqual({ type: 'error', code: 'TOKEN_EXPIRED', message: 'jwt expired' })
    const ok = await post('admin', 'secret')
    expect(ok.status).toBe(200)
  })
})

const streamTransports = [
  { name: 'sse', path: 'sse', query: '' },
  { name: 'iframe', path: 'iframe', query: '' },
] as const

describe('authorization on stream transports: a refused cursor entry gets an error frame, the others go on', () => {
  for (const transport of streamTransports) {
    it(transport.name, async () => {
      const server = await startPushFixture(policy())
      const { epoch } = await server.push.publish('secret', { n: 1 })
      await server.push.publish('open', { n: 1 })
      const origin = transport.name === 'iframe' ? `&origin=${encodeURIComponent(server.origin)}` : ''
      const url = `${server.directUrl}/${transport.path}?cursor=${encodeURIComponent(`secret=${epoch}-0,open=${epoch}-0`)}${origin}`
      const stream = await openRawStream(url, bearer('alice'))
      expect(stream.res.statusCode).toBe(200)
      expect(await stream.next()).toMatchObject({ type: 'hello' })
      const early = [await stream.next(), await stream.next(), await stream.next()]
      expect(early).toContainEqual({ type: 'error', code: 'SUBSCRIBE_REJECTED', message: 'subscribe not allowed', channel: 'secret' })
      expect(early).toContainEqual(expect.objectContaining({ type: 'subscribed', channel: 'open' }))
      expect(early).toContainEqual(expect.objectContaining({ type: 'message', channel: 'open', offset: 1 }))
      await server.push.publish('secret', { n: 2 })
      await server.push.publish('open', { n: 2 })
      expect(await stream.next()).toMatchObject({ type: 'message', channel: 'open', offset: 2 })
      expect(stream.seen().filter((frame) => frame.type !== 'error')).not.toContainEqual(expect.objectContaining({ channel: 'secret' }))
      stream.close()
    })
  }

  it('long-polling and short-polling: every poll refuses the entry and answers the rest', async () => {
    const server = await startPushFixture(policy())
    const { epoch } = await server.push.publish('secret', { n: 1 })
    for (const hold of ['', '&hold=0']) {
      const cursor = encodeURIComponent(`secret=${epoch}-0,open`)
      const first = await rawPoll(`${server.directUrl}/poll?cursor=${cursor}${hold}`, bearer('alice'))
      expect(first.status).toBe(200)
      expect(first.frames.map((frame) => frame.type)).toEqual(['hello', 'error', 'subscribed'])
      expect(first.frames[1]).toMatchObject({ code: 'SUBSCRIBE_REJECTED', channel: 'secret' })
      const session = (first.frames[0] as { session: string }).session
      const open = first.frames[2] as { epoch: string; offset: number }
      const next = encodeURIComponent(`secret=${epoch}-0,open=${open.epoch}-${open.offset}`)
      const again = await rawPoll(`${server.directUrl}/poll?cursor=${next}&session=${session}&hold=0`, bearer('alice'))
      expect(again.frames).toEqual([expect.objectContaining({ type: 'error', code: 'SUBSCRIBE_REJECTED', channel: 'secret' })])
    }
  })
})

describe('identity', () => {
  it('reads the token from the authCookie cookie when there is no other', async () => {
    const tokens: (string | undefined)[] = []
    const server = await startPushFixture({
      authCookie: 'push_token',
      authenticate: ({ token }) => {
        tokens.push(token)
        return token ? { userId: token } : null
      },
    })
    const stream = await openRawStream(`${server.directUrl}/sse?cursor=`, { Cookie: 'a=b; push_token=carol%20c; c=d' })
    expect(await stream.next()).toMatchObject({ type: 'hello' })
    stream.close()
    const header = await openRawStream(`${server.directUrl}/sse?cursor=`, { Cookie: 'push_token=carol', ...bearer('dave') })
    await header.next()
    header.close()
    const none = await openRawStream(`${server.directUrl}/sse?cursor=`, { Cookie: 'other=x' })
    expect(none.res.statusCode).toBe(401)
    expect(tokens).toEqual(['carol c', 'dave', undefined])
  })

  it('refuses credentials that expired with 401 TOKEN_EXPIRED, and on WebSocket a close frame and 4401', async () => {
    const server = await startPushFixture({ authenticate: ({ token }) => ({ userId: 'u', expiresAt: Date.now() - (token === 'old' ? 1 : -60_000) }) })
    const res = await fetch(`${server.directUrl}/poll?cursor=`, { headers: bearer('old') })
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ type: 'error', code: 'TOKEN_EXPIRED', message: 'token expired' })
    const ws = await FrameClient.open(server.wsUrl, auth('old'))
    expect(await ws.next()).toEqual({ type: 'close', code: 'TOKEN_EXPIRED', message: 'token expired' })
    expect((await ws.closed).code).toBe(4401)
  })

  it('closes a connection when its credentials expire: close frame TOKEN_EXPIRED on every transport', async () => {
    const lifetimeMs = 300
    const server = await startPushFixture({ authenticate: () => ({ userId: 'u', expiresAt: Date.now() + lifetimeMs }) })
    const ws = await openWs(server, 't')
    const sse = await openRawStream(`${server.directUrl}/sse?cursor=a`, bearer('t'))
    const iframe = await openRawStream(`${server.directUrl}/iframe?cursor=a&origin=${encodeURIComponent(server.origin)}`, bearer('t'))
    const first = await rawPoll(`${server.directUrl}/poll?cursor=a`, bearer('t'))
    const session = (first.frames[0] as { session: string }).session
    const position = first.frames[1] as { epoch: string; offset: number }
    const held = rawPoll(`${server.directUrl}/poll?cursor=a=${position.epoch}-${position.offset}&session=${session}`, bearer('t'))

    expect(await ws.nextOf('close', 5000)).toEqual({ type: 'close', code: 'TOKEN_EXPIRED', message: 'token expired' })
    expect((await ws.closed).code).toBe(4401)
    for (const stream of [sse, iframe]) {
      await waitFor(() => stream.ended, 'the stream to end')
      expect(stream.seen().at(-1)).toEqual({ type: 'close', code: 'TOKEN_EXPIRED', message: 'token expired' })
    }
    expect((await held).frames).toEqual([{ type: 'close', code: 'TOKEN_EXPIRED', message: 'token expired' }])
    await waitFor(() => server.push.stats().connections === 0, 'no connections')
  })
})

describe('user channels', () => {
  it('lets only its user subscribe, no client publish, and publishToUser reach every connection of the user', async () => {
    const server = await startPushFixture(policy())
    const alice = await openWs(server, 'alice')
    const alice2 = await openWs(server, 'alice')
    const bob = await openWs(server, 'bob')
    for (const client of [alice, alice2]) {
      client.send({ type: 'subscribe', rid: 's', channel: 'user:alice' })
      expect(await client.next()).toMatchObject({ type: 'subscribed', channel: 'user:alice' })
    }
    bob.send({ type: 'subscribe', rid: 's', channel: 'user:alice' })
    expect(await bob.next()).toMatchObject({ type: 'error', code: 'SUBSCRIBE_REJECTED', channel: 'user:alice', message: 'not your user channel' })
    bob.send({ type: 'publish', rid: 'p', channel: 'user:alice', data: 'spoof' })
    expect(await bob.next()).toMatchObject({ type: 'error', code: 'PUBLISH_REJECTED', rid: 'p' })

    await server.push.publishToUser('alice', { text: 'hi' }, { event: 'dm' })
    for (const client of [alice, alice2]) {
      expect(await client.next()).toMatchObject({ type: 'message', channel: 'user:alice', event: 'dm', data: { text: 'hi' }, offset: 1 })
    }
    await expect(startPushFixture().then((other) => other.push.publishToUser('x', 1))).rejects.toThrow(RangeError)
    await expect(server.push.publishToUser('not valid', 1)).rejects.toThrow(RangeError)
  })

  it('disconnectUser closes all of the user\'s connections with UNAUTHORIZED', async () => {
    const server = await startPushFixture(policy())
    const alice = await openWs(server, 'alice')
    const sse = await openRawStream(`${server.directUrl}/sse?cursor=a`, bearer('alice'))
    await sse.next()
    const bob = await openWs(server, 'bob')
    expect(server.push.disconnectUser('alice', 'banned')).toBe(2)
    expect(await alice.next()).toEqual({ type: 'close', code: 'UNAUTHORIZED', message: 'banned' })
    expect((await alice.closed).code).toBe(4401)
    await waitFor(() => sse.ended, 'the SSE stream to end')
    expect(sse.seen().at(-1)).toMatchObject({ type: 'close', code: 'UNAUTHORIZED' })
    await waitFor(() => server.push.stats().connections === 1, 'only bob left')
    expect(server.push.disconnectUser('alice')).toBe(0)
    bob.send({ type: 'subscribe', channel: 'x' })
    expect(await bob.next()).toMatchObject({ type: 'subscribed' })
  })
})
