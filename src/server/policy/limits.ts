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
 * Float rounding allowed when a take reaches exactly the burst (a millionth of a ms): five takes of
 * 1000/3 ms each must fit a burst of five.
 */
const ROUNDING_MS = 1e-6

/**
 * A rate and a burst that many token buckets share: the rate is kept once, and each bucket is a
 * single number its owner holds, the time (ms, `Date.now()` clock) at which the bucket is full again
 * ("theoretical arrival time" of the generic cell rate algorithm). A bucket at or before `now` is
 * full; each token taken moves it 1/rate later; one more than `burst` tokens' time past `now` is
 * debt. `undefined` is a full bucket, so a client that never used a rate holds nothing for it.
 * Refilled from the clock, so an idle bucket costs no timer.
 */
export class TokenRate {
  readonly #msPerToken: number
  readonly #burst: number
  /** How far past `now` a bucket may be full again without being short of tokens. */
  readonly #burstMs: number

  constructor(ratePerSecond: number, burst: number) {
    this.#msPerToken = 1000 / ratePerSecond
    this.#burst = burst
    this.#burstMs = burst * this.#msPerToken
  }

  /** The bucket after taking `count` tokens, or undefined (nothing taken) when it has too few. */
  take(fullAt: number | undefined, count: number, now: number): number | undefined {
    const next = this.#from(fullAt, now) + count * this.#msPerToken
    return next - now <= this.#burstMs + ROUNDING_MS ? next : undefined
  }

  /** The bucket after taking `count` tokens even if it has too few: it goes into debt (see {@link debtMs}). */
  spend(fullAt: number | undefined, count: number, now: number): number {
    return this.#from(fullAt, now) + count * this.#msPerToken
  }

  /** Milliseconds until the bucket is out of debt (0 when it is not in debt). */
  debtMs(fullAt: number | undefined, now: number): number {
    return this.waitMs(fullAt, 0, now)
  }

  /** Milliseconds until `count` tokens are there (0 when they are). */
  waitMs(fullAt: number | undefined, count: number, now: number): number {
    const missingMs = this.#from(fullAt, now) - now - this.#burstMs + Math.min(count, this.#burst) * this.#msPerToken
    return missingMs <= ROUNDING_MS ? 0 : Math.ceil(missingMs)
  }

  /** Whether the bucket has refilled to its burst (an idle client's bucket). */
  isFull(fullAt: number | undefined, now: number): boolean {
    return fullAt === undefined || fullAt <= now
  }

  /** A full bucket counts from now: tokens saved up past the burst are not kept. */
  #from(fullAt: number | undefined, now: number): number {
    return fullAt === undefined || fullAt < now ? now : fullAt
  }
}

/**
 * A token bucket: `ratePerSecond` tokens a second, at most `burst` saved up, as one object for
 * owners that keep few buckets (a client address, the connects per second). Owners that keep
 * one per connection hold the number of a shared {@link TokenRate} instead.
 */
export class TokenBucket {
  readonly #rate: TokenRate
  #fullAt: number | undefined

  /** `rate` may be shared by many buckets; `ratePerSecond` and `burst` make one for this bucket alone. */
  constructor(rate: TokenRate)
  constructor(ratePerSecond: number, burst: number, now?: number)
  constructor(rate: TokenRate | number, burst = 1, now?: number) {
    this.#rate = rate instanceof TokenRate ? rate : new TokenRate(rate, burst)
    this.#fullAt = now
  }

  /** Takes `count` tokens and returns true, or takes nothing and returns false when there are too few. */
  take(count = 1, now: number = Date.now()): boolean {
    const next = this.#rate.take(this.#fullAt, count, now)
    if (next === undefined) return false
    this.#fullAt = next
    return true
  }

  /**
   * Takes `count` tokens even if there are too few (the bucket goes into debt), and returns
   * the milliseconds until it is out of debt (0 when it is not in debt): for a throttle that
   * lets what has arrived through and then waits.
   */
  spend(count: number, now: number = Date.now()): number {
    this.#fullAt = this.#rate.spend(this.#fullAt, count, now)
    return this.#rate.debtMs(this.#fullAt, now)
  }

  /** Whether the bucket has refilled to its burst (an idle client's bucket). */
  isFull(now: number = Date.now()): boolean {
    return this.#rate.isFull(this.#fullAt, now)
  }

  /** Milliseconds until `count` tokens are there (0 when they are). */
  waitMs(count = 1, now: number = Date.now()): number {
    return this.#rate.waitMs(this.#fullAt, count, now)
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
    const refusal = this.take(ip)
    if (refusal) return { ok: false, ...refusal }
    let released = false
    return {
      ok: true,
      release: () => {
        if (released) return
        released = true
        this.free(ip)
      },
    }
  }

  /**
   * Takes a place for `ip`, or says why not; the caller frees it with {@link free}, once. For
   * a caller that keeps the address anyway (poll sessions): no release closure per place.
   */
  take(ip: string): ConnectionRefusal | undefined {
    const spread = Math.floor(Math.random() * RETRY_SPREAD_MS)
    if (this.#open >= this.#options.maxConnections) {
      return { message: 'too many connections', retryMs: 1000 + spread }
    }
    const wait = this.#connects.waitMs()
    if (wait > 0) return { message: 'too many new connections', retryMs: wait + spread }
    if (!this.#perIp.acquire(ip)) {
      return { message: 'too many connections from this address', retryMs: 1000 + spread }
    }
    this.#connects.take()
    this.#open += 1
    return undefined
  }

  /**
   * Frees a place that {@link take} or {@link admit} gave `ip`, for an owner that keeps the
   * address anyway instead of a release function (a poll session, a WebSocket connection: a
   * closure and its context per place cost more than the address they already hold). Call it
   * exactly once per place, and not beside `admit`'s release.
   */
  free(ip: string): void {
    this.#open -= 1
    this.#perIp.release(ip)
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

/** The three per-client rates, made once and shared by the buckets of every client. */
export interface ClientTokenRates {
  readonly subscribes: TokenRate
  readonly publishes: TokenRate
  readonly receivedBytes: TokenRate
}

export function clientTokenRates(rates: ClientRateOptions): ClientTokenRates {
  return {
    subscribes: new TokenRate(rates.subscribesPerSecond, rates.subscribeBurst),
    publishes: new TokenRate(rates.publishesPerSecond, rates.publishBurst),
    receivedBytes: new TokenRate(rates.receiveBytesPerSecond, rates.receiveBurst),
  }
}

/** The token buckets of one client address on the HTTP endpoints. */
export class ClientRates {
  readonly subscribes: TokenBucket
  readonly publishes: TokenBucket
  readonly receivedBytes: TokenBucket

  constructor(rates: ClientTokenRates) {
    this.subscribes = new TokenBucket(rates.subscribes)
    this.publishes = new TokenBucket(rates.publishes)
    this.receivedBytes = new TokenBucket(rates.receivedBytes)
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
  readonly #rates: ClientTokenRates
  readonly #maxAddresses: number
  /** In order of last use: a Map iterates in insertion order, and each use re-inserts. */
  readonly #byAddress = new Map<string, ClientRates>()

  constructor(rates: ClientRateOptions, maxAddresses = 100_000) {
    this.#rates = clientTokenRates(rates)
    this.#maxAddresses = maxAddresses
  }

  /** The buckets of `address`, made full on first use. */
  of(address: string, now: number = Date.now()): ClientRates {
    let rates = this.#byAddress.get(address)
    if (rates) {
      this.#byAddress.delete(address)
    } else {
      if (this.#byAddress.size >= this.#maxAddresses) this.#evict(now)
      rates = new ClientRates(this.#rates)
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
  /** Its id, once it has one: the Map's key. */
  id: string | undefined
  /** The client address its place is counted under. */
  readonly ip: string
  /** Its place is freed (so it is freed once, whichever of idle expiry, shutdown or a last poll's end comes first). */
  released: boolean
  /** Polls of the session in progress; its idle expiry runs only at 0. */
  polls: number
  idleTimer: ReturnType<typeof setTimeout> | undefined
  /** A digest of the channels its last poll carried: a poll that carries others is charged as subscribes. */
  channels: string | undefined
}

/**
 * A poll admitted into the connection limits, until its request ends. A class, not closures:
 * a held poll keeps its place until it is answered, and this is one small object.
 */
export class PollPlace {
  readonly #sessions: PollSessions
  readonly #session: PollSession
  /** The session's id, once known (a first poll learns it from {@link bind}). */
  #key: string | undefined
  /** The session took a new place with this poll. */
  readonly #fresh: boolean
  #ended = false

  /** Made by {@link PollSessions.admit}. */
  constructor(sessions: PollSessions, session: PollSession, key: string | undefined, fresh: boolean) {
    this.#sessions = sessions
    this.#session = session
    this.#key = key
    this.#fresh = fresh
  }

  /**
   * The session's id as this server keeps it, when it knows the session: a held poll keeps this
   * string rather than the request's, which is a slice of its URL and would keep the URL.
   */
  get session(): string | undefined {
    return this.#key
  }

  /** Names the session of a first poll (the server made its id); a poll of a known session has it already. */
  bind(session: string): void {
    if (this.#key !== undefined || this.#ended) return
    this.#key = session
    this.#sessions.remember(session, this.#session)
  }

  /**
   * Whether the poll's channels are subscribes to charge: all of a new session's, and a known
   * session's when they differ from its previous poll's (a poll loop keeps its channels; a
   * change starts a new loop, which is a new session).
   */
  charges(channels: readonly string[]): boolean {
    const digest = channelsDigest(channels)
    const changed = digest !== this.#session.channels
    this.#session.channels = digest
    return this.#fresh || changed
  }

  /** The poll's request ended: the session keeps its place for `idleMs` for its next poll. Idempotent. */
  end(): void {
    if (this.#ended) return
    this.#ended = true
    this.#sessions.leave(this.#session, this.#key)
  }
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
    const known = session === undefined ? undefined : this.#sessions.get(session)
    if (known) {
      known.polls += 1
      clearTimeout(known.idleTimer)
      known.idleTimer = undefined
      return { ok: true, place: new PollPlace(this, known, known.id ?? session, false) }
    }
    const refusal = this.#limits.take(ip)
    if (refusal) return { ok: false, ...refusal }
    const entry: PollSession = { id: session, ip, released: false, polls: 1, idleTimer: undefined, channels: undefined }
    // A session this server forgot keeps its id: its next polls find the place.
    if (session !== undefined) this.#sessions.set(session, entry)
    return { ok: true, place: new PollPlace(this, entry, session, true) }
  }

  /** For {@link PollPlace.bind}: `session` is the id of `entry`. */
  remember(session: string, entry: PollSession): void {
    // Replacing another entry of this id leaks nothing: each entry frees its own place when idle.
    this.#sessions.set(session, entry)
    entry.id = session
  }

  /** For {@link PollPlace.end}: a poll of `entry` (known as `session`, if bound) ended. */
  leave(entry: PollSession, session: string | undefined): void {
    entry.polls -= 1
    if (entry.polls > 0) return
    // Unbound (the request failed before it had a session), or the server closed: nothing to keep the place for.
    if (session === undefined || this.#closed) return this.#release(entry)
    entry.idleTimer = setTimeout(() => {
      if (this.#sessions.get(session) === entry) this.#sessions.delete(session)
      this.#release(entry)
    }, this.#idleMs)
    entry.idleTimer.unref()
  }

  /** Frees every place (the server closes). */
  close(): void {
    this.#closed = true
    for (const entry of this.#sessions.values()) {
      clearTimeout(entry.idleTimer)
      this.#release(entry)
    }
    this.#sessions.clear()
  }

  #release(entry: PollSession): void {
    if (entry.released) return
    entry.released = true
    this.#limits.free(entry.ip)
  }
}

/** A short digest of a list of channel names (names hold no LF). */
function channelsDigest(channels: readonly string[]): string {
  const names = channels.join('\n')
  // A SHA-1 in base64 is 28 characters, so a shorter list can stand for itself: no hash per poll for a few short names.
  if (names.length < SHA1_BASE64_LENGTH) return names
  return createHash('sha1').update(names).digest('base64')
}

const SHA1_BASE64_LENGTH = 28
