/**
 * The demo's smart home (demo-server/mqtt-devices.js) behind a real push server: the embedded
 * broker, the simulated devices and the bridge, seen by a page. It imports `pushline/mqtt-bridge`
 * from dist/, so it needs `npm run build` first (as test/package does).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { PushClient, type PushMessage } from '../../src/index.js'
import type { MqttMessage } from '../../src/mqtt-bridge/index.js'
import { startPushFixture, waitFor } from '../helpers/push-fixture.js'

interface Devices {
  url: string
  wsUrl: string
  onPublish(context: unknown): Promise<unknown>
  snapshot(): { light: { on: boolean }; plug: { online: boolean } }
  close(): Promise<void>
}

describe('demo smart home over MQTT', () => {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  it('streams readings, switches the light through the broker, and shows the plug going offline by its last will', async () => {
    let devices: Devices | undefined
    const fixture = await startPushFixture({
      heartbeatMs: 2000,
      onPublish: (context) => devices?.onPublish(context) as Promise<undefined>,
    })
    cleanups.push(() => fixture.close())
    // @ts-expect-error: a plain JavaScript module of the demo, without types.
    const { startMqttDevices } = (await import('../../demo-server/mqtt-devices.js')) as {
      startMqttDevices(push: unknown, options: object): Promise<Devices>
    }
    devices = await startMqttDevices(fixture.push, { plugPowerCutEveryMs: 1500, plugOutageMs: 500 })
    cleanups.push(() => devices?.close())
    expect(devices.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/)
    expect(devices.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/)

    const page = new PushClient({ url: fixture.url, transports: ['long-polling'] })
    cleanups.push(() => page.close())
    const received = new Map<string, PushMessage<MqttMessage>[]>()
    for (const channel of ['home/livingroom/climate', 'home/light/state', 'home/plug/status']) {
      received.set(channel, [])
      page.subscribe<MqttMessage>(channel, (message) => received.get(channel)!.push(message))
    }
    page.connect()
    const payloads = (channel: string) => received.get(channel)!.map((message) => message.data.payload)

    await waitFor(() => received.get('home/livingroom/climate')!.length >= 2, 'two climate readings', 15_000)
    expect(payloads('home/livingroom/climate')[0]).toMatchObject({ temperature: expect.any(Number), humidity: expect.any(Number) })

    // The page's command goes out through the bridge; the light's acknowledged state comes back.
    await expect(page.publish('home/light/set', { on: 'yes' })).rejects.toMatchObject({ code: 'PUBLISH_REJECTED' })
    await page.publish('home/light/set', { on: true })
    await waitFor(() => payloads('home/light/state').some((state) => (state as { on: boolean }).on), 'the light on')
    expect(devices.snapshot().light.on).toBe(true)

    // The plug loses power: the broker publishes its last will; then it is back.
    await waitFor(
      () => payloads('home/plug/status').some((status) => (status as { online: boolean }).online === false),
      'the last will',
      15_000,
    )
    const lastWill = received.get('home/plug/status')!.find((message) => (message.data.payload as { online: boolean }).online === false)
    expect(lastWill?.data.payload).toEqual({ online: false, reason: 'connection lost (last will)' })
    await waitFor(() => (payloads('home/plug/status').at(-1) as { online: boolean }).online, 'the plug back online', 15_000)
  }, 40_000)
})
