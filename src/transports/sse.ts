import * as eventsource from 'eventsource'
import { PushError } from '../errors.js'
import { decodeServerFrame } from '../protocol/decode.js'
import type { ErrorFrame } from '../protocol/frames.js'
import { formatCursor } from '../protocol/position.js'
import { authHeaders, endpointUrl, publishOverHttp } from './http.js'
import type {
  EventSourceConstructor,
  EventSourceLike,
  FetchLike,
  StreamTransport,
  TransportContext,
  TransportFactory,
} from './transport.js'

export interface SseOptions {
  /**
   * Send cookies on cross-origin streams (`EventSource` `withCredentials`), for cookie
   * authentication where the native EventSource cannot send a token header.
   * @default false
   */
  withCredentials?: boolean
}

/** Set by the `eventsource` package on EventSource classes that honour a `fetch` option. */
const FETCH_OVERRIDE = Symbol.for('eventsource.supports-fetch-override')

/**
 * The Server-Sent Events transport (`GET <base>/sse?cursor=…`, publish by `POST <base>/publish`).
 * Uses `options.EventSource` if given, else the `eventsource` package in Node and the global
 * `EventSource` in browsers. A token needs an EventSource that takes a `fetch` option (the
 * `eventsource` package does), because the native one cannot set an Authorization header and
 * tokens never go into URLs (protocol.md 3.1).
 */
export function sse(options: SseOptions = {}): TransportFactory {
  return { name: 'sse', create: (context) => createSseTransport(context, options) }
}

function createSseTransport(context: TransportContext, options: SseOptions): StreamTransport {
  /** The stream that said hello and delivers now. */
  let live: EventSourceLike | undefined
  /** A stream opened for a new cursor, waiting for its hello (protocol.md 3.3: open new, then close old). */
  let next: EventSourceLike | undefined
  let nextDeadline: unknown
  let opened = false
  let closed = false

  const closeStream = (stream: EventSourceLike | undefined): void => {
    if (!stream) return
    // Detach first: an EventSource may still dispatch events already parsed from the last chunk.
    stream.onmessage = stream.onerror = null
    stream.close()
  }
  const close = (): void => {
    closed = true
    context.timers.clearTimeout(nextDeadline)
    closeStream(live)
    closeStream(next)
    live = next = undefined
  }
  const fail = (error?: PushError): void => {
    if (closed) return
    close()
    context.onClose(error)
  }

  const openStream = (): void => {
    const EventSourceClass: EventSourceConstructor | undefined =
      context.platform.EventSource ??
      (typeof eventsource.EventSource === 'function'
        ? (eventsource.EventSource as unknown as EventSourceConstructor)
        : undefined) ??
      (globalThis.EventSource as EventSourceConstructor | undefined)
    if (!EventSourceClass) {
      throw new PushError('NO_TRANSPORT', 'no EventSource implementation: pass the EventSource option', {
        transport: 'sse',
      })
    }
    const takesFetch = FETCH_OVERRIDE in EventSourceClass
    if (context.token && !takesFetch) {
      throw new PushError(
        'TRANSPORT_FAILED',
        'this EventSource cannot send a token: pass EventSource from the eventsource package',
        { transport: 'sse' },
      )
    }

    const url = endpointUrl(context.url, 'sse')
    url.searchParams.set('cursor', formatCursor(context.cursor()))
    // A refused stream (400/401) carries an error frame as body; the EventSource API hides it, so
    // our fetch reads it first.
    let refusal: ErrorFrame | undefined
    const fetchStream: FetchLike = async (input, init) => {
      const response = await (context.platform.fetch ?? globalThis.fetch)(input, {
        ...init,
        headers: { ...(init?.headers as Record<string, string>), ...authHeaders(context.token) },
      })
      if (response.status !== 200) {
        try {
          const frame = decodeServerFrame(await response.clone().text())
          if (frame?.type === 'error') refusal = frame
        } catch {
          // not a frame: the status alone tells
        }
      }
      return response
    }
    const stream = new EventSourceClass(url.href, {
      withCredentials: options.withCredentials ?? false,
      ...(takesFetch && { fetch: fetchStream }),
    })

    stream.onmessage = (event: { data: string }) => {
      let frame
      try {
        frame = decodeServerFrame(event.data)
      } catch (error) {
        return fail(error as PushError)
      }
      if (!frame) return
      if (frame.type === 'hello') {
        if (stream !== next) return
        context.timers.clearTimeout(nextDeadline)
        closeStream(live)
        live = stream
        next = undefined
        // The core sees one hello per transport; later streams only take over.
        if (opened) return
        opened = true
      }
      context.onFrame(frame)
    }
    // EventSource would reconnect by itself; the core owns reconnects (backoff, fallback, fresh
    // cursor), so any error ends this transport.
    stream.onerror = (event: { code?: number; message?: string }) =>
      fail(
        refusal
          ? new PushError(refusal.code, refusal.message, { transport: 'sse', channel: refusal.channel })
          : event?.code === 401
            ? new PushError('UNAUTHORIZED', 'SSE stream refused with HTTP 401', { transport: 'sse' })
            : new PushError('TRANSPORT_FAILED', `SSE stream failed${event?.code ? ` (HTTP ${event.code})` : ''}`, {
                transport: 'sse',
              }),
      )

    closeStream(next)
    next = stream
  }

  return {
    name: 'sse',
    kind: 'stream',
    open: openStream,
    update() {
      if (closed) return
      try {
        openStream()
      } catch (error) {
        return fail(error as PushError)
      }
      if (!opened) return // the core's handshake deadline still covers the first stream
      context.timers.clearTimeout(nextDeadline)
      nextDeadline = context.timers.setTimeout(
        () => fail(new PushError('HANDSHAKE_TIMEOUT', 'reopened SSE stream sent no hello', { transport: 'sse' })),
        context.handshakeTimeoutMs,
      )
    },
    publish(frame) {
      publishOverHttp(context, frame, 'sse', () => closed, fail)
    },
    close,
  }
}
