/**
 * In-memory stand-ins for the platform pieces PushClient takes (WebSocket, EventSource, fetch), so
 * the client can be driven frame by frame with fake timers and no server.
 */
import { vi } from 'vitest'
import { negotiate } from '../../src/transports/negotiate.js'
import type { PushError } from '../../src/errors.js'
import type { ClientFrame, HelloFrame, PublishFrame, ServerFrame, TransportName } from '../../src/protocol/frames.js'
import type {
  EventSourceLike,
  TransportContext,
  TransportFactory,
  WebSocketLike,
} from '../../src/transports/transport.js'

export const hello = (overrides: Partial<HelloFrame> = {}): HelloFrame => ({
  type: 'hello',
  v: 1,
  session: 'session-1',
  heartbeatMs: 1000,
  maxFrameBytes: 10_000,
  transports: ['websocket', 'sse'],
  ...overrides,
})

export interface FakeSocket extends WebSocketLike {
  readonly url: string
  readonly protocols: string[]
  /** Frames the client sent, parsed. */
  readonly sent: ClientFrame[]
  closedWith: number | undefined
  /** Server side: completes the WebSocket handshake. */
  accept(): void
  /** Server side: one WebSocket message carrying these frames, LF-separated. */
  receive(...frames: (ServerFrame | Record<string, unknown>)[]): void
  receiveRaw(data: unknown): void
  /** Server side: the socket closes with this code. */
  drop(code?: number, reason?: string): void
  /** Sent frames of one type. */
  framesOf<T extends ClientFrame['type']>(type: T): Extract<ClientFrame, { type: T }>[]
}

/** A WebSocket class whose instances are recorded in `sockets`. */
export function fakeWebSockets() {
  const sockets: FakeSocket[] = []
  class FakeWebSocket implements FakeSocket {
    readyState = 0
    onopen: ((event: unknown) => void) | null = null
    onmessage: ((event: unknown) => void) | null = null
    onclose: ((event: unknown) => void) | null = null
    onerror: ((event: unknown) => void) | null = null
    readonly sent: ClientFrame[] = []
    readonly protocols: string[]
    closedWith: number | undefined
    constructor(
      readonly url: string,
      protocols?: string | string[],
    ) {
      this.protocols = protocols === undefined ? [] : ([] as string[]).concat(protocols)
      sockets.push(this)
    }
    send(data: string) {
      if (this.readyState !== 1) throw new Error(`send in readyState ${this.readyState}`)
      this.sent.push(JSON.parse(data) as ClientFrame)
    }
    close(code?: number) {
      this.readyState = 3
      this.closedWith = code
    }
    accept() {
      this.readyState = 1
      this.onopen?.({})
    }
    receive(...frames: (ServerFrame | Record<string, unknown>)[]) {
      this.receiveRaw(frames.map((frame) => JSON.stringify(frame)).join('\n'))
    }
    receiveRaw(data: unknown) {
      this.onmessage?.({ data })
    }
    drop(code = 1006, reason = '') {
      this.readyState = 3
      this.onclose?.({ code, reason })
    }
    framesOf<T extends ClientFrame['type']>(type: T) {
      return this.sent.filter((frame) => frame.type === type) as Extract<ClientFrame, { type: T }>[]
    }
  }
  return {
    WebSocket: FakeWebSocket,
    sockets,
    /** The most recent socket. */
    get last(): FakeSocket {
      const socket = sockets.at(-1)
      if (!socket) throw new Error('no socket yet')
      return socket
    },
  }
}

export interface FakeStream extends EventSourceLike {
  readonly url: URL
  readonly init?: { withCredentials?: boolean; fetch?: typeof fetch } | undefined
  closed: boolean
  /** The stream cursor the client asked for. */
  readonly cursor: string
  /** Server side: one SSE event with this frame as data. */
  receive(frame: ServerFrame | Record<string, unknown>): void
  /** Server side: the stream fails (the eventsource package passes the HTTP status as `code`). */
  fail(code?: number): void
}

/** An EventSource class whose instances are recorded in `streams`. */
export function fakeEventSources(options: { takesFetch?: boolean } = {}) {
  const streams: FakeStream[] = []
  class FakeEventSource implements FakeStream {
    readyState = 0
    onmessage: ((event: unknown) => void) | null = null
    onerror: ((event: unknown) => void) | null = null
    closed = false
    readonly url: URL
    constructor(
      url: string,
      readonly init?: { withCredentials?: boolean; fetch?: typeof fetch },
    ) {
      this.url = new URL(url)
      streams.push(this)
    }
    get cursor() {
      return this.url.searchParams.get('cursor') ?? ''
    }
    close() {
      this.readyState = 2
      this.closed = true
    }
    receive(frame: ServerFrame | Record<string, unknown>) {
      this.readyState = 1
      this.onmessage?.({ data: JSON.stringify(frame) })
    }
    fail(code?: number) {
      this.onerror?.({ type: 'error', code })
    }
  }
  if (options.takesFetch) {
    Object.defineProperty(FakeEventSource, Symbol.for('eventsource.supports-fetch-override'), { value: true })
  }
  return {
    EventSource: FakeEventSource,
    streams,
    get last(): FakeStream {
      const stream = streams.at(-1)
      if (!stream) throw new Error('no stream yet')
      return stream
    },
  }
}

export interface FetchCall {
  url: string
  init: RequestInit
  /** The request's AbortSignal fired (the promise then rejected with an AbortError). */
  aborted: boolean
  respond(status: number, body?: unknown, headers?: Record<string, string>): void
  reject(error: Error): void
}

/** A fetch whose calls wait until the test answers them; an aborted call rejects like fetch does. */
export function fakeFetch() {
  const calls: FetchCall[] = []
  const fetch = (input: string | URL | Request, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const call: FetchCall = {
        url: String(input),
        init,
        aborted: false,
        respond: (status, body = '', headers) =>
          resolve(new Response(status === 204 ? null : typeof body === 'string' ? body : JSON.stringify(body), { status, headers })),
        reject,
      }
      init.signal?.addEventListener('abort', () => {
        call.aborted = true
        reject(new DOMException('This operation was aborted', 'AbortError'))
      })
      calls.push(call)
    })
  return {
    fetch: fetch as typeof globalThis.fetch,
    calls,
    get last(): FetchCall {
      const call = calls.at(-1)
      if (!call) throw new Error('no request yet')
      return call
    },
  }
}

/** An NDJSON poll answer (protocol.md 3.5): one frame per line. */
/** A `message` frame whose data defaults to its offset. */
export const message = (channel: string, epoch: string, offset: number, data: unknown = offset) => ({
  type: 'message' as const,
  channel,
  event: 'message',
  data,
  offset,
  id: `${epoch}-${offset}`,
})

export const ndjson = (...frames: (ServerFrame | Record<string, unknown>)[]): string =>
  frames.map((frame) => JSON.stringify(frame) + '\n').join('')

export interface FakeTransport {
  readonly name: TransportName
  readonly context: TransportContext
  opened: boolean
  closed: boolean
  /** The frames the client sent (a stream transport turns them into reopens and POSTs). */
  readonly sent: ClientFrame[]
  /** Server side: delivers a frame. */
  receive(frame: ServerFrame | Record<string, unknown>): void
  /** Server side: `hello` listing `offered`. */
  hello(offered: TransportName[], overrides?: Partial<HelloFrame>): void
  /** The transport fails (or closes normally without an error). */
  fail(error?: PushError): void
}

/**
 * A transport factory whose transports the test drives directly: for negotiation, where what
 * matters is which transport is tried when, not how it speaks.
 */
export function fakeTransport(name: TransportName, { negotiates = true } = {}) {
  const instances: FakeTransport[] = []
  const factory: TransportFactory = {
    name,
    // As the fallback transports' factories do; without it a client uses its first transport only.
    negotiate: negotiates ? negotiate : undefined,
    create(context) {
      const transport = {
        name,
        context,
        opened: false,
        closed: false,
        sent: [] as ClientFrame[],
        open() {
          transport.opened = true
        },
        close() {
          transport.closed = true
        },
        send(frame: ClientFrame) {
          transport.sent.push(frame)
        },
        receive(frame: ServerFrame | Record<string, unknown>) {
          context.onFrame(frame as ServerFrame)
        },
        hello(offered: TransportName[], overrides: Partial<HelloFrame> = {}) {
          context.onFrame(hello({ transports: offered, ...overrides }))
        },
        fail(error?: PushError) {
          context.onClose(error)
        },
      }
      instances.push(transport)
      return transport
    },
  }
  return {
    factory,
    instances,
    get last(): FakeTransport {
      const instance = instances.at(-1)
      if (!instance) throw new Error(`no ${name} transport yet`)
      return instance
    },
  }
}

/** Fakes only the timers the client uses, so promise machinery (setImmediate) stays real. */
export const useFakeTimers = (): void => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
}

/** Lets pending promise callbacks (and undici's body reading) run. */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** A storage of its own per client, so that tests do not share what the default remembers per process. */
export function memoryStorage(initial: Record<string, string> = {}) {
  const items = new Map(Object.entries(initial))
  return {
    items,
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
  }
}
