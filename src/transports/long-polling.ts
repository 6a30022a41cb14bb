import { pollTransport } from './poll.js'
import type { TransportFactory } from './transport.js'

export interface LongPollingOptions {
  /**
   * The longest the server should hold a poll with nothing to send (the `hold` parameter of
   * protocol.md 3.5); the server holds at most its own maximum (`hello.pollHoldMs`). A poll not
   * answered within the hold plus `heartbeatGraceMs` is dead.
   * @default the server's `heartbeatMs` (at most `pollHoldMs`): a dead link is then caught as fast as on WebSocket or SSE
   */
  holdMs?: number
}

/**
 * The long-polling transport (`GET <base>/poll?cursor=…`, publish by `POST <base>/publish`): each
 * poll is held until a message arrives or the hold passes, then the next one goes out at once.
 * Works through any proxy that passes plain HTTP requests, buffering ones included.
 */
export function longPolling({ holdMs }: LongPollingOptions = {}): TransportFactory {
  return pollTransport('long-polling', holdMs, 0)
}
