import { toPushError } from '../errors.js'
import { defaultTransports, resolveTransports } from '../transports/registry.js'
import type { Transport, TransportFactory } from '../transports/transport.js'
import { PushClient as CorePushClient } from './client.js'
import type { PushClientOptions } from './options.js'
import type { ShareFactory, TabShare } from './share.js'

/**
 * `share: true`: `tabShare()`, whose module is imported when the client first connects, so that
 * apps that do not share do not load it. Until it is there, each attempt waits for it (the handshake
 * deadline runs meanwhile).
 */
const shareOnDemand: ShareFactory = (url) => {
  let share: TabShare | undefined
  let loading: Promise<void> | undefined
  // A failed import (the chunk did not load, offline say) is tried again by the next attempt.
  const load = (): Promise<void> =>
    (loading ??= import('./share.js').then(
      ({ tabShare }) => {
        share = tabShare()(url)
      },
      (error: unknown) => {
        loading = undefined
        throw error
      },
    ))
  return {
    wrap: (factory: TransportFactory): TransportFactory => ({
      name: factory.name,
      create(context) {
        let real: Transport | undefined
        let closed = false
        return {
          // A relay goes by the name of the leader's transport once it opened.
          get name() {
            return real?.name ?? factory.name
          },
          open() {
            load().then(
              () => {
                if (closed) return
                real = (share ? share.wrap(factory) : factory).create(context)
                real.open()
              },
              (error: unknown) => closed || context.onClose(toPushError(error, factory.name)),
            )
          },
          send: (frame) => real?.send(frame),
          close() {
            closed = true
            real?.close()
          },
        }
      },
    }),
    close: () => void loading?.then(() => share?.close(), () => {}),
  }
}

/**
 * The `PushClient` of `pushline`: the one of `pushline/core`, plus transports by name, a default
 * list (every transport) and `share: true`. It bundles every transport; an app that wants only
 * some imports `pushline/core` and lists factories.
 */
export class PushClient extends CorePushClient {
  /** `new PushClient({ url })` tries every transport; `transports` restricts or reorders them. */
  constructor({ transports, share, ...options }: PushClientOptions) {
    super({
      ...options,
      transports: resolveTransports(transports ?? defaultTransports()),
      share: share === true ? shareOnDemand : share || undefined,
    })
  }
}
