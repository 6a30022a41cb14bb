import * as eventsource from 'eventsource'
import { PushError } from '../errors.js'
import { openFetchEventStream } from './fetch-event-stream.js'
import { authHeaders, refusal, retryAfter, streamFactory, toPushError } from './http.js'
import type { EventSourceConstructor, FetchLike, TransportFactory } from './transport.js'

export interface SseOptions {
  /**
   * Send cookies on cross-origin streams (`EventSource` `withCredentials`), for cookie
   * authentication where the native EventSource cannot send a token header.
   * @default false
   */
  withCredentials?: boolean
}

/**
 * The Server-Sent Events transport (`GET <base>/sse?cursor=…`, publish by `POST <base>/publish`).
 * Uses `options.EventSource` if given, else the `eventsource` package in Node and the global
 * `EventSource` in browsers. The native EventSource cannot send an Authorization header, and
 * tokens never go into URLs (protocol.md 3.1): with a token, and an EventSource that takes no
 * `fetch` option, the stream is read over `fetch` instead (a few hundred bytes, where the
 * `eventsource` package would add kilobytes to every browser bundle).
 */
export function sse({ withCredentials = false }: SseOptions = {}): TransportFactory {
  return streamFactory('sse', 'sse', (context) => (url, deliver, fail) => {
        const EventSourceClass: EventSourceConstructor | undefined =
          context.platform.EventSource ??
          // Emptied in browser builds (package.json `browser`), where the global is used.
          (eventsource.EventSource as EventSourceConstructor | undefined) ??
          globalThis.EventSource
        if (!EventSourceClass) {
          throw new PushError('NO_TRANSPORT', 'no EventSource: pass the EventSource option', { transport: 'sse' })
        }
        // Set by the `eventsource` package on EventSource classes that honour a `fetch` option.
        const takesFetch = Symbol.for('eventsource.supports-fetch-override') in EventSourceClass
        const credentials = withCredentials || !!context.withCredentials
        if (context.token && !takesFetch) {
          return openFetchEventStream(url.href, {
            fetch: context.platform.fetch ?? fetch,
            headers: authHeaders(context.token),
            credentials: credentials ? 'include' : 'same-origin',
            onData: deliver,
            // A refusal's body is its error frame; else the stream broke or ended.
            onEnd: (status, body, retryMs) => fail(refusal('sse', status, body, undefined, retryMs)),
          })
        }
        // A refused stream (400/401) carries an error frame as body; the EventSource API hides it,
        // so our fetch reads it first.
        let refused: PushError | undefined
        /** The stream's HTTP status: an error without one never reached the server (an outage, not SSE's fault). */
        let status: number | undefined
        const fetchStream: FetchLike = async (input, init) => {
          let response: Response
          try {
            response = await (context.platform.fetch ?? fetch)(input, {
              ...init,
              headers: { ...(init?.headers as Record<string, string>), ...authHeaders(context.token) },
            })
          } catch (error) {
            // The EventSource only says it failed; keep the system error (ECONNREFUSED host:port).
            refused = toPushError(error, 'sse', url)
            throw error
          }
          status = response.status
          // Not an event stream: a refusal (its error frame), or not pushline (an HTML page, say).
          if (response.status !== 200 || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
            refused = refusal('sse', response.status, await response.clone().text(), url, retryAfter(response))
          }
          return response
        }
        const stream = new EventSourceClass(url.href, { withCredentials: credentials, ...(takesFetch && { fetch: fetchStream }) })
        stream.onmessage = (event: { data: string }) => deliver(event.data)
        // EventSource would reconnect by itself; the core owns reconnects (backoff, fallback, fresh
        // cursor), so any error ends this transport.
        stream.onerror = (event: { code?: number; message?: string }) => {
          const code = event?.code ?? status
          fail(
            refused ??
              (code
                ? refusal('sse', code, '', url)
                : new PushError('TRANSPORT_FAILED', `sse ${url.origin}${url.pathname}: ${event?.message || 'stream failed'}`, { transport: 'sse' })),
          )
        }
        return () => {
          // Detach first: an EventSource may still dispatch events already parsed from the last chunk.
          stream.onmessage = stream.onerror = null
          stream.close()
        }
      })
}
