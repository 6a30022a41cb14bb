/**
 * Typed channels as an app uses them: `msg.data` is the schema's output through subscribe (with a
 * `schema` option or a channel from defineChannel), listeners and async iteration, and the server's
 * `channels` option takes the same definitions; usePush too. Checked by tsc through vitest's typecheck.
 */
import { describe, expectTypeOf, test } from 'vitest'
import { z } from 'zod'
import {
  PushClient,
  defineChannel,
  type ChannelData,
  type ChannelDefinition,
  type ChannelInput,
  type InferOutput,
  type InvalidMessage,
  type PushMessage,
  type StandardSchemaV1,
  type Subscription,
} from '../../src/index.js'
import { usePush, type PushState } from '../../src/react/index.js'
import { createPushServer, defineChannel as defineServerChannel } from '../../src/server/index.js'

const order = z.object({ id: z.string(), placedAt: z.string().transform((text) => new Date(text)) })
interface Order {
  id: string
  placedAt: Date
}
const orders = defineChannel('orders', order)

declare const client: PushClient

describe('typed channels', () => {
  test('a schema types msg.data as its output, in the listener and on the subscription', () => {
    const subscription = client.subscribe(
      'orders',
      (message) => {
        expectTypeOf(message.data).toEqualTypeOf<Order>()
      },
      { schema: order },
    )
    expectTypeOf(subscription).toEqualTypeOf<Subscription<Order>>()
    subscription.on('message', (message) => expectTypeOf(message).toEqualTypeOf<PushMessage<Order>>())
    subscription.on('invalid', (invalid) => {
      expectTypeOf(invalid).toEqualTypeOf<InvalidMessage>()
      expectTypeOf(invalid.message.data).toBeUnknown()
      expectTypeOf(invalid.issues).toEqualTypeOf<ReadonlyArray<StandardSchemaV1.Issue>>()
    })
  })

  test('a channel from defineChannel types subscribe and async iteration', async () => {
    expectTypeOf(orders.name).toEqualTypeOf<'orders'>()
    expectTypeOf<ChannelData<typeof orders>>().toEqualTypeOf<Order>()
    expectTypeOf<ChannelInput<typeof orders>>().toEqualTypeOf<{ id: string; placedAt: string }>()
    client.subscribe(orders, (message) => expectTypeOf(message.data).toEqualTypeOf<Order>(), { since: '1-2' })
    for await (const message of client.subscribe(orders)) {
      expectTypeOf(message.data).toEqualTypeOf<Order>()
      expectTypeOf(message.data.placedAt).toEqualTypeOf<Date>()
    }
  })

  test('a defined channel carries its schema: no second schema, no asserted type', () => {
    // @ts-expect-error: the channel's schema decides; another one is not taken.
    client.subscribe(orders, undefined, { schema: z.string() })
    // @ts-expect-error: a listener typed otherwise does not fit the channel's data.
    client.subscribe(orders, (message: PushMessage<number>) => message)
  })

  test('without a schema, data is unknown (or what the app asserts)', () => {
    client.subscribe('news', (message) => expectTypeOf(message.data).toBeUnknown())
    expectTypeOf(client.subscribe<{ title: string }>('news')).toEqualTypeOf<Subscription<{ title: string }>>()
  })

  test('any Standard Schema infers, not only zod', () => {
    const handmade = {} as StandardSchemaV1<string, number>
    expectTypeOf<InferOutput<typeof handmade>>().toBeNumber()
    client.subscribe('counts', (message) => expectTypeOf(message.data).toBeNumber(), { schema: handmade })
  })

  test('the server takes the same definitions, from either entry', () => {
    createPushServer({ channels: [orders, defineServerChannel('news', z.string())] })
    expectTypeOf(defineServerChannel('x', order)).toExtend<ChannelDefinition<typeof order>>()
    // @ts-expect-error: a bare schema is not a channel definition.
    createPushServer({ channels: [order] })
  })
})

describe('usePush with a defined channel', () => {
  test('data and message are the schema output; onMessage and onInvalid typed', () => {
    const state = usePush(orders, {
      onMessage: (message) => expectTypeOf(message.data).toEqualTypeOf<Order>(),
      onInvalid: (invalid) => expectTypeOf(invalid).toEqualTypeOf<InvalidMessage>(),
    })
    expectTypeOf(state).toEqualTypeOf<PushState<Order>>()
    expectTypeOf(state.data).toEqualTypeOf<Order | undefined>()
    expectTypeOf(state.message).toEqualTypeOf<PushMessage<Order> | undefined>()
    // @ts-expect-error: the channel's schema decides the type, not a type argument.
    usePush<number>(orders)
  })
})
