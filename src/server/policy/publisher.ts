import type { IncomingHttpHeaders } from 'node:http'
import { isPushError } from '../../errors.js'
import type { AckFrame, ErrorCode, ErrorFrame } from '../../protocol/frames.js'
import type { Broker } from '../brokers/broker.js'
import { ackFrame, errorFrame } from '../hub/out-frame.js'
import type { Identity, Logger, PublishHook, PublishTransport } from '../options.js'
import type { AccessPolicy } from './authorization.js'

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
}

type Outcome =
  | { ok: true; channel: string; epoch: string; offset: number }
  | { ok: false; code: ErrorCode; message: string }

/** protocol.md 3.4: keys are remembered for at least 5 minutes... */
const KEY_TTL_MS = 5 * 60_000
/** ... and bounded in number, so a flood of keys can't exhaust memory. */
const MAX_KEYS = 10_000

/**
 * Client publishes from any transport: the onPublish policy, idempotency
 * keys, then the broker. Answers with the `ack` or `error` frame; never throws.
 */
export class Publisher {
  readonly #broker: Broker
  readonly #hook: PublishHook | undefined
  readonly #access: AccessPolicy
  readonly #logger: Logger
  /** `channel\0key` → outcome of the first publish with that key. Map order is insertion order, hence expiry order. */
  readonly #keys = new Map<string, { expiresAt: number; outcome: Promise<Outcome> }>()

  /** Whether an onPublish hook will read a publish's request headers (else connections need not keep them). */
  get readsHeaders(): boolean {
    return this.#hook !== undefined
  }

  constructor(broker: Broker, hook: PublishHook | undefined, access: AccessPolicy, logger: Logger) {
    this.#broker = broker
    this.#hook = hook
    this.#access = access
    this.#logger = logger
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

  #applyOnce(request: PublishRequest, origin: PublishOrigin): Promise<Outcome> {
    const now = Date.now()
    for (const [key, entry] of this.#keys) {
      if (entry.expiresAt > now && this.#keys.size < MAX_KEYS) break
      this.#keys.delete(key)
    }
    const key = `${request.channel}\0${request.key}`
    const known = this.#keys.get(key)
    // A repeat, even one racing the first, gets the first one's answer (with its own rid).
    if (known && known.expiresAt > now) return known.outcome
    const outcome = this.#apply(request, origin)
    const entry = { expiresAt: now + KEY_TTL_MS, outcome }
    this.#keys.set(key, entry)
    // Only a stored publish is final; after a failure a retry must really retry.
    void outcome.then((result) => {
      if (!result.ok && this.#keys.get(key) === entry) this.#keys.delete(key)
    })
    return outcome
  }

  async #apply(request: PublishRequest, origin: PublishOrigin): Promise<Outcome> {
    const { channel } = request
    let { event, data } = request
    if (this.#hook) {
      try {
        const verdict = await this.#hook({ channel, event, data, ...origin })
        if (verdict === false) return { ok: false, code: 'PUBLISH_REJECTED', message: 'publish rejected' }
        if (typeof verdict === 'object' && verdict !== null) {
          if (typeof verdict.event === 'string' && verdict.event !== '') event = verdict.event
          if (verdict.data !== undefined) data = verdict.data
        }
      } catch (error) {
        if (isPushError(error) && error.code === 'PUBLISH_REJECTED') return { ok: false, code: 'PUBLISH_REJECTED', message: error.message }
        this.#logger.error('pushline: onPublish threw', error)
        return { ok: false, code: 'INTERNAL', message: 'publish failed' }
      }
    }
    // Data parsed from a client's frame is JSON and nobody else holds it (only its nesting may be
    // too deep to encode); a hook's may be the app's, to copy.
    const snapshot = jsonSnapshot(data, !!this.#hook)
    if (!snapshot) return { ok: false, code: 'BAD_FRAME', message: 'data cannot be serialized as JSON' }
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
