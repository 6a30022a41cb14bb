import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import type { RawData, Server } from 'ws'
import { Connection } from '../hub/connection.js'
import type { FlushScheduler } from '../hub/connection.js'
import type { Hub } from '../hub/hub.js'
import { FrameEncoding, OutFrame, closeFrame, errorFrame } from '../hub/out-frame.js'
import type { Logger } from '../options.js'
import type { AuthVerdict, Authenticator } from '../policy/authentication.js'
import { clientFrameSchema, decodeFrame } from '../policy/frame-schema.js'
import { clientTokenRates, rateRetryMs } from '../policy/limits.js'
import type { ClientRateOptions, ClientTokenRates, ConnectionLimits } from '../policy/limits.js'
import type { Publisher } from '../policy/publisher.js'
import type { Endpoint } from './endpoint.js'
import { sendFrame } from './http-io.js'

const SUBPROTOCOL = 'pushline.v1'
/** What a client sends once per heartbeat; recognised without JSON.parse and zod. */
const PONG = Buffer.from('{"type":"pong"}')
/** One WebSocket message carries the frames of a flush up to about this size, so no client hits its message size limit. */
const MAX_BATCH_BYTES = 1024 * 1024
/** protocol.md 3.2: the hard limit above which ws closes with 1009. */
const HARD_LIMIT_FACTOR = 16

/**
 * The frame's JSON as a whole WebSocket text frame (RFC 6455 5.2: FIN, opcode
 * 1, unmasked as server frames are, no extension bits). Built once per message
 * and written as is to every connection, so fan-out costs one socket write per
 * connection and no per-connection header or send options.
 */
const WEBSOCKET_FRAME = new FrameEncoding((frame) => wsTextFrame(Buffer.from(frame.json, 'utf8')))

/** An unmasked, final WebSocket text frame carrying `payload`. */
export function wsTextFrame(payload: Buffer): Buffer {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  payload.copy(frame, headerLength)
  return frame
}

/**
 * ws's WebSocket, carrying the pushline connection it belongs to. ws calls a listener with the
 * WebSocket as `this`, so the endpoint's listeners are shared functions that find the connection
 * here: a listener made per connection would cost two closures and their context (~170 bytes)
 * for every idle connection.
 */
class ConnectionSocket extends WebSocket {
  connection: WebSocketConnection | undefined = undefined
}

/** The connection `ws` carries; undefined before it has one. */
function connectionOf(ws: WebSocket): WebSocketConnection | undefined {
  return ws instanceof ConnectionSocket ? ws.connection : undefined
}

/** Who a WebSocket connection is, as its upgrade request said, for the requests it sends. */
export interface WebSocketClient {
  /** The upgrade's headers for an onPublish hook (a shared empty object when no hook reads them). */
  readonly headers: IncomingHttpHeaders
  /** The publisher's per-client scope (of the token, else of the address). */
  readonly client: string
  /** The address whose place in the connection limits the connection holds. */
  readonly address: string
}

/** A client on a WebSocket: frames of one flush go out as one text message, joined by LF. */
export class WebSocketConnection extends Connection {
  readonly headers: IncomingHttpHeaders
  readonly client: string
  readonly address: string
  /** Last time anything arrived: the client answers every `ping`, so silence means a dead link. */
  lastReceivedAt = Date.now()
  /**
   * Requests of this connection run one after another (protocol.md 2.2): a `subscribe` is in
   * effect before the frame after it, so "subscribe, then publish" sees its own message. The end
   * of the queue while it runs; undefined once it ran dry, so that an idle connection holds none.
   */
  inbound: Promise<void> | undefined
  /** Requests read and not yet done (queued or running). */
  inFlight = 0
  /**
   * The connection's token buckets (maxSubscribesPerSecond, maxPublishesPerSecond,
   * maxReceiveBytesPerSecond): each the time it is full again, of the endpoint's shared
   * `TokenRate`; undefined while full since the start. Numbers, not bucket objects: every
   * connection has three, and an idle one uses them about once per heartbeat.
   */
  subscribesFullAt: number | undefined = undefined
  publishesFullAt: number | undefined = undefined
  receivedBytesFullAt: number | undefined = undefined
  /** Whether a `drain` listener is on the socket: only while a write waits for one, so an idle connection holds none. */
  #awaitingDrain = false
  /** Why the socket is not read: too many requests in flight, or over the byte rate. */
  #backlogged = false
  #throttled: ReturnType<typeof setTimeout> | undefined
  readonly #ws: WebSocket
  /** The upgraded socket ws reads from and writes to; fan-out writes finished frames to it directly. */
  readonly #socket: Duplex

  constructor(ws: WebSocket, socket: Duplex, scheduler: FlushScheduler, client: WebSocketClient) {
    super(scheduler)
    this.#ws = ws
    this.#socket = socket
    this.headers = client.headers
    this.client = client.client
    this.address = client.address
  }

  // On the prototype, not a field of every connection.
  get transport(): 'websocket' {
    return 'websocket'
  }

  protected write(frames: readonly OutFrame[]): void {
    if (this.#ws.readyState !== WebSocket.OPEN) return
    if (frames.length === 1) {
      // The common case of fan-out: the shared, already framed bytes, in one write. ws.send would
      // build a header, an options object or two and a corked two-chunk writev per connection.
      // Writing beside ws is safe: without permessage-deflate (off here) ws's sender writes
      // synchronously, so its own frames (pong, close) never interleave with this one.
      this.#socket.write((frames[0] as OutFrame).encoded(WEBSOCKET_FRAME))
      this.#awaitDrainIfNeeded()
      return
    }
    let batch = ''
    for (const frame of frames) {
      const json = frame.json
      if (batch !== '' && batch.length + json.length > MAX_BATCH_BYTES) {
        this.#ws.send(batch)
        batch = ''
      }
      batch = batch === '' ? json : `${batch}\n${json}`
    }
    if (batch !== '') this.#ws.send(batch)
    this.#awaitDrainIfNeeded()
  }

  /** A write filled the socket's buffer: the socket emits `drain` once it has been taken. */
  #awaitDrainIfNeeded(): void {
    if (this.#awaitingDrain || !this.#socket.writableNeedDrain) return
    this.#awaitingDrain = true
    this.#socket.once('drain', () => {
      this.#awaitingDrain = false
      this.drained()
    })
  }

  protected end(close: OutFrame): void {
    // protocol.md 3.2: 4401 after a close frame about credentials (expired, or the user disconnected).
    const { code } = close.frame as { code?: string }
    if (code === 'TOKEN_EXPIRED' || code === 'UNAUTHORIZED') this.#ws.close(4401, code.toLowerCase())
    else this.#ws.close(1001, 'server shutdown')
  }

  bufferedBytes(): number {
    return this.#ws.bufferedAmount
  }

  isResponsive(now: number, deadlineMs: number): boolean {
    // Not reading is the server's doing (read backpressure): the client's pongs wait unread.
    if (this.#ws.isPaused) return true
    return now - this.lastReceivedAt <= deadlineMs
  }

  /** Stops reading the client's frames while too many requests wait (read backpressure), or reads them again. */
  backlogged(on: boolean): void {
    this.#backlogged = on
    this.#applyReading()
  }

  /** Stops reading the client's frames for `ms` (over its byte rate). */
  throttle(ms: number): void {
    if (this.#throttled !== undefined) return
    this.#throttled = setTimeout(() => {
      this.#throttled = undefined
      this.#applyReading()
    }, ms)
    this.#throttled.unref()
    this.#applyReading()
  }

  #applyReading(): void {
    const paused = this.#backlogged || this.#throttled !== undefined
    if (paused === this.#ws.isPaused) return
    if (paused) this.#ws.pause()
    else this.#ws.resume()
  }

  terminate(): void {
    clearTimeout(this.#throttled)
    this.#ws.terminate()
  }
}

export interface WebSocketEndpointOptions {
  hub: Hub
  publisher: Publisher
  authenticate: Authenticator
  maxFrameBytes: number
  hello: (session: string) => OutFrame
  logger: Logger
  /** Requests of one connection read and not yet done; past this it is not read until half are done. */
  maxRequestsInFlight: number
  /** Token-bucket rates of one WebSocket connection. */
  rates: ClientRateOptions
  limits: ConnectionLimits
  clientIp: (req: IncomingMessage) => string
}

/** ws closes the socket itself (1009 on an oversized message, 1002 on a protocol error) and emits 'close'. */
const ignoreError = (): void => {}
const NO_HEADERS: IncomingHttpHeaders = Object.freeze({})

/** `<base>/ws` (protocol.md 3.2). */
export class WebSocketEndpoint implements Endpoint {
  readonly #options: WebSocketEndpointOptions
  readonly #rates: ClientTokenRates
  readonly #wss: Server<typeof ConnectionSocket>
  #closed = false
  /** The `message` and `close` listeners of every connection (see {@link ConnectionSocket}). */
  readonly #onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void
  readonly #onClose: (this: WebSocket) => void

  constructor(options: WebSocketEndpointOptions) {
    this.#options = options
    this.#rates = clientTokenRates(options.rates)
    const endpoint = this
    this.#onMessage = function (data, isBinary) {
      const connection = connectionOf(this)
      if (connection) endpoint.#receive(connection, data, isBinary)
    }
    this.#onClose = function () {
      const connection = connectionOf(this)
      if (!connection) return
      endpoint.#options.hub.remove(connection)
      endpoint.#options.limits.free(connection.address)
    }
    this.#wss = new WebSocketServer<typeof ConnectionSocket>({
      WebSocket: ConnectionSocket,
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: HARD_LIMIT_FACTOR * options.maxFrameBytes,
      handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    })
  }

  /** A plain request for `<base>/ws`: the client must upgrade. */
  handle(_req: IncomingMessage, res: ServerResponse): void {
    sendFrame(res, 426, errorFrame('BAD_FRAME', 'WebSocket upgrade required'), { Upgrade: 'websocket' })
  }

  /** Takes over an upgrade request for this endpoint. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closed) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    const address = this.#options.clientIp(req)
    const admission = this.#options.limits.admit(address)
    if (!admission.ok) {
      this.#refuse(req, socket, head, admission.message, admission.retryMs)
      return
    }
    // Whatever happens to the socket until it is a connection (refused, failed, closed), its place
    // is freed; a connection frees it itself when it closes. `on`, not `once`: release is idempotent.
    const { release } = admission
    socket.on('close', release)
    const verdict = this.#options.authenticate('websocket', req.headers)
    if (!(verdict instanceof Promise)) {
      this.#complete(req, socket, head, verdict, address, release)
      return
    }
    // Node removed its own error listener on upgrade; an error while the
    // app authenticates would otherwise be an uncaught exception.
    const onError = (): void => void socket.destroy()
    socket.on('error', onError)
    void verdict.then((result) => {
      socket.off('error', onError)
      if (this.#closed) socket.destroy()
      else this.#complete(req, socket, head, result, address, release)
    })
  }

  close(): void {
    this.#closed = true
    this.#wss.close()
  }

  /**
   * Over a connection limit: the upgrade completes so that the client can read why and how long
   * to wait (a browser can't read an HTTP refusal of an upgrade), then closes with 1013.
   */
  #refuse(req: IncomingMessage, socket: Duplex, head: Buffer, message: string, retryMs: number): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', ignoreError)
      ws.send(closeFrame('RATE_LIMITED', message, retryMs).json)
      ws.close(1013, 'try again later')
    })
  }

  #complete(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    verdict: AuthVerdict,
    address: string,
    release: () => void,
  ): void {
    // The callback must not close over `req`: listeners made in it live as long as the connection, and
    // would keep the whole request (raw headers, parser state) alive with it.
    const { headers } = req
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', ignoreError)
      if (!verdict.ok) {
        // protocol.md 3.1: a `close` frame, then close code 4401 (1011 when authentication itself failed).
        ws.send(closeFrame(verdict.code, verdict.message).json)
        if (verdict.code === 'INTERNAL') ws.close(1011, 'authentication failed')
        else ws.close(4401, verdict.code.toLowerCase())
        return
      }
      this.#accept(ws, socket, headers, verdict, address, release)
    })
  }

  #accept(
    ws: ConnectionSocket,
    socket: Duplex,
    headers: IncomingHttpHeaders,
    verdict: AuthVerdict & { ok: true },
    address: string,
    release: () => void,
  ): void {
    const { hub, hello, publisher } = this.#options
    if (!hub.isOpen) {
      // The handshake finished while the server began closing.
      ws.send(closeFrame('SERVER_SHUTDOWN', 'server shutting down').json)
      ws.close(1001, 'server shutdown')
      return
    }
    const connection = new WebSocketConnection(ws, socket, hub.scheduler, {
      // Only the headers are kept, and only when an onPublish hook will read them.
      headers: publisher.readsHeaders ? headers : NO_HEADERS,
      client: publisher.clientScope(verdict.token),
      address,
    })
    connection.identity = verdict.identity
    hub.add(connection)
    connection.send(hello(connection.session))
    // From here the connection's `close` frees its place (ws emits it once, after the socket
    // closed), so the socket holds neither the release function nor a second `close` listener.
    socket.off('close', release)
    ws.connection = connection
    ws.on('message', this.#onMessage)
    ws.on('close', this.#onClose)
  }

  /**
   * Runs `task` after the connection's earlier requests; a failure is logged and never stops the
   * queue. Read backpressure: with `maxRequestsInFlight` requests waiting, the socket is not read
   * (the client's sends back up in its own buffers) until half of them are done.
   */
  #serially(connection: WebSocketConnection, task: () => unknown): void {
    const { maxRequestsInFlight } = this.#options
    connection.inFlight += 1
    if (connection.inFlight >= maxRequestsInFlight) connection.backlogged(true)
    const queued: Promise<void> = (connection.inbound ?? Promise.resolve())
      .then(async () => void (await task()))
      .catch((error: unknown) => {
        this.#options.logger.error('pushline: handling a websocket frame failed', error)
      })
      .then(() => {
        connection.inFlight -= 1
        if (connection.inFlight <= maxRequestsInFlight / 2) connection.backlogged(false)
        if (connection.inbound === queued) connection.inbound = undefined
      })
    connection.inbound = queued
  }

  #receive(connection: WebSocketConnection, data: RawData, isBinary: boolean): void {
    if (!connection.isOpen) return // shutting down: the close frame is out
    const now = Date.now()
    connection.lastReceivedAt = now
    const bytes = toBuffer(data)
    // Over the byte rate: this message is handled, and the socket rests until the rate allows more.
    const rates = this.#rates
    connection.receivedBytesFullAt = rates.receivedBytes.spend(connection.receivedBytesFullAt, bytes.length, now)
    const restMs = rates.receivedBytes.debtMs(connection.receivedBytesFullAt, now)
    if (restMs > 0) connection.throttle(restMs)
    const { maxFrameBytes } = this.#options
    if (isBinary && bytes.length <= maxFrameBytes) {
      connection.send(new OutFrame(errorFrame('BAD_FRAME', 'frames are text messages')))
      return
    }
    if (bytes.length === PONG.length && bytes.equals(PONG)) return
    const text = bytes.toString('utf8')
    const decoded = decodeFrame(clientFrameSchema, text, bytes.length, maxFrameBytes)
    if (!decoded.ok) {
      connection.send(new OutFrame(decoded.error))
      return
    }
    const frame = decoded.frame
    switch (frame.type) {
      case 'subscribe': {
        const subscribesFullAt = rates.subscribes.take(connection.subscribesFullAt, 1, now)
        if (subscribesFullAt === undefined) {
          const retryMs = rateRetryMs(rates.subscribes.waitMs(connection.subscribesFullAt, 1, now))
          connection.send(new OutFrame(errorFrame('RATE_LIMITED', 'too many subscribes per second', { ...frame, retryMs })))
          return
        }
        connection.subscribesFullAt = subscribesFullAt
        this.#serially(connection, () => this.#options.hub.subscribe(connection, [frame]))
        return
      }
      case 'unsubscribe':
        this.#serially(connection, () => this.#options.hub.unsubscribe(connection, frame.channel))
        return
      case 'publish': {
        const { rid, channel, event = 'message', data: payload, key } = frame
        const publishesFullAt = rates.publishes.take(connection.publishesFullAt, 1, now)
        if (publishesFullAt === undefined) {
          const retryMs = rateRetryMs(rates.publishes.waitMs(connection.publishesFullAt, 1, now))
          connection.send(new OutFrame(errorFrame('RATE_LIMITED', 'too many publishes per second', { rid, channel, retryMs })))
          return
        }
        connection.publishesFullAt = publishesFullAt
        const { session, headers, identity, client } = connection
        const origin = { transport: 'websocket' as const, session, headers, identity, client }
        this.#serially(connection, async () => {
          const answer = await this.#options.publisher.publish({ rid, channel, event, data: payload, key }, origin)
          connection.send(new OutFrame(answer))
        })
        return
      }
      case 'pong':
        return
    }
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}
