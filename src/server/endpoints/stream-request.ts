import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TransportName } from '../../protocol/frames.js'
import type { CursorEntry } from '../../protocol/position.js'
import type { Connection } from '../hub/connection.js'
import type { Hub, SubscribeRequest } from '../hub/hub.js'
import { errorFrame } from '../hub/out-frame.js'
import type { OutFrame } from '../hub/out-frame.js'
import type { Identity } from '../options.js'
import { refusalStatus } from '../policy/authentication.js'
import type { Authenticator } from '../policy/authentication.js'
import type { ConnectionLimits } from '../policy/limits.js'
import { sendFrame } from './http-io.js'
import { parseRequestCursor } from './stream-cursor.js'

// The GET endpoints that name their subscriptions in a stream cursor (SSE,
// polls, the iframe stream) admit a request and hand it to the hub the same
// way; only the encoding of frames differs.

/** What admitting a cursor request needs. */
export interface StreamRequestContext {
  hub: Hub
  authenticate: Authenticator
  maxSubscriptions: number
  /** Places for long-lived streams (SSE, iframe); polls are requests and don't take one. */
  limits: ConnectionLimits
  clientIp: (req: IncomingMessage) => string
}

/**
 * Takes a place for a long-lived stream (SSE, the iframe stream), freed when
 * its response closes; over a connection limit answers 503 `RATE_LIMITED`
 * with `Retry-After` and returns false.
 */
export function admitLongLived(req: IncomingMessage, res: ServerResponse, context: StreamRequestContext): boolean {
  const admission = context.limits.admit(context.clientIp(req))
  if (!admission.ok) {
    const retryAfter = String(Math.max(1, Math.ceil(admission.retryMs / 1000)))
    sendFrame(res, 503, errorFrame('RATE_LIMITED', admission.message), { 'Retry-After': retryAfter })
    return false
  }
  res.once('close', admission.release)
  return true
}

/** Answers 405 unless the request is a GET; true when it is. */
export function requireGet(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET') return true
  sendFrame(res, 405, errorFrame('BAD_FRAME', 'use GET'), { Allow: 'GET' })
  return false
}

/** An admitted stream request: who it is, and the cursor's entries. */
export interface AdmittedRequest {
  identity: Identity | undefined
  entries: CursorEntry[]
}

/**
 * Authenticates the request (protocol.md 3.1) and parses its `cursor`
 * parameter (3.3), answering 401, 400 or 503 itself. Returns the identity and
 * the cursor's entries, or undefined when the request has been answered or has gone.
 */
export async function admitStreamRequest(
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  transport: TransportName,
  context: StreamRequestContext,
): Promise<AdmittedRequest | undefined> {
  const { hub, authenticate, maxSubscriptions } = context
  const verdict = await authenticate(transport, req.headers)
  if (!verdict.ok) {
    sendFrame(res, refusalStatus(verdict.code), errorFrame(verdict.code, verdict.message))
    return undefined
  }
  const parsed = parseRequestCursor(query.get('cursor') ?? '', maxSubscriptions)
  if (!parsed.ok) {
    sendFrame(res, 400, errorFrame(parsed.code, parsed.message))
    return undefined
  }
  // The client may have gone, or the server begun closing, while the app was authenticating.
  if (res.destroyed || req.destroyed) return undefined
  if (!hub.isOpen) {
    sendFrame(res, 503, errorFrame('SERVER_SHUTDOWN', 'server shutting down'))
    return undefined
  }
  return { identity: verdict.identity, entries: parsed.entries }
}

/**
 * Adds a connection for an admitted request to the hub, forgets it when the
 * response closes, sends `hello` (if any) and subscribes the cursor's
 * entries. Resolves once every subscription is live or has failed.
 */
export async function openHubConnection(
  hub: Hub,
  connection: Connection,
  res: ServerResponse,
  requests: readonly SubscribeRequest[],
  hello: OutFrame | undefined,
  identity: Identity | undefined,
): Promise<void> {
  connection.identity = identity
  hub.add(connection)
  res.on('close', () => hub.remove(connection))
  if (hello) connection.send(hello)
  await hub.subscribe(connection, requests)
}

/** Cursor entries as subscribe requests; `continues` for a poll that carries positions it already holds. */
export function cursorRequests(entries: readonly CursorEntry[], continues = false): SubscribeRequest[] {
  return entries.map(({ channel, position, rewind }) => ({ channel, since: position, rewind, continues }))
}
