import { createNanoEvents, type Emitter, type Unsubscribe } from 'nanoevents'
import { PushError, type ErrorCode } from '../errors.js'
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
import type { Timers, Transport, TransportFactory } from '../transports/transport.js'
import { backoff } from './backoff.js'
import { defaultLifecycle, listenLifecycle } from './lifecycle.js'
import type { CoreClientOptions, PublishAck, PublishOptions, StorageLike, SubscribeOptions } from './options.js'
import { createSubscription, type GapInfo, type PushMessage, type Subscription, type SubscriptionEmitterEvents } from './subscription.js'

/** idle → connecting → open → (reconnecting → open)* → closed; `connect()` leaves closed again. */
export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

/**
 * Why the client moved to another transport: its handshake failed (an error, or a close before
 * `hello`), timed out (no `hello` in `handshakeTimeoutMs`, as behind a buffering proxy), the server
 * does not offer it (its `hello` does not list it), it died within `unstableMs` of opening, or a
 * better transport passed an upgrade probe.
 */
export type FallbackReason = 'handshake-failed' | 'handshake-timeout' | 'not-offered' | 'unstable' | 'upgrade'

/** A move from one transport to another. */
export interface FallbackEvent {
  from: TransportName
  to: TransportName
  reason: FallbackReason
}

export interface ClientEvents {
  state: (state: ClientState) => void
  /** A connection opened on another transport than the previous one. */
  transport: (name: TransportName) => void
  /** The client gave up a transport for another one, or upgraded to a better one. */
  fallback: (event: FallbackEvent) => void
  /** Failed attempts, dropped connections, and server errors no publish or subscription claims. */
  error: (error: PushError) => void
}

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
   * with `CLIENT_CLOSED`. Subscriptions stay registered: `connect()` resumes them. Idempotent.
   */
  close(): void
  /**
   * Subscribes to a channel. Works in any state: the subscription is sent once connected, and
   * resumed without loss after every reconnect. Throws `INVALID_CHANNEL` for a malformed name, and
   * `BAD_FRAME` for a `since` that is not a message id.
   */
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
   */
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<PublishAck>
}

// The class only gives `new PushClient()` and `instanceof`; the members (declared by the interface
// above) are the closures of createCore, copied onto the instance, getters included. Closure locals
// minify to single letters where private fields and delegating methods would not, which matters
// for the browser bundle budget.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PushClient {
  /** Takes the transports as factories: `new PushClient({ url, transports: [websocket(), sse()] })`. */
  constructor(options: CoreClientOptions) {
    Object.defineProperties(this, Object.getOwnPropertyDescriptors(createCore(options)))
  }
}

type SubscriptionEmitter = Emitter<SubscriptionEmitterEvents>

// Internal records use one-letter fields: property names survive minification, and these are
// read all over the core.

/** One server subscription, shared by every `Subscription` of its channel. */
interface Channel {
  /** The channel's name. */
  readonly n: string
  /** Epoch and offset of the last position seen (protocol.md 4.1), resumed from after a reconnect; `e` unset: none yet. */
  e?: string
  o: number
  /** rid of the `subscribe` sent on this connection; answers to older ones are ignored. */
  r?: string
  /** `subscribed` arrived on this connection. An error before that means the subscribe was refused. */
  c?: boolean
  /** The emitters of its `Subscription`s. */
  readonly l: Set<SubscriptionEmitter>
}

interface PendingPublish {
  /** The frame, and its JSON. */
  readonly f: PublishFrame
  readonly j: string
  /** Settles the promise. */
  readonly d: (failure?: PushError, ack?: PublishAck) => void
  /** The PUBLISH_TIMEOUT timer. */
  readonly t: unknown
  /** Sent on the current connection; cleared on disconnect so that it is resent with the same key. */
  s?: boolean
}

/** One transport being opened, as the connection or as an upgrade probe; callbacks compare it with both. */
interface Attempt {
  readonly f: TransportFactory
  t?: Transport
  /** For a probe: its index among the better transports. */
  readonly r?: number
}

/** What is remembered per server URL: the transport that won, what the server offers, until when. */
interface Memory {
  w?: TransportName | undefined
  o: TransportName[]
  u: number
}

const globalTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
  now: () => Date.now(),
}

const memoryStore: Record<string, string> = {}
/** localStorage where it works (touching it throws in sandboxed frames, or with storage blocked), else memory. */
const defaultStorage: StorageLike = {
  getItem(key) {
    try {
      return localStorage.getItem(key)
    } catch {
      return memoryStore[key] ?? null
    }
  },
  setItem(key, value) {
    try {
      localStorage.setItem(key, value)
    } catch {
      memoryStore[key] = value
    }
  },
}

const encoder = new TextEncoder()
/** UTF-8 size above `max`; encodes only when the UTF-16 length cannot decide. */
const tooLarge = (json: string, max: number): boolean =>
  json.length * 3 > max && (json.length > max || encoder.encode(json).length > max)

const badChannel = (name: string): PushError =>
  new PushError('INVALID_CHANNEL', `bad channel ${JSON.stringify(name)}`, { channel: name })

/** The client's state machine, as a closure (see the PushClient class). */
function createCore(options: CoreClientOptions): PushClient {
  const {
    url,
    token: tokenOption,
    transports: factories,
    timers = globalTimers,
    random = Math.random,
    handshakeTimeoutMs = 4000,
    heartbeatGraceMs = 10_000,
    unstableMs = 5000,
    upgradeProbeMs = 60_000,
    rememberMs = 3_600_000,
    storage = defaultStorage,
    publishTimeoutMs = 10_000,
    maxPendingPublishes = 1000,
    lifecycle = defaultLifecycle(),
  } = options
  const { initialDelayMs = 500, maxDelayMs = 30_000, resetAfterMs = 5000, retryDelayMs } = options.reconnect ?? {}
  if (!factories?.length) throw new PushError('NO_TRANSPORT', 'no transports')
  const platform = { WebSocket: options.WebSocket, EventSource: options.EventSource, fetch: options.fetch }
  const memoryKey = 'pushline:' + url
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

  let memory: Memory | undefined
  try {
    memory = JSON.parse(storage.getItem(memoryKey) as string) as Memory
  } catch {
    // nothing remembered, or storage unusable
  }
  let state: ClientState = 'idle'
  /** The connection: opening, or open once `hello` is set. */
  let current: Attempt | undefined
  /** An upgrade probe: a better transport opened in the background. */
  let probe: Attempt | undefined
  /** The `hello` of the open connection; set means open. */
  let hello: HelloFrame | undefined
  /** This round's transports in the order they are tried, and the index of the current one. */
  let order: TransportFactory[] = []
  let index = 0
  let maxFrameBytes = Infinity
  let lastTransport: TransportName | undefined
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
  let probeTimer: unknown
  let updateQueued = false

  const error = (code: ErrorCode, message: string, channel?: string): PushError =>
    new PushError(code, message, { transport: current?.f.name, channel })
  const emit = <K extends keyof SubscriptionEmitterEvents>(
    channel: Channel,
    event: K,
    ...args: Parameters<SubscriptionEmitterEvents[K]>
  ): void => {
    for (const listener of [...channel.l]) listener.emit(event, ...args)
  }
  const setState = (next: ClientState): void => {
    if (state !== next) events.emit('state', (state = next))
  }
  /** Whether the client was closed or moved on since `attempt` was current. */
  const moved = (attempt: Attempt | undefined): boolean => current !== attempt || state === 'closed'

  // ---- negotiation ----

  const known = (): Memory | undefined => (memory && memory.u > now() && Array.isArray(memory.o) ? memory : undefined)
  /** Whether the server offers this transport, as far as we know. */
  const offers = ({ name }: TransportFactory): boolean => known()?.o.includes(name) ?? true

  /** Starts a round: the transports the server offers, the last winner first, the others in their order. */
  const round = (): void => {
    const won = known()?.w
    const offered = factories.filter(offers)
    // A server that offers none of ours may have changed its mind since: try them all.
    order = (offered.length ? offered : [...factories]).sort((a, b) => +(b.name === won) - +(a.name === won))
    index = 0
  }

  const remember = (won: TransportName | undefined, offered: TransportName[]): void => {
    memory = { w: won, o: offered, u: now() + rememberMs }
    try {
      storage.setItem(memoryKey, JSON.stringify(memory))
    } catch {
      // remembered in this client only
    }
  }

  /** Opens `attempt.f` once the token is known; its callbacks act only while it is the connection or the probe. */
  const launch = (attempt: Attempt): void => {
    const { f: factory } = attempt
    const fail = (cause?: unknown, code: ErrorCode = 'TRANSPORT_FAILED'): void => {
      if (attempt === probe) return probeFailed()
      if (attempt === current) {
        drop(
          cause === undefined || cause instanceof PushError
            ? cause
            : new PushError(code, String(cause), { cause, transport: factory.name }),
        )
      }
    }
    const open = (token?: string): void => {
      if (attempt !== current && attempt !== probe) return
      try {
        ;(attempt.t = (share ? share.wrap(factory) : factory).create({
          url,
          token,
          platform,
          timers,
          handshakeTimeoutMs,
          // A probe carries no subscriptions: they move to it when it wins.
          cursor: () =>
            attempt === current ? Array.from(channels.values(), ({ n, e, o }) => ({ channel: n, position: e === undefined ? e : { epoch: e, offset: o } })) : [],
          onFrame: (frame) =>
            attempt === current ? onFrame(frame, attempt.t as Transport) : attempt === probe && onProbeFrame(frame, attempt),
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

  /** One connection attempt with the round's current transport. */
  const start = (): void => {
    teardown()
    const attempt: Attempt = (current = { f: order[index] as TransportFactory })
    handshakeTimer = later(() => attempt === current && drop(error('HANDSHAKE_TIMEOUT', 'no hello in time')), handshakeTimeoutMs)
    launch(attempt)
  }

  /** Forgets the connection and any probe: transports, timers and per-connection state. */
  const teardown = (): void => {
    stopProbe()
    cancel(handshakeTimer)
    cancel(livenessTimer)
    const old = current
    current = hello = undefined
    old?.t?.close()
    for (const channel of channels.values()) channel.r = channel.c = undefined
    for (const pending of outbox.values()) pending.s = false
  }

  /**
   * The connection ended, with `failure` unless it was a normal close: fall back to the next
   * transport of the round if it failed to open, timed out, is not offered, or died young; else
   * back off and start a new round.
   */
  const drop = (failure?: PushError, reason?: FallbackReason): void => {
    if (moved(current)) return
    // A RECONNECT close (protocol.md 2.3; a tab that shares took over): reopen at once, no failure.
    if (failure?.code === 'RECONNECT') {
      teardown()
      setState('reconnecting')
      if (!moved(undefined)) round(), start()
      return
    }
    const wasOpen = !!hello
    const from = (current as Attempt).f.name
    const young = now() - openedAt < unstableMs
    // A stream refused for one channel (HTTP 400 naming it) is that subscribe's failure.
    const refused = channels.get(failure?.channel as string)
    if (refused && !refused.c) refuse(refused, failure as PushError)
    if (!wasOpen) failure ??= error('TRANSPORT_FAILED', 'closed before hello')
    teardown()
    if (failure) events.emit('error', failure)
    if (moved(undefined)) return // a listener closed or reconnected

    reason ??= wasOpen
      ? young && !retryMs
        ? 'unstable'
        : undefined
      : failure?.code === 'HANDSHAKE_TIMEOUT'
        ? 'handshake-timeout'
        : 'handshake-failed'
    const to = order.slice(index + 1).find(offers)
    // Another transport does not fix a refused token, and a server's retryMs is to be honoured.
    // Offline, every transport fails alike: none is to blame.
    if (reason && to && !retryMs && failure?.code !== 'UNAUTHORIZED' && !offline()) {
      index = order.indexOf(to)
      events.emit('fallback', { from, to: to.name, reason })
      if (!moved(undefined)) start()
      return
    }
    if (wasOpen && now() - openedAt >= resetAfterMs) attempt = 0
    const delay = Math.max(retryDelayMs?.(attempt) ?? backoff(attempt, { initialDelayMs, maxDelayMs }, random), retryMs)
    attempt++
    retryMs = 0
    // Offline: no retries until `online` (onLifecycle).
    if (!offline()) reconnectTimer = later(() => {
      round()
      start()
    }, delay)
    setState('reconnecting')
  }

  /**
   * The liveness deadline is computed from the wall clock at each check, not by counting timer
   * ticks: a throttled timer that fires late finds the frames that arrived meanwhile and re-arms.
   * Also checked when the tab becomes visible, where timers may have slept; one timer at a time.
   */
  const checkLiveness = (): void => {
    cancel(livenessTimer)
    if (!hello) return
    const silent = now() - lastFrameAt
    const limit = hello.heartbeatMs + heartbeatGraceMs
    if (silent < limit) livenessTimer = later(checkLiveness, limit - silent)
    else drop(error('HEARTBEAT_TIMEOUT', `silent for ${silent} ms`))
  }

  // ---- browser lifecycle ----

  /** Ends a reconnect delay, or follows a drop, with an attempt now and the backoff reset; not while offline. */
  const reconnectNow = (): void => {
    cancel(reconnectTimer)
    if (moved(undefined) || offline()) return
    attempt = 0
    round()
    start()
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
      // A page with an open connection is not kept in the back-forward cache: close it cleanly,
      // keeping subscriptions, positions and publishes for pageshow.
      teardown()
      cancel(reconnectTimer)
      setState('reconnecting')
    } else reconnectNow() // online, pageshow
  }

  // ---- upgrade probes ----

  /** Transports listed before the current one that the server offers. */
  const better = (): TransportFactory[] =>
    factories.slice(0, factories.indexOf((current as Attempt).f)).filter(({ name }) => hello?.transports.includes(name))

  /** Opens the `rank`-th better transport in the background; the first to say hello wins. */
  const runProbe = (rank: number): void => {
    const factory = better()[rank]
    if (!factory) return scheduleProbe()
    const attempt: Attempt = (probe = { f: factory, r: rank })
    probeTimer = later(() => attempt === probe && probeFailed(), handshakeTimeoutMs)
    launch(attempt)
  }

  const scheduleProbe = (): void => {
    if (upgradeProbeMs > 0 && better().length) probeTimer = later(() => runProbe(0), upgradeProbeMs)
  }

  const stopProbe = (): void => {
    cancel(probeTimer)
    const old = probe
    probe = undefined
    old?.t?.close()
  }

  /** A failed probe changes nothing: the next better transport is probed, or the next round scheduled. */
  const probeFailed = (): void => {
    const rank = (probe as Attempt).r as number
    stopProbe()
    runProbe(rank + 1)
  }

  const onProbeFrame = (frame: ServerFrame, attempt: Attempt): void => {
    const transport = attempt.t as Transport
    if (frame.type !== 'hello' || frame.v !== PROTOCOL_VERSION || !frame.transports.includes(transport.name)) {
      return probeFailed()
    }
    // The probe is live: it becomes the connection, and the old one closes. Subscriptions resume
    // on it from their positions (duplex: subscribe with since; stream: reopen with the cursor),
    // publishes in flight are resent with their keys, and dedupe by offset drops what both delivered.
    events.emit('fallback', { from: (current as Attempt).f.name, to: transport.name, reason: 'upgrade' })
    if (attempt !== probe) return // a listener closed the client
    probe = undefined
    teardown()
    current = attempt
    onFrame(frame, transport)
    round()
    if (transport.kind === 'stream' && current === attempt) transport.update()
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
      // A client never uses a transport the server does not list (protocol.md 2.1).
      if (!frame.transports.includes(transport.name)) {
        remember(known()?.w, frame.transports)
        return drop(error('TRANSPORT_FAILED', 'not offered'), 'not-offered')
      }
      cancel(handshakeTimer)
      hello = frame
      maxFrameBytes = frame.maxFrameBytes
      openedAt = lastFrameAt
      remember(transport.name, frame.transports)
      checkLiveness()
      scheduleProbe()
      // Stream transports carried the subscriptions in their cursor; duplex ones resubscribe now.
      for (const each of channels.values()) sendSubscribe(each)
      flushPublishes()
      const attempt = current
      if (transport.name !== lastTransport) events.emit('transport', (lastTransport = transport.name))
      if (!moved(attempt)) setState('open')
    } else if (type === 'ping') {
      if (transport.kind === 'duplex') transport.send({ type: 'pong' })
    } else if (type === 'subscribed') {
      // Not an answer to an older subscribe of this channel (unsubscribed and subscribed again since).
      if (!channel || (frame.rid && channel.r && frame.rid !== channel.r)) return
      channel.c = true
      const { e } = channel
      // Without a gap the server must resume at our position; report what it did instead (protocol.md 4.1).
      if (frame.gap || (e !== undefined && (e !== frame.epoch || frame.offset > channel.o))) {
        gap(channel, frame.gap ?? (e !== frame.epoch ? 'epoch-changed' : 'history-exhausted'), frame.epoch, frame.offset)
      } else if (e === undefined) {
        channel.e = frame.epoch
        channel.o = frame.offset
      }
      // A resume from before our position replays what we have: dropped as duplicates.
      emit(channel, 'subscribed', { channel: channel.n, position: `${channel.e}-${channel.o}` })
      flushPublishes(channel.n)
    } else if (type === 'message') {
      if (!channel) return
      const { id, offset } = frame
      const epoch = id.slice(0, id.lastIndexOf('-')) // the decoder checked that the id names the offset
      const { e, o } = channel
      if (e !== undefined) {
        // Duplicates after a retried subscribe or a transport switch (protocol.md 4.1).
        if (epoch === e && offset <= o) return
        // Skipped offsets or another epoch without a gap frame: report what was seen.
        if (epoch !== e || offset > o + 1) gap(channel, epoch === e ? 'history-exhausted' : 'epoch-changed', epoch, offset - 1)
      }
      channel.e = epoch
      channel.o = offset
      const { type: _, ...message } = frame
      emit(channel, 'message', message as PushMessage)
    } else if (type === 'gap') {
      if (channel) gap(channel, frame.reason, frame.epoch, frame.offset)
    } else if (type === 'ack') {
      settle(frame.rid, undefined, { channel: frame.channel, offset: frame.offset, id: frame.id })
    } else if (type === 'error') {
      const failure = error(frame.code, frame.message, frame.channel)
      const { rid: r } = frame
      if (r && outbox.has(r)) return settle(r, failure)
      let about = channel
      if (!about && r) for (const each of channels.values()) if (each.r === r) about = each
      if (!about) events.emit('error', failure)
      else if (!about.c) refuse(about, failure)
      else emit(about, 'error', failure)
    } else if (type === 'close') {
      retryMs = frame.retryMs ?? 0
      drop(error(frame.code, frame.message))
    }
  }

  const gap = (channel: Channel, reason: GapReason, epoch: string, offset: number): void => {
    const info: GapInfo = { channel: channel.n, reason, to: `${epoch}-${offset}` }
    if (channel.e !== undefined) info.from = `${channel.e}-${channel.o}`
    channel.e = epoch
    channel.o = offset
    emit(channel, 'gap', info)
  }

  // ---- subscriptions ----

  /** Duplex transports subscribe with a frame (stream transports carry the cursor). */
  const sendSubscribe = (channel: Channel): void => {
    const transport = current?.t
    if (!hello || transport?.kind !== 'duplex') return
    const frame: SubscribeFrame = { type: 'subscribe', channel: channel.n, rid: (channel.r = String(++rid)) }
    channel.c = false
    if (channel.e !== undefined) frame.since = `${channel.e}-${channel.o}`
    transport.send(frame)
  }

  /** Stream transports reopen for a new cursor; changes made in one tick share one reopen. */
  const scheduleUpdate = (): void => {
    if (current?.t?.kind !== 'stream' || updateQueued) return
    updateQueued = true
    queueMicrotask(() => {
      updateQueued = false
      // Whichever stream transport is current: one created since has a fresh cursor anyway.
      const transport = current?.t
      if (transport?.kind === 'stream') transport.update()
    })
  }

  const end = (listener: SubscriptionEmitter, failure?: PushError): void => {
    listener.emit('end', failure)
    listener.events = {}
  }

  /** The server refused a subscribe: the channel's subscriptions get the error and end. */
  const refuse = (channel: Channel, failure: PushError): void => {
    channels.delete(channel.n)
    for (const listener of channel.l) {
      listener.emit('error', failure)
      end(listener, failure)
    }
    scheduleUpdate()
    flushPublishes(channel.n)
  }

  // ---- publishes ----

  const sendPublish = (pending: PendingPublish): void => {
    const transport = current?.t
    const { f: frame } = pending
    // A publish to a channel whose subscribe is not confirmed yet waits for it, so that the client
    // receives its own message (a stream transport subscribes by reopening, after the POST).
    const channel = channels.get(frame.channel)
    if (!hello || !transport || pending.s || (channel && !channel.c)) return
    if (tooLarge(pending.j, maxFrameBytes)) return settle(frame.rid, error('FRAME_TOO_LARGE', 'too large', frame.channel))
    pending.s = true
    if (transport.kind === 'duplex') transport.send(frame)
    else transport.publish(frame)
  }

  const flushPublishes = (channel?: string): void => {
    for (const pending of outbox.values()) if (!channel || pending.f.channel === channel) sendPublish(pending)
  }

  const settle = (key: string, failure?: PushError, ack?: PublishAck): void => {
    const pending = outbox.get(key)
    if (!pending) return
    outbox.delete(key)
    cancel(pending.t)
    pending.d(failure, ack)
  }

  // The members of PushClient (its interface documents them).
  return {
    get state() {
      return state
    },
    get transport() {
      return hello && current?.f.name
    },

    on: (event, listener) => events.on(event, listener),

    connect(): void {
      if (state !== 'idle' && state !== 'closed') return
      listenLifecycle(lifecycle, onLifecycle, true)
      setState('connecting')
      if ((state as ClientState) !== 'connecting') return // a listener closed
      round()
      start()
    },

    close(): void {
      if (state === 'closed') return
      listenLifecycle(lifecycle, onLifecycle)
      share?.close()
      teardown()
      cancel(reconnectTimer)
      attempt = retryMs = 0
      lastTransport = undefined
      for (const key of [...outbox.keys()]) settle(key, new PushError('CLIENT_CLOSED', 'client closed'))
      setState('closed')
    },

    subscribe<T>(name: string, listener?: (message: PushMessage<T>) => void, options?: SubscribeOptions): Subscription<T> {
      if (!isChannelName(name)) throw badChannel(name)
      const since = options?.since === undefined ? undefined : parseId(options.since)
      if (options?.since !== undefined && !since) throw new PushError('BAD_FRAME', `since is not a message id: ${options.since}`)
      const emitter: SubscriptionEmitter = createNanoEvents()
      const subscription = createSubscription<T>(name, emitter, () => {
        // The last `Subscription` of a channel ends its server subscription.
        const channel = channels.get(name)
        end(emitter)
        if (!channel?.l.delete(emitter) || channel.l.size) return
        channels.delete(name)
        const transport = current?.t
        if (transport?.kind === 'stream') scheduleUpdate()
        else if (hello && channel.r) transport?.send({ type: 'unsubscribe', channel: name })
      })
      if (listener) subscription.on('message', listener)
      let channel = channels.get(name)
      if (!channel) {
        channels.set(name, (channel = { n: name, e: since?.epoch, o: since?.offset ?? 0, l: new Set() }))
        sendSubscribe(channel)
        scheduleUpdate()
      }
      channel.l.add(emitter)
      return subscription
    },

    publish(channel: string, data: unknown, { event, key }: PublishOptions = {}): Promise<PublishAck> {
      return new Promise((resolve, reject) => {
        const refuseWith = (code: ErrorCode, message: string, cause?: unknown): void =>
          reject(new PushError(code, message, { channel, cause }))
        if (state === 'closed') return refuseWith('CLIENT_CLOSED', 'client closed')
        if (!isChannelName(channel)) return reject(badChannel(channel))
        if (outbox.size >= maxPendingPublishes) return refuseWith('OUTBOX_FULL', 'outbox full')
        const id = String(++rid)
        const frame: PublishFrame = { type: 'publish', rid: id, channel, data, key: key ?? `${keyPrefix}-${id}` }
        if (event !== undefined) frame.event = event
        let json: string
        try {
          json = JSON.stringify(frame)
        } catch (cause) {
          return refuseWith('BAD_FRAME', 'data is not JSON', cause)
        }
        if (tooLarge(json, maxFrameBytes)) return refuseWith('FRAME_TOO_LARGE', 'too large')
        const pending: PendingPublish = {
          f: frame,
          j: json,
          d: (failure, ack) => (failure ? reject(failure) : resolve(ack as PublishAck)),
          t: later(() => settle(id, new PushError('PUBLISH_TIMEOUT', 'no ack in time', { channel })), publishTimeoutMs),
        }
        outbox.set(id, pending)
        sendPublish(pending)
      })
    },
  } as PushClient
}
