import type { IncomingHttpHeaders } from 'node:http'
import type { Logger, PublishTransport, PushServerOptions } from '../options.js'

export type AuthVerdict = 'ok' | 'unauthorized' | 'failed'

/** The app's `authenticate` option, made total: it never throws, and without one everybody is in. */
export type Authenticator = (
  token: string | undefined,
  transport: PublishTransport,
  headers: IncomingHttpHeaders,
) => AuthVerdict | Promise<AuthVerdict>

export function createAuthenticator(authenticate: PushServerOptions['authenticate'], logger: Logger): Authenticator {
  if (!authenticate) return () => 'ok'
  return async (token, transport, headers) => {
    try {
      return (await authenticate({ token, transport, headers })) === true ? 'ok' : 'unauthorized'
    } catch (error) {
      logger.error('pushline: authenticate threw', error)
      return 'failed'
    }
  }
}

const AUTH_PROTOCOL_PREFIX = 'pushline.auth.'

/**
 * The token a browser WebSocket offers as subprotocol
 * `pushline.auth.<base64url(token)>` (protocol.md 3.1), since it can't set
 * an Authorization header.
 */
export function tokenFromSubprotocols(header: string | undefined): string | undefined {
  if (!header) return undefined
  for (const offered of header.split(',')) {
    const protocol = offered.trim()
    if (protocol.startsWith(AUTH_PROTOCOL_PREFIX)) {
      return Buffer.from(protocol.slice(AUTH_PROTOCOL_PREFIX.length), 'base64url').toString('utf8')
    }
  }
  return undefined
}
