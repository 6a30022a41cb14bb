import { PushError } from '../errors.js'
import type { TransportName } from '../protocol/frames.js'
import { iframe } from './iframe.js'
import { longPolling } from './long-polling.js'
import { shortPolling } from './short-polling.js'
import { sse } from './sse.js'
import type { TransportFactory } from './transport.js'
import { websocket } from './websocket.js'

/**
 * The transports the `PushClient` of `pushline` knows by name, in the default negotiation order
 * (protocol.md 3). `pushline/core` never imports this table, so an app that passes factories
 * bundles only those.
 */
const registry: Partial<Record<TransportName, () => TransportFactory>> = {
  websocket,
  sse,
  'long-polling': longPolling,
  'short-polling': shortPolling,
  iframe,
}

/** The default `transports` option: every transport, the iframe stream only where there is a `document`. */
export const defaultTransports = (): TransportName[] =>
  (Object.keys(registry) as TransportName[]).filter((name) => name !== 'iframe' || typeof document === 'object')

/** Turns the `transports` option into factories; unknown names throw `NO_TRANSPORT`. */
export function resolveTransports(list: ReadonlyArray<TransportName | TransportFactory>): TransportFactory[] {
  return list.map((entry) => {
    if (typeof entry !== 'string') return entry
    const create = registry[entry]
    if (!create) throw new PushError('NO_TRANSPORT', `transport "${entry}" is not available by name`)
    return create()
  })
}
