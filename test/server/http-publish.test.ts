import { afterEach, describe, expect, it, vi } from 'vitest'
import { PushError } from '../../src/server/index.js'
import { cleanup, connect, startPushFixture, waitFor } from '../helpers/push-fixture.js'
import type { PushFixture } from '../helpers/push-fixture.js'

afterEach(cleanup)

async function post(
  server: PushFixture,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${server.directUrl}/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.status, body: await res.json() }
}

describe('POST <base>/publish', () => {
  it('stores the message, answers with the ack and fans out', async () => {
    const server = await startPushFixture()
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'orders' })
    const { epoch } = await client.nextOf('subscribed')
    const answer = await post(server, { type: 'publish', channel: 'orders', event: 'order-update', data: { id: 7 } })
    expect(answer).toEqual({ status: 200, body: { type: 'ack', rid: 'http', channel: 'orders', offset: 1, id: `${epoch}-1` } })
    expect(await client.next()).toMatchObject({ type: 'message', event: 'order-update', data: { id: 7 }, offset: 1 })
    const withRid = await post(server, { rid: 'mine', channel: 'orders', data: null })
    expect(withRid.body).toMatchObject({ type: 'ack', rid: 'mine', offset: 2 })
  })

  it('applies a key once and answers repeats with the first ack', async () => {
    const server = await startPushFixture()
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'c' })
    await client.nextOf('subscribed')
    const body = { channel: 'c', data: 'pay once', key: 'k-123' }
    const [a, b] = await Promise.all([post(server, body), post(server, body)])
    const c = await post(server, body)
    expect(a).toEqual(b)
    expect(c).toEqual(a)
    expect(a.body).toMatchObject({ type: 'ack', offset: 1 })
    // The same key on another channel is another publish.
    expect((await post(server, { ...body, channel: 'd' })).body).toMatchObject({ channel: 'd', offset: 1 })
    expect(await client.next()).toMatchObject({ type: 'message', offset: 1 })
    expect(await client.idle(50)).toEqual([])
  })

  it('maps the publish policy to 403 and 500, and transforms', async () => {
    const logger = { error: vi.fn() }
    const server = await startPushFixture({
      logger,
      onPublish: async ({ channel, data, transport, headers }) => {
        expect(transport).toBe('http')
        if (channel === 'ro') throw new PushError('PUBLISH_REJECTED', 'read only')
        if (channel === 'no') return false
        if (channel === 'boom') throw new TypeError('oops')
        if (headers['x-tag']) return { data: { tagged: headers['x-tag'], data } }
        return undefined
      },
    })
    expect(await post(server, { channel: 'ro', data: 1 })).toEqual({
      status: 403,
      body: { type: 'error', code: 'PUBLISH_REJECTED', message: 'read only', rid: 'http', channel: 'ro' },
    })
    expect((await post(server, { channel: 'no', data: 1 })).status).toBe(403)
    expect(await post(server, { channel: 'boom', data: 1 })).toMatchObject({ status: 500, body: { code: 'INTERNAL' } })
    expect(logger.error).toHaveBeenCalledWith(expect.any(String), expect.any(TypeError))

    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 't' })
    await client.nextOf('subscribed')
    expect((await post(server, { channel: 't', data: 1 }, { 'X-Tag': 'v' })).status).toBe(200)
    expect(await client.next()).toMatchObject({ type: 'message', data: { tagged: 'v', data: 1 } })
  })

  it('rejects malformed requests with typed errors', async () => {
    const server = await startPushFixture({ maxFrameBytes: 1024 })
    expect(await post(server, '{nope')).toMatchObject({ status: 400, body: { code: 'BAD_FRAME' } })
    expect(await post(server, { channel: 'c' })).toMatchObject({ status: 400, body: { code: 'BAD_FRAME' } })
    expect(await post(server, { channel: 'c d', data: 1 })).toMatchObject({ status: 400, body: { code: 'INVALID_CHANNEL' } })
    expect(await post(server, { channel: 'c', data: 'x'.repeat(2000) })).toMatchObject({
      status: 413,
      body: { type: 'error', code: 'FRAME_TOO_LARGE' },
    })
    const text = await fetch(`${server.directUrl}/publish`, { method: 'POST', body: '{"channel":"c","data":1}' })
    expect(text.status).toBe(400)
    const get = await fetch(`${server.directUrl}/publish`)
    expect(get.status).toBe(405)
    // The server still works.
    expect((await post(server, { channel: 'c', data: 1 })).status).toBe(200)
  })

  it('answers 413 to a streamed body without a length past the limit', async () => {
    const server = await startPushFixture({ maxFrameBytes: 1024 })
    const chunks = [`{"channel":"c","data":"`, 'x'.repeat(4096), '"}']
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk))
        controller.close()
      },
    })
    const res = await fetch(`${server.directUrl}/publish`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit)
    expect(res.status).toBe(413)
  })

  it('requires authentication when configured', async () => {
    const server = await startPushFixture({ authenticate: ({ token }) => token === 'secret' })
    expect(await post(server, { channel: 'c', data: 1 })).toEqual({
      status: 401,
      body: { type: 'error', code: 'UNAUTHORIZED', message: expect.any(String) },
    })
    expect((await post(server, { channel: 'c', data: 1 }, { Authorization: 'Bearer secret' })).status).toBe(200)
  })
})

describe('POST <base>/publish in flight per client', () => {
  it('answers publishes past maxRequestsInFlight from one address 429 RATE_LIMITED with Retry-After', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let inHook = 0
    let mostInHook = 0
    const server = await startPushFixture({
      maxRequestsInFlight: 4,
      onPublish: async () => {
        inHook++
        mostInHook = Math.max(mostInHook, inHook)
        await released
        inHook--
      },
    })
    const requests = Array.from({ length: 30 }, (_, i) =>
      fetch(`${server.directUrl}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ channel: 'c', data: i }),
      }),
    )
    const statuses: number[] = []
    const answers = requests.map(async (request) => {
      const res = await request
      statuses.push(res.status)
      if (res.status === 429) {
        expect(res.headers.get('retry-after')).toBe('1')
        expect(await res.json()).toMatchObject({ type: 'error', code: 'RATE_LIMITED' })
      } else {
        await res.body?.cancel()
      }
    })
    // Four are held by the hook; every other one is refused at once.
    await waitFor(() => statuses.length === 26, '26 refusals')
    expect(statuses.every((status) => status === 429)).toBe(true)
    expect(inHook).toBe(4)
    release()
    await Promise.all(answers)
    expect(statuses.filter((status) => status === 200)).toHaveLength(4)
    expect(mostInHook).toBe(4)
    // Done ones count no more.
    expect((await post(server, { channel: 'c', data: 'later' })).status).toBe(200)
  })
})
