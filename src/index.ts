// The public client API. Everything else is internal.
export { PushClient } from './client/client.js'
export type { ClientEvents, ClientState } from './client/client.js'
export type { PublishAck, PublishOptions, PushClientOptions } from './client/options.js'
export type { ReconnectOptions } from './client/backoff.js'
export type { GapInfo, PushMessage, Subscription, SubscriptionEvents } from './client/subscription.js'
export { PushError } from './errors.js'
export type { ErrorCode } from './errors.js'
export type { GapReason, TransportName } from './protocol/frames.js'
export { websocket } from './transports/websocket.js'
export { sse } from './transports/sse.js'
export type { SseOptions } from './transports/sse.js'
export type {
  DuplexTransport,
  EventSourceConstructor,
  EventSourceLike,
  FetchLike,
  Platform,
  StreamTransport,
  Timers,
  Transport,
  TransportContext,
  TransportFactory,
  WebSocketConstructor,
  WebSocketLike,
} from './transports/transport.js'
