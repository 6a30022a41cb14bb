import type { IncomingMessage, ServerResponse } from 'node:http'
import { formatId } from '../../protocol/position.js'
import type { CursorEntry } from '../../protocol/position.js'
import type { FlushScheduler } from '../hub/connection.js'
import { FrameEncoding } from '../hub/out-frame.js'
import type { OutFrame } from '../hub/out-frame.js'
import type { Endpoint } from './endpoint.js'
import { ResponseStreamConnection, startStreamResponse } from './response-stream.js'
import { CursorTracker, applyLastEventId } from './stream-cursor.js'
import { admitLongLived, admitStreamRequest, cursorRequests, openHubConnection, requireGet } from './stream-request.js'
import type { StreamRequestContext } from './stream-request.js'

/** A comment line of 2 KiB: some proxies and browsers hold the first bytes until they have this many. */
const PADDING = `:${' '.repeat(2047)}\n`

/** The headers of every SSE stream (startStreamResponse adds those for proxies). */
const SSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
}

/** The SSE `data:` line of a frame (with its LF, without the event's terminating blank line). */
const DATA_LINE = new FrameEncoding((frame) => `data: ${frame.json}\n`)

/**
 * The `id:` line for a stream whose only channel is the frame's: then the
 * stream cursor is just this channel's position, the same for every such stream.
 * Only for frames with a position.
 */
const SOLE_CHANNEL_ID_LINE = new FrameEncoding((frame) => {
  const position = frame.position
  if (!position) throw new Error('id line of a frame without position')
  return `id: ${position.channel}=${formatId(position.epoch, position.offset)}\n`
})

/**
 * `event` as one HTTP/1.1 chunk (RFC 9112 7.1: its size in hex, CRLF, its bytes, CRLF), the form a
 * chunked response puts it in: written as it is, an event is one socket write of shared bytes
 * ({@link SseConnection}'s fast path) instead of the four small writes `res.write` makes of it.
 */
function framedAsChunk(event: string): Buffer {
  return Buffer.from(`${Buffer.byteLength(event).toString(16)}\r\n${event}\r\n`)
}

/** The event inside a {@link framedAsChunk} chunk, for a response that must write it itself. */
function eventOfChunk(chunk: Buffer): Buffer {
  return chunk.subarray(chunk.indexOf('\r\n') + 2, chunk.length - 2)
}

/**
 * A whole event of a frame that moves a position, for a stream whose only channel is the frame's,
 * framed as a chunk: the same bytes for every such stream, encoded once per message (the fan-out
 * case, then one write of shared bytes per connection).
 */
const SOLE_CHANNEL_EVENT_CHUNK = new FrameEncoding((frame) =>
  framedAsChunk(`${frame.encoded(SOLE_CHANNEL_ID_LINE)}${frame.encoded(DATA_LINE)}\n`),
)

/** A whole event without `id:` (ping, error, presence), framed as a chunk: the same bytes for every stream. */
const PLAIN_EVENT_CHUNK = new FrameEncoding((frame) => framedAsChunk(`${frame.encoded(DATA_LINE)}\n`))

/**
 * A client on an SSE response: each frame is one event with one `data:`
 * line; frames that move a position carry the whole stream cursor as `id:`,
 * so the browser's Last-Event-ID always says where to resume.
 */
export class SseConnection extends ResponseStreamConnection {
  /**
   * The stream cursor as frames go out, for a stream of several channels. A stream of one channel
   * keeps none: its cursor is the position of its channel's last frame, so each of its `id:` lines
   * is that frame's own, shared by every such stream.
   */
  readonly #cursor: CursorTracker | undefined
  /** The request's cursor, for hello's `id:` line (protocol.md 3.3); dropped once hello has gone out. */
  #helloCursor: string | undefined

  constructor(res: ServerResponse, entries: readonly CursorEntry[], scheduler: FlushScheduler) {
    super(res, scheduler)
    const cursor = new CursorTracker(entries)
    this.#helloCursor = cursor.format()
    this.#cursor = cursor.size > 1 ? cursor : undefined
  }

  /** On the prototype rather than in each connection: the same for all of them. */
  get transport(): 'sse' {
    return 'sse'
  }

  protected write(frames: readonly OutFrame[]): void {
    if (!this.writable) return
    const cursor = this.#cursor
    const only = frames.length === 1 ? frames[0] : undefined
    if (only) {
      const type = only.frame.type
      if (only.position) {
        if (!cursor) {
          this.#writeEvent(only.encoded(SOLE_CHANNEL_EVENT_CHUNK))
          return
        }
        cursor.advance(only.position)
      } else if (type !== 'hello' && type !== 'close') {
        this.#writeEvent(only.encoded(PLAIN_EVENT_CHUNK))
        return
      }
    }
    let out = ''
    for (const frame of frames) {
      if (frame.position) {
        if (!cursor) {
          out += frame.encoded(SOLE_CHANNEL_ID_LINE)
        } else {
          if (frame !== only) cursor.advance(frame.position)
          out += `id: ${cursor.format()}\n`
        }
      } else if (frame.frame.type === 'hello') {
        // protocol.md 3.3: hello carries the cursor the request asked for.
        out += `id: ${this.#helloCursor ?? cursor?.format() ?? ''}\n`
        this.#helloCursor = undefined
      } else if (frame.frame.type === 'close' && frame.frame.retryMs !== undefined) {
        // A plain EventSource reconnects by itself; this makes it wait as long as the close frame asks.
        out += `retry: ${frame.frame.retryMs}\n`
      }
      out += `${frame.encoded(DATA_LINE)}\n`
    }
    this.writeChunk(out)
  }

  /**
   * Writes one event, given framed as an HTTP/1.1 chunk, straight to the socket when the response
   * has nothing buffered that it must go after: the heartbeat's path (a round writes a ping to every
   * stream) and the fan-out's (one message to every stream of its channel). `res.write` would make
   * four socket writes of it (size, CRLF, event, CRLF), corked and uncorked on the next tick into
   * one writev; this is one write of shared bytes. Otherwise the response writes the event itself:
   * headers not yet out, not chunked (HTTP/1.0, or not node:http), output waiting, or a chunk large
   * enough to fill the socket's buffer (the response's drain tracking would not see it).
   */
  #writeEvent(chunk: Buffer): void {
    const res = this.res
    const socket = res.socket
    const direct =
      socket !== null &&
      this.writable &&
      res.headersSent &&
      res.chunkedEncoding === true &&
      res.writableCorked === 0 &&
      res.writableLength === 0 &&
      chunk.length < socket.writableHighWaterMark
    if (direct) socket.write(chunk)
    else this.writeChunk(eventOfChunk(chunk))
  }
}

export interface SseEndpointOptions extends StreamRequestContext {
  retryMs: number
  hello: (session: string) => OutFrame
}

/** `GET <base>/sse?cursor=<stream cursor>` (protocol.md 3.3). */
export class SseEndpoint implements Endpoint {
  readonly #options: SseEndpointOptions
  /** `retry:` and the padding: the same bytes for every stream, made once. */
  readonly #preamble: Buffer

  constructor(options: SseEndpointOptions) {
    this.#options = options
    this.#preamble = Buffer.from(`retry: ${options.retryMs}\n${PADDING}\n`)
  }

  async handle(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (!requireGet(req, res)) return
    const releasePlace = admitLongLived(req, res, this.#options)
    if (!releasePlace) return
    const admitted = await admitStreamRequest(req, res, query, 'sse', this.#options)
    if (!admitted) return
    const lastEventId = req.headers['last-event-id']
    const entries = applyLastEventId(admitted.entries, typeof lastEventId === 'string' ? lastEventId : undefined)

    startStreamResponse(req, res, SSE_HEADERS, this.#preamble)

    const { hub, hello } = this.#options
    const connection = new SseConnection(res, entries, hub.scheduler)
    await openHubConnection(
      hub,
      connection,
      res,
      cursorRequests(entries),
      hello(connection.session),
      admitted.identity,
      releasePlace,
    )
  }
}
