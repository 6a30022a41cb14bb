import type { IClientOptions } from 'mqtt'
import type { PublishContext, PublishVerdict } from '../server/index.js'

export type { MqttMessage } from '../mqtt/payload.js'

/** Counters of a bridge since it was created. */
export interface MqttBridgeStats {
  /** Whether the bridge has a live MQTT connection now. */
  connected: boolean
  /** Messages received from the broker. */
  received: number
  /** Received messages published into a channel. */
  published: number
  /**
   * Received messages not published again because they were QoS 1 redeliveries (flagged dup after
   * a reconnect) of messages already published: their PUBACK had been lost with the connection.
   */
  redeliveries: number
  /** Received messages not published: the sum of the three reasons below. */
  dropped: number
  /** ... because their topic maps to no valid channel name. */
  droppedInvalidChannel: number
  /** ... because their payload is larger than `maxPayloadBytes`. */
  droppedTooLarge: number
  /** ... because `push.publish` failed (logged). */
  droppedFailed: number
  /** Client publishes forwarded to the broker and acknowledged by it (PUBACK). */
  forwarded: number
  /** Client publishes that could not be forwarded (no connection, no PUBACK in time, refused). */
  forwardFailed: number
  /** Connections established after the first one. */
  reconnects: number
  /** The last connection error (a refused CONNACK names its reason), until the next connection. */
  lastError: string | undefined
}

/** Reconnect timing of the bridge's MQTT connection. */
export interface MqttBridgeReconnectOptions {
  /**
   * Upper bound of the first delay; attempt n waits a random time up to `initialDelayMs * 2^n`.
   * @default 500
   */
  initialDelayMs?: number
  /**
   * Cap of the delay.
   * @default 30000
   */
  maxDelayMs?: number
  /**
   * A connection that stayed up this long resets the attempt counter, so that a broker that
   * accepts and at once drops the bridge (a second bridge with the same client id) is retried with
   * growing delays instead of in a tight loop.
   * @default 5000
   */
  resetAfterMs?: number
}

/** What `logger` receives. */
export interface MqttBridgeLogger {
  error(message: string, error?: unknown): void
  warn(message: string): void
}

/** MQTT connection options the bridge leaves to the app (TLS, keepalive, WebSocket options...). */
export type MqttConnectionOptions = Omit<
  IClientOptions,
  'clientId' | 'clean' | 'protocolVersion' | 'reconnectPeriod' | 'resubscribe' | 'manualConnect' | 'username' | 'password'
>

export interface MqttBridgeOptions {
  /** The broker: `mqtt://`, `mqtts://`, `ws://` or `wss://` URL. */
  url: string
  /**
   * The bridge's MQTT client id. Fixed, so that the broker keeps the bridge's session (its
   * subscriptions and the QoS 1 messages it has not acknowledged) while the bridge is away: it
   * connects with `clean: false`. Give every pushline node its own id; two bridges with one id
   * take the session from each other.
   */
  clientId: string
  /**
   * Topic filters to subscribe to (QoS 1; `+` and `#` allowed). Each message received becomes a
   * message in the channel that `channelOf` names.
   */
  subscribe: string[]
  /**
   * Names the channel of a topic; undefined (or an invalid channel name) drops the message, counted
   * in `droppedInvalidChannel` and logged once per topic.
   * @default the topic itself, where it is a valid channel name (1-128 of `A-Z a-z 0-9 _ . : @ / -`)
   */
  channelOf?: (topic: string) => string | undefined
  /**
   * Outbound, opt-in: the MQTT topic a client publish on `channel` is forwarded to, or undefined for
   * channels that are not forwarded. Takes effect through `bridge.onPublish`, which the server's
   * `onPublish` must call.
   * @default undefined (nothing is forwarded)
   */
  forward?: (channel: string) => string | undefined
  /**
   * How long a forwarded publish waits for the broker's PUBACK before it fails with
   * `MQTT_UNAVAILABLE`. Keep it under the clients' `publishTimeoutMs` (10 s by default).
   * @default 5000
   */
  forwardTimeoutMs?: number
  /**
   * Event name of the messages the bridge publishes.
   * @default 'mqtt'
   */
  event?: string
  /**
   * Payloads larger than this many bytes are dropped (counted in `droppedTooLarge`). Use the push
   * server's `maxFrameBytes`.
   * @default 65_536
   */
  maxPayloadBytes?: number
  /**
   * MQTT shared subscription group: the filters are subscribed as `$share/<group>/<filter>`, so
   * that the broker hands each message to one bridge of the group. For several pushline nodes that
   * share one pushline broker (Redis): every node's bridge in one group publishes each message once
   * (see README, "MQTT"). Needs a broker with shared subscriptions (MQTT 5 brokers; Mosquitto also
   * for 3.1.1 clients; not aedes).
   * @default undefined (plain subscriptions: this bridge gets every message)
   */
  shareGroup?: string
  /**
   * MQTT protocol version: 5 (MQTT 5: content type and user properties kept, no echo of forwarded
   * publishes) or 4 (MQTT 3.1.1, for brokers without MQTT 5 such as aedes).
   * @default 5
   */
  protocolVersion?: 4 | 5
  /**
   * MQTT 5: how long (seconds) the broker keeps the bridge's session, and the QoS 1 messages it
   * queues for it, after the bridge disconnects (an MQTT 3.1.1 broker keeps it by its own
   * configuration). Bounded, so that a bridge that never returns does not make the broker hold
   * messages forever.
   * @default 86_400 (1 day)
   */
  sessionExpirySeconds?: number
  /**
   * Broker credentials.
   * @default undefined
   */
  username?: string
  /**
   * @default undefined
   */
  password?: string
  /**
   * Reconnect timing after the connection is lost or refused.
   * @default { initialDelayMs: 500, maxDelayMs: 30000, resetAfterMs: 5000 }
   */
  reconnect?: MqttBridgeReconnectOptions
  /**
   * Further mqtt.js connection options (TLS, `keepalive`, `connectTimeout`, `wsOptions`...).
   * @default {}
   */
  connection?: MqttConnectionOptions
  /**
   * Receives connection errors, dropped messages (the first of each kind per topic) and failures.
   * @default console
   */
  logger?: MqttBridgeLogger
  /**
   * Source of randomness for reconnect jitter, in [0, 1).
   * @default Math.random
   */
  random?: () => number
}

export interface MqttBridge {
  /**
   * The outbound half, for the server's `onPublish` hook: a client publish on a channel that
   * `forward` maps to a topic is published there with QoS 1, and the promise resolves (accepting
   * the publish) only once the broker acknowledged it. Without a connection, or without a PUBACK
   * within `forwardTimeoutMs`, it rejects with `PushError('MQTT_UNAVAILABLE')`; a broker that
   * refuses the publish (MQTT 5 reason code) makes it reject with `PUBLISH_REJECTED`. Channels that
   * are not forwarded resolve at once. Call it after the app's own policy has accepted the publish.
   */
  onPublish(context: PublishContext): Promise<PublishVerdict>
  /** Resolves once the bridge is connected and subscribed; rejects if it is closed first. */
  ready(): Promise<void>
  stats(): MqttBridgeStats
  /**
   * Stops reconnecting, lets the message being published into pushline finish (so the broker gets
   * its PUBACK), waits for forwarded publishes in flight, and disconnects cleanly. The broker keeps
   * the session: what arrives meanwhile waits there for the next bridge with this client id.
   * Idempotent.
   */
  close(): Promise<void>
}
