import { describe, expect, it, vi } from 'vitest'
import { openFetchEventStream } from '../../src/transports/fetch-event-stream.js'
import type { FetchLike } from '../../src/transports/transport.js'

/** A fetch whose response body is `chunks`, as bytes, each its own read. */
function streamingFetch(chunks: (string | Uint8Array)[], status = 200): { fetch: FetchLike; calls: [string, RequestInit | undefined][] } {
  const calls: [string, RequestInit | undefined][] = []
  const fetch = (async (url: string, init?: RequestInit) => {
    calls.push([url, init])
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk)
        controller.close()
      },
    })
    return new Response(body, { status })
  }) as FetchLike
  return { fetch, calls }
}

function read(chunks: (string | Uint8Array)[], status = 200) {
  const { fetch, calls } = streamingFetch(chunks, status)
  const data: string[] = []
  return new Promise<{ data: string[]; end: [number | undefined, string | undefined]; calls: typeof calls }>((resolve) => {
    openFetchEventStream('https://push.example/push/sse?cursor=a', {
      fetch,
      headers: { Authorization: 'Bearer t0k' },
      credentials: 'include',
      onData: (text) => data.push(text),
      onEnd: (endStatus, body) => resolve({ data, end: [endStatus, body], calls }),
    })
  })
}

describe('openFetchEventStream', () => {
  it('sends the token as a header, never in the URL, with cookies when asked', async () => {
    const { calls } = await read([])
    const [url, init] = calls[0] ?? []
    expect(url).toBe('https://push.example/push/sse?cursor=a')
    expect(init?.headers).toEqual({ Accept: 'text/event-stream', Authorization: 'Bearer t0k' })
    expect(init?.credentials).toBe('include')
  })

  it('dispatches the data of each event, skipping comments, id, retry and unknown fields', async () => {
    const { data, end } = await read([`retry: 2000\n:${' '.repeat(20)}\n\nid: a=x-1\ndata: {"type":"hello"}\n\n`, 'event: x\ndata:{"n":1}\nfoo: bar\ndatum: no\n\n'])
    expect(data).toEqual(['{"type":"hello"}', '{"n":1}'])
    expect(end).toEqual([undefined, undefined])
  })

  it('joins multi-line data with LF, and dispatches an empty data field as an empty event', async () => {
    const { data } = await read(['data: one\ndata: two\n\ndata\n\n'])
    expect(data).toEqual(['one\ntwo', ''])
  })

  it('reads lines ended by CRLF or LF, also when a line end or a character is split across chunks', async () => {
    const euro = new TextEncoder().encode('data: €\n\n')
    const { data } = await read(['data: a\r', '\n\r\ndata: b\n', '\ndat', 'a: d\r\n\r\n', euro.slice(0, 7), euro.slice(7)])
    expect(data).toEqual(['a', 'b', 'd', '€'])
  })

  it('drops an event the stream ended in the middle of', async () => {
    const { data } = await read(['data: whole\n\ndata: cut'])
    expect(data).toEqual(['whole'])
  })

  it('reports a refusal with its status and body', async () => {
    const body = '{"type":"error","code":"UNAUTHORIZED","message":"unauthorized"}'
    const { data, end } = await read([body], 401)
    expect(data).toEqual([])
    expect(end).toEqual([401, body])
  })

  it('runs no callback after close, and aborts the request', async () => {
    let signal: AbortSignal | undefined
    const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
      signal = init?.signal ?? undefined
      return new Response(new ReadableStream({ start: () => {} }))
    }) as unknown as FetchLike
    const onEnd = vi.fn()
    const close = openFetchEventStream('https://push.example/push/sse', { fetch, headers: {}, credentials: 'same-origin', onData: vi.fn(), onEnd })
    await vi.waitFor(() => expect(signal).toBeDefined())
    close()
    expect(signal?.aborted).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(onEnd).not.toHaveBeenCalled()
  })
})
