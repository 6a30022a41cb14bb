/**
 * The mqtt() transport's translation between MQTT and pushline frames, on a fake mqtt.js client.
 * `mqtt` is mocked as browsers resolve it (dist/mqtt.esm.js: a default export only), which Node's
 * CommonJS build (named exports) hides from the integration tests.
 */
import { EventEmitter } from 'node:events'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import type { ServerFrame } from '../../src/protocol/frames.js'
import { topicMatches } from '../../src/mqtt/index.js'

class FakeMqttClient extends EventEmitter {
  connected = false
  ended = false
  readonly subscriptions: Array<{ filter: string; options: unknown }> = []
  readonly published: Array<{ topic: string; payload: string }> = []
  constructor(readonly url: string, readonly options: Record<string, unknown>) {
    super()
  }
  subscribe(filter: string, options: unknown, callback: (error: Error | null, granted: Array<{ topic: string; qos: number }>) => void) {
    this.subscriptions.push({ filter, options })
    queueMicrotask(() => callback(null, [{ topic: filter, qos: filter.startsWith('forbidden') ? 128 : 1 }]))
  }
  unsubscribe() {}
  publish(topic: string, payload: Uint8Array, _options: unknown, callback: (error?: Error) => void) {
    this.published.push({ topic, payload: new TextDecoder().decode(payload) })
    queueMicrotask(() => callback())
  }
  end() {
    this.ended = true
  }
}

const clients: FakeMqttClient[] = []
vi.mock('mqtt', () => ({
  // What a browser's module namespace of dist/mqtt.esm.js reads: no named connect (vitest's mock
  // would throw on a missing key instead of answering undefined).
  connect: undefined,
  default: {
    connect: (url: string, options: Record<string, unknown>) => {
      const client = new FakeMqttClient(url, options)
      clients.push(client)
      return client
    },
  },
}))

const { mqtt } = await import('../../src/mqtt/index.js')

function open(options: Parameters<typeof mqtt>[0] | ReturnType<typeof mqtt> = {}, token?: string) {
  const frames: ServerFrame[] = []
  const closes: unknown[] = []
  const factory = 'create' in options ? options : mqtt({ clientId: 'page-1', ...options })
  const transport = factory.create({
    url: 'wss://broker.example/mqtt',
    token,
    platform: {},
    timers: { setTimeout, clearTimeout, now: Date.now },
    handshakeTimeoutMs: 1000,
    cursor: () => [],
    onFrame: (frame) => frames.push(frame),
    onClose: (error) => closes.push(error),
  })
  const before = clients.length
  transport.open()
  // The transport imports mqtt on open: wait for its client.
  const connected = vi.waitFor(() => {
    if (clients.length === before) throw new Error(`no mqtt client yet (closes: ${String(closes[0])} ${String((closes[0] as { cause?: unknown } | undefined)?.cause)})`)
  })
  return { transport, frames, closes, connected }
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0))
const publishPacket = (topic: string, payload: Uint8Array, extra: object = {}) => ({ cmd: 'publish', topic, payload, qos: 1, messageId: 7, dup: false, retain: false, ...extra })

describe('mqtt() transport', () => {
  beforeEach(() => {
    clients.length = 0
  })

  it('connects with a persistent session and the token as password, and says hello on CONNACK', async () => {
    const { frames, connected } = open({ username: 'page' }, 'secret')
    await connected
    const client = clients[0]!
    expect(client.url).toBe('wss://broker.example/mqtt')
    expect(client.options).toMatchObject({ clientId: 'page-1', clean: false, protocolVersion: 5, username: 'page', password: 'secret', reconnectPeriod: 0 })
    client.emit('connect', { sessionPresent: false })
    expect(frames).toEqual([{ type: 'hello', v: 1, session: 'page-1', heartbeatMs: 20_000, maxFrameBytes: 262_144, transports: ['mqtt'] }])
  })

  it('on a resumed session, holds messages that arrive before mqtt.js announces the connection, and delivers them after hello', async () => {
    const factory = mqtt({ clientId: 'page-1', protocolVersion: 4 })
    const first = open(factory)
    await first.connected
    clients[0]!.emit('connect', {})
    first.transport.send({ type: 'subscribe', channel: 'a/b', rid: 's1' })
    await flush()
    first.transport.close()
    // The reconnect: the broker's queue for the session arrives right after CONNACK.
    const second = open(factory)
    await second.connected
    const client = clients[1]!
    client.emit('message', 'a/b', new TextEncoder().encode('{"n":1}'), publishPacket('a/b', new Uint8Array()))
    expect(second.frames).toEqual([])
    client.emit('connect', { sessionPresent: true })
    expect(second.frames.map((frame) => frame.type)).toEqual(['hello', 'message'])
    expect(second.frames[1]).toEqual({
      type: 'message',
      channel: 'a/b',
      event: 'mqtt',
      data: { topic: 'a/b', format: 'json', payload: { n: 1 } },
      offset: 1,
      id: expect.stringMatching(/^mqtt\w+-1$/),
    })
    // The same packet again, flagged dup (its PUBACK was lost): already delivered.
    client.emit('message', 'a/b', new TextEncoder().encode('{"n":1}'), publishPacket('a/b', new Uint8Array(), { dup: true }))
    expect(second.frames).toHaveLength(2)
  })

  it('subscribes QoS 1 (MQTT 5: retain handling 1, a subscription identifier) and answers subscribed; a refused filter is SUBSCRIBE_REJECTED', async () => {
    const { transport, frames, connected } = open({ filters: { secret: 'forbidden/#' } })
    await connected
    const client = clients[0]!
    client.emit('connect', {})
    transport.send({ type: 'subscribe', channel: 'home/t', rid: 'r1' })
    transport.send({ type: 'subscribe', channel: 'secret', rid: 'r2' })
    await flush()
    expect(client.subscriptions).toEqual([
      { filter: 'home/t', options: { qos: 1, rh: 1, properties: { subscriptionIdentifier: 1 } } },
      { filter: 'forbidden/#', options: { qos: 1, rh: 1, properties: { subscriptionIdentifier: 2 } } },
    ])
    expect(frames.slice(1)).toEqual([
      { type: 'subscribed', channel: 'home/t', rid: 'r1', epoch: expect.stringMatching(/^mqtt\w+$/), offset: 0 },
      { type: 'error', code: 'SUBSCRIBE_REJECTED', message: 'the broker refused forbidden/#', channel: 'secret', rid: 'r2' },
    ])
  })

  it('refuses a subscribe with rewind with INVALID_OPTIONS (a broker keeps no history), without subscribing', async () => {
    const { transport, frames, connected } = open()
    await connected
    const client = clients[0]!
    client.emit('connect', {})
    transport.send({ type: 'subscribe', channel: 'home/t', rid: 'r1', rewind: 3 })
    expect(frames.slice(1)).toEqual([]) // answered later, as a server would
    await flush()
    expect(client.subscriptions).toEqual([])
    expect(frames.slice(1)).toEqual([
      { type: 'error', code: 'INVALID_OPTIONS', message: expect.stringMatching(/^rewind: the mqtt transport has no history/), channel: 'home/t', rid: 'r1' },
    ])
  })

  it('publishes QoS 1 and acks on PUBACK; a wildcard channel cannot be published to', async () => {
    const { transport, frames, connected } = open({ filters: { all: 'home/#' } })
    await connected
    const client = clients[0]!
    client.emit('connect', {})
    transport.send({ type: 'publish', rid: 'p1', channel: 'home/light/set', data: { on: true } })
    transport.send({ type: 'publish', rid: 'p2', channel: 'all', data: 'x' })
    await flush()
    expect(client.published).toEqual([{ topic: 'home/light/set', payload: '{"on":true}' }])
    expect(frames.slice(1)).toEqual([
      { type: 'error', code: 'PUBLISH_REJECTED', message: 'cannot publish to the filter home/#', rid: 'p2', channel: 'all' },
      { type: 'ack', rid: 'p1', channel: 'home/light/set', offset: 0, id: expect.stringMatching(/^mqtt\w+-0$/) },
    ])
  })

  it('a refused CONNACK closes with UNAUTHORIZED; a lost connection with TRANSPORT_FAILED; close() ends the client', async () => {
    const refused = open()
    await refused.connected
    clients[0]!.emit('error', Object.assign(new Error('Connection refused: Not authorized'), { code: 135 }))
    expect(refused.closes).toEqual([expect.objectContaining({ code: 'UNAUTHORIZED', transport: 'mqtt' })])
    const lost = open()
    await lost.connected
    clients[1]!.emit('connect', {})
    clients[1]!.emit('close')
    expect(lost.closes).toEqual([expect.objectContaining({ code: 'TRANSPORT_FAILED' })])
    const closed = open()
    await closed.connected
    closed.transport.close()
    expect(clients[2]!.ended).toBe(true)
    clients[2]!.emit('close')
    expect(closed.closes).toEqual([])
  })

  it('matches topic filters as MQTT does', () => {
    expect(topicMatches('home/+/t', 'home/kitchen/t')).toBe(true)
    expect(topicMatches('home/+/t', 'home/kitchen/x/t')).toBe(false)
    expect(topicMatches('home/#', 'home')).toBe(true)
    expect(topicMatches('home/#', 'home/a/b')).toBe(true)
    expect(topicMatches('#', '$SYS/uptime')).toBe(false)
    expect(topicMatches('+/x', '$SYS/x')).toBe(false)
    expect(topicMatches('a/b', 'a/b/c')).toBe(false)
  })
})
