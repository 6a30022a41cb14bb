import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient, Packet } from 'mqtt'
import { PushError } from '../errors.js'
import type { ClientFrame, ServerFrame } from '../protocol/frames.js'
import { parseId } from '../protocol/position.js'
import type { Transport, TransportContext, TransportFactory } from '../transports/transport.js'
import { decodePayload, encodePayload, type MqttMessage } from './payload.js'

/** mqtt.js connection options the transport leaves to the app (`wsOptions`, `transformWsUrl`...). */
export type MqttTransportConnectionOptions = Omit<
  IClientOptions,
  'clientId' | 'clean' | 'protocolVersion' | 'reconnectPeriod' | 'resubscribe' | 'manualConnect' | 'username' | 'password' | 'keepalive'
>

export interface MqttTransportOptions {
  /**
   * The MQTT client id. The transport connects with `clean: false`, so the broker keeps this id's
   * session (subscriptions, unacknowledged QoS 1 messages) between connections: a reconnect of
   * this client gets what the broker queued meanwhile. Give a fixed id (stored by the app) to
   * keep the session across page loads; two clients with one id take it from each other.
   * @default `pushline-` and random characters, one per `mqtt()` call
   */
  clientId?: string
  /**
   * Channel name → MQTT topic filter, for wildcards (`+`, `#`), which channel names cannot
   * contain: `{ 'kitchen-sensors': 'home/kitchen/+' }`. Each message carries its concrete topic in
   * `data.topic`. Channels not listed are the topic of the same name.
   * @default {}
   */
  filters?: Record<string, string>
  /**
   * Broker user name; the client's `token` is the password.
   * @default undefined
   */
  username?: string
  /**
   * MQTT protocol version: 5, or 4 (MQTT 3.1.1) for brokers without MQTT 5 (aedes).
   * @default 5
   */
  protocolVersion?: 4 | 5
  /**
   * MQTT keepalive (seconds): the broker's PINGRESP arrives at least this often on an idle link,
   * which is what the client's liveness deadline (`heartbeatGraceMs` past it) watches.
   * @default 20
   */
  keepaliveSeconds?: number
  /**
   * MQTT 5: how long (seconds) the broker keeps the session after the connection is gone.
   * @default 3600
   */
  sessionExpirySeconds?: number
  /**
   * Event name of the messages.
   * @default 'mqtt'
   */
  event?: string
  /**
   * Largest publish the client accepts (bytes of its JSON frame), as a server's `maxFrameBytes`.
   * @default 262_144
   */
  maxPublishBytes?: number
  /**
   * Further mqtt.js options.
   * @default {}
   */
  connection?: MqttTransportConnectionOptions
}

/** MQTT 3.1.1 CONNACK return codes 4, 5 and MQTT 5 reason codes 134, 135: refused credentials. */
const UNAUTHORIZED_CODES = new Set([4, 5, 134, 135])

/**
 * The MQTT transport: the PushClient API straight on an MQTT broker's WebSocket listener (the
 * client's `url`, e.g. `wss://broker.example.com/mqtt`). A channel is a topic (or, through
 * `filters`, a topic filter); messages arrive with event `mqtt` and an {@link MqttMessage} as data.
 * mqtt.js is imported when the transport first connects, so it is its own chunk.
 *
 * Resume is MQTT's, not pushline's: QoS 1 subscriptions on a persistent session. After a reconnect
 * the broker delivers what it queued for the session; what it did not keep (a broker restart
 * without persistence, an expired session, a full queue) is lost **without a `gap`**: MQTT has no
 * offsets, so the client cannot see it. Offsets are this client's own count per channel.
 */
export function mqtt(options: MqttTransportOptions = {}): TransportFactory {
  const clientId = options.clientId ?? `pushline-${randomWord(12)}`
  // Positions exist only in this client: one epoch per mqtt() call, offsets counted per channel.
  const epoch = `mqtt${randomWord(12)}`
  const offsets = new Map<string, number>()
  // The channels the client subscribes to, kept across connections: a resumed session delivers
  // what the broker queued right after CONNACK, before the client's renewed SUBSCRIBE is answered.
  const channels = new Set<string>()
  // MQTT 5 subscription identifiers, one per channel: with overlapping filters (a topic and a
  // wildcard over it) the broker sends a message once per subscription, each naming its own.
  const subscriptionIds = new Map<string, number>()
  // Packet id → hash of topic and payload of the last QoS 1 messages delivered, across connections.
  const delivered = new Map<number, number>()
  return {
    name: 'mqtt',
    create: (context) => createMqttTransport(context, options, { clientId, epoch, offsets, channels, subscriptionIds, delivered }),
  }
}

/** What the connections of one `mqtt()` transport share. */
interface MqttSession {
  clientId: string
  epoch: string
  offsets: Map<string, number>
  channels: Set<string>
  subscriptionIds: Map<string, number>
  delivered: Map<number, number>
}

/** Packet ids remembered for spotting redeliveries. */
const MAX_REMEMBERED_IDS = 1000

function createMqttTransport(context: TransportContext, options: MqttTransportOptions, session: MqttSession): Transport {
  const { clientId, epoch, offsets, channels, subscriptionIds, delivered } = session
  const protocolVersion = options.protocolVersion ?? 5
  const keepaliveSeconds = options.keepaliveSeconds ?? 20
  const filters = options.filters ?? {}
  const event = options.event ?? 'mqtt'
  const filterOf = (channel: string): string => filters[channel] ?? channel
  let client: MqttClient | undefined
  let closed = false
  /**
   * Messages that came before mqtt.js emitted 'connect': it emits that only after replaying its
   * outgoing store, while a resumed session's queue may already be arriving; the client core
   * takes frames only after `hello`.
   */
  let early: ServerFrame[] | undefined = []

  const failure = (code: 'TRANSPORT_FAILED' | 'UNAUTHORIZED', message: string, cause?: unknown) =>
    new PushError(code, message, { transport: 'mqtt', cause })
  const emit = (frame: ServerFrame): void => {
    if (!closed) context.onFrame(frame)
  }
  const close = (): void => {
    if (closed) return
    closed = true
    client?.removeAllListeners()
    // A listener stays: mqtt.js emits 'error' while tearing down, and an emitter without one throws.
    client?.on('error', () => {})
    client?.end(true)
  }
  const fail = (error?: PushError): void => {
    if (closed) return
    close()
    context.onClose(error)
  }

  const onMessage = (topic: string, payload: Uint8Array, packet: IPublishPacket): void => {
    // A QoS 1 message whose PUBACK was lost with the connection comes again, flagged dup, under the
    // same packet id: if that id last carried this topic and payload, the client has it already.
    const { messageId } = packet
    if (packet.qos > 0 && messageId !== undefined) {
      const hash = fnv1a(payload, fnv1a(utf8Encoder.encode(topic)))
      if (packet.dup && delivered.get(messageId) === hash) return
      delivered.delete(messageId)
      delivered.set(messageId, hash)
      if (delivered.size > MAX_REMEMBERED_IDS) delivered.delete(delivered.keys().next().value as number)
    }
    const properties = packet.properties
    const data: MqttMessage = { topic, ...decodePayload(payload, properties?.contentType) }
    if (packet.retain) data.retained = true
    if (properties?.contentType !== undefined) data.contentType = properties.contentType
    if (properties?.userProperties !== undefined && Object.keys(properties.userProperties).length > 0) {
      data.userProperties = properties.userProperties
    }
    // MQTT 5: the subscriptions this copy is for; MQTT 3.1.1: every channel whose filter matches.
    const ids = properties?.subscriptionIdentifier
    const forIds = ids === undefined ? undefined : new Set(typeof ids === 'number' ? [ids] : ids)
    for (const channel of channels) {
      const id = subscriptionIds.get(channel)
      if (forIds && id !== undefined ? !forIds.has(id) : !topicMatches(filterOf(channel), topic)) continue
      const offset = (offsets.get(channel) ?? 0) + 1
      offsets.set(channel, offset)
      const frame: ServerFrame = { type: 'message', channel, event, data, offset, id: `${epoch}-${offset}` }
      if (early) early.push(frame)
      else emit(frame)
    }
  }

  const send = (frame: ClientFrame): void => {
    const mqttClient = client
    if (!mqttClient || closed) return
    if (frame.type === 'subscribe') {
      const { channel, rid } = frame
      if (frame.rewind) {
        // A broker keeps no history to rewind through (a retained message is one state, not the last n).
        const message = `rewind: the mqtt transport has no history (an MQTT broker keeps only a retained message per topic)`
        // Answered later, as a server would: the core registers the subscription after sending.
        queueMicrotask(() => emit({ type: 'error', code: 'INVALID_OPTIONS', message, channel, ...(rid && { rid }) }))
        return
      }
      channels.add(channel)
      let id = subscriptionIds.get(channel)
      if (protocolVersion === 5 && id === undefined) subscriptionIds.set(channel, (id = subscriptionIds.size + 1))
      // MQTT 5 retain handling 1: retained messages only for a new subscription, not again for
      // each reconnect that renews one the session already has.
      const v5 = protocolVersion === 5 ? { rh: 1, properties: { subscriptionIdentifier: id } } : {}
      mqttClient.subscribe(filterOf(channel), { qos: 1, ...v5 }, (error, granted) => {
        if (closed) return
        const refused = error !== null || granted?.[0]?.qos === 128
        if (refused) {
          channels.delete(channel)
          emit({ type: 'error', code: 'SUBSCRIBE_REJECTED', message: `the broker refused ${filterOf(channel)}`, channel, ...(rid && { rid }) })
          return
        }
        const current = offsets.get(channel) ?? 0
        const since = frame.since === undefined ? undefined : parseId(frame.since)
        // Resuming this client's own position: the subscription continues from it, since what the
        // session queued (delivered from CONNACK on, maybe before this SUBACK) follows it. A
        // position of another epoch (an earlier page's) says nothing about what the broker kept.
        const resumed = since !== undefined && since.epoch === epoch && since.offset <= current
        const gap = frame.since !== undefined && !resumed ? ({ gap: 'epoch-changed' } as const) : {}
        const offset = resumed ? since.offset : current
        emit({ type: 'subscribed', channel, epoch, offset, ...(rid && { rid }), ...gap })
      })
    } else if (frame.type === 'unsubscribe') {
      const filter = filterOf(frame.channel)
      channels.delete(frame.channel)
      if (![...channels].some((channel) => filterOf(channel) === filter)) mqttClient.unsubscribe(filter)
    } else if (frame.type === 'publish') {
      const { rid, channel } = frame
      const topic = filterOf(channel)
      if (/[+#]/.test(topic)) {
        emit({ type: 'error', code: 'PUBLISH_REJECTED', message: `cannot publish to the filter ${topic}`, rid, channel })
        return
      }
      const { payload, contentType } = encodePayload(frame.data)
      const properties = protocolVersion === 5 ? { properties: { contentType } } : {}
      // QoS 1: the ack is the broker's PUBACK.
      mqttClient.publish(topic, payload as Buffer, { qos: 1, ...properties }, (error?: Error & { code?: unknown }) => {
        if (!error) {
          const offset = offsets.get(channel) ?? 0
          emit({ type: 'ack', rid, channel, offset, id: `${epoch}-${offset}` })
          return
        }
        const refused = typeof error.code === 'number' && error.code >= 0x80
        emit({ type: 'error', code: refused ? 'PUBLISH_REJECTED' : 'TRANSPORT_FAILED', message: error.message, rid, channel })
      })
    }
    // pong: MQTT's own PINGREQ/PINGRESP keep the link alive.
  }

  return {
    name: 'mqtt',
    open() {
      import('mqtt')
        .then((loaded) => {
          if (closed) return
          // Node resolves mqtt to its CommonJS build (named exports); browsers to dist/mqtt.esm.js,
          // whose only export is the default object.
          type Connect = typeof loaded.connect
          const shapes = loaded as unknown as { connect?: Connect; default?: { connect?: Connect } }
          const connect = shapes.connect ?? shapes.default?.connect
          if (typeof connect !== 'function') throw new TypeError('the mqtt module has no connect()')
          const mqttClient = (client = connect(context.url, {
            ...options.connection,
            clientId,
            clean: false,
            protocolVersion,
            keepalive: keepaliveSeconds,
            ...(protocolVersion === 5 && {
              properties: { ...options.connection?.properties, sessionExpiryInterval: options.sessionExpirySeconds ?? 3600 },
            }),
            ...(options.username !== undefined && { username: options.username }),
            ...(context.token !== undefined && { password: context.token }),
            // The client core reconnects, with its backoff, through a new transport.
            reconnectPeriod: 0,
            resubscribe: false,
          }))
          mqttClient.on('connect', (_connack: IConnackPacket) => {
            emit({
              type: 'hello',
              v: 1,
              session: clientId,
              heartbeatMs: keepaliveSeconds * 1000,
              maxFrameBytes: options.maxPublishBytes ?? 262_144,
              transports: ['mqtt'],
            })
            const held = early ?? []
            early = undefined
            for (const frame of held) emit(frame)
          })
          mqttClient.on('message', onMessage)
          mqttClient.on('packetreceive', (packet: Packet) => {
            if (packet.cmd === 'pingresp') emit({ type: 'ping' })
          })
          mqttClient.on('error', (error: Error & { code?: unknown }) => {
            const unauthorized = typeof error.code === 'number' && UNAUTHORIZED_CODES.has(error.code)
            fail(failure(unauthorized ? 'UNAUTHORIZED' : 'TRANSPORT_FAILED', error.message, error))
          })
          mqttClient.on('close', () => fail(failure('TRANSPORT_FAILED', 'MQTT connection closed')))
        })
        .catch((error: unknown) => fail(failure('TRANSPORT_FAILED', 'cannot load mqtt.js', error)))
    },
    send,
    close,
  }
}

/** Whether `topic` matches the MQTT topic filter `filter` (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  // Filters starting with a wildcard do not match $-topics ($SYS...), MQTT 4.7.2.
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const filterLevels = filter.split('/')
  const topicLevels = topic.split('/')
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i]
    if (level === '#') return true
    if (i >= topicLevels.length) return false
    if (level !== '+' && level !== topicLevels[i]) return false
  }
  return filterLevels.length === topicLevels.length
}

const utf8Encoder = new TextEncoder()

/** 32-bit FNV-1a: a cheap hash that browsers can compute synchronously. */
function fnv1a(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let hash = seed
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193)
  return hash >>> 0
}

function randomWord(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  const bytes = crypto.getRandomValues(new Uint8Array(length))
  return Array.from(bytes, (byte) => alphabet[byte % alphabet.length]).join('')
}
