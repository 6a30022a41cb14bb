import { PushError, type ErrorCode } from '../errors.js'
import { toPushError } from '../transports/http.js'
import { defaultTransports, resolveTransports } from '../transports/registry.js'
import type { Timers, Transport, TransportFactory } from '../transports/transport.js'
import { PushClient as CorePushClient } from './client.js'
import { debugLogger, traceReconnect, traceTransports } from './debug-log.js'
import { validateOptions, usableTransports } from './options-validation.js'
import { globalTimers, type PushClientOptions, type SubscribeOptions } from './options.js'
import type { ChannelDefinition } from '../protocol/channel-definition.js'
import type { PushMessage, Subscription } from './subscription.js'
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
 * list (every transport), `share: true`, options checked in the constructor, and `ready()`. It
 * bundles every transport; an app that wants only some imports `pushline/core` and lists factories.
 */
export class PushClient extends CorePushClient {
  readonly #timers: Timers

  /**
   * `new PushClient({ url })` tries every transport; `transports` restricts or reorders them.
   * Throws `INVALID_OPTIONS` naming the option that is wrong and what it allows.
   */
  constructor(options: PushClientOptions) {
    validateOptions(options)
    const { transports, share, debug, ...rest } = options
    const log = debugLogger(debug)
    const factories = resolveTransports(usableTransports(transports ?? defaultTransports()))
    super({
      ...rest,
      transports: log ? traceTransports(factories, rest.url, log) : factories,
      reconnect: log ? traceReconnect(rest.reconnect, rest.random, log) : rest.reconnect,
      share: share === true ? shareOnDemand : share || undefined,
    })
    this.#timers = options.timers ?? globalTimers
    if (log) {
      this.on('state', (state) => log('state', { state }))
      this.on('fallback', (event) => log('fallback', { ...event }))
      const subscribe = this.subscribe as (...args: Parameters<typeof traced>) => Subscription<unknown>
      const traced = (channel: string | ChannelDefinition, listener?: (message: PushMessage<unknown>) => void, subscribeOptions?: SubscribeOptions) => {
        const subscription = subscribe(channel, listener, subscribeOptions)
        const name = typeof channel === 'string' ? channel : channel.name
        subscription.on('subscribed', ({ position }) => log('subscribed', { channel: name, position, since: subscribeOptions?.since, rewind: subscribeOptions?.rewind }))
        subscription.on('gap', (gap) => log('gap', { ...gap }))
        return subscription
      }
      this.subscribe = traced as CorePushClient['subscribe']
    }
  }

  /**
   * Connects if idle (or closed), and resolves once the connection is open (at once if it is).
   * Rejects with `CLIENT_CLOSED` if the client is closed first, and, given `timeoutMs`, with
   * `HANDSHAKE_TIMEOUT` if it is not open by then; both carry the last connection failure as
   * `cause` and in the message (`ECONNREFUSED 127.0.0.1:8080`, say). The client keeps trying after
   * a timeout: `close()` it to stop.
   * @param timeoutMs how long to wait; undefined waits as long as the client tries
   */
  ready(timeoutMs?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.state === 'open') return resolve()
      let lastError: PushError | undefined
      let timer: unknown
      const settle = (failure?: PushError): void => {
        offState()
        offError()
        this.#timers.clearTimeout(timer)
        if (failure) reject(failure)
        else resolve()
      }
      const failure = (code: ErrorCode, message: string): PushError =>
        new PushError(code, message + (lastError ? `; last failure: ${lastError.message}` : ''), {
          cause: lastError,
          transport: lastError?.transport,
        })
      const offError = this.on('error', (error) => {
        lastError = error
      })
      const offState = this.on('state', (state) => {
        if (state === 'open') settle()
        else if (state === 'closed') settle(failure('CLIENT_CLOSED', 'client closed before it connected'))
      })
      if (timeoutMs !== undefined) {
        timer = this.#timers.setTimeout(() => settle(failure('HANDSHAKE_TIMEOUT', `not connected within ${timeoutMs} ms`)), timeoutMs)
      }
      this.connect()
    })
  }
}
