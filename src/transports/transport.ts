import type { PushError } from '../errors.js'
import type { ClientFrame, PublishFrame, ServerFrame, TransportName } from '../protocol/frames.js'
import type { CursorEntry } from '../protocol/position.js'

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
   * Empty while the transport is an upgrade probe; the core calls `update()` once it wins.
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

interface TransportBase {
  readonly name: TransportName
  /** Starts connecting. Failures are reported through `context.onClose`, never thrown later. */
  open(): void
  /** Closes everything the transport holds (sockets, streams, timers, listeners). Idempotent. */
  close(): void
}

/** A transport that carries client frames, such as WebSocket (and MQTT later). */
export interface DuplexTransport extends TransportBase {
  readonly kind: 'duplex'
  /** Sends one client frame. Only called after `hello` arrived. */
  send(frame: ClientFrame): void
}

/**
 * A transport with one server stream per client (SSE, long and short polling, the iframe stream).
 * It takes its subscriptions from `context.cursor()` and reopens when they change; all of them are
 * built on `streamTransport` (http.ts).
 */
export interface StreamTransport extends TransportBase {
  readonly kind: 'stream'
  /**
   * The subscription set changed: open a stream for `context.cursor()`, then close the old one once
   * the new one said `hello`. The core debounces calls made in one tick into one.
   */
  update(): void
  /** Publishes out of band; answers through `context.onFrame` as an `ack` or `error` with `frame.rid`. */
  publish(frame: PublishFrame): void
}

export type Transport = DuplexTransport | StreamTransport

/** What `websocket()`, `sse()`, … return, and what `transports` accepts. */
export interface TransportFactory {
  readonly name: TransportName
  /** Creates one connection attempt; the core calls `open()` on it. */
  create(context: TransportContext): Transport
}
