import type { IncomingHttpHeaders } from 'node:http'
import type { AuthenticateHook, Identity, Logger, PublishTransport } from '../options.js'
import { isPushError } from '../../errors.js'

/** The outcome of authenticating one connection or request. */
export type AuthVerdict =
  /** `token`: what the client presented (its idempotency scope, when tokens are verified). */
  | { ok: true; identity: Identity | undefined; token?: string | undefined }
  | { ok: false; code: 'UNAUTHORIZED' | 'TOKEN_EXPIRED' | 'INTERNAL'; message: string }

/**
 * The app's `authenticate` option, made total: it finds the token itself, never throws, and
 * without the option everybody is in, anonymously.
 */
export type Authenticator = (transport: PublishTransport, headers: IncomingHttpHeaders) => AuthVerdict | Promise<AuthVerdict>

const ANONYMOUS: AuthVerdict = Object.freeze({ ok: true, identity: undefined })

export interface AuthenticatorOptions {
  authenticate: AuthenticateHook<Identity> | undefined
  /** Name of the cookie that may carry the token. */
  authCookie: string | undefined
  logger: Logger
}

export function createAuthenticator({ authenticate, authCookie, logger }: AuthenticatorOptions): Authenticator {
  if (!authenticate) return () => ANONYMOUS
  return async (transport, headers) => {
    const token =
      bearerToken(headers.authorization) ??
      (transport === 'websocket' ? tokenFromSubprotocols(headers['sec-websocket-protocol']) : undefined) ??
      (authCookie === undefined ? undefined : cookieValue(headers.cookie, authCookie))
    let answer: Identity | boolean | null | undefined
    try {
      answer = await authenticate({ token, transport, headers })
    } catch (error) {
      if (isPushError(error) && error.code === 'UNAUTHORIZED') return { ok: false, code: 'UNAUTHORIZED', message: error.message }
      if (isPushError(error) && error.code === 'TOKEN_EXPIRED') return { ok: false, code: 'TOKEN_EXPIRED', message: error.message }
      logger.error('pushline: authenticate threw', error)
      return { ok: false, code: 'INTERNAL', message: 'authentication failed' }
    }
    if (answer === true) return { ok: true, identity: undefined, token }
    if (!answer || typeof answer !== 'object' || typeof answer.userId !== 'string') {
      return { ok: false, code: 'UNAUTHORIZED', message: 'unauthorized' }
    }
    if (answer.expiresAt !== undefined && !(answer.expiresAt > Date.now())) {
      return { ok: false, code: 'TOKEN_EXPIRED', message: 'token expired' }
    }
    return { ok: true, identity: answer, token }
  }
}

/** `Authorization: Bearer <token>` (protocol.md 3.1); undefined without one. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match?.[1]
}

/** The value of cookie `name` in a `Cookie` header (RFC 6265 5.4), percent-decoded when it can be. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
    let value = pair.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    try {
      return decodeURIComponent(value)
    } catch {
      return value
    }
  }
  return undefined
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

/** HTTP status of an authentication refusal. */
export function refusalStatus(code: 'UNAUTHORIZED' | 'TOKEN_EXPIRED' | 'INTERNAL'): number {
  return code === 'INTERNAL' ? 500 : 401
}
