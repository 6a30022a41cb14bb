/** Reconnect timing (protocol.md 6). */
export interface ReconnectOptions {
  /**
   * Upper bound of the first delay; attempt n waits up to `initialDelayMs * 2^n`.
   * @default 500
   */
  initialDelayMs?: number
  /**
   * Cap of the delay.
   * @default 30000
   */
  maxDelayMs?: number
  /**
   * A connection that stayed open this long resets the attempt counter.
   * @default 5000
   */
  resetAfterMs?: number
  /**
   * Replaces the built-in backoff: a pure function of the 0-based attempt. A server's `retryMs`
   * still applies as a minimum.
   * @default undefined (full-jitter exponential backoff)
   */
  retryDelayMs?: ((attempt: number) => number) | undefined
}

/**
 * Full-jitter exponential backoff: a uniformly random delay in
 * [0, min(maxDelayMs, initialDelayMs × 2^attempt)] for the 0-based `attempt`.
 * Spreading reconnects over the whole window keeps a restarted server from being hit by every
 * client at once.
 */
export function backoff(
  attempt: number,
  options: { initialDelayMs: number; maxDelayMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** attempt)
  return Math.round(random() * ceiling)
}
