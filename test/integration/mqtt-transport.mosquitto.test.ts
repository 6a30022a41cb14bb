/**
 * The mqtt() transport suite against Mosquitto's WebSocket listener (MQTT 5), plus the limit of
 * MQTT resume: what the broker did not keep is lost, and the client cannot tell.
 */
import { connectAsync } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { PushClient, type GapInfo, type PushMessage } from '../../src/index.js'
import { mqtt, type MqttMessage } from '../../src/mqtt/index.js'
import { describeWithBinary, requireBinary } from '../helpers/system-binary.js'
import { startMosquitto } from '../helpers/mqtt-brokers.js'
import { waitFor } from '../helpers/push-fixture.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { registerTransportSuite } from './mqtt-transport-suite.js'


describeWithBinary('mosquitto', 'mqtt() transport with Mosquitto', () => {
  registerTransportSuite({
    startBroker: (options) => startMosquitto(requireBinary('mosquitto'), options),
    protocolVersion: 5,
    orderedResume: true,
  })
})

describeWithBinary('mosquitto', 'mqtt() transport: what resume cannot see', () => {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  it('a broker restart without persistence loses the session: what was published meanwhile is gone, and no gap is reported', async () => {
    const broker = await startMosquitto(requireBinary('mosquitto'))
    cleanups.push(() => broker.stop())
    const proxy = await startTcpProxy(Number(new URL(broker.wsUrl).port))
    cleanups.push(() => proxy.close())
    const client = new PushClient({
      url: `ws://127.0.0.1:${proxy.port}`,
      transports: [mqtt({ clientId: `pushline-lost-${process.pid}` })],
      reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
    })
    cleanups.push(() => client.close())
    const messages: PushMessage<MqttMessage>[] = []
    const gaps: GapInfo[] = []
    const subscription = client.subscribe<MqttMessage>('plant/valve', (message) => messages.push(message))
    subscription.on('gap', (gap) => gaps.push(gap))
    const confirmed = new Promise((resolve) => subscription.on('subscribed', resolve))
    client.connect()
    await confirmed
    const sensor = await connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 100 })
    cleanups.push(() => sensor.endAsync(true))
    const publish = (from: number, to: number) =>
      (async () => {
        for (let n = from; n <= to; n++) await sensor.publishAsync('plant/valve', JSON.stringify({ n }), { qos: 1 })
      })()
    await publish(1, 20)
    await waitFor(() => messages.length >= 20, 'the first messages')

    // The page is cut off, and the broker restarts: its sessions (the page's included) are gone.
    proxy.refuse(true)
    proxy.cutAll()
    await broker.restart()
    await waitFor(() => sensor.connected, 'the sensor back')
    await publish(21, 40)
    proxy.refuse(false)
    await waitFor(() => client.state === 'open', 'the page back', 15_000)
    // A subscription of the new session is in place once a message published now arrives.
    await waitFor(async () => {
      await publish(0, 0)
      return messages.some((message) => (message.data.payload as { n: number }).n === 0)
    }, 'the renewed subscription')
    await publish(41, 60)
    await waitFor(() => messages.some((message) => (message.data.payload as { n: number }).n === 60), 'the last message')

    const numbers = messages.map((message) => (message.data.payload as { n: number }).n).filter((n) => n !== 0)
    const expected = [...Array.from({ length: 20 }, (_, i) => i + 1), ...Array.from({ length: 20 }, (_, i) => i + 41)]
    expect(numbers).toEqual(expected)
    // 21..40 are lost, and nothing says so: MQTT has no positions to compare.
    expect(gaps).toEqual([])
  }, 40_000)
})
