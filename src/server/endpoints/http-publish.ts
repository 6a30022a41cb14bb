import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorCode } from '../../protocol/frames.js'
import { errorFrame } from '../hub/out-frame.js'
import { refusalStatus } from '../policy/authentication.js'
import type { Authenticator } from '../policy/authentication.js'
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
}

/** `POST <base>/publish` (protocol.md 3.4). */
export class HttpPublishEndpoint implements Endpoint {
  readonly #publisher: Publisher
  readonly #authenticate: Authenticator
  readonly #maxFrameBytes: number

  constructor(publisher: Publisher, authenticate: Authenticator, maxFrameBytes: number) {
    this.#publisher = publisher
    this.#authenticate = authenticate
    this.#maxFrameBytes = maxFrameBytes
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      sendFrame(res, 405, errorFrame('BAD_FRAME', 'use POST'), { Allow: 'POST' })
      return
    }
    const verdict = await this.#authenticate('http', req.headers)
    if (!verdict.ok) return this.#fail(req, res, verdict.code, verdict.message, refusalStatus(verdict.code))
    if (!isJsonContentType(req.headers['content-type'])) {
      // Also keeps cross-site form posts (no preflight) from publishing.
      return this.#fail(req, res, 'BAD_FRAME', 'Content-Type must be application/json')
    }
    const body = await readBody(req, this.#maxFrameBytes)
    if (!body.ok) {
      if (body.reason === 'too-large') {
        this.#fail(req, res, 'FRAME_TOO_LARGE', `body exceeds ${this.#maxFrameBytes} bytes`)
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
      { transport: 'http', session, headers: req.headers, identity: verdict.identity },
    )
    sendFrame(res, answer.type === 'ack' ? 200 : (STATUS[answer.code] ?? 400), answer)
  }

  #fail(req: IncomingMessage, res: ServerResponse, code: ErrorCode, message: string, status = STATUS[code] ?? 400): void {
    // The body may still be arriving: let it drain, and don't keep the connection for another request.
    const headers: Record<string, string> = req.complete ? {} : { Connection: 'close' }
    req.resume()
    sendFrame(res, status, errorFrame(code, message), headers)
  }
}
