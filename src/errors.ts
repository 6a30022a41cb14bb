import type { ErrorCode } from './protocol/frames.js'

export type { ErrorCode }

/** The one error type pushline raises; `code` is stable across versions. */
export class PushError extends Error {
  override readonly name = 'PushError'
  /** Stable, machine-readable code. */
  readonly code: ErrorCode
  /** The transport in use when the error happened, if any. */
  readonly transport: string | undefined
  /** The channel the error concerns, if any. */
  readonly channel: string | undefined

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; transport?: string; channel?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.transport = options.transport
    this.channel = options.channel
  }
}
