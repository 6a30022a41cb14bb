import { createNanoEvents, type Emitter, type Unsubscribe } from 'nanoevents'
import { PushError, type ErrorCode } from '../errors.js'
import {
  PROTOCOL_VERSION,
  type ErrorFrame,
  type GapReason,
  type HelloFrame,
  type MessageFrame,
  type PublishFrame,
  type ServerFrame,
  type SubscribedFrame,
  type SubscribeFrame,
  type TransportName,
} from '../protocol/frames.js'
import { formatId, isChannelName, parseId, type Position } from '../protocol/position.js'
import { defaultTransports, resolveTransports } from '../transports/registry.js'
import type { Timers, Transport, TransportFactory } from '../transports/transport.js'
import { backoff } from './backoff.js'
import type { PublishAck, PublishOptions, PushClientOptions } from './options.js'
import { Subscription, type GapInfo, type PushMessage, type SubscriptionEmitterEvents } from './subscription.js'

/** idle → connecting → open → (reconnecting → open)* → closed; `connect()` leaves closed again. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ClientEvents {
  state: (state: ClientState) => void
  /** A connection opened on another transport than the previous one. */
  transport: (name: TransportName) => void
  /** Failed attempts, dropped connections, and server errors no publish or subscription claims. */
  error: (error: PushError) => void
}

/**
 * A pushline client: one connection (WebSocket, SSE, …) carrying any number of channel
 * subscriptions, with reconnect, resume without loss or duplicates, and a publish outbox.
 */
export class PushClient {
  readonly #core: ReturnType<typeof createCore>

  constructor(options: PushClientOptions) {
    this.#core = createCore(options)
  }

  /** The connection state. */
  get state(): ClientState {
    return this.#core.state()
  }

  /** The transport of the open connection; undefined while not open. */
  get transport(): TransportName | undefined {
    return this.#core.transport()
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): Unsubscribe {
    return this.#core.events.on(event, listener)
  }

  /** Starts connecting; no-op unless idle or closed. Reconnects on its own until `close()`. */
  connect(): void {
    this.#core.connect()
  }

  /**
   * Closes the connection, stops reconnecting, clears every timer, and rejects pending publishes
   * with `CLIENT_CLOSED`. Subscriptions stay registered: `connect()` resumes them. Idempotent.
   */
  close(): void {
    this.#core.close()
  }

  /**
   * Subscribes to a channel. Works in any state: the subscription is sent once connected, and
   * resumed without loss after every reconnect. Throws `INVALID_CHANNEL` for a malformed name.
   */
  subscribe<T = unknown>(channel: string, listener?: (message: PushMessage<T>) => void): Subscription<T> {
    return this.#core.subscribe(channel, listener as ((message: PushMessage) => void) | undefined) as Subscription<T>
  }

  /**
   * Publishes a message; resolves with its position once the server stored it. Waits for a
   * connection if there is none (up to `publishTimeoutMs`), and resends after a reconnect with the
   * same idempotency key, so a publish whose ack was lost is applied once. Rejects with a
   * {@link PushError}: PUBLISH_TIMEOUT, OUTBOX_FULL, FRAME_TOO_LARGE, INVALID_CHANNEL, CLIENT_CLOSED,
   * or the server's code.
   */
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<PublishAck> {
    return this.#core.publish(channel, data, options)
  }
}

type SubscriptionEmitter = Emitter<SubscriptionEmitterEvents>

/** One server subscription, shared by every `Subscription` of its channel. */
interface Channel {
  readonly name: string
  /** Last position seen (protocol.md 4.1): resumed from after a reconnect. */
  position: Position | undefined
  /** rid of the `subscribe` sent on this connection; answers to older ones are ignored. */
  rid: string | undefined
  /** `subscribed` arrived on this connection. An error before that means the subscribe was refused. */
  confirmed: boolean
  readonly listeners: Set<SubscriptionEmitter>
}

interface PendingPublish {
  readonly frame: PublishFrame
  readonly json: string
  readonly resolve: (ack: PublishAck) => void
  readonly reject: (error: PushError) => void
  readonly timer: unknown
  /** Sent on the current connection; cleared on disconnect so that it is resent with the same key. */
  sent: boolean
}

const globalTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
  now: () => Date.now(),
}

const encoder = new TextEncoder()
/** UTF-8 size above `max`; encodes only when the UTF-16 length cannot decide. */
const tooLarge = (json: string, max: number): boolean =>
  json.length * 3 > max && (json.length > max || encoder.encode(json).length > max)

/**
 * The client's state machine, as a closure: its locals minify to single letters where private
 * class fields would not, which matters for the browser bundle budget.
 */
function createCore(options: PushClientOptions) {
  const { url, token: tokenOption } = options
  const factories = resolveTransports(options.transports ?? defaultTransports)
  const platform = { WebSocket: options.WebSocket, EventSource: options.EventSource, fetch: options.fetch }
  const timers = options.timers ?? globalTimers
  const random = options.random ?? Math.random
  const { initialDelayMs = 500, maxDelayMs = 30_000, resetAfterMs = 5000, retryDelayMs } = options.reconnect ?? {}
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000
  const heartbeatGraceMs = options.heartbeatGraceMs ?? 10_000
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000
  const maxPendingPublishes = options.maxPendingPublishes ?? 1000

  const events = createNanoEvents<ClientEvents>()
  const channels = new Map<string, Channel>()
  /** Publishes waiting for their ack, by rid, in call order. */
  const outbox = new Map<string, PendingPublish>()
  /** 96 random bits: idempotency keys are `<prefix>-<rid>`, unique across clients. */
  const keyPrefix = Array.from(crypto.getRandomValues(new Uint8Array(12)), (byte) => (byte + 256).toString(16).slice(1)).join('')

  let state: ClientState = 'idle'
  /** The transport of the current attempt, open or not. */
  let transport: Transport | undefined
  /** The `hello` of the open connection; set means open. */
  let hello: HelloFrame | undefined
  let maxFrameBytes = Infinity
  let lastTransport: TransportName | undefined
  /** Identifies the current attempt; callbacks and timers of older attempts compare and bail. */
  let attemptId = 0
  /** Index of the current attempt's factory, and how many failed in a row before opening. */
  let index = 0
  let failedInRound = 0
  /** Backoff attempt, reset by a connection that stayed open `resetAfterMs`. */
  let attempt = 0
  let openedAt = 0
  let lastFrameAt = 0
  /** The server's `close.retryMs`: the next reconnect waits at least this long. */
  let retryMs = 0
  let rid = 0
  let handshakeTimer: unknown
  let livenessTimer: unknown
  let reconnectTimer: unknown
  let updateQueued = false

  const error = (code: ErrorCode, message: string, channel?: string, cause?: unknown): PushError =>
    new PushError(code, message, { transport: transport?.name, channel, cause })
  const emitEach = <K extends keyof SubscriptionEmitterEvents>(
    channel: Channel,
    event: K,
    ...args: Parameters<SubscriptionEmitterEvents[K]>
  ): void => {
    for (const listener of [...channel.listeners]) listener.emit(event, ...args)
  }
  const setState = (next: ClientState): void => {
    if (state === next) return
    state = next
    events.emit('state', next)
  }

  // ---- connection lifecycle ----

  /** One connection attempt with the current factory. */
  const start = (): void => {
    teardown()
    const id = attemptId
    const factory = factories[index] as TransportFactory
    const failed = (cause: unknown, code: ErrorCode): void =>
      drop(id, cause instanceof PushError ? cause : new PushError(code, String(cause), { cause, transport: factory.name }))
    handshakeTimer = timers.setTimeout(
      () => drop(id, new PushError('HANDSHAKE_TIMEOUT', 'no hello in time', { transport: factory.name })),
      handshakeTimeoutMs,
    )
    const open = (token: string | undefined): void => {
      if (id !== attemptId) return
      try {
        transport = factory.create({
          url,
          token,
          platform,
          timers,
          handshakeTimeoutMs,
          cursor: () => Array.from(channels.values(), ({ name, position }) => ({ channel: name, position })),
          onFrame: (frame) => {
            if (id === attemptId) onFrame(frame, transport as Transport)
          },
          onClose: (closeError) => drop(id, closeError),
        })
        transport.open()
      } catch (cause) {
        failed(cause, 'TRANSPORT_FAILED')
      }
    }
    let token: string | Promise<string> | undefined
    try {
      token = typeof tokenOption === 'function' ? tokenOption() : tokenOption
    } catch (cause) {
      return failed(cause, 'UNAUTHORIZED')
    }
    if (typeof token === 'object') token.then(open, (cause: unknown) => failed(cause, 'UNAUTHORIZED'))
    else open(token)
  }

  /** Forgets the current attempt: its transport, timers and per-connection state. */
  const teardown = (): void => {
    attemptId++
    timers.clearTimeout(handshakeTimer)
    timers.clearTimeout(livenessTimer)
    const old = transport
    transport = hello = undefined
    old?.close()
    for (const channel of channels.values()) {
      channel.rid = undefined
      channel.confirmed = false
    }
    for (const pending of outbox.values()) pending.sent = false
  }

  /** The attempt `id` ended, with `closeError` unless it was a normal close: fall back or back off. */
  const drop = (id: number, closeError?: PushError): void => {
    if (id !== attemptId || state === 'closed') return
    const wasOpen = hello !== undefined
    // A stream refused for one channel (HTTP 400 naming it) is that subscribe's failure.
    const refused = closeError?.channel === undefined ? undefined : channels.get(closeError.channel)
    if (refused && !refused.confirmed) refuse(refused, closeError as PushError)
    const name = (factories[index] as TransportFactory).name
    teardown()
    if (!wasOpen) closeError ??= new PushError('TRANSPORT_FAILED', 'closed before hello', { transport: name })
    const mark = attemptId
    if (closeError) events.emit('error', closeError)
    if (mark !== attemptId || (state as ClientState) === 'closed') return // a listener closed or reconnected

    if (wasOpen) {
      if (timers.now() - openedAt >= resetAfterMs) attempt = 0
    } else if (++failedInRound < factories.length && !retryMs && closeError?.code !== 'UNAUTHORIZED') {
      // Simple fallback: the next listed transport, at once (another one does not fix a refused token).
      index++
      return start()
    }
    index = failedInRound = 0
    const delay = Math.max(retryDelayMs?.(attempt) ?? backoff(attempt, { initialDelayMs, maxDelayMs }, random), retryMs)
    attempt++
    retryMs = 0
    reconnectTimer = timers.setTimeout(() => {
      reconnectTimer = undefined
      start()
    }, delay)
    setState('reconnecting')
  }

  /**
   * The liveness deadline is computed from the wall clock at each check, not by counting timer
   * ticks: a throttled timer that fires late finds the frames that arrived meanwhile and re-arms.
   */
  const armLiveness = (delay: number): void => {
    const id = attemptId
    livenessTimer = timers.setTimeout(() => {
      if (id !== attemptId || !hello) return
      const limit = hello.heartbeatMs + heartbeatGraceMs
      const silent = timers.now() - lastFrameAt
      if (silent < limit) return armLiveness(limit - silent)
      drop(id, error('HEARTBEAT_TIMEOUT', `silent for ${silent} ms`))
    }, delay)
  }

  // ---- frames ----

  const onFrame = (frame: ServerFrame, current: Transport): void => {
    lastFrameAt = timers.now()
    if (!hello && frame.type !== 'hello' && frame.type !== 'close' && frame.type !== 'error') {
      return drop(attemptId, error('PROTOCOL_ERROR', `${frame.type} before hello`))
    }
    switch (frame.type) {
      case 'hello':
        return onHello(frame, current)
      case 'ping':
        if (current.kind === 'duplex') current.send({ type: 'pong' })
        return
      case 'subscribed':
        return onSubscribed(frame)
      case 'message':
        return onMessage(frame)
      case 'gap': {
        const channel = channels.get(frame.channel)
        if (channel) gap(channel, frame.reason, frame)
        return
      }
      case 'ack':
        return settle(frame.rid, undefined, { channel: frame.channel, offset: frame.offset, id: frame.id })
      case 'error':
        return onError(frame)
      case 'close':
        retryMs = frame.retryMs ?? 0
        return drop(attemptId, error(frame.code, frame.message))
    }
  }

  const onHello = (frame: HelloFrame, current: Transport): void => {
    if (hello) return
    if (frame.v !== PROTOCOL_VERSION) return drop(attemptId, error('PROTOCOL_ERROR', `protocol v${frame.v}`))
    timers.clearTimeout(handshakeTimer)
    hello = frame
    maxFrameBytes = frame.maxFrameBytes
    openedAt = lastFrameAt
    failedInRound = 0
    armLiveness(frame.heartbeatMs + heartbeatGraceMs)
    // Stream transports carried the subscriptions in their cursor; duplex ones resubscribe now.
    if (current.kind === 'duplex') for (const channel of channels.values()) sendSubscribe(channel)
    flushPublishes()
    const mark = attemptId
    if (current.name !== lastTransport) events.emit('transport', (lastTransport = current.name))
    if (mark === attemptId) setState('open')
  }

  const onSubscribed = (frame: SubscribedFrame): void => {
    const channel = channels.get(frame.channel)
    // An answer to an older subscribe of this channel (unsubscribed and subscribed again since).
    if (!channel || (frame.rid !== undefined && channel.rid !== undefined && frame.rid !== channel.rid)) return
    channel.confirmed = true
    const from = channel.position
    if (frame.gap) gap(channel, frame.gap, frame)
    else if (!from) channel.position = { epoch: frame.epoch, offset: frame.offset }
    // Without a gap the server must resume at our position; report what it did instead (protocol.md 4.1).
    else if (from.epoch !== frame.epoch) gap(channel, 'epoch-changed', frame)
    else if (frame.offset > from.offset) gap(channel, 'history-exhausted', frame)
    // A resume from before our position replays what we have: dropped as duplicates.
    const { epoch, offset } = channel.position as Position
    emitEach(channel, 'subscribed', { channel: channel.name, position: formatId(epoch, offset) })
    flushPublishes(channel.name)
  }

  const onMessage = (frame: MessageFrame): void => {
    const channel = channels.get(frame.channel)
    if (!channel) return
    const position = parseId(frame.id) as Position // the decoder checked it
    const last = channel.position
    if (last) {
      // Duplicates after a retried subscribe or a stream switch (protocol.md 4.1).
      if (position.epoch === last.epoch && position.offset <= last.offset) return
      // Skipped offsets or another epoch without a gap frame: report what was seen.
      if (position.epoch !== last.epoch || position.offset > last.offset + 1) {
        gap(channel, position.epoch === last.epoch ? 'history-exhausted' : 'epoch-changed', {
          epoch: position.epoch,
          offset: position.offset - 1,
        })
      }
    }
    channel.position = position
    const { type, ...message } = frame
    emitEach(channel, 'message', message as PushMessage)
  }

  const onError = (frame: ErrorFrame): void => {
    const failure = error(frame.code, frame.message, frame.channel)
    if (frame.rid !== undefined && outbox.has(frame.rid)) return settle(frame.rid, failure)
    let channel = frame.channel === undefined ? undefined : channels.get(frame.channel)
    if (!channel && frame.rid !== undefined) for (const each of channels.values()) if (each.rid === frame.rid) channel = each
    if (!channel) events.emit('error', failure)
    else if (!channel.confirmed) refuse(channel, failure)
    else emitEach(channel, 'error', failure)
  }

  const gap = (channel: Channel, reason: GapReason, to: Position): void => {
    const info: GapInfo = { channel: channel.name, reason, to: formatId(to.epoch, to.offset) }
    if (channel.position) info.from = formatId(channel.position.epoch, channel.position.offset)
    channel.position = { epoch: to.epoch, offset: to.offset }
    emitEach(channel, 'gap', info)
  }

  // ---- subscriptions ----

  const sendSubscribe = (channel: Channel): void => {
    if (!hello || transport?.kind !== 'duplex') return
    channel.rid = String(++rid)
    channel.confirmed = false
    const frame: SubscribeFrame = { type: 'subscribe', channel: channel.name, rid: channel.rid }
    if (channel.position) frame.since = formatId(channel.position.epoch, channel.position.offset)
    transport.send(frame)
  }

  /** Stream transports reopen for a new cursor; changes made in one tick share one reopen. */
  const scheduleUpdate = (): void => {
    if (transport?.kind !== 'stream' || updateQueued) return
    updateQueued = true
    queueMicrotask(() => {
      updateQueued = false
      // Whichever stream transport is current: one created since has a fresh cursor anyway.
      if (transport?.kind === 'stream') transport.update()
    })
  }

  const end = (listener: SubscriptionEmitter, failure?: PushError): void => {
    listener.emit('end', failure)
    listener.events = {}
  }

  /** The last `Subscription` of a channel ends its server subscription. */
  const release = (name: string, listener: SubscriptionEmitter): void => {
    const channel = channels.get(name)
    end(listener)
    if (!channel?.listeners.delete(listener) || channel.listeners.size) return
    channels.delete(name)
    if (transport?.kind === 'stream') scheduleUpdate()
    else if (hello && channel.rid) transport?.send({ type: 'unsubscribe', channel: name })
  }

  /** The server refused a subscribe: the channel's subscriptions get the error and end. */
  const refuse = (channel: Channel, failure: PushError): void => {
    channels.delete(channel.name)
    for (const listener of channel.listeners) {
      listener.emit('error', failure)
      end(listener, failure)
    }
    scheduleUpdate()
    flushPublishes(channel.name)
  }

  // ---- publishes ----

  const sendPublish = (pending: PendingPublish): void => {
    // A publish to a channel whose subscribe is not confirmed yet waits for it, so that the client
    // receives its own message (a stream transport subscribes by reopening, after the POST).
    if (!hello || !transport || pending.sent || channels.get(pending.frame.channel)?.confirmed === false) return
    if (tooLarge(pending.json, maxFrameBytes)) {
      return settle(pending.frame.rid, error('FRAME_TOO_LARGE', `over ${maxFrameBytes} bytes`, pending.frame.channel))
    }
    pending.sent = true
    if (transport.kind === 'duplex') transport.send(pending.frame)
    else transport.publish(pending.frame)
  }

  const flushPublishes = (channel?: string): void => {
    for (const pending of outbox.values()) if (channel === undefined || pending.frame.channel === channel) sendPublish(pending)
  }

  const settle = (key: string, failure?: PushError, ack?: PublishAck): void => {
    const pending = outbox.get(key)
    if (!pending) return
    outbox.delete(key)
    timers.clearTimeout(pending.timer)
    if (failure) pending.reject(failure)
    else pending.resolve(ack as PublishAck)
  }

  return {
    events,
    state: () => state,
    transport: () => (hello ? transport?.name : undefined),

    connect(): void {
      if (state !== 'idle' && state !== 'closed') return
      setState('connecting')
      if ((state as ClientState) === 'connecting') start() // unless a listener closed
    },

    close(): void {
      if (state === 'closed') return
      teardown()
      timers.clearTimeout(reconnectTimer)
      index = failedInRound = attempt = retryMs = 0
      lastTransport = undefined
      for (const key of [...outbox.keys()]) settle(key, new PushError('CLIENT_CLOSED', 'client closed'))
      setState('closed')
    },

    subscribe(name: string, listener?: (message: PushMessage) => void): Subscription {
      if (!isChannelName(name)) throw new PushError('INVALID_CHANNEL', `bad channel ${JSON.stringify(name)}`, { channel: name })
      const emitter: SubscriptionEmitter = createNanoEvents()
      const subscription = new Subscription(name, emitter, () => release(name, emitter))
      if (listener) subscription.on('message', listener)
      let channel = channels.get(name)
      if (!channel) {
        channels.set(name, (channel = { name, position: undefined, rid: undefined, confirmed: false, listeners: new Set() }))
        if (transport?.kind === 'duplex') sendSubscribe(channel)
        else scheduleUpdate()
      }
      channel.listeners.add(emitter)
      return subscription
    },

    publish(channel: string, data: unknown, { event, key }: PublishOptions = {}): Promise<PublishAck> {
      return new Promise((resolve, reject) => {
        const refuseWith = (code: ErrorCode, message: string, cause?: unknown) =>
          reject(new PushError(code, message, { channel, cause }))
        if (state === 'closed') return refuseWith('CLIENT_CLOSED', 'client closed')
        if (!isChannelName(channel)) return refuseWith('INVALID_CHANNEL', `bad channel ${JSON.stringify(channel)}`)
        if (outbox.size >= maxPendingPublishes) return refuseWith('OUTBOX_FULL', `${outbox.size} publishes pending`)
        const id = String(++rid)
        const frame: PublishFrame = { type: 'publish', rid: id, channel, data, key: key ?? `${keyPrefix}-${id}` }
        if (event !== undefined) frame.event = event
        let json: string
        try {
          json = JSON.stringify(frame)
        } catch (cause) {
          return refuseWith('BAD_FRAME', 'data is not JSON', cause)
        }
        if (tooLarge(json, maxFrameBytes)) return refuseWith('FRAME_TOO_LARGE', `over ${maxFrameBytes} bytes`)
        const timer = timers.setTimeout(
          () => settle(id, new PushError('PUBLISH_TIMEOUT', `no ack in ${publishTimeoutMs} ms`, { channel })),
          publishTimeoutMs,
        )
        const pending: PendingPublish = { frame, json, resolve, reject, timer, sent: false }
        outbox.set(id, pending)
        sendPublish(pending)
      })
    },
  }
}
