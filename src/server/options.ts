import type { IncomingHttpHeaders, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { GapReason, PresenceMemberInfo, TransportName } from '../protocol/frames.js'
import type { ChannelDefinition } from '../protocol/channel-definition.js'
import type { InferInput, StandardSchemaV1 } from '../protocol/standard-schema.js'
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

/**
 * Who a connection or HTTP request is, as `authenticate` found it. Apps extend it with their own
 * claims (`createPushServer<MyIdentity>(...)` infers the type from `authenticate`).
 */
export interface Identity {
  /** The user. User channels, `publishToUser`, `disconnectUser` and presence go by it. */
  userId: string
  /**
   * When the credentials expire, in ms since the Unix epoch (a JWT's `exp` × 1000). The server
   * refuses them from then on, and closes a connection that is open then with a `close` frame
   * `TOKEN_EXPIRED` (protocol.md 3.1), so that the client reconnects with a fresh token and
   * resumes without loss.
   */
  expiresAt?: number
}

/** What `authorize` is asked about: one subscribe or one publish. */
export type AccessAction = 'subscribe' | 'publish'

/** What the authorize option sees. */
export interface AuthorizeContext<I extends Identity = Identity> {
  /** The connection's identity; undefined when the server has no `authenticate` (or it answered `true`). */
  identity: I | undefined
  channel: string
  action: AccessAction
  /** The transport of the subscription, or how the publish arrived. */
  transport: PublishTransport
}

/**
 * Per-channel policy: true allows, false refuses (`SUBSCRIBE_REJECTED` / `PUBLISH_REJECTED`).
 * Throw `new PushError('SUBSCRIBE_REJECTED' | 'PUBLISH_REJECTED', message)` to refuse with that
 * message; any other throw is logged and answered with `INTERNAL`.
 */
export type AuthorizeHook<I extends Identity = Identity> = (context: AuthorizeContext<I>) => boolean | Promise<boolean>

/** What the onPublish hook sees of a client publish. */
export interface PublishContext<I extends Identity = Identity> {
  /** The publisher's identity (see {@link AuthorizeContext.identity}). */
  identity: I | undefined
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
export type PublishHook<I extends Identity = Identity> = (context: PublishContext<I>) => PublishVerdict | Promise<PublishVerdict>

/** What the authenticate option sees of a connection or HTTP request. */
export interface AuthContext {
  /**
   * From `Authorization: Bearer`, else the WebSocket auth subprotocol, else the cookie named by
   * `authCookie`; undefined when the client sent none. Never from the URL.
   */
  token: string | undefined
  transport: PublishTransport
  headers: IncomingHttpHeaders
}

/**
 * Who is connecting: an {@link Identity} accepts, and so does `true` (an anonymous connection);
 * `false`, `null` or `undefined` refuses with `UNAUTHORIZED`. Throw
 * `new PushError('UNAUTHORIZED', reason)` to refuse with that reason, or
 * `new PushError('TOKEN_EXPIRED', reason)` for an expired token (the client then fetches a fresh
 * one); any other throw is logged and answered with `INTERNAL`.
 */
export type AuthenticateHook<I extends Identity = Identity> = (
  context: AuthContext,
) => I | boolean | null | undefined | Promise<I | boolean | null | undefined>

/**
 * Origins whose pages may use the server: a list of origins (`https://app.example.com`; of a URL
 * only its origin counts), or a function that decides. The server's own origin is always allowed,
 * and so are requests without an `Origin` header (Node clients, same-origin GETs).
 */
export type AllowedOrigins = string[] | ((origin: string, request: IncomingMessage) => boolean)

/** One member of a presence channel (`push.presence(channel)`). */
export interface PresenceMember {
  /** The identity's userId; for a connection without identity, its session id. */
  id: string
  /** Subscriptions of this member to the channel in this process (one per tab or device). */
  connections: number
  /** When the member joined (ms since the Unix epoch). */
  joinedAt: number
}

/** Options of `createPushServer`; every one has a default. */
export interface PushServerOptions<I extends Identity = Identity> {
  /**
   * Base path of the endpoints (`<path>/ws`, `<path>/sse`, `<path>/poll`, `<path>/iframe`,
   * `<path>/publish`); `attach` may override it.
   * @default '/push'
   */
  path?: string
  /**
   * The server sends every connection a `ping` this often (ms); a link is dead after this plus
   * `heartbeatGraceMs` (35 s by default). 25 s as Socket.IO and Centrifugo: well inside the 60 s idle
   * timeouts of nginx and common load balancers, and every round costs a socket write per connection
   * (and a read of the WebSocket pong), so a shorter interval costs idle CPU in proportion.
   * @default 25_000
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
   * How long (ms) the default MemoryBroker keeps the record (epoch and offset) of a published
   * channel with no subscriber and no history left; see MemoryBrokerOptions.idleChannelTtlMs.
   * Channels never published to keep no record once their last subscriber has gone.
   * @default 300_000 (5 min)
   */
  idleChannelTtlMs?: number
  /**
   * Total history in bytes for the default MemoryBroker (the oldest messages of the channels
   * idle the longest go first; a client resuming before them gets a `history-exhausted` gap).
   * @default 67_108_864 (64 MiB)
   */
  maxHistoryBytes?: number
  /**
   * Channel records kept by the default MemoryBroker (the one idle the longest without a
   * subscriber is forgotten first; its next subscriber gets an `epoch-changed` gap).
   * @default 100_000
   */
  maxChannels?: number
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
   * The most messages a subscribe's `rewind` replays (protocol.md 4, rule 5): a larger request is
   * clamped to this, not refused, so a client gets the newest `maxRewind`. Like every replay it
   * goes out in pages, at the pace the client reads.
   * @default 100
   */
  maxRewind?: number
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
   * Origins, besides the server's own (same host as the `Host` header; https when the connection
   * is TLS or `X-Forwarded-Proto` says so), whose pages may use the server: CORS for SSE, polls and
   * publish (with credentials), the WebSocket upgrade (403 before the handshake otherwise), and
   * the origin an iframe stream posts to. Requests without `Origin` (Node clients) are allowed.
   * Others get 403 `ORIGIN_REJECTED` (protocol.md 3.8).
   * @default [] (same-origin only)
   */
  allowedOrigins?: AllowedOrigins
  /**
   * History and fan-out. Closed by `close()`.
   * @default new MemoryBroker({ historySize, historyTtlMs, idleChannelTtlMs, maxHistoryBytes, maxChannels })
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
   * Read backpressure. A WebSocket connection with this many requests read and not yet done
   * (they run one after another, so a slow onPublish queues them) is not read any more until
   * half of them are done: the client's frames wait in its own buffers. `POST <path>/publish`
   * requests in flight from one client address (see `clientIp`) past this are answered 429
   * `RATE_LIMITED` with `Retry-After`.
   * @default 64
   */
  maxRequestsInFlight?: number
  /**
   * Connections open at once: WebSocket, SSE and iframe streams, and poll sessions (a poll client
   * takes a place with its first poll and keeps it while it polls; it is freed `heartbeatMs` +
   * `heartbeatGraceMs` after its last poll). One more is refused: a WebSocket gets a `close` frame
   * `RATE_LIMITED` with `retryMs`, then close code 1013; SSE and poll requests get 503
   * `RATE_LIMITED` with `Retry-After` (and `retryMs` in the error frame); an iframe request a 503
   * document that posts the `close` frame.
   * @default 20_000
   */
  maxConnections?: number
  /**
   * Connections (as for `maxConnections`) from one client address (see `clientIp`: behind a proxy, set it,
   * or every client counts as the proxy's address). Refused as for `maxConnections`.
   * @default 1000
   */
  maxConnectionsPerIp?: number
  /**
   * New connections (a poll session: its first poll) accepted per second, over all clients (a token bucket with a
   * second's worth of burst). Refused as for `maxConnections`, with `retryMs` when the next is
   * accepted plus up to 2 s of jitter, so a reconnect storm after a restart is spread out.
   * @default 500
   */
  maxConnectsPerSecond?: number
  /**
   * `subscribe` frames per second on one WebSocket connection (a token bucket whose burst is
   * twice this or `maxSubscriptions`, whichever is more, so a reconnect resubscribes everything
   * at once). One more is answered with an `error` frame `RATE_LIMITED` naming the subscribe, with
   * `retryMs`. Over HTTP the same rate is counted per client address (see `clientIp`): the entries
   * of an SSE or iframe stream's cursor are subscribes, and a poll session's on its first poll and
   * whenever they change; over it the request is answered 429 `RATE_LIMITED` with `Retry-After`.
   * @default 100
   */
  maxSubscribesPerSecond?: number
  /**
   * `publish` frames per second on one WebSocket connection (burst: twice this). One more is
   * answered with an `error` frame `RATE_LIMITED` carrying its `rid` and `retryMs`. `POST
   * <path>/publish` requests count per client address (see `clientIp`): over it, 429 `RATE_LIMITED`.
   * @default 100
   */
  maxPublishesPerSecond?: number
  /**
   * Bytes per second read from one WebSocket connection (burst: this or 4 × `maxFrameBytes`,
   * whichever is more). A client sending faster is not refused: the server stops reading it
   * until the rate allows, and its frames wait in its own buffers. The bodies of `POST
   * <path>/publish` count per client address: a body over the rate is taken, and the address's
   * next publishes are answered 429 `RATE_LIMITED` until the rate has caught up.
   * @default 1_048_576 (1 MiB)
   */
  maxReceiveBytesPerSecond?: number
  /**
   * The client address that per-client limits (`maxRequestsInFlight` of HTTP publishes,
   * `maxConnectionsPerIp`, the rates of the HTTP endpoints) are counted by. Behind a reverse proxy every request comes from the
   * proxy: read the address the proxy adds, and only from a proxy you run, for example
   * `(req) => String(req.headers['x-real-ip'] ?? req.socket.remoteAddress)` behind nginx with
   * `proxy_set_header X-Real-IP $remote_addr`, or the last entry of `X-Forwarded-For`.
   * @default (req) => req.socket.remoteAddress
   */
  clientIp?: (req: IncomingMessage) => string
  /**
   * How long (ms) the server remembers a publish's idempotency `key` (protocol.md 3.4): a retry
   * within this window is answered with the first `ack` instead of being stored again. Keys
   * are remembered per client (per verified token when `authenticate` is set, else one scope
   * for all) and matched together with the publish they came with, so another client using the
   * same key never gets the first one's ack and its own publish is stored.
   * @default 300_000 (5 min)
   */
  idempotencyWindowMs?: number
  /**
   * Idempotency keys remembered per client within the window (about 250 bytes each); past it
   * that client's oldest keys are forgotten first, never another client's.
   * @default 100_000
   */
  maxIdempotencyKeysPerClient?: number
  /**
   * Decides client publishes. Without it every client publish is accepted.
   * @default undefined
   */
  onPublish?: PublishHook<I>
  /**
   * Channels whose data has a schema, from `defineChannel(name, schema)` (any Standard Schema: zod
   * 4, valibot, arktype): `push.publish` on one of them rejects with `INVALID_DATA` when the data
   * does not match, and a client publish is answered with an `INVALID_DATA` error (after
   * `onPublish`, so that what it returns is checked). Other channels take any JSON data.
   * @default [] (no channel is checked)
   */
  channels?: readonly ChannelDefinition[]
  /**
   * Decides who a connection or HTTP request is (protocol.md 3.1): see {@link AuthenticateHook}.
   * Without it tokens are ignored and every connection is anonymous.
   * @default undefined
   */
  authenticate?: AuthenticateHook<I>
  /**
   * Name of a cookie that carries the token, for browsers that authenticate by cookie
   * (same-site deployments, the iframe stream): read when the request has no other token.
   * @default undefined (cookies are not read)
   */
  authCookie?: string
  /**
   * Decides every subscribe (resumes included) and every client publish, per channel. Without
   * it, any connection that `authenticate` accepted may subscribe to and publish on any channel
   * (but user channels, see `userChannels`).
   * @default undefined (everything allowed)
   */
  authorize?: AuthorizeHook<I>
  /**
   * Prefix of user channels: `<prefix><userId>` may be subscribed only by connections whose
   * identity has that userId, and no client may publish to it (the server does, with
   * `publishToUser`). Checked before `authorize`.
   * @default undefined (no user channels)
   */
  userChannels?: string
  /**
   * Which channels track presence: their subscribers get `presence` frames (protocol.md 2.4)
   * and `push.presence(channel)` lists them.
   * @default undefined (no channel)
   */
  presence?: (channel: string) => boolean
  /**
   * A member whose last subscription to a presence channel ended is announced as gone only after
   * this long (ms) without coming back, so that a reconnect or the pause between two polls is not
   * a leave and a join. Keep it above the short-polling interval of your clients.
   * @default 5000
   */
  presenceGraceMs?: number
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
   * Publishes to the user channel of `userId` (`<userChannels><userId>`), which only that user's
   * connections may subscribe to. Throws a RangeError without the `userChannels` option.
   */
  publishToUser(userId: string, data: unknown, options?: PublishOptions): Promise<PublishResult>
  /**
   * Closes every connection of `userId` in this process with a `close` frame `UNAUTHORIZED`
   * (e.g. on logout or ban; `authenticate` must refuse the user's next attempt too). Returns the number of connections closed.
   */
  disconnectUser(userId: string, message?: string): number
  /** The members of a presence channel in this process, in order of joining. */
  presence(channel: string): PresenceMember[]
  /**
   * The members of a presence channel on every node, in order of joining, with a broker that
   * keeps presence for all (`RedisBroker`); with the memory broker, this process's. Rejects
   * with `BROKER_UNAVAILABLE` while the broker is unreachable.
   */
  presenceAcrossNodes(channel: string): Promise<PresenceMemberInfo[]>
  /**
   * Serves the endpoints on a node:http or node:https server: requests under
   * `<path>/` are answered here and everything else goes to the request
   * listeners installed before (an Express or Fastify app), WebSocket
   * upgrades for other paths to other upgrade listeners. Attach after the
   * app is installed: a request listener added later also sees push requests.
   *
   * The server's own timeouts are left as they are: they are the app's too, and a lower
   * `requestTimeout` would cut its slow uploads. The push endpoints don't need them: SSE, polls
   * and upgrades have no body, a publish body must arrive within 10 s, and Node bounds the
   * headers (`headersTimeout`, 60 s by default).
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
  /**
   * Publishes a message to every subscriber of `channel`; bypasses onPublish. With a channel from
   * `defineChannel()`, `data` is typed by its schema's input and validated by it (`INVALID_DATA`).
   */
  publish<Schema extends StandardSchemaV1>(
    channel: ChannelDefinition<Schema>,
    data: InferInput<Schema>,
    options?: PublishOptions,
  ): Promise<PublishResult>
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
