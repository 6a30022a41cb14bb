import { createNanoEvents, type Unsubscribe } from 'nanoevents'
import { PushError, toPushError, type ErrorCode } from '../errors.js'
import {
  PROTOCOL_VERSION,
  type GapReason,
  type HelloFrame,
  type PublishFrame,
  type ServerFrame,
  type SubscribeFrame,
  type TransportName,
} from '../protocol/frames.js'
import { isChannelName, parseId } from '../protocol/position.js'
import type { Attempt, Negotiate, Plan } from '../transports/negotiate.js'
import type { FallbackReason, Transport, TransportFactory } from '../transports/transport.js'
import { backoff } from './backoff.js'
import type { ClientEvents, ClientState } from './events.js'
import { defaultLifecycle, listenLifecycle } from './lifecycle.js'
import {
  globalTimers,
  type CoreClientOptions, type PublishAck, type PublishOptions, type SubscribeOptions } from './options.js'
import type { ChannelDefinition } from '../protocol/channel-definition.js'
import type { InferInput, InferOutput, StandardSchemaV1 } from '../protocol/standard-schema.js'
import {
  createSubscription,
  type GapInfo,
  type PresenceMember,
  type PushMessage,
  type Subscription,
  type SubscriptionEmitter,
  type SubscriptionEmitterEvents,
} from './subscription.js'
import { validateMessages } from './validated-messages.js'

export type { ClientEvents, ClientState } from './events.js'
export type { FallbackEvent, FallbackReason } from '../transports/transport.js'

/**
 * A pushline client: one connection (WebSocket, SSE, polls, …) carrying any number of channel
 * subscriptions, with transport negotiation, reconnect, resume without loss or duplicates, and a
 * publish outbox.
 */
export interface PushClient {
  /** The connection state. */
  readonly state: ClientState
  /** The transport of the open connection; undefined while not open. */
  readonly transport: TransportName | undefined
  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): Unsubscribe
  /** Starts connecting; no-op unless idle or closed. Reconnects on its own until `close()`. */
  connect(): void
  /**
   * Closes the connection, stops reconnecting, clears every timer, and rejects pending publishes
   * with `CLIENT_CLOSED`. Subscriptions stay registered: `connect()` resumes them, and a pending
   * `for await` over one keeps waiting (its `unsubscribe()` ends it). Idempotent.
   */
  close(): void
  /**
   * Subscribes to a channel. Works in any state: the subscription is sent once connected, and
   * resumed without loss after every reconnect. Throws `INVALID_CHANNEL` for a malformed name, and
   * `INVALID_OPTIONS` for a `since` that is not a message id, or a `rewind` that is not a count of
   * messages or comes with `since`.
   *
   * With a channel from `defineChannel()`, or a `schema` option, each message's data is validated
   * and typed by the schema: one that fails goes to the subscription's `invalid` event instead.
   */
  subscribe<Schema extends StandardSchemaV1>(
    channel: ChannelDefinition<Schema>,
    listener?: ((message: PushMessage<InferOutput<Schema>>) => void) | undefined,
    options?: Omit<SubscribeOptions, 'schema'>,
  ): Subscription<InferOutput<Schema>>
  subscribe<Schema extends StandardSchemaV1>(
    channel: string,
    listener: ((message: PushMessage<InferOutput<Schema>>) => void) | undefined,
    options: SubscribeOptions & { schema: Schema },
  ): Subscription<InferOutput<Schema>>
  /** Without a schema, `T` is what the app asserts the data is: nothing checks it. */
  subscribe<T = unknown>(
    channel: string,
    listener?: (message: PushMessage<T>) => void,
    options?: SubscribeOptions,
  ): Subscription<T>
  /**
   * Publishes a message; resolves with its position once the server stored it. Waits for a
   * connection if there is none (up to `publishTimeoutMs`), and resends after a reconnect with the
   * same idempotency key, so a publish whose ack was lost is applied once. Rejects with a
   * {@link PushError}: PUBLISH_TIMEOUT, OUTBOX_FULL, FRAME_TOO_LARGE, INVALID_CHANNEL, CLIENT_CLOSED,
   * or the server's code.
   *
   * With a channel from `defineChannel()`, `data` is typed by its schema's input; the server checks
   * it (`INVALID_DATA`) when its `channels` option lists the channel.
   */
  publish<Schema extends StandardSchemaV1>(
    channel: ChannelDefinition<Schema>,
    data: InferInput<Schema>,
    options?: PublishOptions,
  ): Promise<PublishAck>
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<PublishAck>
}

// The class only gives `new PushClient()` and `instanceof`; the members (declared by the interface
// above) are the closures of createCore, copied onto the instance, getters included: the client's
// state stays out of reach of the app, and closure locals minify to single letters.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PushClient {
  /** Takes the transports as factories: `new PushClient({ url, transports: [websocket(), sse()] })`. */
  constructor(options: CoreClientOptions) {
    Object.defineProperties(this, Object.getOwnPropertyDescriptors(createCore(options)))
  }
}

// Internal records use `_`-prefixed properties, which the build shortens (tsup.config.ts).


/** A publish waiting for its ack. */
interface PendingPublish {
  readonly _frame: PublishFrame
  /** The frame's JSON, measured against the server's `maxFrameBytes`. */
  readonly _json: string
  /** Settles the promise. */
  readonly _done: (failure?: PushError, ack?: PublishAck) => void
  /** The PUBLISH_TIMEOUT timer. */
  readonly _timer: unknown
  /** Sent on the current connection; cleared on disconnect so that it is resent with the same key. */
  _sent?: boolean
}

/** UTF-8 size above `max`; measures only when the UTF-16 length cannot decide. */
const tooLarge = (json: string, max: number): boolean =>
  json.length * 3 > max && (json.length > max || new Blob([json]).size > max)

// Says the allowed form (protocol.md 1): kept short, it is in every bundle.
const badChannel = (name: string): PushError =>
  new PushError('INVALID_CHANNEL', `channel ${JSON.stringify(name)}: 1-128 of A-Z a-z 0-9 _.:@/-`, { channel: name })

/**
 * The longest a server's retry hint (`retryMs`, `Retry-After`) makes the client wait: a hint of
 * hours (a misconfigured proxy) would otherwise silence the client for as long.
 */
const MAX_RETRY_HINT_MS = 300_000

/** Failures that another transport would meet alike (a refused token or origin): no fallback for them. */
const NOT_TRANSPORT_FAILURE = /^(UNAUTHORIZED|TOKEN_EXPIRED|ORIGIN_REJECTED)$/

/** Back to an epoch left this recently is flapping, not a restart; it waits this long before resuming again. */
const EPOCH_FLAP_WINDOW_MS = 60_000
const EPOCH_FLAP_RETRY_MS = 30_000

/** One server subscription, shared by every `Subscription` of its channel. */
interface Channel {
  readonly _name: string
  /** Epoch of the last position seen (protocol.md 4.1), resumed from after a reconnect; unset: none yet. */
  _epoch?: string | undefined
  /** Offset of the last position seen. */
  _offset: number
  /** Newest messages to replay first, asked for while the channel has no position (unset: none). */
  readonly _rewind?: number | undefined
  /** rid of the `subscribe` sent on this connection; answers to older ones are ignored. */
  _rid?: string | undefined
  /** `subscribed` arrived on this connection. An error before that means the subscribe was refused. */
  _confirmed?: boolean | undefined
  /** Members of a presence channel by id, as the last `sync` and the deltas after it say (protocol.md 2.4). */
  _members?: Map<string, PresenceMember> | undefined
  /** The last few epochs it left, with when (for flapping epochs). */
  _left?: Map<string, number>
  /** The emitters of its `Subscription`s. */
  readonly _listeners: Set<SubscriptionEmitter>
}

/**
 * The client's state machine, as a closure (see the PushClient class). One closure on purpose: its
 * five concerns (attempts and the negotiation's glue, liveness, lifecycle, frame routing and
 * dedupe, the outbox) share the connection's state, and split into modules that pass that state
 * around they cost the websocket-only bundle 146 to 478 B gzipped, which its ceiling cannot take.
 */
function createCore(options: CoreClientOptions): PushClient {
  const {
    url,
    token: tokenOption,
    transports: factories,
    timers = globalTimers,
    random = Math.random,
    handshakeTimeoutMs = 4000,
    heartbeatGraceMs = 10_000,
    publishTimeoutMs = 10_000,
    maxPendingPublishes = 1000,
    lifecycle = defaultLifecycle(),
  } = options
  const {
    initialDelayMs = 500,
    maxDelayMs = 30_000,
    resetAfterMs = 5000,
    retryDelayMs,
  } = options.reconnect ?? {}
  const [first] = factories
  const later = (run: () => void, ms: number): unknown => timers.setTimeout(run, ms)
  const cancel = (handle: unknown): void => timers.clearTimeout(handle)
  const now = (): number => timers.now()
  /** One connection for all tabs (share.ts): per attempt, the transport itself while leading, else a relay. */
  const share = options.share?.(url)
  /** The browser knows it is offline (true means maybe online). */
  const offline = (): boolean => lifecycle?.navigator?.onLine === false

  const events = createNanoEvents<ClientEvents>()
  const channels = new Map<string, Channel>()
  /** Publishes waiting for their ack, by rid, in call order. */
  const outbox = new Map<string, PendingPublish>()
  /** 96 random bits: idempotency keys are `<prefix>-<rid>`, unique across clients. */
  const keyPrefix = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(12))))

  let state: ClientState = 'idle'
  /** The connection: opening, or open once `hello` is set. */
  let current: Attempt | undefined
  /** The `hello` of the open connection; set means open. */
  let hello: HelloFrame | undefined
  let lastTransport: TransportName | undefined
  /** Backoff attempt, reset by a connection that stayed open `resetAfterMs`. */
  let attempt = 0
  let openedAt = 0
  /** EPOCH_FLAPPING was reported: once is enough, however often it recurs (server or client side). */
  let flapReported = false
  /** The last request id: subscribes and publishes share one sequence, so a rid names one request. */
  let rid = 0
  let maxFrameBytes = Infinity
  let lastFrameAt = 0
  /** The handshake deadline until `hello`, then the liveness deadline. */
  let deadline: unknown
  let reconnectTimer: unknown

  const error = (code: ErrorCode, message: string, channel?: string, retryMs?: number): PushError =>
    new PushError(code, message, { transport: current?._factory.name, channel, retryMs })
  /** A server's retry hint, bounded, with jitter on top so that the clients it refused together don't come back together. */
  const hinted = (hint: number, attempt: number): number =>
    Math.min(hint, MAX_RETRY_HINT_MS) + (retryDelayMs?.(attempt) ?? backoff(attempt, { initialDelayMs, maxDelayMs }, random))
  const emit = <K extends keyof SubscriptionEmitterEvents>(
    channel: Channel,
    event: K,
    ...args: Parameters<SubscriptionEmitterEvents[K]>
  ): void => {
    for (const listener of [...channel._listeners]) listener.emit(event, ...args)
  }
  const setState = (next: ClientState): void => {
    if (state !== next) events.emit('state', (state = next))
  }
  const tooLargeMessage = (): string => `over the server's ${maxFrameBytes} B limit`
  /** Whether the client was closed or moved on since `attempt` was current. */
  const moved = (attempt: Attempt | undefined): boolean => current !== attempt || state === 'closed'

  // ---- connection attempts ----

  /** Opens `attempt._factory` once the token is known; its callbacks reach the core while it is the connection. */
  const launch = (attempt: Attempt): void => {
    const { _factory: factory } = attempt
    const fail = (cause?: unknown, code?: ErrorCode): void =>
      attempt === current ? drop(cause === undefined ? cause : toPushError(cause, factory.name, code)) : attempt._onProbeEnd?.()
    const open = (token?: string): void => {
      if (attempt._abandoned) return
      try {
        (attempt._transport = (share ? share.wrap(factory) : factory).create({
          url,
          token,
          withCredentials: options.withCredentials,
          platform: options,
          timers,
          handshakeTimeoutMs,
          // A probe carries no subscriptions: they move to it when it wins.
          cursor: () =>
            attempt === current
              ? Array.from(channels.values(), ({ _name, _epoch, _offset, _rewind }) => ({
                  channel: _name,
                  position: _epoch === undefined ? _epoch : { epoch: _epoch, offset: _offset },
                  rewind: _rewind,
                }))
              : [],
          onFrame: (frame) => (attempt === current ? onFrame(frame, attempt._transport as Transport) : attempt._onProbeFrame?.(frame)),
          onClose: fail,
        })).open()
      } catch (cause) {
        fail(cause)
      }
    }
    try {
      const token = typeof tokenOption === 'function' ? tokenOption() : tokenOption
      if (typeof token === 'object') token.then(open, (cause: unknown) => fail(cause, 'UNAUTHORIZED'))
      else open(token)
    } catch (cause) {
      fail(cause, 'UNAUTHORIZED')
    }
  }

  /** One connection attempt, with the negotiation's current transport. */
  const start = (): void => {
    teardown()
    const attempt: Attempt = (current = { _factory: plan ? plan._factory() : (first as TransportFactory) })
    deadline = later(() => attempt === current && drop(error('HANDSHAKE_TIMEOUT', `no hello in ${handshakeTimeoutMs} ms`)), handshakeTimeoutMs)
    launch(attempt)
  }

  /** A new round of attempts: the best transport first. */
  const begin = (): void => {
    plan?._round()
    start()
  }

  /** Forgets the connection and any probe: transports, timers and per-connection state. */
  const teardown = (): void => {
    plan?._stop()
    cancel(deadline)
    const old = current
    current = hello = undefined
    if (old) {
      old._abandoned = true
      old._transport?.close()
    }
    for (const channel of channels.values()) channel._rid = channel._confirmed = undefined
    for (const pending of outbox.values()) pending._sent = false
  }

  /**
   * The connection ended, with `failure` unless it was a normal close: the negotiation may move to
   * another transport; else back off and start a new round.
   */
  const drop = (failure?: PushError, reason?: FallbackReason): void => {
    if (moved(current)) return
    // A RECONNECT close (protocol.md 2.3; a tab that shares took over), or credentials that expired
    // on an open connection (3.1: the next attempt asks `token` for a fresh one): reopen at once,
    // no failure; resume makes it lossless.
    if (failure?.code === 'RECONNECT' || (failure?.code === 'TOKEN_EXPIRED' && hello)) {
      teardown()
      setState('reconnecting')
      return begin()
    }
    const wasOpen = !!hello
    // A stream refused for one channel (HTTP 400 naming it) is that subscribe's failure.
    const refused = channels.get(failure?.channel as string)
    if (refused && !refused._confirmed) refuse(refused, failure as PushError)
    if (!wasOpen) failure ??= error('TRANSPORT_FAILED', 'closed before hello')
    teardown()
    // Not open any more, whether another transport is tried next or the client backs off; a
    // connection that stayed open long enough resets the backoff.
    if (wasOpen) {
      if (now() - openedAt >= resetAfterMs) attempt = 0
      setState('reconnecting')
    }
    if (failure && !(failure.code === 'EPOCH_FLAPPING' && flapReported)) events.emit('error', failure)
    flapReported ||= failure?.code === 'EPOCH_FLAPPING'
    if (moved(undefined)) return // a listener closed or reconnected
    // Another transport does not fix a refused token or origin, and a server's retry hint (a
    // close frame's retryMs, a refusal's Retry-After) is to be honoured. Offline, every transport
    // fails alike: none is to blame.
    const hint = failure?.retryMs ?? 0
    if (!hint && !NOT_TRANSPORT_FAILURE.test(failure?.code as string) && !offline() && plan?._ended(failure, wasOpen, reason)) return
    // The backoff's delay, after the hint if there is one.
    const delay = hinted(hint, attempt)
    attempt++
    // Offline: no retries until `online` (onLifecycle).
    if (!offline()) reconnectTimer = later(begin, delay)
    setState('reconnecting')
  }

  /**
   * The liveness deadline is computed from the wall clock at each check, not by counting timer
   * ticks: a throttled timer that fires late finds the frames that arrived meanwhile and re-arms.
   * Also checked when the tab becomes visible, where timers may have slept; one timer at a time.
   */
  const checkLiveness = (): void => {
    cancel(deadline)
    if (!hello) return
    const silent = now() - lastFrameAt
    const limit = hello.heartbeatMs + heartbeatGraceMs
    if (silent < limit) deadline = later(checkLiveness, limit - silent)
    else drop(error('HEARTBEAT_TIMEOUT', `silent for ${silent} ms`))
  }

  // ---- browser lifecycle ----

  /** Ends a reconnect delay, or follows a drop, with an attempt now and the backoff reset; not while offline. */
  const reconnectNow = (): void => {
    cancel(reconnectTimer)
    if (moved(undefined) || offline()) return
    attempt = 0
    begin()
  }

  /** Every lifecycle event (lifecycle.ts) comes here; connect() adds the listener, close() removes it. */
  const onLifecycle = ({ type }: { type: string }): void => {
    if (type === 'visibilitychange') {
      // Timers may have slept in a background tab: the deadline is checked against the clock now,
      // and a link found dead is replaced now rather than after a backoff delay.
      if (hello) {
        checkLiveness()
        reconnectNow()
      }
    } else if (type === 'offline') {
      // Wait for `online` instead of retrying; an open link stays (Chromium keeps it), under its deadline.
      cancel(reconnectTimer)
    } else if (type === 'pagehide') {
      // The page may go into the back-forward cache: close the connection cleanly (the server
      // holds nothing for a frozen page) and give up tab leadership (a cached page holding a lock
      // that other tabs wait for is evicted; they lead instead), keeping subscriptions, positions
      // and publishes for pageshow.
      teardown()
      share?.close()
      cancel(reconnectTimer)
      setState('reconnecting')
    } else reconnectNow() // online, pageshow
  }

  // ---- frames ----

  const onFrame = (frame: ServerFrame, transport: Transport): void => {
    lastFrameAt = now()
    const { type } = frame
    if (!hello && type !== 'hello' && type !== 'close' && type !== 'error') {
      return drop(error('PROTOCOL_ERROR', `${type} before hello`))
    }
    const channel = channels.get((frame as { channel?: string }).channel as string)
    if (type === 'hello') {
      if (hello) return
      if (frame.v !== PROTOCOL_VERSION) return drop(error('PROTOCOL_ERROR', `protocol v${frame.v}`))
      const { name } = transport
      plan?._opened(name, frame.transports)
      // A client never uses a transport the server does not list (protocol.md 2.1).
      if (!frame.transports.includes(name)) return drop(error('TRANSPORT_FAILED', `${name} not offered`), 'not-offered')
      hello = frame
      maxFrameBytes = frame.maxFrameBytes
      openedAt = lastFrameAt
      checkLiveness()
      // Resubscribe from our positions (a stream transport's cursor carried them already).
      for (const each of channels.values()) sendSubscribe(each)
      flushPublishes()
      const attempt = current
      if (name !== lastTransport) events.emit('transport', (lastTransport = name))
      if (!moved(attempt)) setState('open')
    } else if (type === 'ping') {
      transport.send({ type: 'pong' })
    } else if (type === 'subscribed') {
      // Not an answer to an older subscribe of this channel (unsubscribed and subscribed again since).
      if (!channel || (frame.rid && channel._rid && frame.rid !== channel._rid)) return
      channel._confirmed = true
      const { _epoch: e } = channel
      // Without a gap the server must resume at our position; report what it did instead (protocol.md 4.1).
      if (frame.gap || (e !== undefined && (e !== frame.epoch || frame.offset > channel._offset))) {
        if (gap(channel, frame.gap ?? (e !== frame.epoch ? 'epoch-changed' : 'history-exhausted'), frame.epoch, frame.offset)) return
      } else if (e === undefined) {
        channel._epoch = frame.epoch
        channel._offset = frame.offset
      }
      // A resume from before our position replays what we have: dropped as duplicates.
      emit(channel, 'subscribed', { channel: channel._name, position: `${channel._epoch}-${channel._offset}` })
      flushPublishes(channel._name)
    } else if (type === 'message') {
      if (!channel) return
      const { id, offset } = frame
      const epoch = id.slice(0, id.lastIndexOf('-')) // the decoder checked that the id names the offset
      const { _epoch: e, _offset: o } = channel
      if (e !== undefined) {
        // Duplicates after a retried subscribe or a transport switch (protocol.md 4.1).
        if (epoch === e && offset <= o) return
        // Skipped offsets or another epoch without a gap frame: report what was seen.
        if ((epoch !== e || offset > o + 1) && gap(channel, epoch === e ? 'history-exhausted' : 'epoch-changed', epoch, offset - 1)) return
      }
      channel._epoch = epoch
      channel._offset = offset
      const { type: _, ...message } = frame
      emit(channel, 'message', message as PushMessage)
    } else if (type === 'gap') {
      if (channel) gap(channel, frame.reason, frame.epoch, frame.offset)
    } else if (type === 'presence') {
      if (!channel) return
      // protocol.md 2.4: a sync replaces the set; join and leave change one member.
      if (frame.action === 'sync') channel._members = new Map(frame.members.map((member) => [member.id, member]))
      else if (frame.action === 'join') channel._members?.set(frame.member.id, frame.member)
      else channel._members?.delete(frame.member.id)
      emit(channel, 'presence', frame)
    } else if (type === 'ack') {
      settle(frame.rid, undefined, { channel: frame.channel, offset: frame.offset, id: frame.id })
    } else if (type === 'error') {
      const failure = error(frame.code, frame.message, frame.channel, frame.retryMs)
      const { rid: r } = frame
      // Over a rate: the request is sent again after the server's hint, never failed for it.
      const limited = frame.code === 'RATE_LIMITED'
      const pending = outbox.get(r as string)
      if (pending) {
        if (!limited) return settle(r as string, failure)
        pending._sent = false
        return void later(() => outbox.get(r as string) === pending && sendPublish(pending), hinted(frame.retryMs ?? 0, 0))
      }
      let about = channel
      if (!about && r) for (const each of channels.values()) if (each._rid === r) about = each
      if (!about) events.emit('error', failure)
      else if (limited && !about._confirmed) {
        const retried = about
        later(() => channels.get(retried._name) === retried && retried._rid === r && sendSubscribe(retried), hinted(frame.retryMs ?? 0, 0))
      } else if (!about._confirmed) refuse(about, failure)
      else emit(about, 'error', failure)
    } else if (type === 'close') {
      drop(error(frame.code, frame.message, undefined, frame.retryMs))
    }
  }

  /** Reports a gap and moves to its position; true when the connection was dropped instead (flapping epochs). */
  const gap = (channel: Channel, reason: GapReason, epoch: string, offset: number): boolean | void => {
    const { _epoch: left, _name: name } = channel
    if (left !== undefined && left !== epoch) {
      const epochs = (channel._left ??= new Map())
      // Back to an epoch left within the minute: nodes with histories of their own behind one URL,
      // each replaying its history in turn for as long as the client resumes. Wait, keeping the
      // position, instead (the server sends the same close where it can tell, protocol.md 4).
      if (now() - (epochs.get(epoch) ?? -EPOCH_FLAP_WINDOW_MS) < EPOCH_FLAP_WINDOW_MS) {
        // Seen again now: it keeps counting as flapping for as long as it comes back.
        epochs.set(epoch, now())
        drop(error('EPOCH_FLAPPING', `${name}: epochs flap; nodes need a shared broker (pushline/redis) or sticky sessions`, name, EPOCH_FLAP_RETRY_MS))
        return true
      }
      epochs.delete(left)
      epochs.set(left, now())
      // The last few are enough to see two or three nodes take turns.
      if (epochs.size > 4) epochs.delete(epochs.keys().next().value as string)
    }
    const info: GapInfo = { channel: name, reason, to: `${epoch}-${offset}` }
    if (left !== undefined) info.from = `${left}-${channel._offset}`
    channel._epoch = epoch
    channel._offset = offset
    emit(channel, 'gap', info)
  }

  // ---- subscriptions ----

  const sendSubscribe = (channel: Channel): void => {
    if (!hello) return
    const frame: SubscribeFrame = { type: 'subscribe', channel: channel._name, rid: (channel._rid = String(++rid)) }
    channel._confirmed = false
    // A rewind only until the channel has a position: after that a resume never replays again.
    if (channel._epoch !== undefined) frame.since = `${channel._epoch}-${channel._offset}`
    else if (channel._rewind) frame.rewind = channel._rewind
    current?._transport?.send(frame)
  }

  const end = (listener: SubscriptionEmitter, failure?: PushError): void => {
    listener.emit('end', failure)
    listener.events = {}
  }

  /** The server refused a subscribe: the channel's subscriptions get the error and end. */
  const refuse = (channel: Channel, failure: PushError): void => {
    channels.delete(channel._name)
    for (const listener of channel._listeners) {
      listener.emit('error', failure)
      end(listener, failure)
    }
    if (hello) current?._transport?.send({ type: 'unsubscribe', channel: channel._name })
    flushPublishes(channel._name)
  }

  // ---- publishes ----

  const sendPublish = (pending: PendingPublish): void => {
    const { _frame: frame } = pending
    // A publish to a channel whose subscribe is not confirmed yet waits for it, so that the client
    // receives its own message (a stream transport subscribes by reopening, after the POST).
    const channel = channels.get(frame.channel)
    if (!hello || pending._sent || (channel && !channel._confirmed)) return
    if (tooLarge(pending._json, maxFrameBytes)) return settle(frame.rid, error('FRAME_TOO_LARGE', tooLargeMessage(), frame.channel))
    pending._sent = true
    current?._transport?.send(frame)
  }

  const flushPublishes = (channel?: string): void => {
    for (const pending of outbox.values()) if (!channel || pending._frame.channel === channel) sendPublish(pending)
  }

  const settle = (key: string, failure?: PushError, ack?: PublishAck): void => {
    const pending = outbox.get(key)
    if (!pending) return
    outbox.delete(key)
    cancel(pending._timer)
    pending._done(failure, ack)
  }

  // Negotiation comes with the fallback transports' factories (Negotiate): made last, it gets
  // the functions above.
  const plan: Plan | undefined = (factories.find((factory) => factory.negotiate)?.negotiate as Negotiate | undefined)?.(
      options,
      // Resolved here, so that the negotiation has the same handshake deadline and clock.
      handshakeTimeoutMs,
      timers,
      events,
      () => current,
      launch,
      (attempt, frame) => {
        teardown()
        current = attempt
        onFrame(frame, attempt._transport as Transport)
      },
      start,
      moved,
    )
  // With several transports and no negotiation, all but the first would be silently ignored.
  if (!first || (!plan && factories[1])) throw new PushError('NO_TRANSPORT', 'no transports, or none negotiates')

  // The members of PushClient (its interface documents them).
  return {
    get state() {
      return state
    },
    get transport() {
      return hello && current?._factory.name
    },

    on: (event, listener) => events.on(event, listener),

    connect(): void {
      if (state !== 'idle' && state !== 'closed') return
      listenLifecycle(lifecycle, onLifecycle, true)
      setState('connecting')
      if ((state as ClientState) === 'connecting') begin() // else a listener closed
    },

    close(): void {
      if (state === 'closed') return
      listenLifecycle(lifecycle, onLifecycle)
      share?.close()
      teardown()
      cancel(reconnectTimer)
      attempt = 0
      lastTransport = undefined
      for (const key of [...outbox.keys()]) settle(key, new PushError('CLIENT_CLOSED', 'client closed'))
      setState('closed')
    },

    subscribe<T>(
      channel: string | ChannelDefinition,
      listener?: (message: PushMessage<T>) => void,
      options?: SubscribeOptions,
    ): Subscription<T> {
      const { name, schema } = typeof channel === 'string' ? { name: channel, schema: options?.schema } : channel
      if (!isChannelName(name)) throw badChannel(name)
      const id = options?.since
      const since = id === undefined ? id : parseId(id)
      if (id !== undefined && !since) throw new PushError('INVALID_OPTIONS', `since ${JSON.stringify(id)}: not <epoch>-<offset>`)
      const rewind = options?.rewind
      if (rewind !== undefined && !(rewind >= 0 && Number.isSafeInteger(rewind) && !since)) {
        throw new PushError('INVALID_OPTIONS', `rewind ${rewind}: a count of messages, without since`)
      }
      const emitter: SubscriptionEmitter = createNanoEvents()
      if (schema) validateMessages(emitter, schema)
      const subscription = createSubscription<T>(
        name,
        emitter,
        () => {
          // The last `Subscription` of a channel ends its server subscription.
          const channel = channels.get(name)
          end(emitter)
          if (!channel?._listeners.delete(emitter) || channel._listeners.size) return
          channels.delete(name)
          if (hello) current?._transport?.send({ type: 'unsubscribe', channel: name })
        },
        () => [...(channels.get(name)?._members?.values() ?? [])],
      )
      if (listener) subscription.on('message', listener)
      let shared = channels.get(name)
      if (!shared) {
        channels.set(name, (shared = { _name: name, _epoch: since?.epoch, _offset: since?.offset ?? 0, _rewind: rewind, _listeners: new Set() }))
        sendSubscribe(shared)
      }
      shared._listeners.add(emitter)
      return subscription
    },

    publish(target: string | ChannelDefinition, data: unknown, { event, key }: PublishOptions = {}): Promise<PublishAck> {
      const channel = typeof target === 'string' ? target : target.name
      return new Promise((resolve, reject) => {
        const refuseWith = (code: ErrorCode, message: string, cause?: unknown): void =>
          reject(new PushError(code, message, { channel, cause }))
        if (state === 'closed') return refuseWith('CLIENT_CLOSED', 'client closed')
        if (!isChannelName(channel)) return reject(badChannel(channel))
        if (outbox.size >= maxPendingPublishes) return refuseWith('OUTBOX_FULL', `maxPendingPublishes ${maxPendingPublishes} reached`)
        const id = String(++rid)
        const frame: PublishFrame = { type: 'publish', rid: id, channel, data, key: key ?? `${keyPrefix}-${id}` }
        if (event !== undefined) frame.event = event
        let json: string
        try {
          json = JSON.stringify(frame)
        } catch (cause) {
          return refuseWith('BAD_FRAME', 'data is not JSON', cause)
        }
        if (tooLarge(json, maxFrameBytes)) return refuseWith('FRAME_TOO_LARGE', tooLargeMessage())
        const pending: PendingPublish = {
          _frame: frame,
          _json: json,
          _done: (failure, ack) => (failure ? reject(failure) : resolve(ack as PublishAck)),
          _timer: later(() => settle(id, new PushError('PUBLISH_TIMEOUT', `no ack in ${publishTimeoutMs} ms` + (hello ? '' : ', not connected'), { channel })), publishTimeoutMs),
        }
        outbox.set(id, pending)
        sendPublish(pending)
      })
    },
  } as PushClient
}
