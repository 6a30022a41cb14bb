import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FlushScheduler } from '../hub/connection.js'
import { FrameEncoding, closeFrame, errorFrame } from '../hub/out-frame.js'
import type { OutFrame } from '../hub/out-frame.js'
import { serializeOrigin } from '../policy/cors.js'
import type { OriginPolicy } from '../policy/cors.js'
import type { Endpoint } from './endpoint.js'
import { sendFrame } from './http-io.js'
import { ResponseStreamConnection, startStreamResponse } from './response-stream.js'
import { admitLongLived, admitStreamRequest, cursorRequests, openHubConnection, requireGet } from './stream-request.js'
import type { Refuse, StreamRequestContext } from './stream-request.js'
import { refusalHeaders } from '../policy/limits.js'

const SCRIPT_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
}

/**
 * Makes JSON text (or a JSON string literal) safe inside an HTML `<script>`:
 * without `<` no `</script>`, `<!--` or `<script` can end or change the
 * script element, and U+2028/U+2029 end lines in pre-2019 JavaScript. These
 * characters only occur inside JSON strings, where the `\uXXXX` escape means
 * the same character, so the text still parses to the same value.
 */
function scriptSafe(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => SCRIPT_ESCAPES[c] ?? c)
}

/**
 * The frame's JSON as a JavaScript string literal that is safe inside an HTML
 * `<script>` element (protocol.md 3.7), with its length in UTF-8 bytes. A
 * string, not an object literal: `"__proto__"` keys in an object literal set
 * the prototype instead of a property.
 */
const SCRIPT_ARGUMENT = new FrameEncoding((frame) => {
  const literal = scriptSafe(JSON.stringify(frame.json))
  return { literal, bytes: Buffer.byteLength(literal) }
})

/** After the prologue: some browsers neither render nor run scripts of a document before its first KiBs. */
const PADDING = `${' '.repeat(2048)}\n`
const SCRIPT_END = ')</script>\n'
/** The last frame of a stream that reached its size limit: reopen at once with your positions (protocol.md 3.7). */
const RECYCLE = closeFrame('RECONNECT', 'stream recycled', 0)
/** The smallest `iframeMaxBytes`: prologue, padding, hello and a first frame must fit in one stream. */
export const MIN_IFRAME_MAX_BYTES = 4096

/**
 * The document's start: a function `f` that posts each of its arguments (one
 * frame's JSON text each) to the parent window, addressed to the one origin
 * the request named, so no other page that embeds the stream receives them.
 */
function prologue(nonce: string, origin: string): string {
  return (
    '<!doctype html>\n<html><head><meta charset="utf-8"><title>pushline</title></head><body>\n' +
    `<script nonce="${nonce}">var o=${scriptSafe(JSON.stringify(origin))};` +
    'function f(){for(var i=0;i!==arguments.length;i++)parent.postMessage(arguments[i],o)}</script>\n'
  )
}

export interface IframeConnectionOptions {
  nonce: string
  maxBytes: number
  /** Bytes of the body written before the first frame (prologue and padding). */
  sentBytes: number
  /** Forgets the connection in the hub once the stream is recycled. */
  release: () => void
}

/**
 * A client on a forever-iframe document: each flush is one `<script>` that
 * calls `f` with the batch's frames as JavaScript string literals. Past
 * `maxBytes` the stream ends with a `close` frame `RECONNECT`, so the
 * browser does not keep an ever-growing document.
 */
export class IframeConnection extends ResponseStreamConnection {
  readonly #scriptStart: string
  readonly #maxBytes: number
  readonly #release: () => void
  #bytes: number

  constructor(res: ServerResponse, scheduler: FlushScheduler, options: IframeConnectionOptions) {
    super(res, scheduler)
    this.#scriptStart = `<script nonce="${options.nonce}">f(`
    this.#maxBytes = options.maxBytes
    this.#bytes = options.sentBytes
    this.#release = options.release
  }

  /** On the prototype rather than in each connection: the same for all of them. */
  get transport(): 'iframe' {
    return 'iframe'
  }

  protected write(frames: readonly OutFrame[]): void {
    if (!this.writable) return
    let args = ''
    let bytes = this.#bytes + this.#scriptStart.length + SCRIPT_END.length
    let full = false
    for (const frame of frames) {
      // At a frame boundary: each channel gets a prefix of its frames, and the reopened stream resumes after it.
      if (bytes >= this.#maxBytes) {
        full = true
        break
      }
      const argument = frame.encoded(SCRIPT_ARGUMENT)
      args = args === '' ? argument.literal : `${args},${argument.literal}`
      bytes += argument.bytes + 1
    }
    if (args !== '') {
      this.writeChunk(`${this.#scriptStart}${args}${SCRIPT_END}`)
      this.#bytes = bytes
    }
    if (full || this.#bytes >= this.#maxBytes) this.#recycle()
  }

  #recycle(): void {
    this.writeChunk(`${this.#scriptStart}${RECYCLE.encoded(SCRIPT_ARGUMENT).literal}${SCRIPT_END}`)
    this.end()
    this.#release()
  }
}

export interface IframeEndpointOptions extends StreamRequestContext {
  /** Which origins the stream may post to: the server's `allowedOrigins` rule. */
  origins: OriginPolicy
  maxBytes: number
  hello: (session: string) => OutFrame
}

function documentHeaders(nonce: string): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    // Defence in depth: should a frame ever break out of its script, nothing it injects can run or load.
    'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'`,
  }
}

/**
 * A refusal (a connection limit or a rate) as the iframe can say it: the page can read neither the
 * status nor the body of its iframe, so the 503/429 answer (with `Retry-After`) is a document that
 * posts a `close` frame `RATE_LIMITED` with `retryMs`, as a refused WebSocket gets.
 */
function refuseInDocument(res: ServerResponse, origin: string): Refuse {
  return (status, message, retryMs) => {
    if (res.headersSent || res.destroyed) return
    const nonce = randomBytes(16).toString('base64url')
    const close = closeFrame('RATE_LIMITED', message, retryMs).encoded(SCRIPT_ARGUMENT).literal
    const body = `${prologue(nonce, origin)}${PADDING}<script nonce="${nonce}">f(${close}${SCRIPT_END}`
    res.writeHead(status, {
      ...documentHeaders(nonce),
      ...refusalHeaders(retryMs),
      'Content-Length': String(Buffer.byteLength(body)),
    })
    res.end(body)
  }
}

/** `GET <base>/iframe?cursor=<stream cursor>&origin=<parent origin>` (protocol.md 3.7). */
export class IframeEndpoint implements Endpoint {
  readonly #options: IframeEndpointOptions

  constructor(options: IframeEndpointOptions) {
    this.#options = options
  }

  async handle(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (!requireGet(req, res)) return
    const origin = query.get('origin')
    if (origin === null || serializeOrigin(origin) !== origin) {
      sendFrame(res, 400, errorFrame('BAD_FRAME', 'origin must be a serialized origin such as https://example.com'))
      return
    }
    // Frames are posted to this origin: an attacker's page must not get them by naming itself.
    if (!this.#options.origins.allows(origin, req)) {
      sendFrame(res, 403, errorFrame('ORIGIN_REJECTED', `origin ${origin} is not allowed`))
      return
    }
    const refuse = refuseInDocument(res, origin)
    const releasePlace = admitLongLived(req, res, this.#options, refuse)
    if (!releasePlace) return
    const admitted = await admitStreamRequest(req, res, query, 'iframe', this.#options, { refuse })
    if (!admitted) return

    const nonce = randomBytes(16).toString('base64url')
    const head = prologue(nonce, origin) + PADDING
    startStreamResponse(req, res, documentHeaders(nonce), head)

    const { hub, hello, maxBytes } = this.#options
    const connection: IframeConnection = new IframeConnection(res, hub.scheduler, {
      nonce,
      maxBytes,
      sentBytes: Buffer.byteLength(head),
      release: () => hub.remove(connection),
    })
    await openHubConnection(
      hub,
      connection,
      res,
      cursorRequests(admitted.entries),
      hello(connection.session),
      admitted.identity,
      releasePlace,
    )
  }
}
