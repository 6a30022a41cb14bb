import type {
  EventSourceConstructor,
  FetchLike,
  StorageLike,
  Timers,
  TransportFactory,
  WebSocketConstructor,
} from '../transports/transport.js'
import type { RegisteredTransportName } from '../transports/registry.js'
import type { ReconnectOptions } from './backoff.js'
import type { DebugLogger } from './debug-log.js'
import type { LifecycleTarget } from './lifecycle.js'
import type { ShareFactory } from './share.js'
import type { StandardSchemaV1 } from '../protocol/standard-schema.js'


/** Options of both `PushClient`s; they differ only in `transports`. */
export interface ClientOptions {
  /** The server's base URL, for example `https://example.com/push` (protocol.md 3). */
  url: string
  /**
   * Token sent per protocol.md 3.1 (WebSocket subprotocol, HTTP `Authorization` header; never in a
   * URL). A function is called before every connection attempt, so it can refresh the token.
   * @default undefined (no authentication)
   */
  token?: string | (() => string | Promise<string>) | undefined
  /**
   * Send cookies with the requests of SSE, the polls and HTTP publishes to a server on another
   * origin (fetch `credentials: 'include'`, EventSource `withCredentials`): cookie authentication
   * across subdomains of one site. The server must list the page's origin in `allowedOrigins`.
   * Same-origin requests carry cookies anyway, and so do WebSockets and the iframe stream.
   * @default false
   */
  withCredentials?: boolean | undefined
  /**
   * Reconnect timing.
   * @default {} (each field at its own default)
   */
  reconnect?: ReconnectOptions | undefined
  /**
   * A connection attempt fails if `hello` has not arrived through the transport this long after it
   * started (token lookup included); the next transport is tried then. Short enough that behind a
   * buffering proxy (an SSE stream that never delivers) the client settles on long-polling within
   * 10 s even if the WebSocket hangs too; long enough for a TLS handshake on a slow mobile link.
   * @default 4000
   */
  handshakeTimeoutMs?: number
  /**
   * The link is dead when nothing arrived for the server's `heartbeatMs` plus this long (for polls:
   * the poll's hold or interval plus this long).
   * @default 10000
   */
  heartbeatGraceMs?: number
  /**
   * A connection that dies within this long of opening is unstable (a proxy that cuts WebSockets,
   * say): the next transport is tried, as after a failed handshake. A server's `close` frame with
   * `retryMs` is not instability.
   * @default 5000
   */
  unstableMs?: number
  /**
   * While on a transport worse than the best one the server offers, probe the better ones this
   * often in the background, and switch without loss once one says hello. 0 disables probes.
   * @default 60000
   */
  upgradeProbeMs?: number
  /**
   * While an attempt on a transport listed before long polling (WebSocket, SSE) has not said
   * `hello` this long after it started, a long-polling attempt is raced against it: the first to
   * say hello is the connection, so the first message comes in well under a second even behind a
   * proxy that buffers streams. If long polling wins, the slower attempt goes on as an upgrade
   * probe until its handshake deadline, and the client moves to it without loss once it says
   * hello. Only when long polling is listed and the server offers it (as far as known). Long
   * enough that a healthy WebSocket or SSE stream usually says hello first, even through a TLS
   * handshake on a slow link. 0 turns racing off.
   * @default 400
   */
  raceAfterMs?: number
  /**
   * How long the transport that won (and the transports the server offers) are remembered per
   * server URL and transport list, so that the next start goes straight to it. A list the app
   * chose (`transports: ['iframe']`, say) has a memory of its own: it never changes where the
   * default list starts. Upgrade probes correct a stale winner
   * within `upgradeProbeMs`, and every `hello` refreshes the list of offered transports, so this
   * only bounds staleness when probes are off.
   * @default 3600000 (1 hour)
   */
  rememberMs?: number
  /**
   * Where the winner is remembered.
   * @default localStorage where it can be used, else memory shared by the clients of this process
   */
  storage?: StorageLike | undefined
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
   * fetch implementation, for polls, HTTP publishes and SSE streams.
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
  /**
   * Where browser lifecycle events come from, from `connect()` to `close()`: while offline
   * (`offline`, or `navigator.onLine` false) the client does not retry, and `online` reconnects at
   * once; when the tab's visibility changes, the liveness deadline is checked against the clock at
   * once (timers sleep in background tabs); `pagehide` closes the connection (and gives up tab
   * leadership with `share`), so that the server holds nothing for a page in the back-forward
   * cache, and `pageshow` resumes it. `null` turns this off.
   * @default globalThis where it has `addEventListener` (browsers, workers), else none
   */
  lifecycle?: LifecycleTarget | null | undefined
  /**
   * One connection for all tabs of this origin (per `url`): `share: tabShare()` (from
   * `pushline/share`). A leader tab holds the connection and relays it to the others; when it
   * closes, another tab takes over and every tab resumes without loss or duplicates. Without Web
   * Locks or BroadcastChannel (Node, old browsers) each client has its own connection.
   * @default undefined (each client has its own connection)
   */
  share?: ShareFactory | undefined
}

/** Options of the `PushClient` of `pushline/core`. */
export interface CoreClientOptions extends ClientOptions {
  /**
   * Transports to try, in order of preference, as factories such as `websocket()` and `sse()`.
   * Only the transports listed are bundled.
   */
  transports: readonly TransportFactory[]
}

/** Options of the `PushClient` of `pushline`. */
export interface PushClientOptions extends Omit<ClientOptions, 'share'> {
  /**
   * Transports to try, in order of preference: names, or factories such as `websocket()` and
   * `longPolling({ holdMs: 10000 })`.
   * @default ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'] (iframe only where there is a `document`)
   */
  transports?: ReadonlyArray<RegisteredTransportName | TransportFactory>
  /**
   * One connection for all tabs of this origin (per `url`). `true` is `tabShare()` of
   * `pushline/share`, loaded when the client first connects (bundlers split it off); pass
   * `tabShare({ … })` for other options. A leader tab holds the connection and relays it to the
   * others; when it closes, another tab takes over and every tab resumes without loss or
   * duplicates. Without Web Locks or BroadcastChannel (Node, old browsers) each client has its
   * own connection.
   * @default false (each client has its own connection)
   */
  share?: boolean | ShareFactory | undefined
  /**
   * Logs what the client does: each connection attempt and how it ended (with the error's code and
   * message), `hello`, negotiation (`fallback`), state changes, backoff delays, and per subscription
   * where it resumed (`subscribed`) and gaps. `true` logs to `console.debug`; a function receives
   * each line. Also on, to `console.debug`, when the environment variable `DEBUG` (Node) or
   * `localStorage.debug` (browsers) names `pushline` (or `*`), as the `debug` package reads them.
   * @default false, unless DEBUG or localStorage.debug names pushline
   */
  debug?: boolean | DebugLogger | undefined
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

export interface SubscribeOptions {
  /**
   * Resume after this message id (`<epoch>-<offset>`, e.g. one the app stored before a reload): what
   * the server's history still holds after it is replayed first, and anything older is reported as a
   * `gap`. Ignored when the client already has a subscription to the channel.
   * @default undefined (live from the moment the server confirms the subscription)
   */
  since?: string
  /**
   * Deliver the channel's newest `rewind` messages from history before live ones (the last value
   * of a config key, the recent lines of a chat): exactly once, in order, on every transport but
   * `mqtt` (which has no history and refuses it with `INVALID_OPTIONS`). Fewer when history holds
   * fewer, without a gap; at most the server's `maxRewind` (100 by default). Only the first
   * subscribe rewinds: once the subscription has a position, reconnects resume from it. Not with
   * `since` (`INVALID_OPTIONS`); ignored when the client already has a subscription to the channel.
   * @default undefined (no rewind: live from now)
   */
  rewind?: number | undefined
  /**
   * A Standard Schema (zod 4, valibot, arktype, …) for the data of this subscription's messages:
   * each is validated before it reaches the listener and async iteration, with the schema's output
   * as its `data`; one that fails goes to the subscription's `invalid` event instead. An async
   * validator keeps this subscription's events in order (see the README's "Typed channels").
   * @default undefined (data is delivered unchecked)
   */
  schema?: StandardSchemaV1 | undefined
}

/** The default `timers`: the global ones, looked up at each call (so that fake timers installed later apply). */
export const globalTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
  now: () => Date.now(),
}
