import { pollTransport } from './poll.js'
import type { TransportFactory } from './transport.js'

export interface ShortPollingOptions {
  /**
   * The time between an answer and the next poll. A poll with nothing new is answered `204` at once,
   * so each costs the server little; 3 s is the usual latency of an unread-count badge, and
   * acceptable for a last-resort fallback.
   * @default 3000
   */
  intervalMs?: number
}

/**
 * The short-polling transport (`GET <base>/poll?…&hold=0` every `intervalMs`, publish by
 * `POST <base>/publish`, protocol.md 3.6): for data that may lag a few seconds, such as badges, and
 * as the last resort where no request may stay open.
 */
export function shortPolling({ intervalMs = 3000 }: ShortPollingOptions = {}): TransportFactory {
  return pollTransport('short-polling', 0, intervalMs)
}
