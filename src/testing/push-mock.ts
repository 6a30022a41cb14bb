import { http, HttpResponse, ws, type RequestHandler, type WebSocketHandler } from 'msw'
import {
  PROTOCOL_VERSION,
  type AckFrame,
  type ErrorCode,
  type ErrorFrame,
  type HelloFrame,
  type MessageFrame,
  type ServerFrame,
  type SubscribedFrame,
  type TransportName,
} from '../protocol/frames.js'
import { formatCursor, formatId, isChannelName, parseCursor, parseId, type CursorEntry, type Position } from '../protocol/position.js'
import { endpointUrl } from '../transports/http.js'

/** The transports the mock serves: every web transport but the iframe stream (msw's worker lets navigations through). */
export type MockTransportName = Extract<TransportName, 'websocket' | 'sse' | 'long-polling' | 'short-polling'>

export interface PushMockOptions {
  /** The pushline base URL the app's client is given, e.g. `http://localhost/push` (absolute, or relative to the page in browsers). */
  url: string
  /**
   * What the mock offers, in its `hello.transports`; the client never tries the others.
   * @default ['websocket', 'sse', 'long-polling', 'short-polling']
   */
  transports?: MockTransportName[]
  /**
   * `hello.heartbeatMs`: WebSocket and SSE streams get a `ping` this often, and the client's
   * liveness deadline is this plus its grace period.
   * @default 25000
   */
  heartbeatMs?: number
  /**
   * `hello.pollHoldMs`: the longest the mock holds a long poll that has nothing to answer.
   * @default 25000
   */
  pollHoldMs?: number
  /**
   * Messages kept per channel for resumes; older ones are answered with a `history-exhausted` gap.
   * @default 1000
   */
  historyLimit?: number
}

/** A publish the client made and the mock stored: what the app sent and where it went. */
export interface RecordedPublish {
  channel: string
  /** The publish's event name (`message` when the client gave none). */
  event: string
  data: unknown
  /** The client's idempotency key; a resend with the same key is answered with the first ack and not recorded again. */
  key: string | undefined
  /** The transport it came over: `websocket`, or the HTTP transports' `POST <base>/publish`. */
  via: 'websocket' | 'http'
  /** The ack the mock answered with (the `rid` of the request that stored it). */
  ack: AckFrame
}

/** A subscription the mock confirmed (one `subscribed` frame it sent). */
export interface RecordedSubscription {
  channel: string
  /** The position the client asked to resume after (`<epoch>-<offset>`); undefined: live from now. */
  since: string | undefined
  /** How many of the newest messages a first subscribe asked for (`rewind`); 0 without. */
  rewind: number
  transport: MockTransportName
}

/** Options of {@link PushMock.publish}. */
export interface MockPublishOptions {
  /**
   * The message's event name.
   * @default 'message'
   */
  event?: string
}

/** Options of {@link PushMock.disconnect}. */
export interface MockDisconnectOptions {
  /**
   * Also lose every channel's history, as a server that keeps it in memory does when it restarts:
   * each channel starts a new epoch, so resuming clients get an `epoch-changed` gap.
   * @default false
   */
  loseHistory?: boolean
}

/** A stand-in pushline server for an app's tests; see {@link createPushMock}. */
export interface PushMock {
  /** The msw handlers: `setupServer(...push.handlers)` (Node) or `setupWorker(...)`, or `server.use(...push.handlers)`. */
  readonly handlers: Array<RequestHandler | WebSocketHandler>
  /** Stores a message in the channel's history and delivers it to every subscriber; returns the frame sent. */
  publish(channel: string, data: unknown, options?: MockPublishOptions): MessageFrame
  /** Loses `count` messages of the channel: live subscribers get a `history-exhausted` gap, and later resumes from before it too. */
  gap(channel: string, count?: number): void
  /** Drops every connection (WebSocket, SSE streams, held polls), as a network cut does; the client reconnects and resumes. */
  disconnect(options?: MockDisconnectOptions): void
  /** Makes new connections of these transports fail (as a proxy that blocks them would), so the client falls back; none: accept all again. */
  refuse(...transports: MockTransportName[]): void
  /**
   * Resolves once the channel has a live subscriber (at once if it has one), with its last
   * subscription. Over polls, a channel counts as subscribed from the poll that confirmed it until
   * `disconnect()`: a poll leaves nothing open in between.
   */
  subscribed(channel: string): Promise<RecordedSubscription>
  /** Every publish the client made, in the order the mock stored them. */
  readonly published: readonly RecordedPublish[]
  /** Every subscription the mock confirmed, in order (resubscriptions after a reconnect included). */
  readonly subscriptions: readonly RecordedSubscription[]
  /** The channel's position: its epoch and the offset of its newest message (0 before any). */
  position(channel: string): Position
}

interface ChannelState {
  position: Position
  /** The newest messages of the epoch, oldest first, at most `historyLimit`. */
  history: MessageFrame[]
}

/** A connection that carries frames as they happen: a WebSocket or an SSE stream. */
interface LiveConnection {
  transport: 'websocket' | 'sse'
  /** Subscribed channels and their positions on this connection. */
  channels: Map<string, Position>
  send(frames: ServerFrame[]): void
  drop(): void
}

/** A long poll held until something happens on one of its channels. */
interface HeldPoll {
  channels: Set<string>
  wake(): void
  drop(): void
}

const ALL_TRANSPORTS: MockTransportName[] = ['websocket', 'sse', 'long-polling', 'short-polling']
/** pushline/server's default `maxRewind`: a larger `rewind` gets the newest this many. */
const MAX_REWIND = 100
const encoder = new TextEncoder()

const errorFrame = (code: ErrorCode, message: string, fields: { rid?: string; channel?: string } = {}): ErrorFrame => ({
  type: 'error',
  code,
  message,
  ...fields,
})

/** A JSON `error` frame as an HTTP answer (protocol.md 3.3). */
const errorResponse = (status: number, frame: ErrorFrame): Response => HttpResponse.json(frame, { status })

/**
 * A stand-in pushline server built on msw: handlers that speak docs/protocol.md over WebSocket
 * (`<base>/ws`, msw's `ws.link`), SSE, long and short polling and `POST <base>/publish`, with one
 * in-memory history per channel, so the real `PushClient` in an app's tests subscribes, resumes
 * and publishes as it would against `pushline/server`. Controls push messages, cut connections,
 * lose messages and refuse transports; `published` and `subscriptions` record what the client did.
 *
 * Not served: the iframe stream (msw's service worker never intercepts navigations, which an
 * iframe's document is), presence, authentication (tokens are accepted and ignored).
 */
export function createPushMock(options: PushMockOptions): PushMock {
  const { transports = ALL_TRANSPORTS, heartbeatMs = 25_000, pollHoldMs = 25_000, historyLimit = 1000 } = options
  // The client's own endpoint URLs; msw matches them without their query.
  const endpoint = (path: string, webSocket = false): string => endpointUrl(options.url, path, webSocket).href

  /** The number in every epoch (`mock1`): one more each time history is lost (`disconnect({ loseHistory })`). */
  let generation = 1
  const channels = new Map<string, ChannelState>()
  const live = new Set<LiveConnection>()
  const held = new Set<HeldPoll>()
  /** Poll sessions handed out by a first poll and still valid (a disconnect ends them), with their channels. */
  const pollSessions = new Map<string, Set<string>>()
  const refused = new Set<MockTransportName>()
  const published: RecordedPublish[] = []
  const subscriptions: RecordedSubscription[] = []
  /** Acks of stored publishes by channel and idempotency key (protocol.md 3.4). */
  const acksByKey = new Map<string, AckFrame>()
  const waiting: Array<{ channel: string; resolve: (subscription: RecordedSubscription) => void }> = []
  let sessionCount = 0

  const channelState = (name: string): ChannelState => {
    let state = channels.get(name)
    if (!state) channels.set(name, (state = { position: { epoch: `mock${generation}`, offset: 0 }, history: [] }))
    return state
  }

  const hello = (transport: MockTransportName): HelloFrame => ({
    type: 'hello',
    v: PROTOCOL_VERSION,
    session: `mock-${transport}-${++sessionCount}`,
    heartbeatMs,
    maxFrameBytes: 65_536,
    transports: [...transports],
    ...(transports.includes('long-polling') && { pollHoldMs }),
  })

  const record = (subscription: RecordedSubscription): void => {
    subscriptions.push(subscription)
    for (const waiter of waiting.filter((entry) => entry.channel === subscription.channel)) {
      waiting.splice(waiting.indexOf(waiter), 1)
      waiter.resolve(subscription)
    }
  }

  /**
   * The answer to a subscribe with `since` (or none) by the resume rules of protocol.md 4: its
   * `subscribed` frame, then the replay. The `subscribed` position is where delivery continues.
   * Without `since`, a `rewind` of n starts n before the newest (clamped as pushline/server's
   * `maxRewind` does), or at the oldest kept: fewer messages, no gap (rule 5).
   */
  const resume = (channel: string, since: Position | undefined, rid?: string, rewind = 0): [SubscribedFrame, ...MessageFrame[]] => {
    const { position, history } = channelState(channel)
    const subscribed: SubscribedFrame = { type: 'subscribed', channel, epoch: position.epoch, offset: position.offset, ...(rid !== undefined && { rid }) }
    // H: the oldest offset still in history (newest + 1 when it is empty).
    const oldest = history[0]?.offset ?? position.offset + 1
    if (!since) {
      if (!rewind) return [subscribed]
      const from = Math.max(oldest - 1, position.offset - Math.min(rewind, MAX_REWIND))
      return [{ ...subscribed, offset: from }, ...history.filter((message) => message.offset > from)]
    }
    if (since.epoch !== position.epoch) {
      return [{ ...subscribed, offset: oldest - 1, gap: 'epoch-changed' }, ...history]
    }
    if (since.offset > position.offset) return [{ ...subscribed, gap: 'position-in-future' }]
    if (since.offset + 1 >= oldest) {
      return [{ ...subscribed, offset: since.offset }, ...history.filter((message) => message.offset > since.offset)]
    }
    return [{ ...subscribed, offset: oldest - 1, gap: 'history-exhausted' }, ...history]
  }

  /** Delivers `frame` of `channel` to every live connection subscribed to it, and wakes the held polls that carry it. */
  const broadcast = (channel: string, frame: ServerFrame, next: Position): void => {
    for (const connection of live) {
      if (!connection.channels.has(channel)) continue
      connection.channels.set(channel, next)
      connection.send([frame])
    }
    for (const poll of held) if (poll.channels.has(channel)) poll.wake()
  }

  const store = (channel: string, event: string, data: unknown): MessageFrame => {
    const state = channelState(channel)
    const offset = state.position.offset + 1
    state.position = { epoch: state.position.epoch, offset }
    const message: MessageFrame = { type: 'message', channel, event, data, offset, id: formatId(state.position.epoch, offset) }
    state.history.push(message)
    if (state.history.length > historyLimit) state.history.shift()
    broadcast(channel, message, state.position)
    return message
  }

  /**
   * Checks a `publish` frame (its fields per protocol.md 2.2), stores it once per idempotency key,
   * records it, and answers with its `ack` or an `error`.
   */
  const receivePublish = (frame: Record<string, unknown>, via: RecordedPublish['via']): AckFrame | ErrorFrame => {
    const rid = typeof frame.rid === 'string' ? frame.rid : 'http'
    const { channel, event = 'message', key } = frame
    if (!isChannelName(channel)) return errorFrame('INVALID_CHANNEL', `bad channel ${JSON.stringify(channel)}`, { rid })
    if (typeof event !== 'string' || !/^.{1,64}$/s.test(event) || (key !== undefined && (typeof key !== 'string' || !/^.{1,64}$/s.test(key))) || !('data' in frame)) {
      return errorFrame('BAD_FRAME', 'publish: event and key are 1-64 characters, data is required', { rid, channel })
    }
    const keyed = key === undefined ? undefined : `${channel}\n${key}`
    const first = keyed === undefined ? undefined : acksByKey.get(keyed)
    if (first) return { ...first, rid }
    const message = store(channel, event, frame.data)
    const ack: AckFrame = { type: 'ack', rid, channel, offset: message.offset, id: message.id }
    if (keyed !== undefined) acksByKey.set(keyed, ack)
    published.push({ channel, event, data: frame.data, key, via, ack })
    return ack
  }

  /** Starts a connection's heartbeat; returns what stops it. Unref'd in Node, so a test that forgets its client still exits. */
  const heartbeat = (connection: LiveConnection): (() => void) => {
    const timer = setInterval(() => connection.send([{ type: 'ping' }]), heartbeatMs) as unknown as { unref?: () => void }
    timer.unref?.()
    return () => clearInterval(timer as unknown as ReturnType<typeof setInterval>)
  }

  // ---- WebSocket (protocol.md 3.2) ----

  const webSocketHandler = ws.link(endpoint('ws', true)).addEventListener('connection', ({ client }) => {
    if (refused.has('websocket') || !transports.includes('websocket')) {
      // What a client sees of an upgrade a proxy refused: the socket fails before it opens.
      client.close(1011, 'refused by the push mock')
      return
    }
    let stop = (): void => {}
    const connection: LiveConnection = {
      transport: 'websocket',
      channels: new Map(),
      send: (frames) => client.send(frames.map((frame) => JSON.stringify(frame)).join('\n')),
      drop: () => {
        stop()
        live.delete(connection)
        // 1006 cannot be sent; any code but 1000/1001/1012/4401 is a failure to the client, as a cut is.
        client.close(4000, 'dropped by the push mock')
      },
    }
    live.add(connection)
    stop = heartbeat(connection)
    client.addEventListener('close', () => {
      stop()
      live.delete(connection)
    })
    connection.send([hello('websocket')])
    client.addEventListener('message', (event) => {
      let frame: Record<string, unknown>
      try {
        frame = JSON.parse(String(event.data)) as Record<string, unknown>
        if (typeof frame !== 'object' || frame === null || typeof frame.type !== 'string') throw new TypeError('not a frame')
      } catch {
        return connection.send([errorFrame('BAD_FRAME', 'not a JSON frame with a string type')])
      }
      const rid = typeof frame.rid === 'string' ? frame.rid : undefined
      const channel = frame.channel
      switch (frame.type) {
        case 'pong':
          return
        case 'publish':
          return connection.send([receivePublish(frame, 'websocket')])
        case 'unsubscribe':
          if (typeof channel === 'string') connection.channels.delete(channel)
          return
        case 'subscribe': {
          const since = typeof frame.since === 'string' ? parseId(frame.since) : undefined
          if (!isChannelName(channel)) return connection.send([errorFrame('INVALID_CHANNEL', `bad channel ${JSON.stringify(channel)}`, { rid, channel: String(channel) })])
          if (frame.since !== undefined && !since) return connection.send([errorFrame('BAD_FRAME', 'since: not a message id', { rid, channel })])
          const rewind = frame.rewind ?? 0
          if (typeof rewind !== 'number' || !Number.isSafeInteger(rewind) || rewind < 0) return connection.send([errorFrame('BAD_FRAME', 'rewind: not a whole number of 0 or more', { rid, channel })])
          const frames = resume(channel, since, rid, rewind)
          connection.channels.set(channel, channelState(channel).position)
          connection.send(frames)
          return record({ channel, since: since && formatId(since.epoch, since.offset), rewind: since ? 0 : rewind, transport: 'websocket' })
        }
        default:
          return connection.send([errorFrame('BAD_FRAME', `unknown frame type ${JSON.stringify(frame.type)}`)])
      }
    })
  })

  /** The cursor of a stream request, or the 400 answer for a malformed one (protocol.md 3.3). */
  const requestCursor = (url: URL): CursorEntry[] | Response => {
    const entries = parseCursor(url.searchParams.get('cursor') ?? '')
    return entries ?? errorResponse(400, errorFrame('BAD_FRAME', 'malformed cursor'))
  }

  // ---- SSE (protocol.md 3.3) ----

  const sseHandler = http.get(endpoint('sse'), ({ request }) => {
    if (refused.has('sse') || !transports.includes('sse')) return refusedResponse()
    const entries = requestCursor(new URL(request.url))
    if (entries instanceof Response) return entries
    // Last-Event-ID overrides the query's positions for the channels the query names.
    const lastEventId = parseCursor(request.headers.get('last-event-id') ?? '')
    for (const entry of entries) entry.position = lastEventId?.find((last) => last.channel === entry.channel)?.position ?? entry.position
    let controller!: ReadableStreamDefaultController<Uint8Array>
    let stop = (): void => {}
    const end = (): void => {
      stop()
      live.delete(connection)
    }
    const connection: LiveConnection = {
      transport: 'sse',
      channels: new Map(),
      send(frames) {
        let text = ''
        for (const frame of frames) {
          // Position-changing frames carry the stream's cursor after them as their `id:`.
          const cursor =
            frame.type === 'message' || frame.type === 'subscribed' || frame.type === 'gap'
              ? formatCursor([...connection.channels].map(([channel, position]) => ({ channel, position })))
              : undefined
          text += (cursor === undefined ? '' : `id: ${cursor}\n`) + `data: ${JSON.stringify(frame)}\n\n`
        }
        try {
          controller.enqueue(encoder.encode(text))
        } catch {
          end() // the client went away
        }
      },
      drop() {
        end()
        try {
          controller.error(new TypeError('dropped by the push mock'))
        } catch {
          // already closed
        }
      },
    }
    const stream = new ReadableStream<Uint8Array>({
      start(streamController) {
        controller = streamController
        // `hello`'s id is the cursor the request asked for.
        controller.enqueue(encoder.encode(`retry: 1000\n:${' '.repeat(2048)}\n\nid: ${formatCursor(entries)}\ndata: ${JSON.stringify(hello('sse'))}\n\n`))
        for (const { channel, position, rewind = 0 } of entries) {
          const frames = resume(channel, position, undefined, rewind)
          const [subscribed] = frames
          connection.channels.set(channel, { epoch: subscribed.epoch, offset: subscribed.offset })
          // One frame at a time, so each `id:` is the cursor after it.
          for (const frame of frames) {
            if (frame.type === 'message') connection.channels.set(channel, { epoch: subscribed.epoch, offset: frame.offset })
            connection.send([frame])
          }
          record({ channel, since: position && formatId(position.epoch, position.offset), rewind, transport: 'sse' })
        }
        live.add(connection)
        stop = heartbeat(connection)
      },
      cancel: end,
    })
    request.signal.addEventListener('abort', end)
    return new HttpResponse(stream, {
      headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' },
    })
  })

  // ---- long and short polling (protocol.md 3.5, 3.6) ----

  /** What a poll answers now for its cursor: per entry its `subscribed` (when needed) and replay. */
  const pollFrames = (entries: CursorEntry[], first: boolean, transport: MockTransportName): ServerFrame[] => {
    const frames: ServerFrame[] = []
    for (const { channel, position, rewind = 0 } of entries) {
      const [subscribed, ...replay] = resume(channel, position, undefined, rewind)
      // A later poll leaves out the `subscribed` that would only repeat the entry's position.
      const repeat = !first && !subscribed.gap && subscribed.offset === position?.offset
      if (!repeat) {
        frames.push(subscribed)
        record({ channel, since: position && formatId(position.epoch, position.offset), rewind, transport })
      }
      frames.push(...replay)
    }
    return frames
  }

  const ndjson = (frames: ServerFrame[]): Response =>
    frames.length === 0
      ? new HttpResponse(null, { status: 204, headers: { 'Cache-Control': 'no-store' } })
      : new HttpResponse(frames.map((frame) => JSON.stringify(frame) + '\n').join(''), {
          headers: { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' },
        })

  const pollHandler = http.get(endpoint('poll'), ({ request }) => {
    const url = new URL(request.url)
    const holdParameter = url.searchParams.get('hold')
    const transport: MockTransportName = holdParameter === '0' || !transports.includes('long-polling') ? 'short-polling' : 'long-polling'
    if (refused.has(transport) || !transports.includes(transport)) return refusedResponse()
    if (holdParameter !== null && !/^\d{1,10}$/.test(holdParameter)) return errorResponse(400, errorFrame('BAD_FRAME', 'hold: 1 to 10 digits'))
    const entries = requestCursor(url)
    if (entries instanceof Response) return entries
    const session = url.searchParams.get('session')
    const sessionChannels = session === null ? undefined : pollSessions.get(session)
    if (session !== null && !sessionChannels) {
      // A session from before a disconnect: the poll fails, as one cut with its server does.
      return HttpResponse.error()
    }
    if (sessionChannels) {
      sessionChannels.clear()
      for (const entry of entries) sessionChannels.add(entry.channel)
      const now = pollFrames(entries, false, transport)
      const hold = Math.min(holdParameter === null ? pollHoldMs : Number(holdParameter), pollHoldMs)
      if (now.length > 0 || hold === 0) return ndjson(now)
      return new Promise<Response>((resolve) => {
        const finish = (response: Response): void => {
          clearTimeout(timer)
          held.delete(poll)
          resolve(response)
        }
        const poll: HeldPoll = {
          channels: new Set(entries.map((entry) => entry.channel)),
          // Publishes made in one turn go out in one answer.
          wake: () => queueMicrotask(() => held.has(poll) && finish(ndjson(pollFrames(entries, false, transport)))),
          drop: () => finish(HttpResponse.error()),
        }
        const timer = setTimeout(() => finish(ndjson([])), hold)
        ;(timer as { unref?: () => void }).unref?.()
        held.add(poll)
        request.signal.addEventListener('abort', () => {
          clearTimeout(timer)
          held.delete(poll)
        })
      })
    }
    const first = hello(transport)
    pollSessions.set(first.session, new Set(entries.map((entry) => entry.channel)))
    return ndjson([first, ...pollFrames(entries, true, transport)])
  })

  // ---- publish over HTTP (protocol.md 3.4) ----

  const publishHandler = http.post(endpoint('publish'), async ({ request }) => {
    let frame: unknown
    try {
      frame = await request.json()
    } catch {
      return errorResponse(400, errorFrame('BAD_FRAME', 'the body is not JSON'))
    }
    if (typeof frame !== 'object' || frame === null || (frame as { type?: unknown }).type !== 'publish') {
      return errorResponse(400, errorFrame('BAD_FRAME', 'the body is not a publish frame'))
    }
    const reply = receivePublish(frame as Record<string, unknown>, 'http')
    return HttpResponse.json(reply, { status: reply.type === 'ack' ? 200 : 400 })
  })

  /** A refused HTTP transport: a network error, as from a proxy that drops the request. */
  function refusedResponse(): Response {
    return HttpResponse.error()
  }

  const liveSubscription = (channel: string): RecordedSubscription | undefined => {
    const open =
      [...live].some((connection) => connection.channels.has(channel)) ||
      [...pollSessions.values()].some((channelsOfSession) => channelsOfSession.has(channel))
    return open ? subscriptions.filter((subscription) => subscription.channel === channel).pop() : undefined
  }

  return {
    handlers: [webSocketHandler, sseHandler, pollHandler, publishHandler],
    publish(channel, data, { event = 'message' } = {}) {
      if (!isChannelName(channel)) throw new TypeError(`push mock: bad channel ${JSON.stringify(channel)}`)
      return store(channel, event, data)
    },
    gap(channel, count = 1) {
      if (!isChannelName(channel) || !Number.isSafeInteger(count) || count < 1) {
        throw new TypeError(`push mock: gap(${JSON.stringify(channel)}, ${count}): a channel name and a count of at least 1`)
      }
      const state = channelState(channel)
      // The lost messages took their offsets and never reached history.
      state.position = { epoch: state.position.epoch, offset: state.position.offset + count }
      broadcast(channel, { type: 'gap', channel, reason: 'history-exhausted', ...state.position }, state.position)
    },
    disconnect({ loseHistory = false } = {}) {
      for (const connection of [...live]) connection.drop()
      for (const poll of [...held]) poll.drop()
      pollSessions.clear()
      if (!loseHistory) return
      generation++
      channels.clear()
      acksByKey.clear()
    },
    refuse(...names) {
      refused.clear()
      for (const name of names) refused.add(name)
    },
    subscribed(channel) {
      const current = liveSubscription(channel)
      if (current) return Promise.resolve(current)
      return new Promise((resolve) => waiting.push({ channel, resolve }))
    },
    published,
    subscriptions,
    position: (channel) => ({ ...channelState(channel).position }),
  }
}
