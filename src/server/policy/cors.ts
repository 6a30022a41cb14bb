import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { ErrorFrame } from '../../protocol/frames.js'
import type { AllowedOrigins, Logger } from '../options.js'

// Which pages may use the server (protocol.md 3.8): one rule for CORS, the WebSocket upgrade
// (which browsers never check: Cross-Site WebSocket Hijacking) and the iframe stream's origin.

/** Request headers a client sends on SSE, polls and publish; a preflight may ask for these. */
const ALLOWED_HEADERS = 'Authorization, Content-Type, Last-Event-ID, Cache-Control, Accept'
/** How long browsers may cache a preflight answer (s). */
const PREFLIGHT_MAX_AGE_S = '600'

/** `value` as a serialized http(s) origin (`https://example.com:8443`); undefined when it is none. */
export function serializeOrigin(value: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined
}

/** Whether the server knows the browser reached it over https: a TLS socket, or a TLS-terminating proxy that says so. */
function servedOverTls(req: IncomingMessage): boolean {
  if ((req.socket as Partial<TLSSocket>).encrypted === true) return true
  const forwarded = req.headers['x-forwarded-proto']
  return typeof forwarded === 'string' && forwarded.split(',')[0]?.trim().toLowerCase() === 'https'
}

/**
 * Whether `origin` is the server's own: the host (and port) the browser addressed, from the
 * `Host` header, which a page cannot forge for the browser. The scheme counts only when the
 * server knows it is served over https (then an http page of the same host is another origin);
 * behind a TLS proxy that sends no `X-Forwarded-Proto` it cannot know, and the host decides.
 */
function isOwnOrigin(origin: string, req: IncomingMessage): boolean {
  const host = req.headers.host
  if (!host) return false
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  if (url.protocol !== 'https:' && (url.protocol !== 'http:' || servedOverTls(req))) return false
  // Through URL too, so that default ports and case compare alike.
  try {
    return new URL(`${url.protocol}//${host}`).host === url.host
  } catch {
    return false
  }
}

/** The `allowedOrigins` option, checked once, and the rule that applies it. */
export class OriginPolicy {
  readonly #listed: ReadonlySet<string>
  readonly #decide: ((origin: string, request: IncomingMessage) => boolean) | undefined
  readonly #logger: Logger

  constructor(option: AllowedOrigins | undefined, logger: Logger) {
    this.#logger = logger
    const listed = new Set<string>()
    if (typeof option === 'function') {
      this.#decide = option
    } else {
      for (const origin of option ?? []) {
        const serialized = serializeOrigin(origin)
        if (serialized === undefined) throw new RangeError(`allowedOrigins: not an http(s) origin: ${origin}`)
        listed.add(serialized)
      }
    }
    this.#listed = listed
  }

  /** Whether a page of `origin` (an `Origin` header's value, or the iframe's `origin` parameter) may use the server. */
  allows(origin: string, req: IncomingMessage): boolean {
    if (isOwnOrigin(origin, req) || this.#listed.has(origin)) return true
    if (!this.#decide) return false
    try {
      return this.#decide(origin, req) === true
    } catch (error) {
      this.#logger.error('pushline: allowedOrigins threw', error)
      return false
    }
  }

  /** Whether a request may proceed by its `Origin` header: requests without one (not from a page) may. */
  allowsRequest(req: IncomingMessage): boolean {
    const origin = req.headers.origin
    return origin === undefined || this.allows(origin, req)
  }

  /**
   * CORS for an HTTP request under `<base>/` (protocol.md 3.8). Answers preflights and refused
   * origins itself and returns true then; otherwise sets the response's CORS headers for the
   * endpoint to answer, and returns false.
   */
  answerCors(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin
    const preflight = req.method === 'OPTIONS'
    if (origin === undefined) {
      if (!preflight) return false
      // Not from a browser: there is nothing to allow.
      res.writeHead(204, { Allow: 'GET, POST, OPTIONS' })
      res.end()
      return true
    }
    res.setHeader('Vary', 'Origin')
    if (!this.allows(origin, req)) {
      const refusal: ErrorFrame = { type: 'error', code: 'ORIGIN_REJECTED', message: `origin ${origin} is not allowed` }
      const body = JSON.stringify(refusal)
      const headers: Record<string, string> = {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(body)),
        'Cache-Control': 'no-store',
      }
      // The page may read this refusal (and nothing else: no credentials are allowed), so that a
      // client can say why instead of "failed to fetch". A preflight gets no CORS headers: the
      // browser then refuses the request without sending it.
      if (!preflight) headers['Access-Control-Allow-Origin'] = origin
      req.resume()
      res.writeHead(403, headers)
      res.end(body)
      return true
    }
    res.setHeader('Access-Control-Allow-Origin', origin)
    res.setHeader('Access-Control-Allow-Credentials', 'true')
    if (!preflight) return false
    res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET, POST',
      'Access-Control-Allow-Headers': ALLOWED_HEADERS,
      'Access-Control-Max-Age': PREFLIGHT_MAX_AGE_S,
    })
    res.end()
    return true
  }
}

/** The raw answer to a WebSocket upgrade from a refused origin: 403 before any 101, with the JSON refusal. */
export function upgradeRefusal(origin: string): string {
  const body = JSON.stringify({ type: 'error', code: 'ORIGIN_REJECTED', message: `origin ${origin} is not allowed` })
  return (
    'HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  )
}
