import { retryAfter } from './http.js'
import type { FetchLike } from './transport.js'

/** What {@link openFetchEventStream} needs: the request, and where its events and its end go. */
export interface FetchEventStreamInit {
  fetch: FetchLike
  headers: Record<string, string>
  /** `include` sends cookies cross-origin (the EventSource `withCredentials`). */
  credentials: RequestCredentials
  /** The `data` of each event, as EventSource's `message` event would carry it. */
  onData: (data: string) => void
  /**
   * The stream ended or could not open: with the status, body and `Retry-After` (ms) of a refusal
   * (any status but 200), else with neither (the connection broke, or the server ended the stream).
   */
  onEnd: (status?: number, body?: string, retryMs?: number) => void
}

/**
 * Reads a `text/event-stream` over fetch, for browsers, whose native EventSource cannot send an
 * Authorization header: the token goes in a header, never in the URL (protocol.md 3.1). It reads
 * what an event stream of protocol.md 3.3 holds, as the HTML standard's event stream
 * interpretation does: `data:` fields, joined by LF, make an event, which a blank line
 * dispatches; other fields (`id:`, `retry:`, comments) are skipped, as the client core owns
 * reconnects and cursors. Lines end with LF or CRLF (a bare CR, which no pushline server sends, is
 * not read as a line end). Returns the function that closes the stream; after it, no callback runs.
 */
export function openFetchEventStream(url: string, init: FetchEventStreamInit): () => void {
  const abort = new AbortController()
  let closed = false
  const end = (status?: number, body?: string, retryMs?: number): void => {
    if (closed) return
    closed = true
    abort.abort()
    init.onEnd(status, body, retryMs)
  }
  // Called as a plain function: a browser's fetch throws "Illegal invocation" when called as a
  // method of another object.
  const { fetch } = init
  fetch(url, {
    headers: { Accept: 'text/event-stream', ...init.headers },
    credentials: init.credentials,
    cache: 'no-store',
    signal: abort.signal,
  })
    .then(async (response) => {
      if (response.status !== 200) return end(response.status, await response.text(), retryAfter(response))
      const reader = (response.body as ReadableStream<Uint8Array>).getReader()
      const decoder = new TextDecoder()
      // The unfinished last line, and the data of the event being read.
      let rest = ''
      let data: string | undefined
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return end()
        const lines = (rest + decoder.decode(value, { stream: true })).split('\n')
        rest = lines.pop() as string
        for (let line of lines) {
          if (closed) return
          if (line.endsWith('\r')) line = line.slice(0, -1)
          if (line === '') {
            // A blank line dispatches the event, if it had data (without its last LF).
            if (data !== undefined) init.onData(data.slice(0, -1))
            data = undefined
          } else if (/^data(:|$)/.test(line)) {
            data = (data ?? '') + line.slice(5).replace(/^ /, '') + '\n'
          }
        }
      }
    })
    .catch(() => end())
  return () => {
    closed = true
    abort.abort()
  }
}
