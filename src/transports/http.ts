import { isPushError, PushError } from '../errors.js'
import { decodeServerFrame } from '../protocol/decode.js'
import type { PublishFrame, ServerFrame, TransportName } from '../protocol/frames.js'
import { formatCursor } from '../protocol/position.js'
import { negotiate } from './negotiate.js'
import type { StreamTransport, TransportContext, TransportFactory } from './transport.js'

// What the HTTP transports (SSE, long and short polling, the iframe stream) share: endpoint URLs,
// the Authorization header, publishing over POST, and the handling of one stream per client.

/** `<base>/<path>` (protocol.md 3), keeping the base's query; `ws:`/`wss:` for WebSocket. */
export function endpointUrl(base: string, path: string, webSocket?: boolean): URL {
  // Relative bases (`/push`) resolve against the page in browsers.
  const url = new URL(base, globalThis.location?.href)
  url.pathname = url.pathname.replace(/\/?$/, '/' + path)
  if (webSocket) url.protocol = url.protocol.replace(/^http/, 'ws')
  return url
}

/** `Authorization: Bearer <token>` (protocol.md 3.1), or nothing without a token. */
export function authHeaders(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

/**
 * Why a request failed, from a thrown error: Node's fetch throws `TypeError: fetch failed` and puts
 * the system error in `cause` (`ECONNREFUSED` with `address` and `port`; an AggregateError of
 * several when a name resolved to several addresses), which is what the app needs to see.
 */
function describeCause(error: unknown): string {
  const text = String(error)
  for (let cause = (error as { cause?: unknown } | undefined)?.cause; cause; cause = (cause as { cause?: unknown }).cause) {
    const { code, address, port, errors, message } = cause as {
      code?: string; address?: string; port?: number; errors?: unknown[]; message?: string
    }
    const first = (errors?.[0] as { address?: string; port?: number } | undefined) ?? {}
    const host = address ?? first.address
    if (code) return `${text}: ${code}` + (host ? ` ${host}:${port ?? first.port}` : message ? ` (${message})` : '')
  }
  return text
}

/** `error` as a PushError: as is if it is one, else a TRANSPORT_FAILED naming the URL and the cause. */
export const toPushError = (error: unknown, transport: TransportName, url?: URL): PushError =>
  isPushError(error)
    ? error
    : new PushError('TRANSPORT_FAILED', `${transport}` + (url ? ` ${url.origin}${url.pathname}` : '') + `: ${describeCause(error)}`, {
        cause: error,
        transport,
      })

/**
 * A request refused, or answered with something that is not pushline: the `error` frame of its
 * body (protocol.md 3.3), else the status and what the body looks like, so that a wrong URL (an
 * app's HTML page, another server's 404) says so.
 */
export function refusal(transport: TransportName, status?: number, body = '', url?: URL, retryMs?: number): PushError {
  let frame: ServerFrame | undefined
  try {
    frame = decodeServerFrame(body)
  } catch {
    // not a frame (a proxy's error page, an app's page): the status and the body tell
  }
  if (frame?.type === 'error') {
    return new PushError(frame.code, frame.message, { transport, channel: frame.channel, status, retryMs: frame.retryMs ?? retryMs })
  }
  const where = url ? ` ${url.origin}${url.pathname}` : ''
  const excerpt = body.trim().slice(0, 60).replace(/\s+/g, ' ')
  const what = /^<(!doctype|html|head|body)/i.test(excerpt)
    ? `an HTML page; is the path right? expected the pushline base URL, e.g. http://host/push`
    : excerpt && `${JSON.stringify(excerpt)}, not pushline frames`
  return new PushError(
    status === 401 ? 'UNAUTHORIZED' : 'TRANSPORT_FAILED',
    `${transport}${where}` + (status ? ` answered HTTP ${status}` + (what && ` with ${what}`) : ' failed'),
    { transport, status, retryMs },
  )
}

/** A response's `Retry-After` in ms (its seconds form; a date is not read), or undefined. */
export const retryAfter = (response: Response): number | undefined =>
  +(response.headers.get('retry-after') as string) * 1000 || undefined

/** A request with the token's Authorization header; resolves with the status, the body and its `Retry-After` (ms). */
export const request = (context: TransportContext, url: URL, init: RequestInit = {}): Promise<[number, string, number?]> =>
  (context.platform.fetch ?? fetch)(url.href, {
    ...init,
    credentials: context.withCredentials ? 'include' : 'same-origin',
    headers: { ...(init.headers as Record<string, string>), ...authHeaders(context.token) },
  }).then(async (response) => [response.status, await response.text(), retryAfter(response)])

/**
 * Opens one stream for `url`, whose `cursor` parameter is set. It hands each frame to `deliver`
 * (as JSON text, or decoded), and reports its end to `fail`; the returned function closes it.
 */
export type OpenStream = (
  url: URL,
  deliver: (frame: string | ServerFrame | undefined) => void,
  fail: (error: PushError) => void,
) => () => void

// Internal records use `_`-prefixed properties, which the build shortens (tsup.config.ts).
interface Stream {
  _close?: () => void
  /** The channels of its cursor. */
  readonly _channels: Set<string>
  /** Ended on purpose by a `RECONNECT` close frame: what follows is no failure. */
  _ended?: boolean
}

/**
 * How much later than the server's heartbeat a stream watched for silence may stay silent before it
 * is replaced: room for delivery jitter; a false alarm costs one reopen, not a failure.
 */
const SILENCE_MARGIN_MS = 2000

/**
 * The factory of a transport with one stream per client on `<base>/<path>`; `opener` makes, per
 * connection attempt, the function that opens its streams. Every stream transport is a fallback,
 * so its factory carries the negotiation. With `reopenWhenSilent`, a live stream that carried
 * nothing for the server's `heartbeatMs` (plus a margin) is replaced by a new one: for streams
 * whose cut the page is never told about (the iframe stream in Chromium, iframe.ts).
 */
export const streamFactory = (
  name: TransportName,
  path: string,
  opener: (context: TransportContext) => OpenStream,
  reopenWhenSilent?: boolean,
): TransportFactory => ({
  name,
  negotiate,
  create: (context) => streamTransport(name, context, path, opener(context), reopenWhenSilent),
})

/**
 * A transport with one stream per client, on `<base>/<path>`. It carries `context.cursor()` and
 * replaces its stream when the subscriptions change or the server recycles it (protocol.md 3.3,
 * 3.7): a new stream opens with the current positions, and the old one is closed once the new one
 * said `hello` (duplicates that both delivered are dropped by offset). Publishes go by POST (3.4).
 */
function streamTransport(
  name: TransportName,
  context: TransportContext,
  path: string,
  openStream: OpenStream,
  reopenWhenSilent?: boolean,
): StreamTransport {
  const { timers } = context
  /** The stream that said hello and delivers now, and one waiting for its hello. */
  let live: Stream | undefined
  let next: Stream | undefined
  let deadline: unknown
  /** With `reopenWhenSilent`: replaces the live stream when it stays silent. */
  let silence: unknown
  let heartbeatMs = 0
  let opened = false
  let closed = false
  let queued = false

  const close = (): void => {
    closed = true
    timers.clearTimeout(deadline)
    timers.clearTimeout(silence)
    live?._close?.()
    next?._close?.()
    live = next = undefined
  }
  const fail = (error?: PushError): void => {
    if (closed) return
    close()
    context.onClose(error)
  }

  const open = (): void => {
    const url = endpointUrl(context.url, path)
    const cursor = context.cursor()
    url.searchParams.set('cursor', formatCursor(cursor))
    const stream: Stream = { _channels: new Set(cursor.map((entry) => entry.channel)) }
    const mine = (): boolean => stream === live || stream === next
    next?._close?.()
    next = stream
    stream._close = openStream(
      url,
      (frame) => {
        if (!mine()) return
        try {
          if (typeof frame === 'string') frame = decodeServerFrame(frame)
        } catch (error) {
          return fail(error as PushError)
        }
        if (frame?.type === 'hello') {
          if (stream !== next) return
          timers.clearTimeout(deadline)
          live?._close?.()
          live = stream
          next = undefined
          heartbeatMs = frame.heartbeatMs
        }
        // The server sends some frame at least every heartbeatMs (protocol.md 5): a live stream
        // silent for longer was cut, or is stuck. It is replaced at once, without loss (the new
        // stream resumes from the current positions), instead of after the core's liveness
        // deadline, which adds the heartbeat grace. If the new one says no hello, the transport fails.
        if (reopenWhenSilent && stream === live) {
          timers.clearTimeout(silence)
          silence = timers.setTimeout(update, heartbeatMs + SILENCE_MARGIN_MS)
        }
        if (frame?.type === 'hello') {
          // The core sees one hello per transport; later streams only take over.
          if (opened) return
          opened = true
        } else if (frame?.type === 'close' && frame.code === 'RECONNECT') {
          // The server recycles the stream (protocol.md 3.7): reopen at once, not counted as a failure.
          stream._ended = true
          return update()
        }
        if (frame) context.onFrame(frame)
      },
      (error) => {
        if (mine() && !stream._ended) fail(error)
      },
    )
  }

  const update = (): void => {
    if (closed) return
    try {
      open()
    } catch (error) {
      return fail(toPushError(error, name))
    }
    if (!opened) return // the core's handshake deadline still covers the first stream
    timers.clearTimeout(deadline)
    deadline = timers.setTimeout(
      () => fail(new PushError('HANDSHAKE_TIMEOUT', 'reopened stream sent no hello', { transport: name })),
      context.handshakeTimeoutMs,
    )
  }

  /** Reopens for the cursor of the moment, once for every change made in this tick. */
  const reopen = (): void => {
    if (queued) return
    queued = true
    queueMicrotask(() => {
      queued = false
      update()
    })
  }

  const publish = (frame: PublishFrame): void => {
    // The answer goes to the core with the request's rid. A failed request fails the transport,
    // so the core resends the publish (same idempotency key) once reconnected.
    const url = endpointUrl(context.url, 'publish')
    request(context, url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(frame),
    })
      .then(([status, body, retryMs]) => {
        if (closed) return
        let reply: ServerFrame | undefined
        try {
          reply = decodeServerFrame(body)
        } catch {
          // not a frame (a proxy's error page, a wrong URL): the refusal below says what it was
        }
        if (reply?.type !== 'ack' && reply?.type !== 'error') throw refusal(name, status, body, url, retryMs)
        // A 429's Retry-After is the hint of an error frame that has none.
        context.onFrame({ retryMs, ...reply, rid: frame.rid } as ServerFrame)
      })
      .catch((error: unknown) => fail(toPushError(error, name, url)))
  }

  return {
    name,
    open,
    update,
    send(frame) {
      if (frame.type === 'publish') publish(frame)
      // A subscribe the newest stream carries already is answered by it (the core subscribes
      // every channel again after `hello`).
      else if (frame.type === 'unsubscribe' || (frame.type === 'subscribe' && !(next ?? live)?._channels.has(frame.channel))) reopen()
    },
    close,
  }
}
