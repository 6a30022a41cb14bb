/**
 * Wire frames of protocol version 1, shared by client and server.
 * docs/protocol.md is the normative description; these types mirror it.
 */

export const PROTOCOL_VERSION = 1

/** Transport names, in the default negotiation order. */
export type TransportName = 'websocket' | 'sse' | 'long-polling' | 'short-polling' | 'iframe' | 'mqtt'

/** Why a subscription could not be resumed without loss. */
export type GapReason = 'history-exhausted' | 'epoch-changed' | 'position-in-future'

/** Stable error codes carried by `error` frames and by {@link PushError}. */
export type ErrorCode =
  // sent by the server
  | 'BAD_FRAME'
  | 'FRAME_TOO_LARGE'
  | 'INVALID_CHANNEL'
  | 'PUBLISH_REJECTED'
  /** A publish's data does not match the schema the server has for its channel. */
  | 'INVALID_DATA'
  | 'SUBSCRIBE_REJECTED'
  | 'UNAUTHORIZED'
  | 'TOKEN_EXPIRED'
  | 'ORIGIN_REJECTED'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'RATE_LIMITED'
  | 'SERVER_SHUTDOWN'
  | 'RECONNECT'
  | 'INTERNAL'
  | 'BROKER_UNAVAILABLE'
  | 'EPOCH_FLAPPING'
  | 'MQTT_UNAVAILABLE'
  // raised by the client
  | 'PROTOCOL_ERROR'
  | 'TRANSPORT_FAILED'
  | 'HANDSHAKE_TIMEOUT'
  | 'HEARTBEAT_TIMEOUT'
  | 'PUBLISH_TIMEOUT'
  | 'OUTBOX_FULL'
  | 'CLIENT_CLOSED'
  | 'NO_TRANSPORT'
  /** An option or argument the client was given is not allowed; the message names it and what is. */
  | 'INVALID_OPTIONS'

// ---- server to client ----

export interface HelloFrame {
  type: 'hello'
  /** Protocol version. */
  v: number
  /** Opaque id of this connection, for logs. */
  session: string
  /** The server sends at least one frame (a `ping` if idle) this often. */
  heartbeatMs: number
  /** Largest client frame the server accepts, in UTF-8 bytes. */
  maxFrameBytes: number
  /** Transports this server offers. */
  transports: TransportName[]
  /** Longest time (ms) the server holds a poll; present when it offers long-polling. */
  pollHoldMs?: number
}

export interface SubscribedFrame {
  type: 'subscribed'
  channel: string
  rid?: string
  /** Position the subscription continues from: the next message has `offset + 1` in `epoch`. */
  epoch: string
  offset: number
  /** Present when the requested position could not be recovered. */
  gap?: GapReason
}

export interface MessageFrame {
  type: 'message'
  channel: string
  event: string
  data: unknown
  offset: number
  /** `${epoch}-${offset}` */
  id: string
}

export interface GapFrame {
  type: 'gap'
  channel: string
  reason: GapReason
  /** Position after the gap. */
  epoch: string
  offset: number
}

export interface AckFrame {
  type: 'ack'
  rid: string
  channel: string
  offset: number
  id: string
}

export interface ErrorFrame {
  type: 'error'
  code: ErrorCode
  message: string
  rid?: string
  channel?: string
}

/** A member of a presence channel, as presence frames carry it. */
export interface PresenceMemberInfo {
  /** The member's user id (its session id when it has no identity). */
  id: string
  /** When it joined, in ms since the Unix epoch. */
  joinedAt: number
}

/**
 * Presence of a channel (protocol.md 2.4): `sync` carries the whole member set (after every
 * `subscribed`), `join` and `leave` one member each. Not part of history: it has no offset.
 */
export type PresenceFrame =
  | { type: 'presence'; channel: string; action: 'sync'; members: PresenceMemberInfo[] }
  | { type: 'presence'; channel: string; action: 'join' | 'leave'; member: PresenceMemberInfo }

export interface PingFrame {
  type: 'ping'
}

export interface CloseFrame {
  type: 'close'
  code: ErrorCode
  message: string
  /** Do not reconnect sooner than this. */
  retryMs?: number
}

export type ServerFrame =
  | HelloFrame
  | SubscribedFrame
  | MessageFrame
  | GapFrame
  | AckFrame
  | ErrorFrame
  | PresenceFrame
  | PingFrame
  | CloseFrame

// ---- client to server ----

export interface SubscribeFrame {
  type: 'subscribe'
  channel: string
  rid?: string
  /** Resume after this message id (`${epoch}-${offset}`); omitted: live from now. */
  since?: string
  /** Without `since`: replay this many of the channel's newest messages first (protocol.md 4, rule 5). */
  rewind?: number
}

export interface UnsubscribeFrame {
  type: 'unsubscribe'
  channel: string
}

export interface PublishFrame {
  type: 'publish'
  rid: string
  channel: string
  event?: string
  data: unknown
  /** Idempotency key: a publish retried with the same key is applied once. */
  key?: string
}

export interface PongFrame {
  type: 'pong'
}

export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PublishFrame | PongFrame
