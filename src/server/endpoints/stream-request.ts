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
import { rateRetryMs, refusalHeaders } from '../policy/limits.js'
import type { AddressRates, ConnectionLimits } from '../policy/limits.js'
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
  /** Places for long-lived streams (SSE, iframe); poll sessions take theirs through PollSessions. */
  limits: ConnectionLimits
  /** Rates per client address: a cursor's entries are subscribes. */
  rates: AddressRates
  clientIp: (req: IncomingMessage) => string
}

/** Answers a request over a connection limit (503) or a rate (429) with `RATE_LIMITED` and its retry hint. */
export type Refuse = (status: 429 | 503, message: string, retryMs: number) => void

/** The refusal of a request whose client reads the body: an error frame with `retryMs`, and `Retry-After`. */
export function refuseWithFrame(res: ServerResponse): Refuse {
  return (status, message, retryMs) =>
    sendFrame(res, status, errorFrame('RATE_LIMITED', message, { retryMs }), refusalHeaders(retryMs))
}

/**
 * Charges `count` subscribes (a cursor's entries) to the client address's rate
 * (`maxSubscribesPerSecond`); over it refuses with 429 and returns false.
 */
export function chargeSubscribes(
  req: IncomingMessage,
  context: StreamRequestContext,
  count: number,
  refuse: Refuse,
): boolean {
  if (count === 0) return true
  const subscribes = context.rates.of(context.clientIp(req)).subscribes
  if (subscribes.take(count)) return true
  refuse(429, 'too many subscribes per second', rateRetryMs(subscribes.waitMs(count)))
  return false
}

/**
 * Takes a place for a long-lived stream (SSE, the iframe stream), freed when
 * its response closes; over a connection limit answers 503 `RATE_LIMITED`
 * with `Retry-After` (and `retryMs` in the body) and returns undefined.
 * Returns the place's release, for {@link openHubConnection}.
 */
export function admitLongLived(
  req: IncomingMessage,
  res: ServerResponse,
  context: StreamRequestContext,
  refuse: Refuse = refuseWithFrame(res),
): (() => void) | undefined {
  const admission = context.limits.admit(context.clientIp(req))
  if (!admission.ok) {
    refuse(503, admission.message, admission.retryMs)
    return undefined
  }
  // `on`, not `once`: release is idempotent, and once would wrap it in two more objects per stream.
  res.on('close', admission.release)
  return admission.release
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
 * Authenticates the request (protocol.md 3.1), parses its `cursor` parameter
 * (3.3) and charges its entries as subscribes (`charges` says whether to: a
 * poll continuing its session's channels is not charged again), answering 401,
 * 400, 429 or 503 itself. Returns the identity and the cursor's entries, or
 * undefined when the request has been answered or has gone.
 */
export async function admitStreamRequest(
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  transport: TransportName,
  context: StreamRequestContext,
  { refuse = refuseWithFrame(res), charges = () => true }: { refuse?: Refuse; charges?: (channels: string[]) => boolean } = {},
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
  const channels = parsed.entries.map((entry) => entry.channel)
  if (charges(channels) && !chargeSubscribes(req, context, channels.length, refuse)) return undefined
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
 * `release` is a long-lived stream's place ({@link admitLongLived}): the same
 * listener frees it from now on.
 */
export async function openHubConnection(
  hub: Hub,
  connection: Connection,
  res: ServerResponse,
  requests: readonly SubscribeRequest[],
  hello: OutFrame | undefined,
  identity: Identity | undefined,
  release?: () => void,
): Promise<void> {
  connection.identity = identity
  hub.add(connection)
  if (release) {
    // One `close` listener instead of two: Node keeps two in an array, which every idle stream would hold.
    // The response is still open (admitStreamRequest checked, nothing was awaited since): release's own
    // listener has not run, and this one takes its place.
    res.removeListener('close', release)
    res.on('close', () => {
      release()
      hub.remove(connection)
    })
  } else {
    res.on('close', () => hub.remove(connection))
  }
  if (hello) connection.send(hello)
  await hub.subscribe(connection, requests)
}

/** Cursor entries as subscribe requests; `continues` for a poll that carries positions it already holds. */
export function cursorRequests(entries: readonly CursorEntry[], continues = false): SubscribeRequest[] {
  return entries.map(({ channel, position, rewind }) => ({ channel, since: position, rewind, continues }))
}
