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
   * The stream ended or could not open: with the status and body of a refusal (any status but
   * 200), else with neither (the connection broke, or the server ended the stream).
   */
  onEnd: (status?: number, body?: string) => void
}

/**
 * Reads a `text/event-stream` over fetch, for browsers, whose native EventSource cannot send an
 * Authorization header: the token goes in a header, never in the URL (protocol.md 3.1). Only what
 * the pushline server sends is needed (`data:` fields and the blank line that ends an event;
 * `id:`, `retry:` and comments are skipped, as the client core owns reconnects and cursors), and
 * the lines are parsed as the HTML standard's event stream interpretation says. Returns the
 * function that closes the stream; after it, no callback runs.
 */
export function openFetchEventStream(url: string, init: FetchEventStreamInit): () => void {
  const abort = new AbortController()
  let closed = false
  const end = (status?: number, body?: string): void => {
    if (closed) return
    closed = true
    abort.abort()
    init.onEnd(status, body)
  }
  void (async () => {
    const response = await init.fetch(url, {
      headers: { Accept: 'text/event-stream', ...init.headers },
      credentials: init.credentials,
      cache: 'no-store',
      signal: abort.signal,
    })
    if (response.status !== 200 || !response.body) return end(response.status, await response.text())
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    const lineEnd = /[\r\n]/g
    // Text after the last complete line, the data of the event being read, and whether the text
    // so far ended with a CR (whose LF, if it comes, belongs to the same line end).
    let buffer = ''
    let data: string | undefined
    let afterCr = false
    for (;;) {
      const { done, value } = await reader.read()
      if (closed) return
      if (done) return end()
      buffer += decoder.decode(value, { stream: true })
      let start = afterCr && buffer.startsWith('\n') ? 1 : 0
      afterCr = false
      lineEnd.lastIndex = start
      for (let match = lineEnd.exec(buffer); match; match = lineEnd.exec(buffer)) {
        const line = buffer.slice(start, match.index)
        start = match.index + 1
        // CR LF, CR and LF each end a line.
        if (match[0] === '\r') {
          if (start === buffer.length) afterCr = true
          else if (buffer[start] === '\n') start += 1
        }
        lineEnd.lastIndex = start
        if (line === '') {
          // A blank line dispatches the event, if it had data (without its last LF).
          if (data !== undefined) init.onData(data.slice(0, -1))
          data = undefined
          if (closed) return
          continue
        }
        const colon = line.indexOf(':')
        if ((colon === -1 ? line : line.slice(0, colon)) !== 'data') continue
        const value = colon === -1 ? '' : line.slice(colon + 1)
        data = (data ?? '') + (value.startsWith(' ') ? value.slice(1) : value) + '\n'
      }
      buffer = buffer.slice(start)
    }
  })().catch(() => end())
  return () => {
    closed = true
    abort.abort()
  }
}
