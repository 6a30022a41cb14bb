import type { EventEmitter } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import { PushError } from '../errors.js'
import type { TransportName } from '../protocol/frames.js'
import { formatId, isChannelName } from '../protocol/position.js'
import { createAuthenticator } from './authentication.js'
import type { Broker } from './broker.js'
import { sendFrame } from './http-io.js'
import { HttpPublishEndpoint } from './http-publish.js'
import { Hub } from './hub.js'
import { MemoryBroker } from './memory-broker.js'
import { errorFrame, helloFrame } from './out-frame.js'
import { Publisher, jsonSnapshot } from './publisher.js'
import { IframeEndpoint, MIN_IFRAME_MAX_BYTES, serializeOrigin } from './iframe.js'
import { PollEndpoint } from './poll.js'
import { SseEndpoint } from './sse.js'
import { WebSocketEndpoint } from './websocket.js'

/** Transports `pushline/server` serves. */
export type ServerTransport = Extract<TransportName, 'websocket' | 'sse' | 'long-polling' | 'short-polling' | 'iframe'>

/** Every transport `pushline/server` serves, in the default negotiation order. */
const ALL_TRANSPORTS: readonly ServerTransport[] = ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe']

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

export interface AuthContext {
  /** From `Authorization: Bearer`, or the WebSocket auth subprotocol; undefined when the client sent none. */
  token: string | undefined
  transport: PublishTransport
  headers: IncomingHttpHeaders
}

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
  /** Counts of what the server keeps; all zero once clients have gone. */
  stats(): ServerStats
  /** Sends every client a `close` frame, closes connections and the broker, detaches from servers. Idempotent. */
  close(): Promise<void>
}

/** Creates the reference pushline server. */
export function createPushServer(options: PushServerOptions = {}): PushServer {
  return new PushServerImpl(options)
}

class PushServerImpl implements PushServer {
  readonly #path: string
  readonly #transports: ServerTransport[]
  readonly #broker: Broker
  readonly #hub: Hub
  readonly #sse: SseEndpoint
  readonly #poll: PollEndpoint
  readonly #iframe: IframeEndpoint
  readonly #ws: WebSocketEndpoint
  readonly #httpPublish: HttpPublishEndpoint
  readonly #detachers: (() => void)[] = []
  #closing: Promise<void> | undefined

  constructor(options: PushServerOptions) {
    // Timers overflow past 2^31 - 1 ms and would fire at once.
    const heartbeatMs = positive('heartbeatMs', Math.min(options.heartbeatMs ?? 20_000, 2 ** 31 - 1))
    const maxFrameBytes = positive('maxFrameBytes', options.maxFrameBytes ?? 65_536)
    const maxSubscriptions = positive('maxSubscriptions', options.maxSubscriptions ?? 256)
    const logger = options.logger ?? console
    this.#path = basePath(options.path ?? '/push')
    this.#transports = [...new Set<ServerTransport>(options.transports ?? ALL_TRANSPORTS)]
    for (const transport of this.#transports) {
      if (!ALL_TRANSPORTS.includes(transport)) throw new RangeError(`unsupported transport: ${String(transport)}`)
    }
    const longPollHoldMs = positive('longPollHoldMs', Math.min(options.longPollHoldMs ?? 25_000, 2 ** 31 - 1))
    const iframeMaxBytes = options.iframeMaxBytes ?? 256 * 1024
    if (!(iframeMaxBytes >= MIN_IFRAME_MAX_BYTES)) {
      throw new RangeError(`iframeMaxBytes must be at least ${MIN_IFRAME_MAX_BYTES}`)
    }
    const allowedOrigins = new Set<string>()
    for (const origin of options.allowedOrigins ?? []) {
      const serialized = serializeOrigin(origin)
      if (serialized === undefined) throw new RangeError(`allowedOrigins: not an http(s) origin: ${origin}`)
      allowedOrigins.add(serialized)
    }
    const maxBufferedBytes = options.maxBufferedBytes ?? 4 * 1024 * 1024
    this.#broker =
      options.broker ?? new MemoryBroker({ historySize: options.historySize, historyTtlMs: options.historyTtlMs })
    this.#hub = new Hub({
      broker: this.#broker,
      heartbeatMs,
      heartbeatGraceMs: options.heartbeatGraceMs ?? 10_000,
      maxSubscriptions,
      maxBufferedBytes,
      logger,
    })
    const authenticate = createAuthenticator(options.authenticate, logger)
    const publisher = new Publisher(this.#broker, options.onPublish, logger)
    const transports = this.#transports
    const longPolling = transports.includes('long-polling')
    // protocol.md 2.1: pollHoldMs tells a client that sends no `hold` how long a poll may take.
    const pollHoldMs = longPolling ? longPollHoldMs : undefined
    const hello = (session: string) => helloFrame(session, heartbeatMs, maxFrameBytes, transports, pollHoldMs)
    const streams = { hub: this.#hub, authenticate, maxSubscriptions, hello }
    this.#sse = new SseEndpoint({ ...streams, retryMs: options.sseRetryMs ?? 2000 })
    this.#poll = new PollEndpoint({ ...streams, maxHoldMs: longPolling ? longPollHoldMs : 0, maxBufferedBytes })
    this.#iframe = new IframeEndpoint({ ...streams, allowedOrigins, maxBytes: iframeMaxBytes })
    this.#ws = new WebSocketEndpoint({ hub: this.#hub, publisher, authenticate, maxFrameBytes, hello, logger })
    this.#httpPublish = new HttpPublishEndpoint(publisher, authenticate, maxFrameBytes)
  }

  attach(server: HttpServer | HttpsServer, options: AttachOptions = {}): void {
    if (this.#closing) throw new PushError('SERVER_SHUTDOWN', 'push server is closed')
    const path = options.path === undefined ? this.#path : basePath(options.path)
    // Typed as a plain emitter: the union of the two server types has no callable `on` overloads.
    const emitter: EventEmitter = server
    // Like socket.io: take the request listeners installed so far (the app)
    // and call them ourselves for everything that isn't ours.
    const previous = emitter.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[]
    emitter.removeAllListeners('request')
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      if (this.#route(req, res, path)) return
      for (const listener of previous) listener.call(server, req, res)
      // Nobody else answers (no app before, none added after): don't leave the request hanging.
      if (previous.length === 0 && emitter.listenerCount('request') === 1) {
        sendFrame(res, 404, errorFrame('BAD_FRAME', 'not found'))
      }
    }
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (this.#routeUpgrade(req, socket, head, path)) return
      // Other paths belong to other upgrade listeners; close the socket only if there are none.
      if (emitter.listenerCount('upgrade') === 1) socket.destroy()
    }
    emitter.on('request', onRequest)
    emitter.on('upgrade', onUpgrade)
    this.#detachers.push(() => {
      emitter.off('request', onRequest)
      emitter.off('upgrade', onUpgrade)
      for (const listener of previous) emitter.on('request', listener)
    })
  }

  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    return this.#route(req, res, this.#path)
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    return this.#routeUpgrade(req, socket, head, this.#path)
  }

  async publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    if (!isChannelName(channel)) throw new PushError('INVALID_CHANNEL', `invalid channel name: ${channel}`, { channel })
    const event = options.event ?? 'message'
    if (typeof event !== 'string' || event.length < 1 || event.length > 64) {
      throw new PushError('BAD_FRAME', 'event must be 1..64 characters', { channel })
    }
    const snapshot = jsonSnapshot(data)
    if (!snapshot) throw new PushError('BAD_FRAME', 'data cannot be serialized as JSON', { channel })
    const { epoch, offset } = await this.#broker.publish(channel, event, snapshot.value)
    return { epoch, offset, id: formatId(epoch, offset) }
  }

  stats(): ServerStats {
    return this.#hub.stats()
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    // Newest first: each attachment restores the listeners it found, which may include an older attachment's.
    for (const detach of this.#detachers.splice(0).reverse()) detach()
    this.#ws.close()
    await this.#hub.shutdown()
    await this.#broker.close()
  }

  /** Answers requests under `<path>/`; false for anything else. */
  #route(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const endpoint = endpointOf(req.url, path)
    if (endpoint === undefined) return false
    if (this.#closing) {
      sendFrame(res, 503, errorFrame('SERVER_SHUTDOWN', 'server shutting down'))
      return true
    }
    const { name, query } = endpoint
    if (name === 'publish') {
      void this.#httpPublish.handle(req, res)
    } else if (name === 'sse' && this.#transports.includes('sse')) {
      void this.#sse.handle(req, res, new URLSearchParams(query))
    } else if (name === 'poll' && (this.#transports.includes('long-polling') || this.#transports.includes('short-polling'))) {
      void this.#poll.handle(req, res, new URLSearchParams(query))
    } else if (name === 'iframe' && this.#transports.includes('iframe')) {
      void this.#iframe.handle(req, res, new URLSearchParams(query))
    } else if (name === 'ws' && this.#transports.includes('websocket')) {
      sendFrame(res, 426, errorFrame('BAD_FRAME', 'WebSocket upgrade required'), { Upgrade: 'websocket' })
    } else {
      sendFrame(res, 404, errorFrame('BAD_FRAME', 'not found'))
    }
    return true
  }

  #routeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string): boolean {
    const endpoint = endpointOf(req.url, path)
    if (endpoint === undefined) return false
    if (endpoint.name === 'ws' && this.#transports.includes('websocket')) {
      this.#ws.handleUpgrade(req, socket, head)
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
    }
    return true
  }
}

/** `/push/` → `/push`, `push` → `/push`, `/` → `` (so endpoints are `/ws`, ...). */
function basePath(path: string): string {
  const trimmed = path.replace(/\/+$/, '')
  return trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`
}

/** The endpoint name and query of a URL under `<path>/`; undefined when the URL is not ours. */
function endpointOf(url: string | undefined, path: string): { name: string; query: string } | undefined {
  // A prefix test first: most requests through an attached server are the app's.
  if (!url || !url.startsWith(`${path}/`)) return undefined
  const q = url.indexOf('?')
  const name = url.slice(path.length + 1, q === -1 ? undefined : q)
  return { name, query: q === -1 ? '' : url.slice(q + 1) }
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a positive number`)
  return value
}
