import type { PushError } from '../errors.js'
import type { ClientFrame, PublishFrame, ServerFrame, TransportName } from '../protocol/frames.js'
import type { CursorEntry } from '../protocol/position.js'

// The contracts the transports implement and the client core relies on. This module sits below
// both: it imports neither the client nor a transport, so neither imports back from the other.

// ---- platform seams: minimal shapes, so the DOM classes, `ws` and `eventsource` all fit ----
// Event parameters are `any` on purpose: each implementation has its own event classes, and a
// precise type here would reject one of them.

/** What pushline uses of a WebSocket instance (the DOM one, `ws`, or a test fake). */
export interface WebSocketLike {
  readonly readyState: number
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

/** What pushline uses of an EventSource instance (the DOM one, `eventsource`, or a test fake). */
export interface EventSourceLike {
  readonly readyState: number
  onmessage: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  close(): void
}

export type EventSourceConstructor = new (
  url: string,
  init?: { withCredentials?: boolean; fetch?: any },
) => EventSourceLike

export type FetchLike = typeof globalThis.fetch

/** Timers and clock, replaceable so tests and odd runtimes can drive time. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  /** Wall-clock milliseconds; deadlines are computed from it, not from counting timer ticks. */
  now(): number
}

/** Platform pieces a transport may use. Unset ones default to globals, or in Node to `ws` / `eventsource`. */
export interface Platform {
  WebSocket?: WebSocketConstructor | undefined
  EventSource?: EventSourceConstructor | undefined
  fetch?: FetchLike | undefined
}

// ---- the transport contract ----

/**
 * Why the client moved to another transport: its handshake failed (an error, or a close before
 * `hello`), timed out (no `hello` in `handshakeTimeoutMs`, as behind a buffering proxy), the server
 * does not offer it (its `hello` does not list it), it died within `unstableMs` of opening, or a
 * better transport passed an upgrade probe.
 */
export type FallbackReason = 'handshake-failed' | 'handshake-timeout' | 'not-offered' | 'unstable' | 'upgrade'

/** A move from one transport to another. */
export interface FallbackEvent {
  from: TransportName
  to: TransportName
  reason: FallbackReason
}

/** What the client core hands to a transport for one connection attempt. */
export interface TransportContext {
  /** The server's base URL, for example `https://example.com/push`; transports append their endpoint. */
  readonly url: string
  /** The token for this attempt, already resolved. Sent per protocol.md 3.1, never in a URL. */
  readonly token: string | undefined
  readonly platform: Platform
  readonly timers: Timers
  /** How long a stream transport waits for `hello` on a stream it reopens (the core times the first one). */
  readonly handshakeTimeoutMs: number
  /**
   * Stream transports: the subscriptions to carry now, with their positions (the stream cursor).
   * Empty while the transport is an upgrade probe; once it wins, the core's subscribes reopen it.
   */
  cursor(): CursorEntry[]
  /** Delivers one decoded server frame. */
  onFrame(frame: ServerFrame): void
  /**
   * The transport has closed or failed on its own; `error` is unset for a normal close. Called at
   * most once, and never after the core called `close()`.
   */
  onClose(error?: PushError): void
}

/**
 * One connection attempt of a transport, as the core sees it: it carries client frames. WebSocket
 * sends them as they are; the stream transports turn them into HTTP (see {@link StreamTransport}).
 */
export interface Transport {
  readonly name: TransportName
  /** Starts connecting. Failures are reported through `context.onClose`, never thrown later. */
  open(): void
  /** Sends one client frame. Only called after `hello` arrived. */
  send(frame: ClientFrame): void
  /** Closes everything the transport holds (sockets, streams, timers, listeners). Idempotent. */
  close(): void
}

/**
 * A transport with one server stream per client (SSE, long and short polling, the iframe stream),
 * all built on `streamFactory` (http.ts). It takes its subscriptions from `context.cursor()`:
 * a `subscribe` for a channel its stream does not carry, or an `unsubscribe`, reopens the stream
 * with the cursor of the moment (once per tick); a `publish` goes by POST and is answered through
 * `context.onFrame` as an `ack` or `error` with its `rid`; a `pong` is not sent (the stream's
 * requests show the link is alive).
 */
export interface StreamTransport extends Transport {
  /**
   * Opens a stream for `context.cursor()` now, then closes the old one once the new one said
   * `hello`: to replay a channel from an older position (share.ts).
   */
  update(): void
}

/** What `websocket()`, `sse()`, … return, and what `transports` accepts. */
export interface TransportFactory {
  readonly name: TransportName
  /** Creates one connection attempt; the core calls `open()` on it. */
  create(context: TransportContext): Transport
  /**
   * Negotiation among several transports (fallback, memory of the winner, upgrade probes). The
   * fallback transports carry it, so that a client with WebSocket only does not bundle it; a
   * client uses the first one its list has, and refuses a list of several without one. A custom
   * fallback transport sets it to `negotiate` (exported by `pushline/core`).
   * @default undefined
   */
  readonly negotiate?: Negotiation | undefined
}

declare const negotiation: unique symbol

/**
 * What a fallback transport's factory carries as `negotiate`: the one value of this type is
 * `negotiate` of `pushline/core`. Its shape is internal (the client core's, which may change in any
 * release), so it is opaque here.
 */
export interface Negotiation {
  readonly [negotiation]: true
}

/** A place to remember which transport won, per server URL: `localStorage` fits. */
export interface StorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}
