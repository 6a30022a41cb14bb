import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  PushClient,
  defineChannel,
  type InvalidMessage,
  type PushMessage,
  type StandardSchemaV1,
} from '../../src/index.js'
import { defineChannel as defineServerChannel } from '../../src/server/index.js'
import { createPushServer } from '../../src/server/index.js'
import { startPushFixture, waitFor, type PushFixture, type PushServerOptions } from '../helpers/push-fixture.js'

const order = z.object({ id: z.string(), total: z.number(), placedAt: z.iso.datetime().transform((text) => new Date(text)) })
const orders = defineChannel('orders', order)

/** A Standard Schema whose validations settle when the test says, in any order. */
function controlledSchema() {
  const pending: Array<{ value: unknown; settle: () => void }> = []
  const schema: StandardSchemaV1<unknown, { n: number }> = {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: (value) =>
        new Promise((resolve) => {
          const n = (value as { n?: unknown }).n
          pending.push({
            value,
            settle: () => resolve(typeof n === 'number' ? { value: { n } } : { issues: [{ message: 'n: expected a number' }] }),
          })
        }),
    },
  }
  return { schema, pending }
}

describe('typed channels', () => {
  let fixture: PushFixture
  const clients: PushClient[] = []
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close()
    await fixture.close()
  })
  const start = async (options: PushServerOptions = {}, transport: 'websocket' | 'sse' = 'websocket') => {
    fixture = await startPushFixture({ heartbeatMs: 5000, ...options })
    const client = new PushClient({ url: fixture.url, transports: [transport] })
    clients.push(client)
    return client
  }
  const subscribed = (subscription: { on(event: 'subscribed', listener: () => void): unknown }) =>
    new Promise<void>((resolve) => subscription.on('subscribed', () => resolve()))

  it('delivers valid data as the schema outputs it, and invalid data only to the invalid event', async () => {
    // No schema on the server here: it stores whatever is published, as a server without `channels` would.
    const client = await start()
    const received: PushMessage<z.output<typeof order>>[] = []
    const invalid: InvalidMessage[] = []
    const subscription = client.subscribe('orders', (message) => received.push(message), { schema: order })
    subscription.on('invalid', (event) => invalid.push(event))
    client.connect()
    await subscribed(subscription)
    await fixture.push.publish('orders', { id: 'a', total: 3, placedAt: '2026-01-02T03:04:05Z' })
    await fixture.push.publish('orders', { id: 'b', total: 'three', placedAt: '2026-01-02T03:04:05Z' })
    await fixture.push.publish('orders', { id: 'c', total: 4, placedAt: '2026-01-03T00:00:00Z' })
    await waitFor(() => received.length + invalid.length === 3, 'three messages')
    expect(received.map((message) => message.data.id)).toEqual(['a', 'c'])
    expect(received[0]?.data.placedAt).toBeInstanceOf(Date)
    expect(received[0]?.data.placedAt.toISOString()).toBe('2026-01-02T03:04:05.000Z')
    expect(received.map((message) => message.offset)).toEqual([1, 3])
    expect(invalid).toHaveLength(1)
    expect(invalid[0]?.message).toMatchObject({ channel: 'orders', offset: 2, data: { id: 'b', total: 'three' } })
    expect(invalid[0]?.issues[0]?.path).toEqual(['total'])
  })

  it('types and validates through a channel from defineChannel, and async iteration skips invalid data', async () => {
    const client = await start()
    const subscription = client.subscribe(orders)
    const invalid: InvalidMessage[] = []
    subscription.on('invalid', (event) => invalid.push(event))
    client.connect()
    await subscribed(subscription)
    await fixture.push.publish('orders', { id: 'a', total: 1, placedAt: '2026-01-02T03:04:05Z' })
    await fixture.push.publish('orders', { nothing: true })
    await fixture.push.publish('orders', { id: 'c', total: 2, placedAt: '2026-01-02T03:04:05Z' })
    const ids: string[] = []
    for await (const message of subscription) {
      ids.push(message.data.id)
      if (ids.length === 2) break
    }
    expect(ids).toEqual(['a', 'c'])
    expect(invalid.map((event) => event.message.offset)).toEqual([2])
    expect(subscription.active).toBe(false)
  })

  it('keeps the order of messages with an async validator, whatever order validations settle in', async () => {
    const client = await start()
    const { schema, pending } = controlledSchema()
    const seen: string[] = []
    const subscription = client.subscribe('counts', (message) => seen.push(`message ${message.data.n}`), { schema })
    subscription.on('invalid', ({ message }) => seen.push(`invalid ${message.offset}`))
    client.connect()
    await subscribed(subscription)
    await fixture.push.publish('counts', { n: 1 })
    await fixture.push.publish('counts', { n: 'two' })
    await fixture.push.publish('counts', { n: 3 })
    await waitFor(() => pending.length === 3, 'three validations started')
    // Settled last to first: delivery still follows arrival.
    for (const validation of [...pending].reverse()) validation.settle()
    await waitFor(() => seen.length === 3, 'three deliveries')
    expect(seen).toEqual(['message 1', 'invalid 2', 'message 3'])
  })

  it('drops messages still being validated when the subscription ends', async () => {
    const client = await start()
    const { schema, pending } = controlledSchema()
    const seen: number[] = []
    const subscription = client.subscribe('counts', (message) => seen.push(message.data.n), { schema })
    const other = client.subscribe('counts', () => {})
    client.connect()
    await subscribed(subscription)
    await fixture.push.publish('counts', { n: 1 })
    await waitFor(() => pending.length === 1, 'first validation started')
    pending[0]?.settle()
    await waitFor(() => seen.length === 1, 'delivered while subscribed')
    await fixture.push.publish('counts', { n: 2 })
    await waitFor(() => pending.length === 2, 'second validation started')
    subscription.unsubscribe()
    pending[1]?.settle()
    // The channel's other subscription sees the next message: the settled validation had time to deliver.
    const later: number[] = []
    other.on('message', (message) => later.push((message.data as { n: number }).n))
    await fixture.push.publish('counts', { n: 3 })
    await waitFor(() => later.length === 1, 'the next message on the channel')
    expect(later).toEqual([3])
    expect(seen).toEqual([1])
  })

  it('rejects push.publish of data that does not match the channel schema with INVALID_DATA', async () => {
    await start({ channels: [defineServerChannel('orders', order)] })
    await expect(fixture.push.publish('orders', { id: 'x', total: 'lots', placedAt: 'yesterday' })).rejects.toMatchObject({
      code: 'INVALID_DATA',
      channel: 'orders',
      message: expect.stringMatching(/channel "orders": total: .*; placedAt: /),
    })
    // The data is stored as given (not the schema's output), and other channels are not checked.
    const ack = await fixture.push.publish('orders', { id: 'y', total: 1, placedAt: '2026-01-02T03:04:05Z' })
    expect(ack.offset).toBe(1)
    expect((await fixture.push.history('orders')).messages.map((message) => message.data)).toEqual([
      { id: 'y', total: 1, placedAt: '2026-01-02T03:04:05Z' },
    ])
    await expect(fixture.push.publish('news', { anything: true })).resolves.toMatchObject({ offset: 1 })
  })

  for (const transport of ['websocket', 'sse'] as const) {
    it(`answers a client publish (${transport}) with INVALID_DATA for that publish only`, async () => {
      const client = await start({ channels: [orders] }, transport)
      client.connect()
      const bad = client.publish('orders', { id: 'x' })
      const good = client.publish('orders', { id: 'y', total: 2, placedAt: '2026-01-02T03:04:05Z' })
      await expect(bad).rejects.toMatchObject({ code: 'INVALID_DATA', message: expect.stringContaining('channel "orders"') })
      await expect(good).resolves.toMatchObject({ channel: 'orders', offset: 1 })
      expect(client.state).toBe('open')
    })
  }

  it('publishes through a defined channel: push.publish validates with its schema, listed or not', async () => {
    await start()
    const bad = { id: 'x', total: 'lots', placedAt: 'yesterday' } as unknown as z.input<typeof order>
    await expect(fixture.push.publish(orders, bad)).rejects.toMatchObject({ code: 'INVALID_DATA', channel: 'orders' })
    const ack = await fixture.push.publish(orders, { id: 'y', total: 1, placedAt: '2026-01-02T03:04:05Z' }, { event: 'placed' })
    expect(ack.offset).toBe(1)
    expect((await fixture.push.history('orders')).messages).toMatchObject([{ event: 'placed', data: { id: 'y' } }])
    // Another definition of a listed channel must pass both schemas.
    const strict = defineChannel('orders', order.extend({ total: z.number().min(10) }))
    await fixture.close()
    await start({ channels: [orders] })
    await expect(fixture.push.publish(strict, { id: 'z', total: 2, placedAt: '2026-01-02T03:04:05Z' })).rejects.toMatchObject({ code: 'INVALID_DATA' })
    const broken = { name: 'orders', schema: {} } as unknown as typeof orders
    await expect(fixture.push.publish(broken, { id: 'z', total: 20, placedAt: '2026-01-02T03:04:05Z' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' })
  })

  it('publishes from the client through a defined channel, on its name', async () => {
    const client = await start({ channels: [orders] })
    client.connect()
    const received: PushMessage[] = []
    const subscription = client.subscribe('orders', (message) => received.push(message))
    await subscribed(subscription)
    await expect(client.publish(orders, { id: 'a', total: 3, placedAt: '2026-01-02T03:04:05Z' })).resolves.toMatchObject({ channel: 'orders', offset: 1 })
    await waitFor(() => received.length === 1, 'the message')
    expect(received[0]?.data).toEqual({ id: 'a', total: 3, placedAt: '2026-01-02T03:04:05Z' })
  })

  it('checks what onPublish returned, not what the client sent', async () => {
    const client = await start({ channels: [orders], onPublish: ({ data }) => ({ data: { ...(data as object), total: 0 } }) })
    client.connect()
    await expect(client.publish('orders', { id: 'x', total: 'n/a', placedAt: '2026-01-02T03:04:05Z' })).resolves.toMatchObject({ offset: 1 })
  })

  it('refuses a channels option that is not a list of defined channels', () => {
    expect(() => createPushServer({ channels: [defineChannel('a b', order)] })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining('"a b" is not a channel name') }),
    )
    expect(() => createPushServer({ channels: [orders, orders] })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
    expect(() => createPushServer({ channels: [{ name: 'orders', schema: {} as StandardSchemaV1 }] })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('not a Standard Schema') }),
    )
  })
})
