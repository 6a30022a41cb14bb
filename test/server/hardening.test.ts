import type { IncomingMessage } from 'node:http'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { readBody } from '../../src/server/endpoints/http-io.js'
import { cleanup, connect, startPushFixture } from '../helpers/push-fixture.js'

// Small hardening of issue 11: nosniff on JSON answers, client input quoted short in errors,
// a deadline on publish bodies.

afterEach(async () => {
  vi.useRealTimers()
  await cleanup()
})

const LONG_NAME = 'x'.repeat(60_000)

describe('JSON answers', () => {
  it('carry X-Content-Type-Options: nosniff, errors and successes alike', async () => {
    const server = await startPushFixture()
    const answers = await Promise.all([
      fetch(`${server.directUrl}/nope`),
      fetch(`${server.directUrl}/publish`),
      fetch(`${server.directUrl}/sse?cursor=${encodeURIComponent('bad name')}`),
      fetch(`${server.directUrl}/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ channel: 'c', data: 1 }),
      }),
      fetch(`${server.directUrl}/poll?cursor=c&hold=0`),
    ])
    expect(answers.map((res) => res.status)).toEqual([404, 405, 400, 200, 200])
    for (const res of answers) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      await res.body?.cancel()
    }
  })
})

describe('error messages', () => {
  it('quote at most 64 characters of an invalid channel name in a stream cursor', async () => {
    const server = await startPushFixture()
    const res = await fetch(`${server.directUrl}/poll?cursor=${'%24'.repeat(3000)}&hold=0`)
    const body = (await res.json()) as { code: string; message: string }
    expect(res.status).toBe(400)
    expect(body.code).toBe('INVALID_CHANNEL')
    expect(body.message.length).toBeLessThan(120)
    expect(body.message).toContain('…')
  })

  it('neither echo nor quote a 60 KB channel name sent over WebSocket', async () => {
    const server = await startPushFixture()
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: LONG_NAME, rid: 'r' })
    const error = await client.nextOf('error')
    expect(error).toMatchObject({ code: 'INVALID_CHANNEL', rid: 'r' })
    expect(JSON.stringify(error).length).toBeLessThan(300)
  })

  it('quote a short invalid name back', async () => {
    const server = await startPushFixture()
    const client = await connect(server)
    client.send({ type: 'subscribe', channel: 'bad name', rid: 'r' })
    expect(await client.nextOf('error')).toMatchObject({ code: 'INVALID_CHANNEL', channel: 'bad name' })
  })

  it('push.publish quotes at most 64 characters of an invalid name', async () => {
    const server = await startPushFixture()
    const error = await server.push.publish(LONG_NAME, 1).catch((caught: unknown) => caught as Error)
    expect(error).toMatchObject({ code: 'INVALID_CHANNEL' })
    expect((error as Error).message.length).toBeLessThan(120)
  })
})

describe('publish body deadline', () => {
  it('gives up on a body that has not arrived in time', async () => {
    vi.useFakeTimers()
    const req = new PassThrough() as unknown as IncomingMessage
    req.headers = { 'content-length': '100' }
    const read = readBody(req, 1000, 10_000)
    ;(req as unknown as PassThrough).write('{"chan')
    vi.advanceTimersByTime(10_000)
    expect(await read).toEqual({ ok: false, reason: 'timeout' })
  })

  it('reads a body that arrives in time', async () => {
    vi.useFakeTimers()
    const req = new PassThrough() as unknown as IncomingMessage
    req.headers = {}
    const read = readBody(req, 1000, 10_000)
    ;(req as unknown as PassThrough).end('{"a":1}')
    await vi.advanceTimersByTimeAsync(100)
    expect(await read).toEqual({ ok: true, bytes: 7, text: '{"a":1}' })
  })
})
