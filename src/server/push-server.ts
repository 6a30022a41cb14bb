import type { EventEmitter } from 'node:events'
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import { PushError } from '../errors.js'
import type { PresenceMemberInfo } from '../protocol/frames.js'
import { formatId, isChannelName, parseId } from '../protocol/position.js'
import type { ChannelDefinition } from '../protocol/channel-definition.js'
import type { Broker } from './brokers/broker.js'
import { MemoryBroker } from './brokers/memory-broker.js'
import type { Endpoint } from './endpoints/endpoint.js'
import { sendFrame } from './endpoints/http-io.js'
import { HttpPublishEndpoint } from './endpoints/http-publish.js'
import { IframeEndpoint, MIN_IFRAME_MAX_BYTES } from './endpoints/iframe.js'
import { PollEndpoint } from './endpoints/poll.js'
import { SseEndpoint } from './endpoints/sse.js'
import { WebSocketEndpoint } from './endpoints/websocket.js'
import { Hub } from './hub/hub.js'
import { errorFrame, helloFrame, quoteForMessage } from './hub/out-frame.js'
import type {
  AttachOptions,
  History,
  HistoryOptions,
  Identity,
  PresenceMember,
  PublishOptions,
  PublishResult,
  PushServer,
  PushServerOptions,
  ServerStats,
  ServerTransport,
} from './options.js'
import { createAuthenticator } from './policy/authentication.js'
import { AddressRates, ConnectionLimits, KeyedCounter, PollSessions, socketAddress } from './policy/limits.js'
import { AccessPolicy } from './policy/authorization.js'
import { OriginPolicy, upgradeRefusal } from './policy/cors.js'
import { Publisher, jsonSnapshot } from './policy/publisher.js'
import { ChannelSchemas } from './policy/channel-schemas.js'

/** Every transport `pushline/server` serves, in the default negotiation order. */
const ALL_TRANSPORTS: readonly ServerTransport[] = ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe']

/** Timers overflow past 2^31 - 1 ms and would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Creates the reference pushline server. */
export function createPushServer<I extends Identity = Identity>(options: PushServerOptions<I> = {}): PushServer {
  // The hooks are typed by the app's identity; the server only hands them what authenticate made.
  return new PushServerImpl(options as unknown as PushServerOptions)
}

class PushServerImpl implements PushServer {
  readonly #path: string
  readonly #broker: Broker
  readonly #schemas: ChannelSchemas
  readonly #hub: Hub
  readonly #publisher: Publisher
  /** Path under `<base>/` → its endpoint; only offered transports (and `publish`) are in it. */
  readonly #routes: ReadonlyMap<string, Endpoint>
  readonly #origins: OriginPolicy
  readonly #access: AccessPolicy
  readonly #detachers: (() => void)[] = []
  #closing: Promise<void> | undefined

  constructor(options: PushServerOptions) {
    const heartbeatMs = positive('heartbeatMs', Math.min(options.heartbeatMs ?? 25_000, MAX_TIMER_MS))
    const heartbeatGraceMs = options.heartbeatGraceMs ?? 10_000
    const maxFrameBytes = positive('maxFrameBytes', options.maxFrameBytes ?? 65_536)
    const maxSubscriptions = positive('maxSubscriptions', options.maxSubscriptions ?? 256)
    const maxRewind = options.maxRewind ?? 100
    if (!Number.isSafeInteger(maxRewind) || maxRewind < 0) throw new RangeError('maxRewind must be a whole number of messages, 0 or more')
    const logger = options.logger ?? console
    this.#path = basePath(options.path ?? '/push')
    const schemas = (this.#schemas = new ChannelSchemas(options.channels))
    const transports = [...new Set<ServerTransport>(options.transports ?? ALL_TRANSPORTS)]
    for (const transport of transports) {
      if (!ALL_TRANSPORTS.includes(transport)) throw new RangeError(`unsupported transport: ${String(transport)}`)
    }
    const longPollHoldMs = positive('longPollHoldMs', Math.min(options.longPollHoldMs ?? 25_000, MAX_TIMER_MS))
    const iframeMaxBytes = options.iframeMaxBytes ?? 256 * 1024
    if (!(iframeMaxBytes >= MIN_IFRAME_MAX_BYTES)) {
      throw new RangeError(`iframeMaxBytes must be at least ${MIN_IFRAME_MAX_BYTES}`)
    }
    const origins = new OriginPolicy(options.allowedOrigins, logger)
    this.#origins = origins
    const presenceGraceMs = options.presenceGraceMs ?? 5000
    if (!(presenceGraceMs >= 0) || !Number.isFinite(presenceGraceMs)) {
      throw new RangeError('presenceGraceMs must be a number of milliseconds, 0 or more')
    }
    if (options.userChannels !== undefined && options.userChannels === '') {
      throw new RangeError('userChannels must be a non-empty channel name prefix')
    }
    const access = new AccessPolicy({ authorize: options.authorize, userChannels: options.userChannels, logger })
    this.#access = access
    const brokerLingerMs = options.brokerLingerMs ?? 5000
    if (!(brokerLingerMs >= 0) || !Number.isFinite(brokerLingerMs)) {
      throw new RangeError('brokerLingerMs must be a number of milliseconds, 0 or more')
    }
    const maxBufferedBytes = options.maxBufferedBytes ?? 4 * 1024 * 1024
    const maxRequestsInFlight = positive('maxRequestsInFlight', options.maxRequestsInFlight ?? 64)
    this.#broker =
      options.broker ??
      new MemoryBroker({
        historySize: options.historySize,
        historyTtlMs: options.historyTtlMs,
        idleChannelTtlMs: options.idleChannelTtlMs,
        maxHistoryBytes: options.maxHistoryBytes,
        maxChannels: options.maxChannels,
      })
    this.#hub = new Hub({
      broker: this.#broker,
      heartbeatMs,
      heartbeatGraceMs,
      maxSubscriptions,
      maxRewind,
      maxBufferedBytes,
      brokerLingerMs: Math.min(brokerLingerMs, MAX_TIMER_MS),
      logger,
      access,
      presence: options.presence,
      presenceGraceMs: Math.min(presenceGraceMs, MAX_TIMER_MS),
    })
    const authenticate = createAuthenticator({ authenticate: options.authenticate, authCookie: options.authCookie, logger })
    const keyWindowMs = positive('idempotencyWindowMs', Math.min(options.idempotencyWindowMs ?? 300_000, MAX_TIMER_MS))
    const maxKeysPerClient = positive('maxIdempotencyKeysPerClient', options.maxIdempotencyKeysPerClient ?? 100_000)
    const publisher = new Publisher(
      this.#broker,
      options.onPublish,
      access,
      logger,
      { keyWindowMs, maxKeysPerClient, tokensVerified: options.authenticate !== undefined },
      schemas,
    )
    this.#publisher = publisher
    const offers = (transport: ServerTransport): boolean => transports.includes(transport)
    // protocol.md 2.1: pollHoldMs tells a client that sends no `hold` how long a poll may take.
    const pollHoldMs = offers('long-polling') ? longPollHoldMs : undefined
    const hello = (session: string) => helloFrame(session, heartbeatMs, maxFrameBytes, transports, pollHoldMs)
    const clientIp = options.clientIp ?? socketAddress
    const limits = new ConnectionLimits({
      maxConnections: positive('maxConnections', options.maxConnections ?? 20_000),
      maxConnectionsPerIp: positive('maxConnectionsPerIp', options.maxConnectionsPerIp ?? 1000),
      maxConnectsPerSecond: positive('maxConnectsPerSecond', options.maxConnectsPerSecond ?? 500),
    })
    const subscribesPerSecond = positive('maxSubscribesPerSecond', options.maxSubscribesPerSecond ?? 100)
    const publishesPerSecond = positive('maxPublishesPerSecond', options.maxPublishesPerSecond ?? 100)
    const receiveBytesPerSecond = positive('maxReceiveBytesPerSecond', options.maxReceiveBytesPerSecond ?? 1024 * 1024)
    const rates = {
      subscribesPerSecond,
      // A client that reconnects subscribes all its channels at once.
      subscribeBurst: Math.max(2 * subscribesPerSecond, maxSubscriptions),
      publishesPerSecond,
      publishBurst: 2 * publishesPerSecond,
      receiveBytesPerSecond,
      // At least a few of the largest frames at once.
      receiveBurst: Math.max(receiveBytesPerSecond, 4 * maxFrameBytes),
    }
    // HTTP requests have no connection to count rates on: the HTTP endpoints count them per client address.
    const httpRates = new AddressRates(rates)
    const streams = { hub: this.#hub, authenticate, maxSubscriptions, hello, limits, rates: httpRates, clientIp }

    const routes = new Map<string, Endpoint>()
    routes.set(
      'publish',
      new HttpPublishEndpoint({
        publisher,
        authenticate,
        maxFrameBytes,
        inFlight: new KeyedCounter(maxRequestsInFlight),
        rates: httpRates,
        clientIp,
      }),
    )
    if (offers('websocket')) {
      routes.set(
        'ws',
        new WebSocketEndpoint({
          hub: this.#hub,
          publisher,
          authenticate,
          maxFrameBytes,
          hello,
          logger,
          maxRequestsInFlight,
          rates,
          limits,
          clientIp,
        }),
      )
    }
    if (offers('sse')) routes.set('sse', new SseEndpoint({ ...streams, retryMs: options.sseRetryMs ?? 2000 }))
    // Both polling transports share one endpoint; with long-polling off every poll is answered at once.
    if (offers('long-polling') || offers('short-polling')) {
      const maxHoldMs = offers('long-polling') ? longPollHoldMs : 0
      // A poll session keeps its place while it polls, and as long after as a silent WebSocket is kept.
      const sessions = new PollSessions(limits, Math.min(heartbeatMs + heartbeatGraceMs, MAX_TIMER_MS))
      routes.set('poll', new PollEndpoint({ ...streams, maxHoldMs, maxBufferedBytes, sessions }))
    }
    if (offers('iframe')) {
      routes.set('iframe', new IframeEndpoint({ ...streams, origins, maxBytes: iframeMaxBytes }))
    }
    this.#routes = routes
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
        sendFrame(res, 404, errorFrame('BAD_FRAME', `not found: pushline answers under ${path}/ (ws, sse, poll, iframe, publish)`))
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

  publish(channel: string | ChannelDefinition, data: unknown, options?: PublishOptions): Promise<PublishResult>
  async publish(definition: string | ChannelDefinition, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    const channel = typeof definition === 'string' ? definition : definition.name
    const schema = typeof definition === 'string' ? undefined : definition.schema
    if (schema !== undefined && typeof schema?.['~standard']?.validate !== 'function') {
      throw new PushError('INVALID_OPTIONS', `the schema of channel ${JSON.stringify(channel)} is not a Standard Schema (zod 4, valibot, arktype, …)`, { channel })
    }
    if (!isChannelName(channel)) {
      throw new PushError('INVALID_CHANNEL', `channel ${quoteForMessage(String(channel))}: 1 to 128 of A-Z a-z 0-9 _ . : @ / -`, { channel })
    }
    const event = options.event ?? 'message'
    if (typeof event !== 'string' || event.length < 1 || event.length > 64) {
      throw new PushError('BAD_FRAME', 'event must be 1..64 characters', { channel })
    }
    const snapshot = jsonSnapshot(data)
    if (!snapshot) throw new PushError('BAD_FRAME', 'data cannot be serialized as JSON', { channel })
    const invalid = await this.#schemas.check(channel, snapshot.value, schema)
    if (invalid) throw new PushError('INVALID_DATA', invalid, { channel })
    const { epoch, offset } = await this.#broker.publish(channel, event, snapshot.value)
    return { epoch, offset, id: formatId(epoch, offset) }
  }

  async history(channel: string, { limit = 100, since }: HistoryOptions = {}): Promise<History> {
    if (!isChannelName(channel)) {
      throw new PushError('INVALID_CHANNEL', `channel ${quoteForMessage(channel)}: 1 to 128 of A-Z a-z 0-9 _ . : @ / -`, { channel })
    }
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new PushError('INVALID_OPTIONS', `limit: expected a whole number >= 1, got ${String(limit)}`, { channel })
    }
    const from = since === undefined ? undefined : parseId(since)
    if (since !== undefined && !from) {
      throw new PushError('INVALID_OPTIONS', `since ${JSON.stringify(since)}: not a message id <epoch>-<offset>`, { channel })
    }
    // The resume path: the newest `limit` are what a client at newest - limit would be replayed.
    const now = await this.#broker.recover(channel, undefined)
    const recovery = await this.#broker.recover(channel, from ?? { epoch: now.epoch, offset: Math.max(0, now.offset - limit) })
    const history: History = {
      epoch: now.epoch,
      offset: now.offset,
      messages: recovery.messages.slice(0, limit).map(({ channel, event, data, epoch, offset }) => ({
        channel,
        event,
        data,
        offset,
        id: formatId(epoch, offset),
      })),
    }
    if (recovery.gap) history.gap = recovery.gap
    return history
  }

  publishToUser(userId: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    let channel: string
    try {
      channel = this.#access.userChannel(userId)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.publish(channel, data, options)
  }

  disconnectUser(userId: string, message = 'disconnected by the server'): number {
    return this.#hub.disconnectUser(userId, message)
  }

  presence(channel: string): PresenceMember[] {
    return this.#hub.presence(channel)
  }

  presenceAcrossNodes(channel: string): Promise<PresenceMemberInfo[]> {
    return this.#hub.presenceAcrossNodes(channel)
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
    for (const endpoint of this.#routes.values()) endpoint.close?.()
    await this.#hub.shutdown()
    this.#publisher.close()
    await this.#broker.close()
  }

  /** Answers requests under `<path>/`; false for anything else. */
  #route(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const target = targetOf(req.url, path)
    if (target === undefined) return false
    if (this.#closing) {
      sendFrame(res, 503, errorFrame('SERVER_SHUTDOWN', 'server shutting down'))
      return true
    }
    if (this.#origins.answerCors(req, res)) return true
    const endpoint = this.#routes.get(target.name)
    if (endpoint) void endpoint.handle(req, res, new URLSearchParams(target.query))
    else sendFrame(res, 404, errorFrame('BAD_FRAME', `not found: ${path}/${target.name} is no endpoint this server offers`))
    return true
  }

  #routeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string): boolean {
    const target = targetOf(req.url, path)
    if (target === undefined) return false
    const origin = req.headers.origin
    // Browsers let any page open a WebSocket to any host, with the user's cookies: refuse before the 101.
    if (origin !== undefined && !this.#origins.allows(origin, req)) {
      socket.end(upgradeRefusal(origin))
      return true
    }
    const endpoint = this.#routes.get(target.name)
    if (endpoint?.handleUpgrade) {
      endpoint.handleUpgrade(req, socket, head)
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
function targetOf(url: string | undefined, path: string): { name: string; query: string } | undefined {
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
