import { PushError } from '../errors.js'
import type { TransportName } from '../protocol/frames.js'
import { sse } from './sse.js'
import type { TransportFactory } from './transport.js'
import { websocket } from './websocket.js'

/**
 * The transports `PushClient` knows by name, and the only place it imports transports from. An
 * app that passes factories (`transports: [websocket()]`) needs none of these by name.
 */
const registry: Partial<Record<TransportName, () => TransportFactory>> = { websocket, sse }

/** The default `transports` option. */
export const defaultTransports: readonly TransportName[] = ['websocket', 'sse']

/** Turns the `transports` option into factories; unknown names throw `NO_TRANSPORT`. */
export function resolveTransports(list: ReadonlyArray<TransportName | TransportFactory>): TransportFactory[] {
  const factories = list.map((entry) => {
    if (typeof entry !== 'string') return entry
    const create = registry[entry]
    if (!create) throw new PushError('NO_TRANSPORT', `transport "${entry}" is not available by name`)
    return create()
  })
  if (!factories.length) throw new PushError('NO_TRANSPORT', 'no transports configured')
  return factories
}
