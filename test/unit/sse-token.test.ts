/**
 * SSE with a token where the EventSource cannot send headers (a browser's native one): the
 * stream is read over fetch with the token in the Authorization header, never in the URL.
 */
import { describe, expect, it, vi } from 'vitest'
import { PushClient, sse, type PushError } from '../../src/index.js'
import type { FetchLike } from '../../src/transports/transport.js'
import { fakeEventSources, hello, memoryStorage, message } from './fakes.js'

const URL_BASE = 'http://push.test/push'

/** A fetch whose every response is a stream the test writes to, or a refusal. */
function streamingServer(refusal?: { status: number; body: string }) {
  const calls: { url: string; init: RequestInit | undefined }[] = []
  const writers: ((text: string) => void)[] = []
  const fetch = (async (url: string, init?: RequestInit) => {
    calls.push({ url, init })
    if (refusal) return new Response(refusal.body, { status: refusal.status })
    const encoder = new TextEncoder()
    return new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          writers.push((text) => controller.enqueue(encoder.encode(text)))
        },
      }),
      { status: 200, headers: { 'Content-Type': 'text/event-stream' } },
    )
  }) as FetchLike
  const send = (frame: object) => writers.at(-1)?.(`data: ${JSON.stringify(frame)}\n\n`)
  return { fetch, calls, send }
}

function client(fetch: FetchLike, options: { withCredentials?: boolean } = {}) {
  const sources = fakeEventSources({ takesFetch: false })
  const push = new PushClient({
    url: URL_BASE,
    storage: memoryStorage(),
    transports: [sse()],
    EventSource: sources.EventSource,
    fetch,
    token: 'secret',
    random: () => 0,
    ...options,
  })
  return { push, sources }
}

describe('sse with a token and an EventSource that cannot send headers', () => {
  it('reads the stream over fetch, with the token in the Authorization header', async () => {
    const server = streamingServer()
    const { push, sources } = client(server.fetch)
    const seen: number[] = []
    push.subscribe('orders', (msg) => seen.push(msg.offset))
    push.connect()
    await vi.waitFor(() => expect(server.calls).toHaveLength(1))
    expect(sources.streams).toHaveLength(0)
    const { url, init } = server.calls[0] ?? { url: '' }
    expect(url).toBe(`${URL_BASE}/sse?cursor=orders`)
    expect(url).not.toContain('secret')
    expect(init?.headers).toEqual({ Accept: 'text/event-stream', Authorization: 'Bearer secret' })
    expect(init?.credentials).toBe('same-origin')
    server.send(hello())
    await vi.waitFor(() => expect(push.state).toBe('open'))
    server.send({ type: 'subscribed', channel: 'orders', epoch: 'e', offset: 0 })
    server.send(message('orders', 'e', 1))
    await vi.waitFor(() => expect(seen).toEqual([1]))
    push.close()
  })

  it('sends cookies cross-origin with withCredentials', async () => {
    const server = streamingServer()
    const { push } = client(server.fetch, { withCredentials: true })
    push.connect()
    await vi.waitFor(() => expect(server.calls).toHaveLength(1))
    expect(server.calls[0]?.init?.credentials).toBe('include')
    push.close()
  })

  it('reports a refused stream with the code of its error body', async () => {
    const body = JSON.stringify({ type: 'error', code: 'TOKEN_EXPIRED', message: 'token expired' })
    const server = streamingServer({ status: 401, body })
    const { push } = client(server.fetch)
    const errors: PushError[] = []
    push.on('error', (error) => errors.push(error))
    push.connect()
    await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0))
    expect(errors[0]).toMatchObject({ code: 'TOKEN_EXPIRED', message: 'token expired', status: 401, transport: 'sse' })
    push.close()
  })
})
