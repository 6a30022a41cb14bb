import { createHash } from 'node:crypto'
import { connect, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt'
import { PushError } from '../errors.js'
import { isChannelName } from '../protocol/position.js'
import type { PublishContext, PublishVerdict, PushServer } from '../server/index.js'
import { decodePayload, encodePayload, type MqttMessage } from '../mqtt/payload.js'
import type { MqttBridge, MqttBridgeLogger, MqttBridgeOptions, MqttBridgeStats } from './options.js'

/** Topics remembered for "logged once per topic", so a flood of distinct bad topics stays bounded. */
const MAX_LOGGED_TOPICS = 1000
/** Packet ids of QoS 1 messages recently published into pushline, for spotting redeliveries. */
const MAX_REMEMBERED_IDS = 1000

/**
 * Connects `push` to an MQTT broker: messages on the subscribed topics are published into
 * channels, and (through `bridge.onPublish`) client publishes on forwarded channels go to MQTT
 * topics.
 */
export function mqttBridge(push: PushServer, options: MqttBridgeOptions): MqttBridge {
  return new MqttBridgeImpl(push, options)
}

/** A forwarded publish waiting for its PUBACK. */
interface PendingForward {
  settled: Promise<unknown>
  fail(message: string): void
}

class MqttBridgeImpl implements MqttBridge {
  readonly #push: PushServer
  readonly #client: MqttClient
  readonly #filters: string[]
  readonly #channelOf: (topic: string) => string | undefined
  readonly #forward: ((channel: string) => string | undefined) | undefined
  readonly #forwardTimeoutMs: number
  readonly #event: string
  readonly #maxPayloadBytes: number
  readonly #mqtt5: boolean
  readonly #noLocal: boolean
  readonly #reconnect: { initialDelayMs: number; maxDelayMs: number; resetAfterMs: number }
  readonly #logger: MqttBridgeLogger
  readonly #random: () => number
  readonly #counts = {
    received: 0,
    published: 0,
    redeliveries: 0,
    droppedInvalidChannel: 0,
    droppedTooLarge: 0,
    droppedFailed: 0,
    forwarded: 0,
    forwardFailed: 0,
    reconnects: 0,
  }
  #lastError: string | undefined
  /** Whether the broker has our subscriptions (a SUBACK came, on this session). */
  #subscribed = false
  #everConnected = false
  #connectedAt: number | undefined
  #attempt = 0
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined
  /** The received message being published into pushline; the next one waits for it (order). */
  #inbound: Promise<void> = Promise.resolve()
  readonly #forwards = new Set<PendingForward>()
  readonly #readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = []
  readonly #loggedTopics = new Set<string>()
  /** Packet id → digest of topic and payload, of the last QoS 1 messages published into pushline. */
  readonly #publishedIds = new Map<number, string>()
  #closing: Promise<void> | undefined

  constructor(push: PushServer, options: MqttBridgeOptions) {
    if (typeof options.clientId !== 'string' || options.clientId === '') {
      throw new TypeError('mqttBridge: clientId must be a non-empty string (a fixed id keeps the session)')
    }
    this.#push = push
    this.#filters = (options.subscribe ?? []).map((filter) =>
      options.shareGroup === undefined ? filter : `$share/${options.shareGroup}/${filter}`,
    )
    this.#channelOf = options.channelOf ?? ((topic) => topic)
    this.#forward = options.forward
    this.#forwardTimeoutMs = positive('forwardTimeoutMs', options.forwardTimeoutMs ?? 5000)
    this.#event = options.event ?? 'mqtt'
    this.#maxPayloadBytes = positive('maxPayloadBytes', options.maxPayloadBytes ?? 65_536)
    this.#mqtt5 = (options.protocolVersion ?? 5) === 5
    // No Local keeps our own forwarded publishes from coming back in (MQTT 5; forbidden on shared subscriptions).
    this.#noLocal = this.#mqtt5 && options.shareGroup === undefined
    this.#reconnect = {
      initialDelayMs: positive('reconnect.initialDelayMs', options.reconnect?.initialDelayMs ?? 500),
      maxDelayMs: positive('reconnect.maxDelayMs', options.reconnect?.maxDelayMs ?? 30_000),
      resetAfterMs: positive('reconnect.resetAfterMs', options.reconnect?.resetAfterMs ?? 5000),
    }
    this.#logger = options.logger ?? console
    this.#random = options.random ?? Math.random
    const sessionExpiryInterval = positive('sessionExpirySeconds', options.sessionExpirySeconds ?? 86_400)

    this.#client = connect(options.url, {
      ...options.connection,
      clientId: options.clientId,
      clean: false,
      protocolVersion: this.#mqtt5 ? 5 : 4,
      ...(this.#mqtt5 && { properties: { ...options.connection?.properties, sessionExpiryInterval } }),
      ...(options.username !== undefined && { username: options.username }),
      ...(options.password !== undefined && { password: options.password }),
      // Reconnects are ours (backoff with jitter; mqtt.js only has a fixed period), and so are
      // subscriptions: made again only when the broker lost the session.
      reconnectPeriod: 0,
      resubscribe: false,
    })
    // mqtt.js calls handleMessage once per received PUBLISH, waits for its callback before it
    // reads the next packet, and sends the PUBACK after it: so messages are published into
    // pushline one at a time, in order, and acknowledged only once stored.
    this.#client.handleMessage = (packet, done) => {
      this.#inbound = this.#receive(packet).then(() => done())
    }
    this.#client.on('connect', (connack) => this.#onConnect(connack))
    this.#client.on('close', () => this.#onClose())
    this.#client.on('error', (error) => {
      this.#lastError = error.message
      this.#logger.error(`pushline mqtt-bridge: ${error.message}`, error)
    })
  }

  async onPublish(context: PublishContext): Promise<PublishVerdict> {
    const topic = this.#forward?.(context.channel)
    if (topic === undefined) return undefined
    const { channel } = context
    if (this.#closing || !this.#client.connected) {
      this.#counts.forwardFailed++
      throw new PushError('MQTT_UNAVAILABLE', `not connected to the MQTT broker; not forwarded to ${topic}`, { channel })
    }
    const encoded = encodePayload(context.data)
    const payload = Buffer.from(encoded.payload.buffer, encoded.payload.byteOffset, encoded.payload.byteLength)
    const contentType = encoded.contentType
    let pending: PendingForward | undefined
    const settled = new Promise<PublishVerdict>((resolve, reject) => {
      let done = false
      const callback = (error?: Error & { code?: unknown }): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (pending) this.#forwards.delete(pending)
        if (!error) {
          this.#counts.forwarded++
          resolve(undefined)
          return
        }
        this.#counts.forwardFailed++
        // An MQTT 5 PUBACK reason code of 0x80 or more: the broker received the publish and refused it.
        const refused = typeof error.code === 'number' && error.code >= 0x80
        reject(
          refused
            ? new PushError('PUBLISH_REJECTED', `the MQTT broker refused the publish to ${topic}: ${error.message}`, {
                channel,
                cause: error,
              })
            : new PushError('MQTT_UNAVAILABLE', `publish to ${topic} failed: ${error.message}`, { channel, cause: error }),
        )
      }
      const fail = (message: string): void => {
        // Told that it failed, the client may publish again; so mqtt.js must not resend this one later.
        const messageId = Object.keys(this.#client.outgoing).find((id) => this.#client.outgoing[Number(id)]?.cb === callback)
        callback(new Error(`${message}; it may still have reached the broker`))
        if (messageId !== undefined) this.#client.removeOutgoingMessage(Number(messageId))
      }
      const timer = setTimeout(() => fail(`no PUBACK within ${this.#forwardTimeoutMs} ms`), this.#forwardTimeoutMs)
      pending = { settled: Promise.resolve(), fail }
      // Before publishing: mqtt.js may call back at once (a client that is disconnecting).
      this.#forwards.add(pending)
      this.#client.publish(topic, payload, { qos: 1, ...(this.#mqtt5 && { properties: { contentType } }) }, callback)
    })
    if (pending) pending.settled = settled.catch(() => undefined)
    return settled
  }

  ready(): Promise<void> {
    if (this.#closing) return Promise.reject(new PushError('MQTT_UNAVAILABLE', 'the MQTT bridge is closed'))
    if (this.#subscribed && this.#client.connected) return Promise.resolve()
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }))
  }

  stats(): MqttBridgeStats {
    const counts = this.#counts
    return {
      connected: this.#client.connected,
      ...counts,
      dropped: counts.droppedInvalidChannel + counts.droppedTooLarge + counts.droppedFailed,
      lastError: this.#lastError,
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    clearTimeout(this.#reconnectTimer)
    for (const waiter of this.#readyWaiters.splice(0)) {
      waiter.reject(new PushError('MQTT_UNAVAILABLE', 'the MQTT bridge was closed before it was ready'))
    }
    // Each forward settles within forwardTimeoutMs.
    await Promise.all([this.#inbound, ...[...this.#forwards].map((pending) => pending.settled)])
    // Not forced when connected: DISCONNECT goes out after what is queued, and the broker keeps the session.
    await new Promise<void>((resolve) => this.#client.end(!this.#client.connected, {}, () => resolve()))
    await this.#inbound
  }

  #onConnect(connack: IConnackPacket): void {
    this.#connectedAt = Date.now()
    this.#lastError = undefined
    if (this.#everConnected) this.#counts.reconnects++
    this.#everConnected = true
    // The broker kept our session, subscriptions included: subscribing again would only make it
    // resend every retained message.
    if (connack.sessionPresent && this.#subscribed) {
      this.#settleReady()
      return
    }
    this.#subscribed = false
    if (this.#filters.length === 0) {
      this.#subscribed = true
      this.#settleReady()
      return
    }
    const subscriptions = Object.fromEntries(
      // MQTT 5 retain handling 1: a subscription the session already has (a new bridge process on
      // a kept session) does not make the broker resend every retained message.
      this.#filters.map((filter) => [filter, { qos: 1 as const, ...(this.#mqtt5 && { rh: 1 }), ...(this.#noLocal && { nl: true }) }]),
    )
    this.#client.subscribe(subscriptions, (error, granted) => {
      if (error) {
        // The connection is gone (its close handler reconnects, and this subscribes again) or the
        // broker answered with a malformed SUBACK.
        this.#logger.error(`pushline mqtt-bridge: subscribing failed: ${error.message}`, error)
        return
      }
      for (const grant of granted ?? []) {
        if (grant.qos === 128) this.#logger.error(`pushline mqtt-bridge: the broker refused the subscription to ${grant.topic}`)
      }
      this.#subscribed = true
      this.#settleReady()
    })
  }

  #settleReady(): void {
    for (const waiter of this.#readyWaiters.splice(0)) waiter.resolve()
  }

  #onClose(): void {
    for (const pending of [...this.#forwards]) pending.fail('the connection to the MQTT broker was lost before its PUBACK')
    if (this.#closing || this.#reconnectTimer !== undefined) return
    const wasConnected = this.#connectedAt !== undefined
    if (wasConnected && Date.now() - (this.#connectedAt as number) >= this.#reconnect.resetAfterMs) this.#attempt = 0
    this.#connectedAt = undefined
    // Full jitter: bridges of several nodes that lost one broker do not come back at the same instant.
    const { initialDelayMs, maxDelayMs } = this.#reconnect
    const delay = Math.round(this.#random() * Math.min(maxDelayMs, initialDelayMs * 2 ** this.#attempt))
    this.#attempt = Math.min(this.#attempt + 1, 30)
    if (wasConnected) this.#logger.warn(`pushline mqtt-bridge: connection to the broker lost; reconnecting in ${delay} ms`)
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined
      if (this.#closing) return
      // The same stores: QoS 1 messages in flight in either direction survive the reconnect.
      this.#client.reconnect({ incomingStore: this.#client.incomingStore, outgoingStore: this.#client.outgoingStore })
    }, delay)
  }

  /** Publishes one received MQTT message into its channel; never throws. */
  async #receive(packet: IPublishPacket): Promise<void> {
    this.#counts.received++
    const topic = String(packet.topic)
    let channel: string | undefined
    try {
      channel = this.#channelOf(topic)
    } catch (error) {
      this.#logger.error(`pushline mqtt-bridge: channelOf(${JSON.stringify(topic)}) threw`, error)
    }
    if (channel === undefined || !isChannelName(channel)) {
      this.#counts.droppedInvalidChannel++
      this.#warnOnce(topic, `topic ${JSON.stringify(topic)} maps to no valid channel name; its messages are dropped`)
      return
    }
    const bytes = typeof packet.payload === 'string' ? Buffer.from(packet.payload, 'utf8') : packet.payload
    if (bytes.byteLength > this.#maxPayloadBytes) {
      this.#counts.droppedTooLarge++
      this.#warnOnce(
        `${topic}\0size`,
        `a ${bytes.byteLength}-byte message on ${JSON.stringify(topic)} is over maxPayloadBytes (${this.#maxPayloadBytes}); dropped`,
      )
      return
    }
    // A QoS 1 message whose PUBACK was lost with the connection comes again, flagged dup, under
    // the same packet id: if that id last carried this very topic and payload, it is already in
    // the channel. (Brokers allocate packet ids in sequence, so an id carries another message
    // only some 65 000 messages later.)
    const digest = packet.qos > 0 && packet.messageId !== undefined ? digestOf(topic, bytes) : undefined
    if (digest !== undefined && packet.dup && this.#publishedIds.get(packet.messageId as number) === digest) {
      this.#counts.redeliveries++
      return
    }
    const properties = packet.properties
    const message: MqttMessage = { topic, ...decodePayload(bytes, properties?.contentType) }
    if (packet.retain) message.retained = true
    if (properties?.contentType !== undefined) message.contentType = properties.contentType
    if (properties?.userProperties !== undefined && Object.keys(properties.userProperties).length > 0) {
      message.userProperties = properties.userProperties
    }
    try {
      await this.#push.publish(channel, message, { event: this.#event })
      this.#counts.published++
      if (digest !== undefined) this.#rememberPublished(packet.messageId as number, digest)
    } catch (error) {
      const failures = ++this.#counts.droppedFailed
      // While the push server's broker is down every message fails: log the first and then every 1000th.
      if (failures % 1000 === 1) {
        this.#logger.error(
          `pushline mqtt-bridge: publishing a message of ${JSON.stringify(topic)} to ${channel} failed (${failures} so far)`,
          error,
        )
      }
    }
  }

  #rememberPublished(messageId: number, digest: string): void {
    this.#publishedIds.delete(messageId)
    this.#publishedIds.set(messageId, digest)
    if (this.#publishedIds.size > MAX_REMEMBERED_IDS) {
      for (const oldest of this.#publishedIds.keys()) {
        this.#publishedIds.delete(oldest)
        break
      }
    }
  }

  #warnOnce(key: string, message: string): void {
    if (this.#loggedTopics.has(key) || this.#loggedTopics.size >= MAX_LOGGED_TOPICS) return
    this.#loggedTopics.add(key)
    this.#logger.warn(`pushline mqtt-bridge: ${message}`)
  }
}

function digestOf(topic: string, payload: Uint8Array): string {
  return createHash('sha1').update(topic).update('\0').update(payload).digest('base64')
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`mqttBridge: ${name} must be a positive number`)
  return value
}
