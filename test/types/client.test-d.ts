/**
 * The types of `pushline` and `pushline/core` as an app uses them: what subscribe, publish and the
 * client's events give the app, and what the compiler refuses. Checked by tsc through vitest's
 * typecheck (`npm test`); nothing here runs.
 */
import { describe, expectTypeOf, test } from 'vitest'
import {
  PushClient,
  PushError,
  isPushError,
  sse,
  websocket,
  type ClientState,
  type ErrorCode,
  type FallbackEvent,
  type FallbackReason,
  type GapInfo,
  type PublishAck,
  type PushMessage,
  type Subscription,
  type TransportName,
} from '../../src/index.js'
import { PushClient as CorePushClient } from '../../src/core.js'

interface ChatLine {
  from: string
  text: string
}

declare const client: PushClient

describe('subscribe', () => {
  test('subscribe<T> types the listener, the subscription and message.data as T', () => {
    const subscription = client.subscribe<ChatLine>('chat', (message) => {
      expectTypeOf(message).toEqualTypeOf<PushMessage<ChatLine>>()
      expectTypeOf(message.data).toEqualTypeOf<ChatLine>()
    })
    expectTypeOf(subscription).toEqualTypeOf<Subscription<ChatLine>>()
    subscription.on('message', (message) => expectTypeOf(message.data).toEqualTypeOf<ChatLine>())
    subscription.on('gap', (gap) => expectTypeOf(gap).toEqualTypeOf<GapInfo>())
    subscription.on('error', (error) => expectTypeOf(error).toEqualTypeOf<PushError>())
    expectTypeOf(subscription.on('subscribed', () => {})).toEqualTypeOf<() => void>()
  })

  test('without T, data is unknown', () => {
    client.subscribe('chat', (message) => expectTypeOf(message.data).toBeUnknown())
    expectTypeOf(client.subscribe('chat')).toEqualTypeOf<Subscription<unknown>>()
  })

  test('a message carries its position', () => {
    expectTypeOf<PushMessage>().toEqualTypeOf<{ channel: string; event: string; data: unknown; offset: number; id: string }>()
  })

  test('for await over a subscription yields PushMessage<T>', async () => {
    for await (const message of client.subscribe<ChatLine>('chat')) {
      expectTypeOf(message).toEqualTypeOf<PushMessage<ChatLine>>()
    }
    expectTypeOf(client.subscribe<ChatLine>('chat')).toExtend<AsyncIterable<PushMessage<ChatLine>>>()
  })

  test('takes a since position, and refuses what is not a subscribe option', () => {
    client.subscribe('chat', undefined, { since: 'e1-4' })
    // @ts-expect-error since is a message id string
    client.subscribe('chat', undefined, { since: 4 })
    // @ts-expect-error a listener typed for another payload than T
    client.subscribe<ChatLine>('chat', (message: PushMessage<number>) => message)
  })
})

describe('publish', () => {
  test('resolves with a PublishAck', () => {
    expectTypeOf(client.publish('chat', { from: 'ann', text: 'hi' })).toEqualTypeOf<Promise<PublishAck>>()
    expectTypeOf(client.publish('chat', 1, { event: 'line', key: 'k-1' })).resolves.toEqualTypeOf<PublishAck>()
    expectTypeOf<PublishAck>().toEqualTypeOf<{ channel: string; offset: number; id: string }>()
  })

  test('refuses a channel that is not a string and unknown options', () => {
    // @ts-expect-error the channel is a string
    void client.publish(42, {})
    // @ts-expect-error no such publish option
    void client.publish('chat', {}, { retries: 3 })
  })
})

describe('client events and state', () => {
  test("on('fallback') gives a FallbackEvent between transport names", () => {
    client.on('fallback', (event) => {
      expectTypeOf(event).toEqualTypeOf<FallbackEvent>()
      expectTypeOf(event.from).toEqualTypeOf<TransportName>()
      expectTypeOf(event.to).toEqualTypeOf<TransportName>()
      expectTypeOf(event.reason).toEqualTypeOf<FallbackReason>()
    })
  })

  test('each event has its own payload, and on returns the unbind function', () => {
    client.on('state', (state) => expectTypeOf(state).toEqualTypeOf<ClientState>())
    client.on('transport', (name) => expectTypeOf(name).toEqualTypeOf<TransportName>())
    client.on('error', (error) => expectTypeOf(error).toEqualTypeOf<PushError>())
    expectTypeOf(client.on('state', () => {})).toEqualTypeOf<() => void>()
  })

  test('refuses an event the client does not emit, and a listener of the wrong payload', () => {
    // @ts-expect-error messages are per subscription, not a client event
    client.on('message', () => {})
    // @ts-expect-error the state listener receives a ClientState
    client.on('state', (state: number) => state)
  })

  test('state and transport', () => {
    expectTypeOf(client.state).toEqualTypeOf<ClientState>()
    expectTypeOf<ClientState>().toEqualTypeOf<'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'>()
    expectTypeOf(client.transport).toEqualTypeOf<TransportName | undefined>()
  })

  test('PushError carries a stable code', () => {
    expectTypeOf(new PushError('CLIENT_CLOSED', 'closed').code).toEqualTypeOf<ErrorCode>()
    // @ts-expect-error not an error code
    new PushError('NOT_A_CODE', 'x')
  })

  test('isPushError narrows an unknown to a PushError with its code, status and close code', () => {
    const caught: unknown = new Error('x')
    if (isPushError(caught)) {
      expectTypeOf(caught).toEqualTypeOf<PushError>()
      expectTypeOf(caught.code).toEqualTypeOf<ErrorCode>()
      expectTypeOf(caught.status).toEqualTypeOf<number | undefined>()
      expectTypeOf(caught.closeCode).toEqualTypeOf<number | undefined>()
    }
  })
})

describe('transports', () => {
  test('pushline takes transport names and factories', () => {
    new PushClient({ url: 'https://example.test/push' })
    new PushClient({ url: 'https://example.test/push', transports: ['websocket', 'sse', 'long-polling', 'short-polling', 'iframe'] })
    new PushClient({ url: 'https://example.test/push', transports: ['websocket', sse()] })
  })

  test('refuses an unknown transport name, and a client without a url', () => {
    // @ts-expect-error not a transport
    new PushClient({ url: 'https://example.test/push', transports: ['carrier-pigeon'] })
    // @ts-expect-error reserved for the MQTT transport, which comes as a factory of its own entry
    new PushClient({ url: 'https://example.test/push', transports: ['mqtt'] })
    // @ts-expect-error the url is required
    new PushClient({ transports: ['websocket'] })
  })

  test('pushline/core takes factories only', () => {
    const core = new CorePushClient({ url: 'https://example.test/push', transports: [websocket(), sse()] })
    expectTypeOf(core.subscribe<ChatLine>('chat')).toEqualTypeOf<Subscription<ChatLine>>()
    // @ts-expect-error a name would bundle every transport: core wants factories
    new CorePushClient({ url: 'https://example.test/push', transports: ['websocket'] })
  })
})
