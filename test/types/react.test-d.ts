/**
 * The types of `pushline/react` as a component uses them: usePush's state and options, and the
 * provider's props. Checked by tsc through vitest's typecheck (`npm test`); nothing here renders.
 */
import { describe, expectTypeOf, test } from 'vitest'
import type { ClientState, GapInfo, PushClient, PushError, PushMessage, TransportName } from '../../src/index.js'
import { PushProvider, usePush, type PushProviderProps, type PushState, type UsePushOptions } from '../../src/react/index.js'

interface Price {
  symbol: string
  cents: number
}

describe('usePush', () => {
  test('usePush<T> returns PushState<T>: data and message typed as T, status, transport, error', () => {
    const state = usePush<Price>('prices')
    expectTypeOf(state).toEqualTypeOf<PushState<Price>>()
    expectTypeOf(state.data).toEqualTypeOf<Price | undefined>()
    expectTypeOf(state.message).toEqualTypeOf<PushMessage<Price> | undefined>()
    expectTypeOf(state.status).toEqualTypeOf<ClientState>()
    expectTypeOf(state.transport).toEqualTypeOf<TransportName | undefined>()
    expectTypeOf(state.error).toEqualTypeOf<PushError | undefined>()
  })

  test('without T, data is unknown', () => {
    expectTypeOf(usePush('prices').data).toBeUnknown()
  })

  test('options: the callbacks get T and gaps, and T follows from onMessage', () => {
    usePush<Price>('prices', {
      enabled: true,
      event: 'tick',
      onMessage: (message) => expectTypeOf(message.data).toEqualTypeOf<Price>(),
      onGap: (gap) => expectTypeOf(gap).toEqualTypeOf<GapInfo>(),
    })
    const inferred = usePush('prices', { onMessage: (message: PushMessage<Price>) => message })
    expectTypeOf(inferred.data).toEqualTypeOf<Price | undefined>()
    expectTypeOf<UsePushOptions<Price>['onMessage']>().toEqualTypeOf<((message: PushMessage<Price>) => void) | undefined>()
  })

  test('refuses options it does not have', () => {
    // @ts-expect-error enabled is a boolean
    usePush('prices', { enabled: 'yes' })
    // @ts-expect-error no such option
    usePush('prices', { channel: 'other' })
    // @ts-expect-error the channel is a string
    usePush(['prices'])
  })
})

describe('PushProvider', () => {
  test('takes the client, autoConnect and children', () => {
    expectTypeOf(PushProvider).parameter(0).toEqualTypeOf<PushProviderProps>()
    expectTypeOf<PushProviderProps['client']>().toEqualTypeOf<PushClient>()
    expectTypeOf<PushProviderProps['autoConnect']>().toEqualTypeOf<boolean | undefined>()
  })
})
