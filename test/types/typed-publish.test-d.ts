/**
 * Typed publish: a channel from defineChannel types the `data` of `push.publish` (server) and
 * `client.publish` by its schema's input; a channel name keeps taking any data. And the `rewind`
 * subscribe option's type. Checked by tsc through vitest's typecheck.
 */
import { describe, expectTypeOf, test } from 'vitest'
import { z } from 'zod'
import { PushClient, defineChannel, type PublishAck, type StandardSchemaV1, type SubscribeOptions } from '../../src/index.js'
import { usePush, type UsePushOptions } from '../../src/react/index.js'
import { createPushServer, type PublishResult } from '../../src/server/index.js'

// The input has a string date; subscribers get the schema's output (a Date).
const orders = defineChannel('orders', z.object({ id: z.string(), placedAt: z.string().transform((text) => new Date(text)) }))
const counts = defineChannel('counts', {} as StandardSchemaV1<number, number>)

declare const client: PushClient
const push = createPushServer()

describe('typed publish on the server', () => {
  test('data is the schema input of the definition', () => {
    expectTypeOf(push.publish(orders, { id: 'a1', placedAt: '2026-11-30' })).toEqualTypeOf<Promise<PublishResult>>()
    void push.publish(orders, { id: 'a1', placedAt: '2026-11-30' }, { event: 'placed' })
    void push.publish(counts, 3)
    // @ts-expect-error: a field is missing.
    void push.publish(orders, { id: 'a1' })
    // @ts-expect-error: the input takes the date as a string (the Date is the output).
    void push.publish(orders, { id: 'a1', placedAt: new Date() })
    // @ts-expect-error: not a number.
    void push.publish(counts, '3')
  })

  test('a channel name takes any data', () => {
    void push.publish('orders', { anything: true })
    void push.publish('orders', 42)
  })
})

describe('typed publish on the client', () => {
  test('data is the schema input of the definition', () => {
    expectTypeOf(client.publish(orders, { id: 'a1', placedAt: '2026-11-30' })).toEqualTypeOf<Promise<PublishAck>>()
    void client.publish(counts, 1, { key: 'k1' })
    // @ts-expect-error: a field has the wrong type.
    void client.publish(orders, { id: 1, placedAt: '2026-11-30' })
    // @ts-expect-error: not a number.
    void client.publish(counts, 'one')
  })

  test('a channel name takes any data', () => {
    void client.publish('orders', { anything: true })
  })
})

describe('rewind', () => {
  test('is a count on SubscribeOptions, with a defined channel, a schema or neither', () => {
    expectTypeOf<SubscribeOptions['rewind']>().toEqualTypeOf<number | undefined>()
    client.subscribe(orders, (message) => expectTypeOf(message.data.placedAt).toEqualTypeOf<Date>(), { rewind: 10 })
    client.subscribe('news', undefined, { rewind: 1 })
    // @ts-expect-error: a count, not a string.
    client.subscribe('news', undefined, { rewind: '1' })
  })

  test('usePush takes it too', () => {
    expectTypeOf<UsePushOptions['rewind']>().toEqualTypeOf<number | undefined>()
    expectTypeOf(usePush(orders, { rewind: 1 }).data).toEqualTypeOf<{ id: string; placedAt: Date } | undefined>()
  })
})
