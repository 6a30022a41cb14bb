import { PushError } from '../errors.js'
import { iframe } from './iframe.js'
import { longPolling } from './long-polling.js'
import { shortPolling } from './short-polling.js'
import { sse } from './sse.js'
import type { TransportFactory } from './transport.js'
import { websocket } from './websocket.js'

/**
 * The transports the `PushClient` of `pushline` takes by name. A protocol transport name that is
 * not here (`mqtt`, reserved for the MQTT transport) is not one: a transport without a built-in
 * factory is listed by its factory, which declares its name.
 */
export type RegisteredTransportName = 'websocket' | 'sse' | 'long-polling' | 'short-polling' | 'iframe'

/**
 * The transports the `PushClient` of `pushline` knows by name, in the default negotiation order
 * (protocol.md 3). `pushline/core` never imports this table, so an app that passes factories
 * bundles only those.
 */
const registry: Record<RegisteredTransportName, () => TransportFactory> = {
  websocket,
  sse,
  'long-polling': longPolling,
  'short-polling': shortPolling,
  iframe,
}

/** The default `transports` option: every transport, the iframe stream only where there is a `document`. */
export const defaultTransports = (): RegisteredTransportName[] =>
  (Object.keys(registry) as RegisteredTransportName[]).filter((name) => name !== 'iframe' || typeof document === 'object')

/** Turns the `transports` option into factories; unknown names throw `NO_TRANSPORT`. */
export function resolveTransports(list: ReadonlyArray<RegisteredTransportName | TransportFactory>): TransportFactory[] {
  return list.map((entry) => {
    if (typeof entry !== 'string') return entry
    const create = registry[entry]
    if (!create) throw new PushError('NO_TRANSPORT', `transport "${entry}" is not available by name`)
    return create()
  })
}
