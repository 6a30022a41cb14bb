import * as eventsource from 'eventsource'
import { PushError } from '../errors.js'
import { authHeaders, refusal, streamFactory, toPushError } from './http.js'
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
 * `EventSource` in browsers. A token needs an EventSource that takes a `fetch` option (the
 * `eventsource` package does), because the native one cannot set an Authorization header and
 * tokens never go into URLs (protocol.md 3.1).
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
        if (context.token && !takesFetch) {
          throw new PushError('TRANSPORT_FAILED', 'this EventSource cannot send a token', { transport: 'sse' })
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
            refused = refusal('sse', response.status, await response.clone().text(), url)
          }
          return response
        }
        const stream = new EventSourceClass(url.href, { withCredentials, ...(takesFetch && { fetch: fetchStream }) })
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
