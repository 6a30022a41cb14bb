/**
 * What the conformance suite needs from a client, whatever runs it: a
 * PushClient in this Node process, or one inside a Chromium page driven by
 * Playwright (e2e/). Every call is async so a page can implement it.
 */
export interface ReceivedMessage {
  channel: string
  event: string
  data: unknown
  offset: number
  id: string
}

export interface ReceivedGap {
  channel: string
  reason: string
  from?: string
  to: string
}

export type PublishOutcome =
  | { ok: true; channel: string; offset: number; id: string }
  | { ok: false; code: string; message: string }

export interface ClientLog {
  states: string[]
  transports: string[]
  errors: string[]
}

export interface ClientOptions {
  url: string
  transport: string
  heartbeatGraceMs?: number
  handshakeTimeoutMs?: number
  publishTimeoutMs?: number
}

/** The subscribe options the suite passes through to `client.subscribe()`. */
export interface SubscribeCallOptions {
  rewind?: number
  since?: string
}

export type SubscribeOutcome = { ok: true } | { ok: false; code: string; message: string }

export interface ClientDriver {
  /** Creates the client (not yet connected). */
  create(options: ClientOptions): Promise<void>
  connect(): Promise<void>
  /**
   * Subscribes with `options` (rewind, since); resolves once confirmed when open, or with the
   * error `client.subscribe()` threw.
   */
  subscribe(channel: string, options?: SubscribeCallOptions): Promise<SubscribeOutcome>
  unsubscribe(channel: string): Promise<void>
  publish(channel: string, data: unknown, options?: { event?: string }): Promise<PublishOutcome>
  state(): Promise<string>
  transport(): Promise<string | undefined>
  messages(channel: string): Promise<ReceivedMessage[]>
  gaps(channel: string): Promise<ReceivedGap[]>
  log(): Promise<ClientLog>
  close(): Promise<void>
}

/**
 * A raw peer of the server for one transport: sends what a broken or hostile
 * client would, and reports the typed error the server answers with.
 */
export interface RawProbe {
  /** Sends input that is not a valid frame; resolves with the error code the server answered. */
  malformed(url: string): Promise<string>
  /** Sends a frame larger than the server's maxFrameBytes; resolves with the error code. */
  oversized(url: string, maxFrameBytes: number): Promise<string>
}
