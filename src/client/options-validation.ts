import { PushError } from '../errors.js'
import type { TransportFactory } from '../transports/transport.js'
import type { PushClientOptions } from './options.js'

// The options of `pushline`'s PushClient, checked in its constructor, so that a misconfigured client
// fails at once with what was wrong and what is allowed, instead of retrying a hopeless connection.
// Kept out of the client core: `pushline/core`, for the smallest bundles, does not carry these texts.

const invalid = (option: string, problem: string): PushError => new PushError('INVALID_OPTIONS', `${option}: ${problem}`)

/** The names `transports` takes. */
const NAMES = 'websocket, sse, long-polling, short-polling, iframe'

/** Millisecond and count options that must be > 0; every other number option may be 0 too. */
const POSITIVE = ['handshakeTimeoutMs', 'publishTimeoutMs', 'maxPendingPublishes']
const NUMBERS = [...POSITIVE, 'heartbeatGraceMs', 'unstableMs', 'upgradeProbeMs', 'rememberMs']

const describe = (value: unknown): string => (typeof value === 'string' ? JSON.stringify(value) : String(value))

/** Whether there is a page: relative URLs resolve against it, and the iframe transport works there. */
const inBrowserPage = (): boolean => typeof document === 'object'

/** Throws `INVALID_OPTIONS` naming the first option that is wrong and what it allows. */
export function validateOptions(options: PushClientOptions): void {
  const { url, transports = [], token, reconnect = {} } = options
  let scheme: string | undefined
  try {
    scheme = new URL(url, globalThis.location?.href).protocol
  } catch {
    // not a URL: said below
  }
  const names = transports.map((entry) => (typeof entry === 'string' ? entry : entry?.name))
  // ws: and wss: only when every transport listed opens a WebSocket (websocket, or mqtt() to a
  // broker's WebSocket listener); the others need http: or https:.
  const webSocketsOnly = names.length > 0 && names.every((name) => name === 'websocket' || name === 'mqtt')
  if (!/^https?:$/.test(scheme as string) && !(/^wss?:$/.test(scheme as string) && webSocketsOnly)) {
    throw invalid(
      'url',
      `expected the server's absolute base URL with http:// or https://, e.g. "http://localhost:8080/push", got ${describe(url)}` +
        (scheme || inBrowserPage() ? '' : ' (relative URLs only in a browser page)'),
    )
  }
  transports.forEach((entry: unknown, index) => {
    if (typeof entry === 'string' ? !NAMES.split(', ').includes(entry) : typeof (entry as TransportFactory | null)?.create !== 'function') {
      throw invalid(`transports[${index}]`, `unknown transport ${describe(entry)}; expected one of ${NAMES}, or a factory such as websocket()`)
    }
  })
  if (options.transports && !names.some((name) => name !== 'iframe' || inBrowserPage())) {
    throw invalid('transports', `none usable here; the iframe transport needs a browser page (document); expected some of ${NAMES}`)
  }
  if (token !== undefined && typeof token !== 'string' && typeof token !== 'function') {
    throw invalid('token', `expected a string or a function returning one, got ${describe(token)}`)
  }
  const numbers: Array<[string, unknown]> = NUMBERS.map((name) => [name, options[name as keyof PushClientOptions]])
  for (const name of ['initialDelayMs', 'maxDelayMs', 'resetAfterMs'] as const) numbers.push([`reconnect.${name}`, reconnect[name]])
  for (const [name, value] of numbers) {
    const positive = POSITIVE.includes(name)
    if (value !== undefined && !(typeof value === 'number' && (value > 0 || (value === 0 && !positive)))) {
      throw invalid(name, `expected a number ${positive ? '> 0' : '>= 0'}, got ${describe(value)}`)
    }
  }
  if (reconnect.retryDelayMs !== undefined && typeof reconnect.retryDelayMs !== 'function') {
    throw invalid('reconnect.retryDelayMs', `expected a function (attempt) => milliseconds, got ${describe(reconnect.retryDelayMs)}`)
  }
}

/**
 * The transports to use here: the iframe transport only in a browser page (elsewhere it cannot work,
 * so it is skipped rather than failed and retried in every round of the negotiation).
 */
export const usableTransports = <T extends string | TransportFactory>(transports: readonly T[]): T[] =>
  transports.filter((entry) => inBrowserPage() || (typeof entry === 'string' ? entry : entry.name) !== 'iframe')
