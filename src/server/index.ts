/**
 * `pushline/server`: the reference server of the pushline protocol
 * (docs/protocol.md) for Node: WebSocket, SSE, long and short polling and
 * iframe-stream transports, HTTP publish, resumable history through a
 * pluggable broker.
 */
export { createPushServer } from './push-server.js'
export type {
  AccessAction,
  AllowedOrigins,
  AttachOptions,
  AuthContext,
  AuthenticateHook,
  AuthorizeContext,
  AuthorizeHook,
  Identity,
  History,
  HistoryOptions,
  Logger,
  PresenceMember,
  PublishContext,
  PublishHook,
  PublishOptions,
  PublishResult,
  PublishTransform,
  PublishTransport,
  PublishVerdict,
  PushServer,
  PushServerOptions,
  ServerStats,
  ServerTransport,
} from './options.js'
// The same function as the client's: a channel defined once, in code both import.
export { defineChannel } from '../protocol/channel-definition.js'
export type { ChannelData, ChannelDefinition, ChannelInput } from '../protocol/channel-definition.js'
export type { InferInput, InferOutput, StandardSchemaV1 } from '../protocol/standard-schema.js'
export type { PresenceMemberInfo } from '../protocol/frames.js'
export { MemoryBroker } from './brokers/memory-broker.js'
export type { MemoryBrokerOptions } from './brokers/memory-broker.js'
export type {
  Broker,
  BrokerPresence,
  PresenceChange,
  PresenceWatch,
  RecoverOptions,
  Recovery,
  StoredMessage,
} from './brokers/broker.js'
// Re-exported so a hook can throw PushError('PUBLISH_REJECTED', ...) without importing the client entry.
export { PushError, isPushError } from '../errors.js'
export type { ErrorCode } from '../errors.js'
