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

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; transport?: string; channel?: string } = {},
  ) {
    // Error reads only `cause` of its options; an undefined cause is no cause.
    super(message, options.cause === undefined ? undefined : options)
    this.code = code
    this.transport = options.transport
    this.channel = options.channel
  }
}

/** `error` as a PushError: as is if it is one, else one with `code` caused by it. */
export const toPushError = (error: unknown, transport: TransportName, code: ErrorCode = 'TRANSPORT_FAILED'): PushError =>
  error instanceof PushError ? error : new PushError(code, String(error), { cause: error, transport })
