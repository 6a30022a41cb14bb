import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { isPushError } from '../../errors.js'
import type { AckFrame, ErrorCode, ErrorFrame } from '../../protocol/frames.js'
import type { Broker } from '../brokers/broker.js'
import { ackFrame, errorFrame } from '../hub/out-frame.js'
import type { Identity, Logger, PublishHook, PublishTransport } from '../options.js'
import type { AccessPolicy } from './authorization.js'
import { ChannelSchemas } from './channel-schemas.js'

/** A client's publish, validated. */
export interface PublishRequest {
  rid: string
  channel: string
  event: string
  data: unknown
  key?: string | undefined
}

/** Who is publishing, for the onPublish hook. */
export interface PublishOrigin {
  identity: Identity | undefined
  transport: PublishTransport
  session: string
  headers: IncomingHttpHeaders
  /**
   * The client's idempotency scope ({@link idempotencyScope}): keys are matched only
   * within it, so one client's key never answers another's publish.
   */
  client: string
}

export interface PublisherOptions {
  /** How long (ms) a key is remembered after its publish. */
  keyWindowMs: number
  /** Keys remembered per client scope; past it that client's oldest are forgotten. */
  maxKeysPerClient: number
  /** Whether an `authenticate` option checks tokens (only then does a token tell clients apart). */
  tokensVerified: boolean
}

/**
 * The scope a client's idempotency keys live in: its token, when tokens are
 * verified (an `authenticate` option), hashed so the table holds no secret.
 * Without verification a token proves nothing (anyone could mint scopes with
 * made-up tokens) and every client shares one scope; keys are then told
 * apart by the publish they carry (see Publisher).
 */
export function idempotencyScope(token: string | undefined, tokensVerified: boolean): string {
  if (!tokensVerified || token === undefined) return ''
  return createHash('sha256').update(token).digest('base64url')
}

/**
 * The codes a hook may answer a client with by throwing a PushError: a refusal, or a backend the
 * hook forwards to being out of reach. Any other throw is the server's fault: logged, and answered
 * INTERNAL without its message.
 */
const HOOK_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['PUBLISH_REJECTED', 'MQTT_UNAVAILABLE'])

type Outcome =
  | { ok: true; channel: string; epoch: string; offset: number }
  | { ok: false; code: ErrorCode; message: string }

interface RememberedKey {
  expiresAt: number
  /** The outcome while the first publish runs; its result once it is stored. */
  outcome: Promise<Outcome> | Outcome
}

/**
 * Client publishes from any transport: the onPublish policy, idempotency
 * keys, then the broker. Answers with the `ack` or `error` frame; never throws.
 */
export class Publisher {
  readonly #broker: Broker
  readonly #hook: PublishHook | undefined
  readonly #access: AccessPolicy
  readonly #schemas: ChannelSchemas
  readonly #logger: Logger
  readonly #keyWindowMs: number
  readonly #maxKeysPerClient: number
  readonly #tokensVerified: boolean
  /**
   * Client scope → (`channel key fingerprint` → the first publish's outcome). Map order is
   * insertion order, hence expiry order, within each scope.
   */
  readonly #keys = new Map<string, Map<string, RememberedKey>>()
  #sweepTimer: ReturnType<typeof setInterval> | undefined

  /** Whether an onPublish hook will read a publish's request headers (else connections need not keep them). */
  get readsHeaders(): boolean {
    return this.#hook !== undefined
  }

  constructor(
    broker: Broker,
    hook: PublishHook | undefined,
    access: AccessPolicy,
    logger: Logger,
    options: PublisherOptions,
    schemas: ChannelSchemas = new ChannelSchemas(),
  ) {
    this.#broker = broker
    this.#hook = hook
    this.#access = access
    this.#schemas = schemas
    this.#logger = logger
    this.#keyWindowMs = options.keyWindowMs
    this.#maxKeysPerClient = options.maxKeysPerClient
    this.#tokensVerified = options.tokensVerified
  }

  /** The idempotency scope of a client that presented `token`. */
  clientScope(token: string | undefined): string {
    return idempotencyScope(token, this.#tokensVerified)
  }

  /** Keys remembered over all clients (for tests). */
  get rememberedKeys(): number {
    let count = 0
    for (const scope of this.#keys.values()) count += scope.size
    return count
  }

  close(): void {
    clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
    this.#keys.clear()
  }

  async publish(request: PublishRequest, origin: PublishOrigin): Promise<AckFrame | ErrorFrame> {
    // Before the idempotency keys: a repeat of someone else's key must not get their ack.
    if (this.#access.restricts) {
      const refusal = await this.#access.check(origin.identity, request.channel, 'publish', origin.transport)
      if (refusal) return errorFrame(refusal.code, refusal.message, { rid: request.rid, channel: request.channel })
    }
    const outcome = await (request.key === undefined ? this.#apply(request, origin) : this.#applyOnce(request, origin))
    if (outcome.ok) return ackFrame(request.rid, outcome.channel, outcome.epoch, outcome.offset)
    return errorFrame(outcome.code, outcome.message, { rid: request.rid, channel: request.channel })
  }

  /**
   * protocol.md 3.4: a key is applied once per client within the key window.
   * The key is matched with the publish it came with (channel, event, data):
   * a retry carries the same publish, so it matches; a different publish
   * under a key already used (another client's, guessed or seen) is a new
   * publish and is stored, never answered with the other one's ack.
   */
  async #applyOnce(request: PublishRequest, origin: PublishOrigin): Promise<Outcome> {
    const now = Date.now()
    let scope = this.#keys.get(origin.client)
    if (!scope) {
      scope = new Map()
      this.#keys.set(origin.client, scope)
      this.#sweepTimer ??= setInterval(this.#sweep, Math.max(1000, this.#keyWindowMs / 10)).unref()
    }
    expire(scope, now)
    const key = `${request.channel} ${request.key} ${fingerprint(request)}`
    const known = scope.get(key)
    // A repeat, even one racing the first, gets the first one's answer (with its own rid).
    if (known) return known.outcome
    const outcome = this.#apply(request, origin)
    const entry: RememberedKey = { expiresAt: now + this.#keyWindowMs, outcome }
    if (scope.size >= this.#maxKeysPerClient) {
      // This client's oldest key goes; no other client's is touched.
      for (const oldest of scope.keys()) {
        scope.delete(oldest)
        break
      }
    }
    scope.set(key, entry)
    const result = await outcome
    if (result.ok) entry.outcome = result
    // Only a stored publish is final; after a failure a retry must really retry.
    else if (scope.get(key) === entry) scope.delete(key)
    return result
  }

  /** Drops expired keys, and clients with none left. */
  readonly #sweep = (): void => {
    const now = Date.now()
    for (const [client, scope] of this.#keys) {
      expire(scope, now)
      if (scope.size === 0) this.#keys.delete(client)
    }
    if (this.#keys.size === 0) {
      clearInterval(this.#sweepTimer)
      this.#sweepTimer = undefined
    }
  }

  async #apply(request: PublishRequest, origin: PublishOrigin): Promise<Outcome> {
    const { channel } = request
    let { event, data } = request
    if (this.#hook) {
      try {
        // Not `client`: the idempotency scope is the server's business.
        const { transport, session, headers, identity } = origin
        const verdict = await this.#hook({ channel, event, data, transport, session, headers, identity })
        if (verdict === false) return { ok: false, code: 'PUBLISH_REJECTED', message: 'publish rejected' }
        if (typeof verdict === 'object' && verdict !== null) {
          if (typeof verdict.event === 'string' && verdict.event !== '') event = verdict.event
          if (verdict.data !== undefined) data = verdict.data
        }
      } catch (error) {
        if (isPushError(error) && HOOK_CODES.has(error.code)) return { ok: false, code: error.code, message: error.message }
        this.#logger.error('pushline: onPublish threw', error)
        return { ok: false, code: 'INTERNAL', message: 'publish failed' }
      }
    }
    // Data parsed from a client's frame is JSON and nobody else holds it (only its nesting may be
    // too deep to encode); a hook's may be the app's, to copy.
    const snapshot = jsonSnapshot(data, !!this.#hook)
    if (!snapshot) return { ok: false, code: 'BAD_FRAME', message: 'data cannot be serialized as JSON' }
    // Checked after the hook: what is stored is what the hook returned.
    const invalid = await this.#schemas.check(channel, snapshot.value)
    if (invalid) return { ok: false, code: 'INVALID_DATA', message: invalid }
    try {
      const stored = await this.#broker.publish(channel, event, snapshot.value)
      return { ok: true, channel, epoch: stored.epoch, offset: stored.offset }
    } catch (error) {
      // The broker logs its outages once; a line per publish would flood the log.
      if (isPushError(error) && error.code === 'BROKER_UNAVAILABLE') return { ok: false, code: 'BROKER_UNAVAILABLE', message: 'broker unavailable' }
      this.#logger.error(`pushline: publishing to ${channel} failed`, error)
      return { ok: false, code: 'INTERNAL', message: 'publish failed' }
    }
  }
}

function expire(scope: Map<string, RememberedKey>, now: number): void {
  for (const [key, entry] of scope) {
    if (entry.expiresAt > now) break
    scope.delete(key)
  }
}

/** What identifies a publish besides its key: a hash of its event and data (not kept whole: data may be large). */
function fingerprint(request: PublishRequest): string {
  let data: string
  try {
    data = JSON.stringify(request.data) ?? ''
  } catch {
    data = ''
  }
  return createHash('sha256').update(request.event).update('\0').update(data).digest('base64url').slice(0, 22)
}

/**
 * `data` as subscribers will get it, taken now: a JSON copy of an object or array, so that an app
 * that changes its object after publishing changes neither history nor what resuming clients
 * replay; a primitive as it is (a non-finite number as `null`, as JSON encodes it). Undefined when
 * `data` has no JSON form: undefined, a BigInt, a symbol or function, cycles, or nesting too deep
 * for JSON.stringify's recursion. With `copy` false, `data` itself once it is known to encode.
 */
export function jsonSnapshot(data: unknown, copy = true): { value: unknown } | undefined {
  switch (typeof data) {
    case 'string':
    case 'boolean':
      return { value: data }
    case 'number':
      return { value: Number.isFinite(data) ? data : null }
    case 'object':
      break
    default:
      return undefined
  }
  if (data === null) return { value: null }
  try {
    // Wrapped once more: the message frame adds a level around the data.
    const json = JSON.stringify([data])
    return { value: copy ? (JSON.parse(json) as unknown[])[0] : data }
  } catch {
    return undefined
  }
}
