import type { ErrorCode, TransportName } from './protocol/frames.js'

export type { ErrorCode }

/** The one error type pushline raises; `code` is stable across versions. */
export class PushError extends Error {
  override readonly name = 'PushError'
  // `declare`: assigned in the constructor; a field declaration would only add bytes to the bundle.
  /** Stable, machine-readable code. */
  declare readonly code: ErrorCode
  /** The transport in use when the error happened, if any. */
  declare readonly transport: string | undefined
  /** The channel the error concerns, if any. */
  declare readonly channel: string | undefined
  /** The HTTP status of the request that failed (the HTTP transports and their publishes), if any. */
  declare readonly status: number | undefined
  /** The close code of the WebSocket that closed (the websocket transport), if any. */
  declare readonly closeCode: number | undefined
  /**
   * How long (ms) the server asked the client to wait before it retries, if it did: the `retryMs`
   * of a `close` or `RATE_LIMITED` `error` frame, or an HTTP `Retry-After`. The client's own
   * retries honour it.
   */
  declare readonly retryMs: number | undefined

  constructor(
    code: ErrorCode,
    message: string,
    {
      cause,
      ...fields
    }: { cause?: unknown; transport?: string; channel?: string; status?: number; closeCode?: number; retryMs?: number } = {},
  ) {
    // An undefined cause is no cause.
    super(message, cause === undefined ? undefined : { cause })
    // `transport` and `channel` are own properties of every PushError; the others where known.
    Object.assign(this, { code, transport: undefined, channel: undefined }, fields)
  }
}

/**
 * Whether `value` is a {@link PushError}: judged by its name and code, not `instanceof`, so that an
 * error made by another copy of pushline (its ESM and CJS builds in one app, two bundles, another
 * realm) is one too.
 */
export const isPushError = (value: unknown): value is PushError =>
  (value as PushError | undefined)?.name === 'PushError' && typeof (value as PushError).code === 'string'

/** `error` as a PushError: as is if it is one, else one with `code` caused by it. */
export const toPushError = (error: unknown, transport: TransportName, code: ErrorCode = 'TRANSPORT_FAILED'): PushError =>
  error instanceof PushError ? error : new PushError(code, String(error), { cause: error, transport })
