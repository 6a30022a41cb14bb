/**
 * The MQTT bridge against a real broker: one suite, run against aedes (in process, MQTT 3.1.1)
 * and Mosquitto (a child process, MQTT 5) by the two test files beside it.
 */
import { connectAsync, type MqttClient } from 'mqtt'
import { afterEach, expect, it } from 'vitest'
import { PushClient, type PushError, type PushMessage } from '../../src/index.js'
import { mqttBridge, type MqttBridge, type MqttBridgeOptions, type MqttMessage } from '../../src/mqtt-bridge/index.js'
import { startPushFixture, waitFor, type PushFixture } from '../helpers/push-fixture.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import type { TestBroker } from '../helpers/mqtt-brokers.js'

export interface BridgeSuiteOptions {
  /** Starts a fresh broker for one test. */
  startBroker(options?: { credentials?: { username: string; password: string } }): Promise<TestBroker>
  protocolVersion: 4 | 5
  /** Messages the device publishes at 50 Hz in the streaming test (1000 = 20 s). */
  streamCount: number
  /**
   * Whether the broker resumes a session as MQTT 3.1.1 4.6 and MQTT 5 4.6 ask: the unacknowledged
   * messages again first (flagged DUP, same packet ids), then the queued ones, then live ones, in
   * order. Mosquitto does; aedes 1.2 resumes the live flow before its queue is replayed and resends
   * under new packet ids without DUP, so through it a resumed session loses nothing but may
   * reorder and repeat.
   */
  orderedResume: boolean
}

/** Collects what the bridge logs, so that tests can assert on it and runs stay quiet. */
export function captureLogger() {
  const errors: string[] = []
  const warnings: string[] = []
  return {
    errors,
    warnings,
    logger: {
      error: (message: string) => void errors.push(message),
      warn: (message: string) => void warnings.push(message),
    },
  }
}

/** A PushClient on one transport, subscribed (confirmed by the server) to `channel`. */
export async function subscribedClient(url: string, transport: 'websocket' | 'long-polling', channel: string) {
  const client = new PushClient({ url, transports: [transport], reconnect: { initialDelayMs: 50, maxDelayMs: 400 } })
  const messages: PushMessage<MqttMessage>[] = []
  const subscription = client.subscribe<MqttMessage>(channel, (message) => messages.push(message))
  client.connect()
  await new Promise<void>((resolve) => {
    const off = subscription.on('subscribed', () => {
      off()
      resolve()
    })
  })
  return { client, messages, numbers: () => messages.map((message) => (message.data.payload as { n: number }).n) }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

export function registerBridgeSuite({ startBroker, protocolVersion, streamCount, orderedResume }: BridgeSuiteOptions): void {
  /** After a resumed MQTT session: every message once and in order, or (aedes) at least every message. */
  const expectResumed = (numbers: number[], count: number) => {
    if (orderedResume) expect(numbers).toEqual(range(1, count))
    else expect([...new Set(numbers)].sort((a, b) => a - b)).toEqual(range(1, count))
  }

  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  let ids = 0
  const clientId = (role: string) => `pushline-test-${role}-${process.pid}-${++ids}`

  /** The bridge of the running test: the server's onPublish hands client publishes to it, as an app's would. */
  let current: MqttBridge | undefined
  const serverErrors: string[] = []

  async function setup(options: { credentials?: { username: string; password: string } } = {}) {
    current = undefined
    serverErrors.length = 0
    const broker = await startBroker(options)
    cleanups.push(() => broker.stop())
    const fixture: PushFixture = await startPushFixture({
      heartbeatMs: 2000,
      // The hook's errors (a forward that fails) are expected here; nothing else is logged.
      logger: { error: (message) => void serverErrors.push(message) },
      onPublish: (context) => current?.onPublish(context),
    })
    cleanups.push(() => fixture.close())
    return { broker, fixture }
  }

  async function device(url: string, options: { clientId?: string; clean?: boolean } = {}): Promise<MqttClient> {
    const client = await connectAsync(url, {
      protocolVersion,
      clientId: options.clientId ?? clientId('device'),
      clean: options.clean ?? true,
      reconnectPeriod: 100,
    })
    cleanups.push(() => client.endAsync(true))
    return client
  }

  function bridge(fixture: PushFixture, options: Omit<MqttBridgeOptions, 'clientId'> & { clientId?: string }) {
    const log = captureLogger()
    const created = mqttBridge(fixture.push, {
      clientId: clientId('bridge'),
      protocolVersion,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      logger: log.logger,
      ...options,
    })
    cleanups.push(() => created.close())
    current = created
    return { bridge: created, log }
  }

  async function client(fixture: PushFixture, transport: 'websocket' | 'long-polling', channel: string) {
    const subscribed = await subscribedClient(fixture.url, transport, channel)
    cleanups.push(() => subscribed.client.close())
    return subscribed
  }

  /** Publishes `{ n }` for n in [from, to] at 50 Hz with QoS 1. */
  async function publishStream(device: MqttClient, topic: string, from: number, to: number, hz = 50) {
    for (let n = from; n <= to; n++) {
      const sent = device.publishAsync(topic, JSON.stringify({ n }), { qos: 1 })
      await Promise.all([sent, new Promise((resolve) => setTimeout(resolve, 1000 / hz))])
    }
  }

  it(
    `a device publishing at 50 Hz (${streamCount} messages) reaches a long-polling and a WebSocket client, every message once and in order`,
    async () => {
      const { broker, fixture } = await setup()
      const { bridge: created } = bridge(fixture, { url: broker.url, subscribe: ['home/+/temperature'] })
      await created.ready()
      const longPolling = await client(fixture, 'long-polling', 'home/kitchen/temperature')
      const websocket = await client(fixture, 'websocket', 'home/kitchen/temperature')
      const sensor = await device(broker.url)
      await publishStream(sensor, 'home/kitchen/temperature', 1, streamCount)
      await waitFor(
        () => longPolling.messages.length >= streamCount && websocket.messages.length >= streamCount,
        'both clients to get the stream',
        30_000,
      )
      expect(longPolling.numbers()).toEqual(range(1, streamCount))
      expect(websocket.numbers()).toEqual(range(1, streamCount))
      expect(websocket.messages[0]).toMatchObject({
        channel: 'home/kitchen/temperature',
        event: 'mqtt',
        data: { topic: 'home/kitchen/temperature', format: 'json', payload: { n: 1 } },
      })
      expect(created.stats()).toMatchObject({ received: streamCount, published: streamCount, dropped: 0 })
    },
    Math.max(60_000, streamCount * 60),
  )

  it('persistent session: what the device publishes while the bridge is away arrives once it is back, in order', async () => {
    const { broker, fixture } = await setup()
    const id = clientId('bridge')
    const first = bridge(fixture, { url: broker.url, clientId: id, subscribe: ['plant/+/level'] }).bridge
    await first.ready()
    const page = await client(fixture, 'websocket', 'plant/tank/level')
    const sensor = await device(broker.url)
    await publishStream(sensor, 'plant/tank/level', 1, 50, 200)
    await waitFor(() => page.messages.length >= 50, 'messages before the bridge stops')
    await first.close()
    // The broker keeps the bridge's session and queues these for it.
    await publishStream(sensor, 'plant/tank/level', 51, 150, 200)
    const second = bridge(fixture, { url: broker.url, clientId: id, subscribe: ['plant/+/level'] }).bridge
    await second.ready()
    await publishStream(sensor, 'plant/tank/level', 151, 200, 200)
    await waitFor(() => new Set(page.numbers()).size >= 200, 'every message after the bridge is back', 20_000)
    expectResumed(page.numbers(), 200)
    if (orderedResume) expect(second.stats()).toMatchObject({ received: 150, published: 150 })
  })

  it('network cut between bridge and broker: the bridge reconnects and the session delivers what came meanwhile, once and in order', async () => {
    const { broker, fixture } = await setup()
    const proxy = await startTcpProxy(Number(new URL(broker.url).port))
    cleanups.push(() => proxy.close())
    const { bridge: created, log } = bridge(fixture, { url: `mqtt://127.0.0.1:${proxy.port}`, subscribe: ['plant/+/flow'] })
    await created.ready()
    const page = await client(fixture, 'long-polling', 'plant/pump/flow')
    const sensor = await device(broker.url)
    const stream = publishStream(sensor, 'plant/pump/flow', 1, 300, 100)
    for (const after of [60, 150, 240]) {
      await waitFor(() => created.stats().received >= after, `message ${after} at the bridge`)
      proxy.cutAll()
    }
    await stream
    await waitFor(() => new Set(page.numbers()).size >= 300, 'every message', 20_000)
    expectResumed(page.numbers(), 300)
    expect(created.stats().reconnects).toBeGreaterThanOrEqual(3)
    expect(log.errors.join('\n')).not.toMatch(/subscrib/)
  })

  it('a pushline client that loses its connection resumes from history: every message once and in order', async () => {
    const { broker, fixture } = await setup()
    const { bridge: created } = bridge(fixture, { url: broker.url, subscribe: ['car/+/speed'] })
    await created.ready()
    const pages = [await client(fixture, 'websocket', 'car/1/speed'), await client(fixture, 'long-polling', 'car/1/speed')]
    const sensor = await device(broker.url)
    const stream = publishStream(sensor, 'car/1/speed', 1, 200, 100)
    for (const after of [50, 120]) {
      await waitFor(() => created.stats().published >= after, `message ${after} published`)
      fixture.proxy.cutAll()
    }
    await stream
    await waitFor(() => pages.every((page) => page.messages.length >= 200), 'every message at both pages', 20_000)
    for (const page of pages) expect(page.numbers()).toEqual(range(1, 200))
  })

  it('command path: a page publishes, the device gets it after the broker acked it, and its state reaches every page', async () => {
    const { broker, fixture } = await setup()
    const { bridge: created } = bridge(fixture, {
      url: broker.url,
      subscribe: ['home/light/state'],
      forward: (channel) => (channel === 'home/light/set' ? 'home/light/set' : undefined),
    })
    await created.ready()
    const light = await device(broker.url)
    await light.subscribeAsync('home/light/set', { qos: 1 })
    const commands: unknown[] = []
    light.on('message', (topic, payload) => {
      if (topic !== 'home/light/set') return
      const command = JSON.parse(payload.toString()) as { on: boolean }
      commands.push(command)
      void light.publishAsync('home/light/state', JSON.stringify({ on: command.on }), { qos: 1, retain: true })
    })
    const pages = [await client(fixture, 'websocket', 'home/light/state'), await client(fixture, 'long-polling', 'home/light/state')]
    const ack = await pages[0]!.client.publish('home/light/set', { on: true })
    // The client's publish was acked only after the broker's PUBACK.
    expect(created.stats().forwarded).toBe(1)
    expect(ack.channel).toBe('home/light/set')
    await waitFor(() => pages.every((page) => page.messages.length >= 1), 'the state at every page')
    expect(commands).toEqual([{ on: true }])
    for (const page of pages) expect(page.messages.map((message) => message.data.payload)).toEqual([{ on: true }])
    // A channel that is not forwarded is left to the server: accepted, nothing sent to MQTT.
    await pages[1]!.client.publish('home/notes', 'hello')
    expect(created.stats().forwarded).toBe(1)
  })

  it('broker down: a forwarded publish rejects with MQTT_UNAVAILABLE at once, and the page gets an error, not a timeout', async () => {
    const { broker, fixture } = await setup()
    const { bridge: created, log } = bridge(fixture, {
      url: broker.url,
      subscribe: [],
      forward: (channel) => (channel.startsWith('cmd/') ? channel : undefined),
    })
    await created.ready()
    await broker.stop()
    await waitFor(() => !created.stats().connected, 'the bridge to notice')
    const context = { channel: 'cmd/heater', event: 'message', data: { on: true }, transport: 'websocket' as const, session: 's', headers: {}, identity: undefined }
    await expect(created.onPublish(context)).rejects.toMatchObject({ name: 'PushError', code: 'MQTT_UNAVAILABLE' })
    expect(created.stats().forwardFailed).toBe(1)
    expect(log.warnings.join('\n')).toMatch(/connection to the broker lost; reconnecting in \d+ ms/)
    // Through a page: the publish fails with the hook's code, well before the client's own timeout,
    // and the server logs nothing (an outage is not a server fault).
    const page = new PushClient({ url: fixture.url, transports: ['websocket'], publishTimeoutMs: 15_000 })
    cleanups.push(() => page.close())
    page.connect()
    const failure = await page.publish('cmd/heater', { on: true }).catch((error: unknown) => error as PushError)
    expect(failure).toMatchObject({ name: 'PushError', code: 'MQTT_UNAVAILABLE' })
    expect(serverErrors).toEqual([])
    expect(created.stats().forwardFailed).toBe(2)
  })

  it('payloads: JSON, UTF-8 text and non-UTF-8 bytes (base64, flagged); retained messages as current state; 1 MiB dropped and counted; invalid channel names counted; the bridge stays up', async () => {
    const { broker, fixture } = await setup()
    const sensor = await device(broker.url)
    // Retained before the bridge subscribes: the broker hands it over on subscribe.
    await sensor.publishAsync('lab/door/state', 'open', { qos: 1, retain: true })
    const { bridge: created, log } = bridge(fixture, { url: broker.url, subscribe: ['lab/#'] })
    await created.ready()
    await waitFor(() => created.stats().published >= 1, 'the retained message in its channel')
    const door = await client(fixture, 'websocket', 'lab/door/state')
    const probe = await client(fixture, 'websocket', 'lab/probe/raw')
    const bulk = await client(fixture, 'long-polling', 'lab/camera/frame')
    await sensor.publishAsync('lab/door/state', 'closed', { qos: 1 })
    await sensor.publishAsync('lab/probe/raw', Buffer.from([0xff, 0xfe, 0x00, 0x80]), { qos: 1 })
    await sensor.publishAsync('lab/probe/raw', JSON.stringify([1, 2.5, 'three']), { qos: 1 })
    await sensor.publishAsync('lab/camera/frame', Buffer.alloc(1024 * 1024, 7), { qos: 1 })
    await sensor.publishAsync('lab/bad topic', 'x', { qos: 1 })
    await sensor.publishAsync('lab/bad topic', 'y', { qos: 1 })
    await sensor.publishAsync('lab/camera/frame', 'small', { qos: 1 })
    await waitFor(() => created.stats().received >= 8, 'every message at the bridge')
    await waitFor(() => bulk.messages.length >= 1 && probe.messages.length >= 2 && door.messages.length >= 1, 'deliveries')

    // The retained message was published when the bridge subscribed, before this page came:
    // it is the channel's latest message in history, flagged retained.
    expect(door.messages.map((message) => message.data)).toEqual([{ topic: 'lab/door/state', format: 'text', payload: 'closed' }])
    expect(probe.messages.map((message) => message.data)).toEqual([
      { topic: 'lab/probe/raw', format: 'base64', payload: Buffer.from([0xff, 0xfe, 0x00, 0x80]).toString('base64') },
      { topic: 'lab/probe/raw', format: 'json', payload: [1, 2.5, 'three'] },
    ])
    expect(bulk.messages.map((message) => message.data.payload)).toEqual(['small'])
    expect(created.stats()).toMatchObject({
      connected: true,
      received: 8,
      published: 5,
      dropped: 3,
      droppedTooLarge: 1,
      droppedInvalidChannel: 2,
      droppedFailed: 0,
    })
    // Logged once per topic, not once per message.
    expect(log.warnings.filter((line) => line.includes('lab/bad topic'))).toHaveLength(1)
    expect(log.warnings.some((line) => line.includes('1048576-byte'))).toBe(true)

    // The retained one, as a page that resumes from before it sees it.
    const { id, offset } = door.messages[0]!
    const history = await subscribedClientSince(fixture.url, 'lab/door/state', id.replace(/\d+$/, String(offset - 2)))
    cleanups.push(() => history.client.close())
    await waitFor(() => history.messages.length >= 2, 'the replay')
    expect(history.messages.map((message) => message.data)).toEqual([
      { topic: 'lab/door/state', format: 'text', payload: 'open', retained: true },
      { topic: 'lab/door/state', format: 'text', payload: 'closed' },
    ])
  })

  it('a channelOf that throws drops that message (counted, logged) and the bridge goes on', async () => {
    const { broker, fixture } = await setup()
    const { bridge: created, log } = bridge(fixture, {
      url: broker.url,
      subscribe: ['zone/+'],
      channelOf: (topic) => {
        if (topic === 'zone/bad') throw new Error('no mapping')
        return topic
      },
    })
    await created.ready()
    const page = await client(fixture, 'websocket', 'zone/good')
    const sensor = await device(broker.url)
    await sensor.publishAsync('zone/bad', '1', { qos: 1 })
    await sensor.publishAsync('zone/good', JSON.stringify({ n: 1 }), { qos: 1 })
    await waitFor(() => page.messages.length >= 1, 'the message after the bad one')
    expect(page.numbers()).toEqual([1])
    expect(created.stats()).toMatchObject({ received: 2, published: 1, droppedInvalidChannel: 1 })
    expect(log.errors.join('\n')).toMatch(/channelOf\("zone\/bad"\) threw/)
  })

  it('a broker refusing the credentials: a clear error, retries with growing delays, no crash loop', async () => {
    const { broker, fixture } = await setup({ credentials: { username: 'bridge', password: 'right' } })
    const attempts: number[] = []
    const { bridge: created, log } = bridge(fixture, {
      url: broker.url,
      subscribe: ['x/#'],
      username: 'bridge',
      password: 'wrong',
      // The upper end of every jitter window: delays 100, 200, 400, 800, 1600 ms.
      random: () => 1,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1600 },
    })
    const originalError = log.logger.error
    log.logger.error = (message: string) => {
      attempts.push(Date.now())
      originalError(message)
    }
    let readyFailure: unknown
    void created.ready().catch((error: unknown) => (readyFailure = error))
    await waitFor(() => log.errors.length >= 5, 'five refused attempts', 15_000)
    expect(log.errors[0]).toMatch(/refused.*(Bad username or password|Not authorized)/i)
    expect(created.stats()).toMatchObject({ connected: false, reconnects: 0 })
    expect(created.stats().lastError).toMatch(/Bad username or password|Not authorized/)
    // Each retry waited at least its backoff delay (slowness only makes the gaps longer).
    const gaps = attempts.slice(1).map((at, i) => at - attempts[i]!)
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(100 * 2 ** i - 20))
    await created.close()
    expect((readyFailure as PushError | undefined)?.code).toBe('MQTT_UNAVAILABLE')
  })
}

/** A page that resumes after `since`: it gets what history holds after that message. */
export async function subscribedClientSince(url: string, channel: string, since: string) {
  const client = new PushClient({ url, transports: ['websocket'] })
  const messages: PushMessage<MqttMessage>[] = []
  const subscription = client.subscribe<MqttMessage>(channel, (message) => messages.push(message), { since })
  client.connect()
  await new Promise<void>((resolve) => {
    const off = subscription.on('subscribed', () => {
      off()
      resolve()
    })
  })
  return { client, messages }
}
