/**
 * The `mqtt()` client transport against a real broker's WebSocket listener: one suite, run against
 * aedes (MQTT 3.1.1) and Mosquitto (MQTT 5) by the test files beside it.
 */
import { connectAsync, type MqttClient } from 'mqtt'
import { afterEach, expect, it } from 'vitest'
import { PushClient, type GapInfo, type PushError, type PushMessage } from '../../src/index.js'
import { mqtt, type MqttMessage, type MqttTransportOptions } from '../../src/mqtt/index.js'
import { waitFor } from '../helpers/push-fixture.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import type { TestBroker } from '../helpers/mqtt-brokers.js'

export interface TransportSuiteOptions {
  startBroker(options?: { credentials?: { username: string; password: string } }): Promise<TestBroker & { restart?(): Promise<void> }>
  protocolVersion: 4 | 5
  /** Whether the broker resumes a session in order and without repeats (see mqtt-bridge-suite.ts). */
  orderedResume: boolean
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

export function registerTransportSuite({ startBroker, protocolVersion, orderedResume }: TransportSuiteOptions): void {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  let ids = 0
  const clientId = (role: string) => `pushline-transport-${role}-${process.pid}-${++ids}`

  async function broker(options?: { credentials?: { username: string; password: string } }) {
    const started = await startBroker(options)
    cleanups.push(() => started.stop())
    return started
  }

  async function device(url: string): Promise<MqttClient> {
    const client = await connectAsync(url, { protocolVersion, clientId: clientId('device'), reconnectPeriod: 100 })
    cleanups.push(() => client.endAsync(true))
    return client
  }

  function page(url: string, options: MqttTransportOptions = {}, token?: string) {
    const client = new PushClient({
      url,
      transports: [mqtt({ protocolVersion, clientId: clientId('page'), ...options })],
      reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
      ...(token !== undefined && { token }),
    })
    cleanups.push(() => client.close())
    return client
  }

  async function subscribed<T = MqttMessage>(client: PushClient, channel: string) {
    const messages: PushMessage<T>[] = []
    const gaps: GapInfo[] = []
    const subscription = client.subscribe<T>(channel, (message) => messages.push(message))
    subscription.on('gap', (gap) => gaps.push(gap))
    const confirmed = new Promise<void>((resolve) => {
      const off = subscription.on('subscribed', () => {
        off()
        resolve()
      })
    })
    client.connect()
    await confirmed
    return { messages, gaps, numbers: () => messages.map((message) => ((message.data as MqttMessage).payload as { n: number }).n) }
  }

  it('a channel is a topic: messages arrive in order with their topic; wildcard filters deliver the concrete topic', async () => {
    const { wsUrl, url } = await broker()
    const client = page(wsUrl, { filters: { 'all-rooms': 'home/+/temperature' } })
    const kitchen = await subscribed(client, 'home/kitchen/temperature')
    const rooms = await subscribed(client, 'all-rooms')
    expect(client.transport).toBe('mqtt')
    const sensor = await device(url)
    for (let n = 1; n <= 50; n++) await sensor.publishAsync('home/kitchen/temperature', JSON.stringify({ n }), { qos: 1 })
    await sensor.publishAsync('home/hall/temperature', JSON.stringify({ n: 51 }), { qos: 1 })
    await waitFor(() => kitchen.messages.length >= 50 && rooms.messages.length >= 51, 'every message')
    expect(kitchen.numbers()).toEqual(range(1, 50))
    expect(kitchen.messages[0]).toMatchObject({
      channel: 'home/kitchen/temperature',
      event: 'mqtt',
      data: { topic: 'home/kitchen/temperature', format: 'json', payload: { n: 1 } },
    })
    expect(rooms.numbers()).toEqual(range(1, 51))
    expect(rooms.messages.at(-1)).toMatchObject({ channel: 'all-rooms', data: { topic: 'home/hall/temperature' } })
  })

  it('publish resolves with the broker PUBACK; the device gets it; a wildcard channel cannot be published to', async () => {
    const { wsUrl, url } = await broker()
    const light = await device(url)
    await light.subscribeAsync('home/light/set', { qos: 1 })
    const commands: string[] = []
    light.on('message', (_topic, payload) => commands.push(payload.toString()))
    const client = page(wsUrl, { filters: { everything: 'home/#' } })
    client.connect()
    const ack = await client.publish('home/light/set', { on: true })
    expect(ack.channel).toBe('home/light/set')
    await waitFor(() => commands.length >= 1, 'the command at the device')
    expect(commands).toEqual(['{"on":true}'])
    await expect(client.publish('everything', 'x')).rejects.toMatchObject({ code: 'PUBLISH_REJECTED' })
  })

  it('resume is the persistent session: QoS 1 messages published while the link is down arrive after the reconnect', async () => {
    const { wsUrl, url } = await broker()
    const proxy = await startTcpProxy(Number(new URL(wsUrl).port))
    cleanups.push(() => proxy.close())
    const client = page(`ws://127.0.0.1:${proxy.port}`)
    const meter = await subscribed(client, 'plant/meter')
    const sensor = await device(url)
    for (let n = 1; n <= 20; n++) await sensor.publishAsync('plant/meter', JSON.stringify({ n }), { qos: 1 })
    await waitFor(() => meter.messages.length >= 20, 'the first messages')
    proxy.refuse(true)
    proxy.cutAll()
    await waitFor(() => client.state !== 'open', 'the client to notice')
    // The broker queues these for the session.
    for (let n = 21; n <= 60; n++) await sensor.publishAsync('plant/meter', JSON.stringify({ n }), { qos: 1 })
    proxy.refuse(false)
    await waitFor(() => new Set(meter.numbers()).size >= 60, 'the queued messages after the reconnect', 15_000)
    if (orderedResume) expect(meter.numbers()).toEqual(range(1, 60))
    else expect([...new Set(meter.numbers())].sort((a, b) => a - b)).toEqual(range(1, 60))
    expect(meter.gaps).toEqual([])
  })

  it('credentials: the token is the password; a refused one is UNAUTHORIZED', async () => {
    const { wsUrl } = await broker({ credentials: { username: 'page', password: 'secret' } })
    const good = page(wsUrl, { username: 'page' }, 'secret')
    await subscribed(good, 'a/b')
    expect(good.state).toBe('open')
    const bad = page(wsUrl, { username: 'page' }, 'wrong')
    const errors: PushError[] = []
    bad.on('error', (error) => errors.push(error))
    bad.connect()
    await waitFor(() => errors.length >= 1, 'the refusal')
    expect(errors[0]).toMatchObject({ code: 'UNAUTHORIZED', transport: 'mqtt' })
  })
}
