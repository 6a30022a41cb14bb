import type { IncomingMessage } from 'node:http'

// Per-client limits: counts of what is in flight, token buckets for rates, and
// the client address they are keyed by.

/** The client's address as the socket sees it (without a proxy in front, the client's own). */
export function socketAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? ''
}

/**
 * Counts per key (a client address) of something in progress, such as HTTP
 * publishes or open connections. Keys at zero are forgotten, so the map holds
 * only clients with something in progress.
 */
export class KeyedCounter {
  readonly #counts = new Map<string, number>()
  readonly #limit: number

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Counts one more for `key` and returns true, or returns false when `key` is at the limit. */
  acquire(key: string): boolean {
    const count = this.#counts.get(key) ?? 0
    if (count >= this.#limit) return false
    this.#counts.set(key, count + 1)
    return true
  }

  release(key: string): void {
    const count = this.#counts.get(key) ?? 0
    if (count <= 1) this.#counts.delete(key)
    else this.#counts.set(key, count - 1)
  }

  /** Keys with a count (for tests). */
  get size(): number {
    return this.#counts.size
  }
}

/**
 * A token bucket: `ratePerSecond` tokens a second, at most `burst` saved up.
 * Refilled from the clock when taken from, so an idle bucket costs no timer.
 */
export class TokenBucket {
  readonly #ratePerMs: number
  readonly #burst: number
  #tokens: number
  #at: number

  constructor(ratePerSecond: number, burst: number, now: number = Date.now()) {
    this.#ratePerMs = ratePerSecond / 1000
    this.#burst = burst
    this.#tokens = burst
    this.#at = now
  }

  /** Takes `count` tokens and returns true, or takes nothing and returns false when there are too few. */
  take(count = 1, now: number = Date.now()): boolean {
    this.#refill(now)
    if (this.#tokens < count) return false
    this.#tokens -= count
    return true
  }

  /**
   * Takes `count` tokens even if there are too few (the bucket goes into debt), and returns
   * the milliseconds until it is out of debt (0 when it is not in debt): for a throttle that
   * lets what has arrived through and then waits.
   */
  spend(count: number, now: number = Date.now()): number {
    this.#refill(now)
    this.#tokens -= count
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens / this.#ratePerMs)
  }

  /** Milliseconds until `count` tokens are there (0 when they are). */
  waitMs(count = 1, now: number = Date.now()): number {
    this.#refill(now)
    const missing = Math.min(count, this.#burst) - this.#tokens
    return missing <= 0 ? 0 : Math.ceil(missing / this.#ratePerMs)
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#at)
    this.#at = now
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#ratePerMs)
  }
}

export interface ConnectionLimitOptions {
  maxConnections: number
  maxConnectionsPerIp: number
  maxConnectsPerSecond: number
}

/** A refused connection: the reason, and how long the client should wait before it tries again. */
export interface ConnectionRefusal {
  message: string
  retryMs: number
}

/** Refused clients are told to come back within this spread (ms) past the wait, so they don't all come back at once. */
const RETRY_SPREAD_MS = 2000

/**
 * Admits long-lived connections (WebSocket, SSE, iframe streams): at most
 * `maxConnections` open, `maxConnectionsPerIp` from one client address, and
 * new ones at `maxConnectsPerSecond` (a token bucket with a second's burst).
 */
export class ConnectionLimits {
  readonly #options: ConnectionLimitOptions
  readonly #perIp: KeyedCounter
  readonly #connects: TokenBucket
  #open = 0

  constructor(options: ConnectionLimitOptions) {
    this.#options = options
    this.#perIp = new KeyedCounter(options.maxConnectionsPerIp)
    this.#connects = new TokenBucket(options.maxConnectsPerSecond, Math.max(1, options.maxConnectsPerSecond))
  }

  /** Connections admitted and not yet released. */
  get open(): number {
    return this.#open
  }

  /**
   * Admits a connection from `ip`: returns the function that releases its
   * place (call it once, when it closes), or why it is refused.
   */
  admit(ip: string): { ok: true; release: () => void } | ({ ok: false } & ConnectionRefusal) {
    const spread = Math.floor(Math.random() * RETRY_SPREAD_MS)
    if (this.#open >= this.#options.maxConnections) {
      return { ok: false, message: 'too many connections', retryMs: 1000 + spread }
    }
    const wait = this.#connects.waitMs()
    if (wait > 0) return { ok: false, message: 'too many new connections', retryMs: wait + spread }
    if (!this.#perIp.acquire(ip)) {
      return { ok: false, message: 'too many connections from this address', retryMs: 1000 + spread }
    }
    this.#connects.take()
    this.#open += 1
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        this.#open -= 1
        this.#perIp.release(ip)
      },
    }
  }
}
