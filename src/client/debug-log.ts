import type { Transport, TransportFactory } from '../transports/transport.js'
import { backoff, type ReconnectOptions } from './backoff.js'

// The `debug` option of `pushline`'s PushClient. Everything here watches from outside the client
// core, through what it already exposes (its transport factories, its reconnect delay function, its
// events, its subscriptions), so that the core and the websocket-only bundle carry nothing for it
// and a client without `debug` runs none of it.

/**
 * Receives one line of the `debug` log: what happened (`attempt`, `hello`, `failed`, `closed`,
 * `backoff`, `state`, `fallback`, `subscribed`, `gap`) and its details.
 */
export type DebugLogger = (event: string, details: Record<string, unknown>) => void

/** `DEBUG=pushline` (Node) or `localStorage.debug = 'pushline'` (browsers), as the `debug` package reads them. */
function debugRequested(): boolean {
  let setting: unknown
  try {
    setting = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DEBUG ?? globalThis.localStorage?.debug
  } catch {
    // localStorage throws where storage is blocked: no setting
  }
  return typeof setting === 'string' && /(^|[\s,])(pushline(:\*)?|\*)($|[\s,])/.test(setting)
}

/** The logger to use: the app's, `console.debug` for `true` or the conventions above, else none. */
export function debugLogger(option: boolean | DebugLogger | undefined): DebugLogger | undefined {
  if (typeof option === 'function') return option
  if (option ?? debugRequested()) return (event, details) => console.debug(`[pushline] ${event}`, details)
  return undefined
}

/** The factories, each logging its attempts: start, `hello`, and how each ended. */
export const traceTransports = (factories: TransportFactory[], url: string, log: DebugLogger): TransportFactory[] =>
  factories.map((factory) => ({
    ...factory,
    create(context) {
      const { name } = factory
      const transport: Transport = factory.create({
        ...context,
        onFrame(frame) {
          if (frame.type === 'hello') log('hello', { transport: name, session: frame.session, offered: frame.transports })
          context.onFrame(frame)
        },
        onClose(error) {
          log(error ? 'failed' : 'closed', error ? { transport: name, code: error.code, message: error.message } : { transport: name })
          context.onClose(error)
        },
      })
      return {
        get name() {
          return transport.name
        },
        open() {
          log('attempt', { transport: name, url })
          transport.open()
        },
        send: (frame) => transport.send(frame),
        close: () => transport.close(),
        // Stream transports (share.ts relies on it).
        ...('update' in transport && { update: () => (transport as Transport & { update(): void }).update() }),
      }
    },
  }))

/** The reconnect options, with a `retryDelayMs` that logs each delay (the built-in backoff unless the app gave one). */
export const traceReconnect = (
  reconnect: ReconnectOptions = {},
  random: () => number = Math.random,
  log: DebugLogger,
): ReconnectOptions => ({
  ...reconnect,
  retryDelayMs(attempt) {
    const { initialDelayMs = 500, maxDelayMs = 30_000, retryDelayMs } = reconnect
    const delayMs = retryDelayMs ? retryDelayMs(attempt) : backoff(attempt, { initialDelayMs, maxDelayMs }, random)
    log('backoff', { attempt, delayMs })
    return delayMs
  },
})
