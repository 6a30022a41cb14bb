/**
 * The MQTT bridge suite against Debian's Mosquitto (MQTT 5), started per test on free loopback
 * ports with its own config file (no persistence) and stopped by its pid; plus what needs MQTT 5
 * or a broker in its own process: a broker restart, user properties, No Local, shared
 * subscriptions.
 */
import { connectAsync, type MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { mqttBridge, type MqttBridge, type MqttBridgeOptions } from '../../src/mqtt-bridge/index.js'
import { describeWithBinary, requireBinary } from '../helpers/system-binary.js'
import { startMosquitto, type Mosquitto } from '../helpers/mqtt-brokers.js'
import { startPushFixture, waitFor, type PushFixture } from '../helpers/push-fixture.js'
import { captureLogger, registerBridgeSuite, subscribedClient } from './mqtt-bridge-suite.js'


describeWithBinary('mosquitto', 'mqttBridge with Mosquitto', () => {
  registerBridgeSuite({
    startBroker: (options) => startMosquitto(requireBinary('mosquitto'), options),
    protocolVersion: 5,
    streamCount: 1000,
    orderedResume: true,
  })
})

describeWithBinary('mosquitto', 'mqttBridge with Mosquitto, MQTT 5 and restarts', () => {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  let ids = 0
  const clientId = (role: string) => `pushline-mosquitto-${role}-${process.pid}-${++ids}`

  async function setup() {
    const broker: Mosquitto = await startMosquitto(requireBinary('mosquitto'))
    cleanups.push(() => broker.stop())
    let current: MqttBridge | undefined
    const fixture: PushFixture = await startPushFixture({ heartbeatMs: 2000, onPublish: (context) => current?.onPublish(context) })
    cleanups.push(() => fixture.close())
    const bridge = (options: Partial<MqttBridgeOptions> & { subscribe: string[] }) => {
      const log = captureLogger()
      const created = mqttBridge(fixture.push, {
        url: broker.url,
        clientId: clientId('bridge'),
        reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
        logger: log.logger,
        ...options,
      })
      current = created
      cleanups.push(() => created.close())
      return created
    }
    const device = async (): Promise<MqttClient> => {
      const client = await connectAsync(broker.url, { protocolVersion: 5, clientId: clientId('device'), reconnectPeriod: 100 })
      cleanups.push(() => client.endAsync(true))
      return client
    }
    const page = async (channel: string) => {
      const subscribed = await subscribedClient(fixture.url, 'websocket', channel)
      cleanups.push(() => subscribed.client.close())
      return subscribed
    }
    return { broker, fixture, bridge, device, page }
  }

  it('across a Mosquitto restart: the bridge reconnects and subscribes again; nothing is repeated or reordered, and all the broker could keep arrives', async () => {
    const { broker, bridge, device, page } = await setup()
    const created = bridge({ subscribe: ['meter/+/power'] })
    await created.ready()
    const client = await page('meter/main/power')
    const meter = await device()
    const publish = (n: number) => meter.publishAsync('meter/main/power', JSON.stringify({ n }), { qos: 1 })
    for (let n = 1; n <= 100; n++) await publish(n)
    await waitFor(() => client.messages.length >= 100, 'the messages before the restart')

    // Without persistence the restarted broker has no sessions: the bridge must subscribe anew.
    await broker.kill()
    // Published while the broker is down: the device's mqtt.js queues them and sends them once it
    // is back; the broker keeps them only if the bridge has subscribed again by then.
    const queued = Array.from({ length: 50 }, (_, i) => publish(101 + i).catch(() => undefined))
    await waitFor(() => !created.stats().connected, 'the bridge to notice')
    await broker.start()
    await waitFor(() => created.stats().reconnects >= 1, 'the bridge to reconnect', 15_000)
    await created.ready()
    await Promise.all(queued)
    for (let n = 151; n <= 250; n++) await publish(n)
    await waitFor(() => client.numbers().includes(250), 'the messages after the restart', 15_000)

    const numbers = client.numbers()
    // Strictly increasing: no message twice, none out of order.
    expect(numbers.every((n, i) => i === 0 || n > numbers[i - 1]!)).toBe(true)
    // Everything before the restart, and everything after the bridge was subscribed again.
    for (let n = 1; n <= 100; n++) expect(numbers).toContain(n)
    for (let n = 151; n <= 250; n++) expect(numbers).toContain(n)
  }, 60_000)

  it('MQTT 5: content type and user properties are kept, and the content type decides whether a payload is JSON', async () => {
    const { bridge, device, page } = await setup()
    await bridge({ subscribe: ['lab/+'] }).ready()
    const client = await page('lab/thermo')
    const thermo = await device()
    await thermo.publishAsync('lab/thermo', '21', {
      qos: 1,
      properties: { contentType: 'text/plain', userProperties: { unit: 'C', sensor: ['a', 'b'] } },
    })
    await thermo.publishAsync('lab/thermo', '21', { qos: 1, properties: { contentType: 'application/json' } })
    await waitFor(() => client.messages.length >= 2, 'both messages')
    expect(client.messages.map((message) => message.data)).toEqual([
      { topic: 'lab/thermo', format: 'text', payload: '21', contentType: 'text/plain', userProperties: { unit: 'C', sensor: ['a', 'b'] } },
      { topic: 'lab/thermo', format: 'json', payload: 21, contentType: 'application/json' },
    ])
  })

  it('MQTT 5 No Local: a forwarded publish on a topic the bridge subscribes to is not published into pushline twice', async () => {
    const { bridge, device, page, fixture } = await setup()
    const created = bridge({ subscribe: ['home/#'], forward: (channel) => (channel.startsWith('home/') ? channel : undefined) })
    await created.ready()
    const watcher = await page('home/fan/set')
    const fan = await device()
    await fan.subscribeAsync('home/fan/set', { qos: 1 })
    const commands: string[] = []
    fan.on('message', (_topic, payload) => commands.push(payload.toString()))
    await watcher.client.publish('home/fan/set', { speed: 2 })
    await waitFor(() => commands.length >= 1, 'the fan to get the command')
    // A message published afterwards by the device proves the bridge has processed everything before it.
    await fan.publishAsync('home/fan/set', JSON.stringify({ speed: 3 }), { qos: 1 })
    await waitFor(() => watcher.messages.length >= 2, 'the device message')
    expect(watcher.messages.map((message) => [message.event, message.data])).toEqual([
      ['message', { speed: 2 }],
      ['mqtt', { topic: 'home/fan/set', format: 'json', payload: { speed: 3 } }],
    ])
    expect(created.stats().received).toBe(1)
    void fixture
  })

  it('shared subscriptions: two bridges of one group publish each message once; two without a group publish it twice', async () => {
    const { bridge, device, page } = await setup()
    const shared = [bridge({ subscribe: ['grid/+/load'], shareGroup: 'pushline' }), bridge({ subscribe: ['grid/+/load'], shareGroup: 'pushline' })]
    await Promise.all(shared.map((created) => created.ready()))
    const client = await page('grid/north/load')
    const station = await device()
    for (let n = 1; n <= 100; n++) await station.publishAsync('grid/north/load', JSON.stringify({ n }), { qos: 1 })
    await waitFor(() => shared.reduce((sum, created) => sum + created.stats().published, 0) >= 100, 'the group to publish')
    await waitFor(() => client.messages.length >= 100, 'every message')
    // Each message once; the two bridges run side by side, so their order between each other is not kept.
    expect(client.numbers().sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    expect(shared.every((created) => created.stats().published > 0)).toBe(true)
    await Promise.all(shared.map((created) => created.close()))

    const unshared = [bridge({ subscribe: ['grid/+/load'] }), bridge({ subscribe: ['grid/+/load'] })]
    await Promise.all(unshared.map((created) => created.ready()))
    await station.publishAsync('grid/north/load', JSON.stringify({ n: 101 }), { qos: 1 })
    await waitFor(() => client.messages.length >= 102, 'both copies')
    expect(client.numbers().slice(100)).toEqual([101, 101])
  })
})
