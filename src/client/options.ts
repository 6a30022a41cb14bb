import type { TransportName } from '../protocol/frames.js'
import type {
  EventSourceConstructor,
  FetchLike,
  Timers,
  TransportFactory,
  WebSocketConstructor,
} from '../transports/transport.js'
import type { ReconnectOptions } from './backoff.js'

export interface PushClientOptions {
  /** The server's base URL, for example `https://example.com/push` (protocol.md 3). */
  url: string
  /**
   * Transports to try, in order: names, or factories such as `websocket()` and `sse()` (an app
   * that passes only factories bundles only those).
   * @default ['websocket', 'sse']
   */
  transports?: ReadonlyArray<TransportName | TransportFactory>
  /**
   * Token sent per protocol.md 3.1 (WebSocket subprotocol, HTTP `Authorization` header; never in a
   * URL). A function is called before every connection attempt, so it can refresh the token.
   * @default undefined (no authentication)
   */
  token?: string | (() => string | Promise<string>) | undefined
  /** Reconnect timing. */
  reconnect?: ReconnectOptions
  /**
   * A connection attempt fails if `hello` has not arrived through the transport this long after it
   * started (token lookup included).
   * @default 5000
   */
  handshakeTimeoutMs?: number
  /**
   * The link is dead when nothing arrived for the server's `heartbeatMs` plus this long.
   * @default 10000
   */
  heartbeatGraceMs?: number
  /**
   * A publish rejects with `PUBLISH_TIMEOUT` when not acknowledged this long after the call,
   * including time spent waiting for a connection.
   * @default 10000
   */
  publishTimeoutMs?: number
  /**
   * Publishes waiting for an ack beyond this many reject with `OUTBOX_FULL`.
   * @default 1000
   */
  maxPendingPublishes?: number
  /**
   * WebSocket implementation.
   * @default globalThis.WebSocket in browsers, `ws` in Node
   */
  WebSocket?: WebSocketConstructor | undefined
  /**
   * EventSource implementation; to send a token over SSE it must accept a `fetch` option, as the
   * `eventsource` package's does.
   * @default globalThis.EventSource in browsers, the `eventsource` package in Node
   */
  EventSource?: EventSourceConstructor | undefined
  /**
   * fetch implementation, for HTTP publishes and SSE streams.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | undefined
  /**
   * Timers and clock.
   * @default globalThis.setTimeout, globalThis.clearTimeout and Date.now
   */
  timers?: Timers | undefined
  /**
   * Source of randomness for reconnect jitter, in [0, 1).
   * @default Math.random
   */
  random?: (() => number) | undefined
}

export interface PublishOptions {
  /**
   * Event name of the message.
   * @default 'message'
   */
  event?: string
  /**
   * Idempotency key (1 to 64 characters): a publish retried with the same key is applied once.
   * @default a random key per publish, reused when the client resends it after a reconnect
   */
  key?: string
}

/** Where a publish was stored. */
export interface PublishAck {
  channel: string
  offset: number
  /** Message id `<epoch>-<offset>`. */
  id: string
}
