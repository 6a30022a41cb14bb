// `pushline/core`: the client API with transports passed as factories only, so that an app bundles
// just the transports it lists. `pushline` adds transport names and the default list.
export { PushClient } from './client/client.js'
export { negotiate } from './transports/negotiate.js'
export type { ClientEvents, ClientState } from './client/events.js'
export type { ClientOptions, CoreClientOptions, PublishAck, PublishOptions, SubscribeOptions } from './client/options.js'
export type { ReconnectOptions } from './client/backoff.js'
export type { LifecycleTarget } from './client/lifecycle.js'
export type {
  GapInfo,
  InvalidMessage,
  PresenceChange,
  PresenceMember,
  PushMessage,
  Subscription,
  SubscriptionEvents,
} from './client/subscription.js'
export { defineChannel } from './protocol/channel-definition.js'
export type { ChannelData, ChannelDefinition, ChannelInput } from './protocol/channel-definition.js'
export type { InferInput, InferOutput, StandardSchemaV1 } from './protocol/standard-schema.js'
export { PushError, isPushError } from './errors.js'
export type { ErrorCode } from './errors.js'
export type { GapReason, TransportName } from './protocol/frames.js'
export { websocket } from './transports/websocket.js'
export { sse } from './transports/sse.js'
export type { SseOptions } from './transports/sse.js'
export { longPolling } from './transports/long-polling.js'
export type { LongPollingOptions } from './transports/long-polling.js'
export { shortPolling } from './transports/short-polling.js'
export type { ShortPollingOptions } from './transports/short-polling.js'
export { iframe } from './transports/iframe.js'
export type {
  EventSourceConstructor,
  EventSourceLike,
  FallbackEvent,
  FallbackReason,
  FetchLike,
  Negotiation,
  Platform,
  StorageLike,
  StreamTransport,
  Timers,
  Transport,
  TransportContext,
  TransportFactory,
  WebSocketConstructor,
  WebSocketLike,
} from './transports/transport.js'
