import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorCode } from '../../protocol/frames.js'
import { errorFrame } from '../hub/out-frame.js'
import type { Authenticator } from '../policy/authentication.js'
import type { KeyedCounter } from '../policy/limits.js'
import { decodeFrame, httpPublishSchema } from '../policy/frame-schema.js'
import type { Publisher } from '../policy/publisher.js'
import type { Endpoint } from './endpoint.js'
import { bearerToken, isJsonContentType, readBody, sendFrame } from './http-io.js'

const STATUS: Partial<Record<ErrorCode, number>> = {
  FRAME_TOO_LARGE: 413,
  PUBLISH_REJECTED: 403,
  UNAUTHORIZED: 401,
  INTERNAL: 500,
  RATE_LIMITED: 429,
  BROKER_UNAVAILABLE: 503,
}

/** The whole body of a publish must arrive within this (ms); it is at most maxFrameBytes. */
const BODY_TIMEOUT_MS = 10_000

export interface HttpPublishEndpointOptions {
  publisher: Publisher
  authenticate: Authenticator
  maxFrameBytes: number
  /** Publishes in flight per client address. */
  inFlight: KeyedCounter
  clientIp: (req: IncomingMessage) => string
}

/** `POST <base>/publish` (protocol.md 3.4). */
export class HttpPublishEndpoint implements Endpoint {
  readonly #publisher: Publisher
  readonly #authenticate: Authenticator
  readonly #maxFrameBytes: number
  readonly #inFlight: KeyedCounter
  readonly #clientIp: (req: IncomingMessage) => string

  constructor(options: HttpPublishEndpointOptions) {
    this.#publisher = options.publisher
    this.#authenticate = options.authenticate
    this.#maxFrameBytes = options.maxFrameBytes
    this.#inFlight = options.inFlight
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
    if (!this.#inFlight.acquire(client)) {
      return this.#fail(req, res, 'RATE_LIMITED', 'too many publishes in flight', { 'Retry-After': '1' })
    }
    try {
      await this.#publish(req, res)
    } finally {
      this.#inFlight.release(client)
    }
  }

  async #publish(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const verdict = await this.#authenticate(bearerToken(req), 'http', req.headers)
    if (verdict !== 'ok') {
      const code = verdict === 'unauthorized' ? 'UNAUTHORIZED' : 'INTERNAL'
      return this.#fail(req, res, code, verdict === 'unauthorized' ? 'unauthorized' : 'authentication failed')
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      // Also keeps cross-site form posts (no preflight) from publishing.
      return this.#fail(req, res, 'BAD_FRAME', 'Content-Type must be application/json')
    }
    const body = await readBody(req, this.#maxFrameBytes, BODY_TIMEOUT_MS)
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
      { transport: 'http', session, headers: req.headers, client: this.#publisher.clientScope(bearerToken(req)) },
    )
    sendFrame(res, answer.type === 'ack' ? 200 : (STATUS[answer.code] ?? 400), answer)
  }

  #fail(req: IncomingMessage, res: ServerResponse, code: ErrorCode, message: string, extra: Record<string, string> = {}): void {
    // The body may still be arriving: let it drain, and don't keep the connection for another request.
    const headers: Record<string, string> = req.complete ? { ...extra } : { ...extra, Connection: 'close' }
    req.resume()
    sendFrame(res, STATUS[code] ?? 400, errorFrame(code, message), headers)
  }
}
