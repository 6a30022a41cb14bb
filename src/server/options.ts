import type { IncomingHttpHeaders, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { GapReason, TransportName } from '../protocol/frames.js'
import type { Broker } from './brokers/broker.js'

// The public types of pushline/server: its options, hooks and the PushServer
// interface. Everything else in src/server imports these; this module imports
// nothing from the code that implements them.

/** Transports `pushline/server` serves. */
export type ServerTransport = Extract<TransportName, 'websocket' | 'sse' | 'long-polling' | 'short-polling' | 'iframe'>

/** How a client publish arrived: over a transport's connection, or `POST <base>/publish`. */
export type PublishTransport = TransportName | 'http'

/** Where errors that must not reach clients (hook failures, broker failures) are reported. */
export interface Logger {
  error(message: string, error?: unknown): void
}

/** What the onPublish hook sees of a client publish. */
export interface PublishContext {
  channel: string
  /** The event name (`message` when the client gave none). */
  event: string
  data: unknown
  transport: PublishTransport
  /** The publishing connection's session id (a fresh one per HTTP request). */
  session: string
  /** Headers of the WebSocket upgrade or HTTP request. */
  headers: IncomingHttpHeaders
}

/** Returned by onPublish to change what is published. */
export interface PublishTransform {
  event?: string
  data?: unknown
}

/** onPublish's answer: nothing accepts, an object transforms, `false` rejects. */
export type PublishVerdict = void | undefined | false | PublishTransform

/**
 * Publish policy. Throw `new PushError('PUBLISH_REJECTED', message)` (or
 * return false) to reject with that message; any other throw is logged and
 * answered with `INTERNAL`.
 */
export type PublishHook = (context: PublishContext) => PublishVerdict | Promise<PublishVerdict>

/** What the authenticate option sees of a connection or HTTP publish. */
export interface AuthContext {
  /** From `Authorization: Bearer`, or the WebSocket auth subprotocol; undefined when the client sent none. */
  token: string | undefined
  transport: PublishTransport
  headers: IncomingHttpHeaders
}

/** Options of `createPushServer`; every one has a default. */
export interface PushServerOptions {
  /**
   * Base path of the endpoints (`<path>/ws`, `<path>/sse`, `<path>/poll`, `<path>/iframe`,
   * `<path>/publish`); `attach` may override it.
   * @default '/push'
   */
  path?: string
  /**
   * The server sends every connection a `ping` this often (ms).
   * @default 20_000
   */
  heartbeatMs?: number
  /**
   * Extra time (ms) past `heartbeatMs` before a silent WebSocket or a stalled SSE or iframe stream is dropped.
   * @default 10_000
   */
  heartbeatGraceMs?: number
  /**
   * Messages kept per channel for resume (for the default MemoryBroker).
   * @default 1000
   */
  historySize?: number
  /**
   * Age bound of history in ms (for the default MemoryBroker).
   * @default 86_400_000 (24 h)
   */
  historyTtlMs?: number
  /**
   * Largest client frame in UTF-8 bytes; WebSocket messages above 16× this close the connection (1009).
   * @default 65_536
   */
  maxFrameBytes?: number
  /**
   * Subscriptions per connection (and entries per stream cursor of SSE, polls and the iframe stream).
   * @default 256
   */
  maxSubscriptions?: number
  /**
   * Transports offered, in preferred order; `hello` lists them and the others' endpoints answer 404.
   * `long-polling` and `short-polling` share `<path>/poll`, which answers 404 only when both are off;
   * with `long-polling` off every poll is answered at once.
   * @default ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe']
   */
  transports?: ServerTransport[]
  /**
   * How long (ms) a long poll with nothing to send is held before it is answered empty; a client
   * may ask for less with `hold`, never more. Keep it well under the read timeout of proxies in
   * front of the server (60 s in nginx).
   * @default 25_000
   */
  longPollHoldMs?: number
  /**
   * Body size (bytes) after which an iframe stream is ended with a `RECONNECT` close frame, so
   * the browser reopens it instead of keeping an ever-growing document. At least 4096.
   * @default 262_144 (256 KiB)
   */
  iframeMaxBytes?: number
  /**
   * Origins, besides the server's own (the Host header, with https when the connection is TLS or
   * `X-Forwarded-Proto` says so), whose pages may embed the iframe stream, such as
   * `https://app.example.com` (of a URL, only its origin counts). The stream posts frames to the
   * origin its request names; any other origin is answered 403 (protocol.md 3.7).
   * @default []
   */
  allowedOrigins?: string[]
  /**
   * History and fan-out. Closed by `close()`.
   * @default new MemoryBroker({ historySize, historyTtlMs })
   */
  broker?: Broker
  /**
   * How long (ms) a channel keeps its broker subscription after its last subscriber in this
   * process leaves. Long-polling clients leave and come back on every poll, and short-polling
   * ones every few seconds; without this each poll would subscribe and unsubscribe the broker,
   * a round trip each with a networked broker. Nothing published meanwhile is lost: it is in
   * history for the next subscriber. 0 unsubscribes at once.
   * @default 5000
   */
  brokerLingerMs?: number
  /**
   * Reconnect delay (ms) advised to SSE clients in the `retry:` field.
   * @default 2000
   */
  sseRetryMs?: number
  /**
   * A connection whose unsent output exceeds this many bytes is dropped (slow
   * consumer). Nothing is lost: the client resumes from history on reconnect.
   * @default 4_194_304 (4 MiB)
   */
  maxBufferedBytes?: number
  /**
   * Decides client publishes. Without it every client publish is accepted.
   * @default undefined
   */
  onPublish?: PublishHook
  /**
   * Decides whether a connection or HTTP publish may proceed; false answers
   * `UNAUTHORIZED` (protocol.md 3.1). Without it tokens are ignored.
   * @default undefined
   */
  authenticate?: (context: AuthContext) => boolean | Promise<boolean>
  /**
   * Receives errors of hooks and brokers.
   * @default console
   */
  logger?: Logger
}

export interface AttachOptions {
  /**
   * Base path of the endpoints.
   * @default the server's `path` option
   */
  path?: string
}

export interface PublishOptions {
  /**
   * Event name of the message.
   * @default 'message'
   */
  event?: string
}

export interface PublishResult {
  epoch: string
  offset: number
  /** The message id, `${epoch}-${offset}`. */
  id: string
}

export interface HistoryOptions {
  /**
   * At most this many messages: the newest ones, or with `since` the first ones after it.
   * @default 100
   */
  limit?: number
  /**
   * Only messages after this message id (`<epoch>-<offset>`), for paging forward.
   * @default undefined (the newest `limit` messages)
   */
  since?: string
}

/** A channel's recent history, oldest first. */
export interface History {
  /** The channel's epoch now. */
  epoch: string
  /** The channel's newest offset now (0: nothing published in this epoch). */
  offset: number
  messages: Array<{ channel: string; event: string; data: unknown; offset: number; id: string }>
  /** Set when the history no longer holds everything asked for (older messages left it, or `since` is of another epoch). */
  gap?: GapReason
}

export interface ServerStats {
  /** Open connections, all transports. */
  connections: number
  /** Channels with at least one subscriber in this process. */
  channels: number
  /** Subscriptions over all connections. */
  subscriptions: number
}

export interface PushServer {
  /**
   * Serves the endpoints on a node:http or node:https server: requests under
   * `<path>/` are answered here and everything else goes to the request
   * listeners installed before (an Express or Fastify app), WebSocket
   * upgrades for other paths to other upgrade listeners. Attach after the
   * app is installed: a request listener added later also sees push requests.
   */
  attach(server: HttpServer | HttpsServer, options?: AttachOptions): void
  /**
   * For frameworks: answers the request and returns true when it is for one
   * of the endpoints under the server's `path` option, else returns false
   * and leaves it alone. Mount it before body parsers.
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean
  /** For frameworks: takes over an upgrade request for `<path>/ws` and returns true, else returns false. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean
  /** Publishes a message to every subscriber of `channel`; bypasses onPublish. */
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<PublishResult>
  /**
   * The channel's recent messages from its history, oldest first: the newest `limit`, or with
   * `since` the first `limit` after that id. Throws `INVALID_CHANNEL` or `INVALID_OPTIONS` for bad input.
   */
  history(channel: string, options?: HistoryOptions): Promise<History>
  /** Counts of what the server keeps; all zero once clients have gone. */
  stats(): ServerStats
  /** Sends every client a `close` frame, closes connections and the broker, detaches from servers. Idempotent. */
  close(): Promise<void>
}
