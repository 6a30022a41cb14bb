import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorCode } from '../../protocol/frames.js'
import { errorFrame } from '../hub/out-frame.js'
import { refusalStatus } from '../policy/authentication.js'
import type { Authenticator } from '../policy/authentication.js'
import { rateRetryMs, refusalHeaders } from '../policy/limits.js'
import type { AddressRates, ClientRates, KeyedCounter } from '../policy/limits.js'
import { decodeFrame, httpPublishSchema } from '../policy/frame-schema.js'
import type { Publisher } from '../policy/publisher.js'
import type { Endpoint } from './endpoint.js'
import { isJsonContentType, readBody, sendFrame } from './http-io.js'

const STATUS: Partial<Record<ErrorCode, number>> = {
  FRAME_TOO_LARGE: 413,
  PUBLISH_REJECTED: 403,
  UNAUTHORIZED: 401,
  INTERNAL: 500,
  BROKER_UNAVAILABLE: 503,
  MQTT_UNAVAILABLE: 503,
  RATE_LIMITED: 429,
}

/** The whole body of a publish must arrive within this (ms); it is at most maxFrameBytes. */
const BODY_TIMEOUT_MS = 10_000

export interface HttpPublishEndpointOptions {
  publisher: Publisher
  authenticate: Authenticator
  maxFrameBytes: number
  /** Publishes in flight per client address. */
  inFlight: KeyedCounter
  /** maxPublishesPerSecond and maxReceiveBytesPerSecond, per client address. */
  rates: AddressRates
  clientIp: (req: IncomingMessage) => string
}

/** `POST <base>/publish` (protocol.md 3.4). */
export class HttpPublishEndpoint implements Endpoint {
  readonly #publisher: Publisher
  readonly #authenticate: Authenticator
  readonly #maxFrameBytes: number
  readonly #inFlight: KeyedCounter
  readonly #rates: AddressRates
  readonly #clientIp: (req: IncomingMessage) => string

  constructor(options: HttpPublishEndpointOptions) {
    this.#publisher = options.publisher
    this.#authenticate = options.authenticate
    this.#maxFrameBytes = options.maxFrameBytes
    this.#inFlight = options.inFlight
    this.#rates = options.rates
    this.#clientIp = options.clientIp
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      sendFrame(res, 405, errorFrame('BAD_FRAME', 'use POST'), { Allow: 'POST' })
      return
    }
    // Bounded like a WebSocket's queue: a client can't have the server read and hold
    // more than maxRequestsInFlight publishes at once (each up to maxFrameBytes).
    const client = this.#clientIp(req)
    if (!this.#inFlight.acquire(client)) return this.#refuse(req, res, 'too many publishes in flight', rateRetryMs(500))
    try {
      // The rates of a WebSocket connection, per client address. Bytes are charged once read,
      // so a body over the rate is taken and the next publish waits until the debt is paid.
      const rates = this.#rates.of(client)
      const owedMs = rates.receivedBytes.waitMs(0)
      if (owedMs > 0) return this.#refuse(req, res, 'too many bytes per second', rateRetryMs(owedMs))
      if (!rates.publishes.take()) {
        return this.#refuse(req, res, 'too many publishes per second', rateRetryMs(rates.publishes.waitMs()))
      }
      await this.#publish(req, res, rates)
    } finally {
      this.#inFlight.release(client)
    }
  }

  async #publish(req: IncomingMessage, res: ServerResponse, rates: ClientRates): Promise<void> {
    const verdict = await this.#authenticate('http', req.headers)
    if (!verdict.ok) return this.#fail(req, res, verdict.code, verdict.message, refusalStatus(verdict.code))
    if (!isJsonContentType(req.headers['content-type'])) {
      // Also keeps cross-site form posts (no preflight) from publishing.
      return this.#fail(req, res, 'BAD_FRAME', 'Content-Type must be application/json')
    }
    const body = await readBody(req, this.#maxFrameBytes, BODY_TIMEOUT_MS)
    if (body.ok) rates.receivedBytes.spend(body.bytes)
    if (!body.ok) {
      if (body.reason === 'too-large') {
        this.#fail(req, res, 'FRAME_TOO_LARGE', `body exceeds ${this.#maxFrameBytes} bytes`)
      } else if (body.reason === 'timeout') {
        sendFrame(res, 408, errorFrame('BAD_FRAME', 'body not received in time'), { Connection: 'close' })
        req.socket.destroySoon()
      }
      return
    }
    const decoded = decodeFrame(httpPublishSchema, body.text, body.bytes, this.#maxFrameBytes)
    if (!decoded.ok) {
      sendFrame(res, STATUS[decoded.error.code] ?? 400, decoded.error)
      return
    }
    const { rid, channel, event = 'message', data, key } = decoded.frame
    const session = randomBytes(12).toString('base64url')
    const answer = await this.#publisher.publish(
      { rid, channel, event, data, key },
      { transport: 'http', session, headers: req.headers, identity: verdict.identity, client: this.#publisher.clientScope(verdict.token) },
    )
    sendFrame(res, answer.type === 'ack' ? 200 : (STATUS[answer.code] ?? 400), answer)
  }

  /** 429 `RATE_LIMITED` with the retry hint as `retryMs` in the body and `Retry-After`. */
  #refuse(req: IncomingMessage, res: ServerResponse, message: string, retryMs: number): void {
    this.#fail(req, res, 'RATE_LIMITED', message, 429, refusalHeaders(retryMs), retryMs)
  }

  #fail(
    req: IncomingMessage,
    res: ServerResponse,
    code: ErrorCode,
    message: string,
    status = STATUS[code] ?? 400,
    extra: Record<string, string> = {},
    retryMs?: number,
  ): void {
    // The body may still be arriving: let it drain, and don't keep the connection for another request.
    const headers: Record<string, string> = req.complete ? { ...extra } : { ...extra, Connection: 'close' }
    req.resume()
    sendFrame(res, status, errorFrame(code, message, { retryMs }), headers)
  }
}
