import type { PushError } from '../errors.js'
import type { TransportName } from '../protocol/frames.js'
import type { FallbackEvent } from '../transports/transport.js'

/** idle → connecting → open → (reconnecting → open)* → closed; `connect()` leaves closed again. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ClientEvents {
  state: (state: ClientState) => void
  /** A connection opened on another transport than the previous one. */
  transport: (name: TransportName) => void
  /** The client gave up a transport for another one, or upgraded to a better one. */
  fallback: (event: FallbackEvent) => void
  /** Failed attempts, dropped connections, and server errors no publish or subscription claims. */
  error: (error: PushError) => void
}
