import { createHash } from 'node:crypto'
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

  /** Whether the bucket has refilled to its burst (an idle client's bucket). */
  isFull(now: number = Date.now()): boolean {
    this.#refill(now)
    return this.#tokens >= this.#burst
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

/**
 * A refusal as an HTTP answer: 429 (a rate) or 503 (a connection limit), with `Retry-After` in
 * whole seconds (at least 1) for any HTTP client and proxy, and the exact `retryMs` in the error
 * frame of the body for pushline clients.
 */
export function refusalHeaders(retryMs: number): Record<string, string> {
  return { 'Retry-After': String(Math.max(1, Math.ceil(retryMs / 1000))) }
}

/** A rate refusal's retry hint: when the bucket allows the request, plus jitter so refused clients don't retry together. */
export function rateRetryMs(waitMs: number): number {
  return Math.max(1, waitMs) + Math.floor(Math.random() * RATE_RETRY_SPREAD_MS)
}

/** Jitter (ms) added to a rate refusal's retry hint. */
const RATE_RETRY_SPREAD_MS = 500

/** The per-client rates (maxSubscribesPerSecond, maxPublishesPerSecond, maxReceiveBytesPerSecond) and their bursts. */
export interface ClientRateOptions {
  subscribesPerSecond: number
  subscribeBurst: number
  publishesPerSecond: number
  publishBurst: number
  receiveBytesPerSecond: number
  receiveBurst: number
}

/** The token buckets of one client: a WebSocket connection, or a client address on the HTTP endpoints. */
export class ClientRates {
  readonly subscribes: TokenBucket
  readonly publishes: TokenBucket
  readonly receivedBytes: TokenBucket

  constructor(rates: ClientRateOptions, now: number = Date.now()) {
    this.subscribes = new TokenBucket(rates.subscribesPerSecond, rates.subscribeBurst, now)
    this.publishes = new TokenBucket(rates.publishesPerSecond, rates.publishBurst, now)
    this.receivedBytes = new TokenBucket(rates.receiveBytesPerSecond, rates.receiveBurst, now)
  }

  /** Every bucket is full again: forgetting them changes nothing. */
  isIdle(now: number = Date.now()): boolean {
    return this.subscribes.isFull(now) && this.publishes.isFull(now) && this.receivedBytes.isFull(now)
  }
}

/**
 * The rates of the HTTP endpoints (publish, and the subscribes that SSE, poll and iframe requests
 * carry in their cursors), per client address: HTTP requests have no connection to count on, and
 * a client's requests may come over several. Addresses whose buckets are full again are forgotten
 * when the map reaches `maxAddresses`; past that, the least recently used go first (forgetting
 * a client's debt is the price of a bounded map).
 */
export class AddressRates {
  readonly #rates: ClientRateOptions
  readonly #maxAddresses: number
  /** In order of last use: a Map iterates in insertion order, and each use re-inserts. */
  readonly #byAddress = new Map<string, ClientRates>()

  constructor(rates: ClientRateOptions, maxAddresses = 100_000) {
    this.#rates = rates
    this.#maxAddresses = maxAddresses
  }

  /** The buckets of `address`, made full on first use. */
  of(address: string, now: number = Date.now()): ClientRates {
    let rates = this.#byAddress.get(address)
    if (rates) {
      this.#byAddress.delete(address)
    } else {
      if (this.#byAddress.size >= this.#maxAddresses) this.#evict(now)
      rates = new ClientRates(this.#rates, now)
    }
    this.#byAddress.set(address, rates)
    return rates
  }

  /** Addresses with buckets (for tests). */
  get size(): number {
    return this.#byAddress.size
  }

  #evict(now: number): void {
    for (const [address, rates] of this.#byAddress) if (rates.isIdle(now)) this.#byAddress.delete(address)
    // Still full: the least recently used quarter goes, so that the sweep above runs rarely.
    let excess = this.#byAddress.size - Math.floor((this.#maxAddresses * 3) / 4)
    for (const address of this.#byAddress.keys()) {
      if (excess-- <= 0) break
      this.#byAddress.delete(address)
    }
  }
}

/** One poll session's place in the connection limits. */
interface PollSession {
  readonly release: () => void
  /** Polls of the session in progress; its idle expiry runs only at 0. */
  polls: number
  idleTimer: ReturnType<typeof setTimeout> | undefined
  /** A digest of the channels its last poll carried: a poll that carries others is charged as subscribes. */
  channels: string | undefined
}

/** A poll admitted into the connection limits, until its request ends. */
export interface PollPlace {
  /** Names the session of a first poll (the server made its id); a poll of a known session has it already. */
  bind(session: string): void
  /**
   * Whether the poll's channels are subscribes to charge: all of a new session's, and a known
   * session's when they differ from its previous poll's (a poll loop keeps its channels; a
   * change starts a new loop, which is a new session).
   */
  charges(channels: readonly string[]): boolean
  /** The poll's request ended: the session keeps its place for `idleMs` for its next poll. */
  end(): void
}

/**
 * Connection limits for polls. A poll client is a session that lasts across requests, so it
 * takes one place (`maxConnections`, `maxConnectionsPerIp`, `maxConnectsPerSecond`, as a
 * WebSocket does) with its first poll, keyed by its session id, and keeps it while it polls;
 * once no poll of it has been in progress for `idleMs`, the place is freed. A poll carrying a
 * session this server does not know (it expired, or the server restarted) takes a new place.
 * The map holds only sessions with a place, so it is bounded by `maxConnections`.
 */
export class PollSessions {
  readonly #limits: ConnectionLimits
  readonly #idleMs: number
  readonly #sessions = new Map<string, PollSession>()
  #closed = false

  constructor(limits: ConnectionLimits, idleMs: number) {
    this.#limits = limits
    this.#idleMs = idleMs
  }

  /** Sessions holding a place (for tests). */
  get size(): number {
    return this.#sessions.size
  }

  /** Admits a poll of `session` (undefined for a first poll) from `ip`, or says why not. */
  admit(session: string | undefined, ip: string): { ok: true; place: PollPlace } | ({ ok: false } & ConnectionRefusal) {
    let entry = session === undefined ? undefined : this.#sessions.get(session)
    let key = entry ? session : undefined
    let fresh = false
    if (entry) {
      entry.polls += 1
      clearTimeout(entry.idleTimer)
      entry.idleTimer = undefined
    } else {
      const admission = this.#limits.admit(ip)
      if (!admission.ok) return admission
      entry = { release: admission.release, polls: 1, idleTimer: undefined, channels: undefined }
      fresh = true
      // A session this server forgot keeps its id: its next polls find the place.
      if (session !== undefined) this.#sessions.set((key = session), entry)
    }
    const held = entry
    let ended = false
    const place: PollPlace = {
      bind: (id) => {
        if (key !== undefined || ended) return
        key = id
        // Replacing another entry of this id leaks nothing: each entry frees its own place when idle.
        this.#sessions.set(id, held)
      },
      charges: (channels) => {
        const digest = channelsDigest(channels)
        const changed = digest !== held.channels
        held.channels = digest
        return fresh || changed
      },
      end: () => {
        if (ended) return
        ended = true
        held.polls -= 1
        if (held.polls > 0) return
        // Unbound (the request failed before it had a session), or the server closed: nothing to keep the place for.
        if (key === undefined || this.#closed) return held.release()
        const bound = key
        held.idleTimer = setTimeout(() => {
          if (this.#sessions.get(bound) === held) this.#sessions.delete(bound)
          held.release()
        }, this.#idleMs)
        held.idleTimer.unref()
      },
    }
    return { ok: true, place }
  }

  /** Frees every place (the server closes). */
  close(): void {
    this.#closed = true
    for (const entry of this.#sessions.values()) {
      clearTimeout(entry.idleTimer)
      entry.release()
    }
    this.#sessions.clear()
  }
}

/** A short digest of a list of channel names (names hold no LF). */
function channelsDigest(channels: readonly string[]): string {
  return createHash('sha1').update(channels.join('\n')).digest('base64')
}
