/**
 * The types of `pushline/server` as an app uses them: the hooks' contexts and answers, publish's
 * result, and what the compiler refuses. Checked by tsc through vitest's typecheck (`npm test`).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { describe, expectTypeOf, test } from 'vitest'
import {
  createPushServer,
  MemoryBroker,
  PushError,
  type AuthContext,
  type AuthenticateHook,
  type AuthorizeContext,
  type Broker,
  type History,
  type Identity,
  type PresenceMember,
  type PublishContext,
  type PublishHook,
  type PublishResult,
  type PublishTransport,
  type PublishVerdict,
  type PushServer,
  type PushServerOptions,
  type ServerStats,
} from '../../src/server/index.js'

describe('createPushServer hooks', () => {
  test('onPublish receives a PublishContext and may accept, transform or reject', () => {
    createPushServer({
      onPublish: (context) => {
        expectTypeOf(context).toEqualTypeOf<PublishContext>()
        expectTypeOf(context.channel).toBeString()
        expectTypeOf(context.data).toBeUnknown()
        expectTypeOf(context.transport).toEqualTypeOf<PublishTransport>()
        expectTypeOf(context.headers).toEqualTypeOf<IncomingHttpHeaders>()
        if (context.channel === 'closed') return false
        if (context.channel === 'upper') return { data: String(context.data).toUpperCase(), event: 'shout' }
        if (context.channel === 'refused') throw new PushError('PUBLISH_REJECTED', 'no')
        return undefined
      },
    })
    createPushServer({ onPublish: async () => ({ event: 'checked' }) })
    expectTypeOf<PublishHook>().toEqualTypeOf<(context: PublishContext) => PublishVerdict | Promise<PublishVerdict>>()
    // The client transports, and HTTP publish.
    expectTypeOf<'websocket' | 'sse' | 'long-polling' | 'short-polling' | 'iframe' | 'http'>().toExtend<PublishTransport>()
  })

  test('authenticate receives an AuthContext and answers with an identity, a boolean, or a promise of one', () => {
    createPushServer({
      authenticate: (context) => {
        expectTypeOf(context).toEqualTypeOf<AuthContext>()
        expectTypeOf(context.token).toEqualTypeOf<string | undefined>()
        return context.token === 'secret'
      },
    })
    createPushServer({ authenticate: async ({ token }) => token !== undefined })
    createPushServer({ authenticate: async ({ token }) => (token ? { userId: token, expiresAt: Date.now() + 60_000 } : null) })
    expectTypeOf<NonNullable<PushServerOptions['authenticate']>>().toEqualTypeOf<AuthenticateHook<Identity>>()
  })

  test("authorize and onPublish see the identity type that authenticate returns", () => {
    interface Member extends Identity {
      roles: string[]
    }
    createPushServer({
      authenticate: (): Member => ({ userId: 'u1', roles: ['admin'] }),
      authorize: ({ identity, channel, action, transport }) => {
        expectTypeOf(identity).toEqualTypeOf<Member | undefined>()
        expectTypeOf(action).toEqualTypeOf<'subscribe' | 'publish'>()
        expectTypeOf(transport).toEqualTypeOf<PublishTransport>()
        return channel !== 'admin' || identity?.roles.includes('admin') === true
      },
      onPublish: ({ identity }) => {
        expectTypeOf(identity).toEqualTypeOf<Member | undefined>()
      },
    })
    expectTypeOf<AuthorizeContext['identity']>().toEqualTypeOf<Identity | undefined>()
  })

  test('refuses hooks that answer something else', () => {
    // @ts-expect-error authenticate answers an identity, true or false
    createPushServer({ authenticate: () => 'yes' })
    // @ts-expect-error an identity has a userId
    createPushServer({ authenticate: () => ({ id: 'u1' }) })
    // @ts-expect-error authorize answers true or false
    createPushServer({ authorize: () => 'maybe' })
    // @ts-expect-error onPublish answers nothing, false, or { event?, data? }
    createPushServer({ onPublish: () => 'ok' })
    // @ts-expect-error a misspelt transform field
    createPushServer({ onPublish: () => ({ dat: 1 }) })
  })
})

describe('the server', () => {
  test('publish resolves with a PublishResult', () => {
    const server = createPushServer({ broker: new MemoryBroker(), transports: ['websocket', 'sse'] })
    expectTypeOf(server).toEqualTypeOf<PushServer>()
    expectTypeOf(server.publish('news', { title: 'x' }, { event: 'story' })).toEqualTypeOf<Promise<PublishResult>>()
    expectTypeOf<PublishResult>().toEqualTypeOf<{ epoch: string; offset: number; id: string }>()
    expectTypeOf(server.stats()).toEqualTypeOf<ServerStats>()
    expectTypeOf(server.publishToUser('u1', { hi: 1 })).toEqualTypeOf<Promise<PublishResult>>()
    expectTypeOf(server.disconnectUser('u1')).toEqualTypeOf<number>()
    expectTypeOf(server.presence('room')).toEqualTypeOf<PresenceMember[]>()
    expectTypeOf(server.close()).toEqualTypeOf<Promise<void>>()
    expectTypeOf(new MemoryBroker()).toExtend<Broker>()
  })

  test('refuses transports the server does not serve', () => {
    // @ts-expect-error not a transport
    createPushServer({ transports: ['carrier-pigeon'] })
    // @ts-expect-error mqtt is a client transport name the server does not serve itself
    createPushServer({ transports: ['mqtt'] })
  })
})

describe('push.history', () => {
  test('takes limit and since, and gives messages with ids and an optional gap', () => {
    const push = createPushServer()
    expectTypeOf(push.history('orders', { limit: 10, since: 'e-1' })).toEqualTypeOf<Promise<History>>()
    expectTypeOf<History['messages'][number]['id']>().toBeString()
    expectTypeOf<History['gap']>().toEqualTypeOf<'history-exhausted' | 'epoch-changed' | 'position-in-future' | undefined>()
    // @ts-expect-error since is a message id string
    void push.history('orders', { since: 5 })
  })
})
